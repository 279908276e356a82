"""What the distillation benches share: a parent's search context, its 40 %-style structured
prune as the student, and the fine-tune the search's `prune → distill` runs, timed.

`bench/distill_view.py` (the teacher's mirrored view), `bench/distill_precision.py` (bf16
autocast) and `bench/distill_longer.py` (more epochs) each vary one thing of this fine-tune and
keep the rest as the search does it."""

from __future__ import annotations

import argparse
import copy
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any


def student_parser(doc: str, package: Path, epochs: int) -> argparse.ArgumentParser:
    """A bench's parser with --package, --ratio and --epochs: the parent, its prune and the
    fine-tune's length (the first line of `doc` describes the bench)."""
    parser = argparse.ArgumentParser(description=doc.split("\n")[0])
    parser.add_argument(
        "--package", type=Path, default=package, help="a CNN classifier package trained in bf16"
    )
    parser.add_argument(
        "--ratio", type=_ratio, default=0.4, help="structured pruning ratio, in (0, 1)"
    )
    parser.add_argument(
        "--epochs", type=_positive, default=epochs, help="fine-tune epochs per run (≥ 1)"
    )
    return parser


def _ratio(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0.0 < value < 1.0:
        raise argparse.ArgumentTypeError(f"{text}: expected a number between 0 and 1")
    return value


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text}: expected a whole number ≥ 1")
    return value


def check_package(parser: argparse.ArgumentParser, package: Path) -> None:
    if not (package / "manifest.json").is_file():
        parser.error(f"--package {package}: no manifest.json there")


def parse_seeds(parser: argparse.ArgumentParser, text: str) -> list[int]:
    try:
        return [int(s) for s in text.split(",") if s.strip()]
    except ValueError:
        parser.error(f"--seeds {text!r}: expected comma-separated integers")


@dataclass
class DistillBench:
    ctx: Any  # scaledl.optimize.context.SearchContext
    transform: Any
    calibration: Any

    @classmethod
    def from_package(cls, package: Path) -> DistillBench:
        from scaledl.config.optimize import OptimizeConfig
        from scaledl.modalities import modality_of
        from scaledl.optimize.context import build_context
        from scaledl.preprocess import apply_preprocessing

        ctx = build_context(package, OptimizeConfig())
        index = ctx.calibration_index(512)
        calibration = (  # numpy rows, as the search passes them
            apply_preprocessing(ctx.splits.train.x[index], ctx.preprocessing),
            ctx.splits.train.y[index],
        )
        transform = modality_of(ctx.preprocessing).batch_transform(ctx.preprocessing)
        return cls(ctx, transform, calibration)

    @property
    def teacher(self) -> Any:
        return self.ctx.teacher

    def val_correct(self, model: Any) -> Any:
        """1.0 where `model` (PyTorch) gets a validation row right, else 0.0, row by row."""
        import torch

        from scaledl.train.tensors import predict_torch

        with torch.no_grad():
            out = predict_torch(model.eval(), self.ctx.splits.val.x, self.transform, 500)
        return (out.argmax(1) == self.ctx.splits.val.y).astype("float64")

    def val_accuracy(self, model: Any) -> float:
        return float(self.val_correct(model).mean())

    def distill_pruned(
        self, ratio: float, seed: int, teacher: Any, config: Any
    ) -> tuple[Any, float]:
        """The parent pruned by `ratio` and distilled from `teacher` (seeded as the search
        does): the fine-tune's result and its wall-clock seconds."""
        import torch

        from scaledl.optimize.distill import finetune
        from scaledl.optimize.prune import prune_structured

        torch.manual_seed(seed)
        student = prune_structured(
            copy.deepcopy(self.teacher), self.ctx.spec, ratio, calibration=self.calibration
        ).model
        started = time.perf_counter()
        result = finetune(
            student,
            self.ctx.finetune_splits(),
            self.ctx.preprocessing,
            teacher=teacher,
            config=config,
            seed=seed,
            augment=self.ctx.augment,
        )
        return result, time.perf_counter() - started
