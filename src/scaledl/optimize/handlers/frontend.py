"""A cheaper audio front-end: shorter STFT windows and a longer hop, the body re-fitted by
distillation.

In a small speech model the in-graph log-mel (a 1-D convolution with the DFT basis) can cost
more than the network behind it, so no pruning or quantization of the body alone makes the
whole graph much faster. This method rebuilds the model with a lighter front-end — a shorter
window (fewer DFT bins and taps) and/or a longer hop (fewer frames, which also shortens every
time step the body processes) — recomputes the per-band statistics on the training split,
keeps every body tensor whose shape still fits, and trains the student by distillation from
the parent (as long as a slimmed model). The waveform the graph takes (rate, length) and the
manifest's preprocessing, and so the monitoring profile, do not change.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pydantic import BaseModel, ConfigDict, Field

from scaledl.optimize.registry import MethodConfig, MethodSkipped, MethodSpace, register_method

if TYPE_CHECKING:
    from scaledl.optimize.candidate import Candidate
    from scaledl.optimize.context import SearchContext


class FrontendConfig(MethodConfig):
    window_ms: float = Field(gt=0.0, le=500.0)
    hop_ms: float = Field(gt=0.0, le=500.0)
    width: float = Field(1.0, gt=0.0, le=1.0, description="body width multiplier (slimming)")

    def tag(self) -> str:
        tag = f"frontend:win{self.window_ms:g}ms:hop{self.hop_ms:g}ms"
        return tag + (f":w{self.width:g}" if self.width != 1.0 else "")


class FrontendVariant(BaseModel):
    model_config = ConfigDict(extra="forbid")

    window_ms: float = Field(gt=0.0, le=500.0)
    hop_ms: float = Field(gt=0.0, le=500.0)
    width: float = Field(1.0, gt=0.0, le=1.0)


class FrontendSpace(MethodSpace):
    variants: list[FrontendVariant] = Field(
        default_factory=lambda: [
            FrontendVariant(window_ms=16, hop_ms=20),
            FrontendVariant(window_ms=25, hop_ms=20),
            FrontendVariant(window_ms=16, hop_ms=20, width=0.5),
        ],
        description="STFT window and hop (ms) and body width, mild → aggressive",
    )

    def configs(self, ctx: SearchContext) -> list[MethodConfig]:
        return [FrontendConfig(**v.model_dump()) for v in self.variants]

    def unavailable(self, ctx: SearchContext) -> str | None:
        spec = getattr(ctx, "spec", None)
        front = spec.frontend if spec is not None else None
        if not front or front.get("kind") != "audio":
            return "the model has no audio front-end"
        return None


# New features change what every layer sees: the student is trained like a slimmed model
# (the distillation's slim epochs), from the parent's body rather than from random weights.
@register_method(
    "frontend", config=FrontendConfig, space=FrontendSpace, kind="structure", finetune="scratch"
)
def lighter_frontend(candidate: Candidate, config: FrontendConfig, ctx: SearchContext) -> Candidate:
    """A lighter audio front-end (shorter window, longer hop), the body fitted by distillation."""
    import torch

    from scaledl.data.config import AudioConfig
    from scaledl.errors import ModelError
    from scaledl.modalities.audio import band_statistics, logmel_settings
    from scaledl.models import ModelSpec
    from scaledl.optimize.handlers.structure import _inherit
    from scaledl.optimize.slim import slim_spec

    spec = candidate.spec
    front = dict(spec.frontend) if spec is not None and spec.frontend else {}
    if spec is None or front.get("kind") != "audio":
        raise MethodSkipped("the model has no audio front-end")
    rate = int(front["sample_rate"])
    settings = AudioConfig(
        window_ms=config.window_ms,
        hop_ms=config.hop_ms,
        n_mels=int(front["n_mels"]),
        f_min=float(front["f_min"]),
        f_max=float(front["f_max"]),
        log_floor=float(front["log_floor"]),
    )
    logmel = logmel_settings(settings, rate)
    if _cost(logmel.n_fft, logmel.hop_length) >= _cost(front["n_fft"], front["hop_length"]):
        raise MethodSkipped(f"{config.tag()} is not lighter than the parent's front-end")
    mean, std = band_statistics(ctx.splits.train.x, logmel, rate)
    new_front = {**front, **logmel.model_dump(), "mean": list(mean), "std": list(std)}
    new_spec = ModelSpec(
        spec.family, list(spec.input_shape), spec.num_outputs, dict(spec.knobs), new_front
    )
    if config.width != 1.0:
        try:
            new_spec = slim_spec(new_spec, width=config.width)
        except ModelError as exc:
            raise MethodSkipped(str(exc)) from None
    torch.manual_seed(ctx.config.seed)
    try:
        student = new_spec.build().eval()
    except ValueError as exc:  # e.g. too few frames for the transformer's tokens
        raise MethodSkipped(f"{config.tag()}: {exc}") from None
    inherited = _inherit(student, candidate.module)
    child = candidate.derive(
        config.tag(),
        module=student,
        spec=new_spec,
        onnx=None,
        structure={"frontend": logmel.model_dump(), "inherited_tensors": inherited},
    )
    child.notes.append(
        f"front-end: {logmel.win_length}-sample window, {logmel.n_fft}-point DFT, "
        f"hop {logmel.hop_length}; {inherited} body tensors inherited"
    )
    return child


def _cost(n_fft: int, hop: int) -> float:
    """The DFT convolution's multiply-adds per input sample: 2 × bins × taps / hop."""
    return 2 * (n_fft // 2 + 1) * n_fft / hop
