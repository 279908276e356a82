"""Re-run the optimize search on the fine-tuned model with the budget its lineage recorded."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from scaledl.errors import GoalNotMetError, UsageError
from scaledl.monitor.reference import add_profile
from scaledl.optimize.api import optimize_package
from scaledl.optimize.config import OptimizeConfig
from scaledl.optimize.output import FRONTIER
from scaledl.package import PROFILE, open_package


@dataclass
class Reoptimized:
    package: Path  # the chosen candidate's package (the fine-tuned one if it stayed fastest)
    candidate: str
    transforms: list[str]
    frontier: Path
    seconds: float
    config: dict[str, Any] = field(default_factory=dict)
    reason: str = ""

    def to_json(self) -> dict[str, Any]:
        return {
            "ran": True,
            "chosen": self.candidate,
            "transforms": self.transforms,
            "package": str(self.package),
            "frontier": str(self.frontier),
            "seconds": round(self.seconds, 2),
            "budget": self.config,
            "reason": self.reason,
        }


def budget_config(recorded: dict[str, Any], overrides: dict[str, Any]) -> Any:
    """The recorded OptimizeConfig, with `--set optimize.*` overrides; data from the lineage."""
    values = {**recorded, **overrides, "data": None}
    try:
        return OptimizeConfig.model_validate(values)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first.get("loc", ()))
        raise UsageError(f"optimize budget {where}: {first.get('msg')}") from None


def reoptimize(finetuned: Path, config: Any, out: Path, trust_code: bool = False) -> Reoptimized:
    """Search like `scaledl optimize`; GoalNotMetError (exit 1) when nothing meets the budget."""
    started = time.monotonic()
    result = optimize_package(finetuned, config, out, trust_code=trust_code)
    chosen = result.choice.chosen
    if chosen is None:
        raise GoalNotMetError(
            "the re-run optimize search found no candidate within the recorded budget ("
            + "; ".join(result.choice.diagnosis or [result.choice.reason])
            + f"); see {out / FRONTIER}"
        )
    package = finetuned if chosen is result.parent or not chosen.package else out / chosen.package
    if package != finetuned:
        _ensure_profile(package)
    return Reoptimized(
        package=package,
        candidate=chosen.id,
        transforms=list(chosen.transforms),
        frontier=out / FRONTIER,
        seconds=time.monotonic() - started,
        config=config.model_dump(mode="json"),
        reason=result.choice.reason,
    )


def _ensure_profile(package: Path) -> None:
    """Optimized packages carry no monitoring profile: build one so `--monitor` watches it."""
    if PROFILE not in open_package(package).manifest.files:
        add_profile(package)
