"""A candidate model of the search: what was done to the parent, its graph, and what it scored."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from scaledl.bench.latency import LatencyStats
from scaledl.optimize.paired import DropEstimate


@dataclass
class Candidate:
    """One variant of the parent.

    `module`/`spec` are the fp32 PyTorch model when there is one (structural methods change
    them; graph methods keep them as the source the graph was quantized from). `onnx` is the
    graph that is served and scored; it is None until the module is exported.
    """

    id: str
    transforms: list[str]
    onnx: bytes | None
    module: Any = None
    spec: Any = None  # scaledl.models.ModelSpec
    precision: str = "fp32"
    base: str | None = None  # id of the candidate it was derived from
    session_config: dict[str, str] = field(default_factory=dict)
    export: dict[str, Any] = field(default_factory=dict)
    parity: dict[str, Any] = field(default_factory=dict)
    quantization: dict[str, Any] = field(default_factory=dict)
    structure: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    status: str = "pending"  # ok | failed | skipped
    seconds: float = 0.0
    metrics_seconds: float = 0.0  # running the validation split (what the test split will cost)
    val: dict[str, float] = field(default_factory=dict)
    test: dict[str, float] = field(default_factory=dict)
    # per-row results (paired.row_scores) behind val/test, and the paired drop vs the parent
    val_rows: Any = None
    test_rows: Any = None
    # the graph's outputs on the test split, kept for a candidate that gets a package (its
    # confusion matrix and monitoring profile need them; a second pass would cost the budget)
    test_outputs: Any = None
    drop: DropEstimate | None = None
    test_drop: DropEstimate | None = None
    latency: LatencyStats | None = None
    latency_source: str = ""
    package: str | None = None
    engine: dict[str, Any] | None = None  # the engine that runs it fastest here (engine_choice)
    cross_fit: dict[str, Any] | None = None  # how `drop` was widened (crossfit.py), if it was
    chain: list[Any] = field(default_factory=list)  # the MethodConfigs that made it from the parent

    def derive(self, tag: str, **changes: Any) -> Candidate:
        """A child with `tag` appended to the transforms; scores reset, notes carried over."""
        fresh = {
            "transforms": [*self.transforms, tag],
            "base": self.id,
            "notes": list(self.notes),
            "status": "pending",
            "seconds": 0.0,
            "val": {},
            "test": {},
            "val_rows": None,
            "test_rows": None,
            "test_outputs": None,
            "drop": None,
            "test_drop": None,
            "latency": None,
            "latency_source": "",
            "package": None,
            "engine": None,
            "cross_fit": None,
        }
        return dataclasses.replace(self, **{**fresh, **changes})

    @property
    def size_bytes(self) -> int:
        return len(self.onnx) if self.onnx is not None else 0

    @property
    def label(self) -> str:
        return " → ".join(self.transforms) if self.transforms else "parent"

    @property
    def rank_ms(self) -> float:
        """The latency candidates are ranked by: p25 of the timed calls (see frontier.py)."""
        return self.latency.p25_ms if self.latency is not None else float("inf")

    @property
    def ok(self) -> bool:
        return self.status == "ok"
