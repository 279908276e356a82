"""The types a maintenance run takes, shares between its steps, and returns.

They sit below the loop (`loop.run_maintain`), its steps (`steps.Run`) and the server rollout
(`rollout.ServerRollout`), so those modules import one way only: loop → steps → rollout.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from scaledl.data.config import DataConfig
from scaledl.data.dataset import DataSplits
from scaledl.maintain.config import MaintainConfig
from scaledl.maintain.datasets import EvalSet
from scaledl.maintain.lineage import TrainingSource
from scaledl.maintain.repository import ModelRepository
from scaledl.maintain.server import ServerLink
from scaledl.package import Package

Outcome = Literal["nothing-to-do", "promoted", "rolled-back"]


@dataclass
class ServerOptions:
    url: str
    api_key: str | None = None
    cacert: Path | None = None


@dataclass
class MaintainRequest:
    repository: Path
    model: str
    new_data: str
    config: MaintainConfig = field(default_factory=MaintainConfig)
    server: ServerOptions | None = None
    eval_data: str | None = None
    live_version: str | None = None
    log_path: Path | None = None
    work_dir: Path | None = None
    trust_code: bool = False  # import a custom model class named in model.json (--trust-code)


@dataclass
class MaintainResult:
    outcome: Outcome
    model: str
    live_version: str
    new_version: str | None
    serving: str | None
    run_id: str
    log_path: Path
    records: list[dict[str, Any]]
    next_steps: list[str] = field(default_factory=list)


@dataclass
class Prepared:
    """Everything validated before the run starts."""

    repo: ModelRepository
    link: ServerLink | None
    live_version: str
    live: Package
    source: TrainingSource
    task: str
    old: DataSplits
    old_config: DataConfig
    new: DataSplits
    eval_sets: list[EvalSet]
    routing: dict[str, Any] | None
