"""The recipe's `augment` section: an ordered policy of ops, each `{op: name, ...params}`.

    augment:
      policy:
        - {op: crop, padding: 4}
        - {op: hflip}
        - {op: randaugment, n: 2, magnitude: 9}
        - {op: cutmix, alpha: 1.0, p: 0.5}

Every parameter is filled in when the recipe is resolved, so the saved recipe and the package
lineage hold the whole policy. The older shorthand `crop_padding: N` / `hflip: true` is read
as the matching ops.
"""

from __future__ import annotations

from typing import Any, ClassVar, TypeVar

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SerializeAsAny,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from scaledl.validation import explain


class OpSpec(BaseModel):
    """An augmentation op's parameters: `p` is the probability that a sample is transformed.

    The ops themselves (`scaledl.data.augment`) subclass this with their parameters and the
    transform, and register under their `op` literal; importing `scaledl.data.augment` registers
    the built-in ones (the recipe loader does), plugins register their own with `register_op`.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    op: str
    p: float = Field(1.0, ge=0.0, le=1.0, description="probability a sample is transformed")

    kinds: ClassVar[tuple[str, ...]] = ("image",)  # the modalities' augmentation kinds it fits
    mixing: ClassVar[bool] = False  # mixes samples and labels: runs after the per-sample ops
    # "input": on the raw batch before the graph; "features": inside the model's front-end
    stage: ClassVar[str] = "input"


Op = TypeVar("Op", bound=OpSpec)
OPS: dict[str, type[OpSpec]] = {}


def register_op(cls: type[Op]) -> type[Op]:
    """Class decorator: make an op available to recipes under its `op` literal."""
    name = cls.model_fields["op"].default
    OPS[name] = cls
    return cls


def valid_ops() -> str:
    return ", ".join(sorted(OPS))


def _fail(message: str) -> PydanticCustomError:
    return PydanticCustomError("augment_policy", message)


def parse_op(entry: Any, position: int) -> OpSpec:
    """One policy entry → its typed op; errors name the entry and list what is valid."""
    if isinstance(entry, OpSpec):
        return entry
    if isinstance(entry, str):
        entry = {"op": entry}
    if not isinstance(entry, dict) or "op" not in entry:
        raise _fail(
            f"policy entry {position} must be a mapping like {{op: hflip, p: 0.5}}; got "
            f"{entry!r} (ops: {valid_ops()})"
        )
    name = entry["op"]
    cls = OPS.get(name) if isinstance(name, str) else None
    if cls is None:
        raise _fail(
            f"unknown augmentation {name!r} in policy entry {position}; valid: {valid_ops()}"
        )
    try:
        return cls.model_validate(entry)
    except ValidationError as exc:
        params = ", ".join(k for k in cls.model_fields if k != "op")
        problems = explain(exc, f"augmentation {name!r} (policy entry {position})", cls)
        raise _fail(f"{problems} (parameters of {name}: {params})") from None


class AugmentConfig(BaseModel):
    """The recipe's `augment` section (applied to training batches only)."""

    model_config = ConfigDict(extra="forbid")

    policy: list[SerializeAsAny[OpSpec]] = Field(
        default_factory=list, description="ops applied in order, e.g. [{op: hflip}]"
    )

    @model_validator(mode="before")
    @classmethod
    def _shorthand(cls, data: Any) -> Any:
        if not isinstance(data, dict) or not ({"crop_padding", "hflip"} & set(data)):
            return data
        data = dict(data)
        policy = list(data.get("policy") or [])
        pad = data.pop("crop_padding", 0)
        if data.pop("hflip", False):
            policy.insert(0, {"op": "hflip"})
        if pad:
            policy.insert(0, {"op": "crop", "padding": pad})
        data["policy"] = policy
        return data

    @field_validator("policy", mode="before")
    @classmethod
    def _parse(cls, value: Any) -> list[OpSpec]:
        if value is None:
            return []
        if not isinstance(value, list):
            raise _fail(f"policy must be a list of ops; got {value!r} (ops: {valid_ops()})")
        ops = [parse_op(entry, i + 1) for i, entry in enumerate(value)]
        seen_mixing = False
        for op in ops:
            if seen_mixing and not op.mixing and op.stage == "input":
                raise _fail(
                    f"{op.op!r} comes after a mixing op; mixup and cutmix must be the last "
                    "ops of the policy (valid order: per-sample ops first, then mixing ops; "
                    "feature ops such as spec_freq_mask may follow)"
                )
            seen_mixing = seen_mixing or op.mixing
        return ops

    def describe(self) -> list[str]:
        """Compact lineage strings, e.g. ["crop(padding=4)", "hflip(p=0.5)"]."""
        out = []
        for op in self.policy:
            params = op.model_dump(mode="json", exclude={"op"})
            out.append(f"{op.op}(" + ", ".join(f"{k}={v}" for k, v in params.items()) + ")")
        return out
