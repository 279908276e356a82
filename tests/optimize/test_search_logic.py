"""The method registry, the ladder walk and the choice/diagnosis, on plain objects."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pytest

from scaledl.bench.latency import LatencyStats
from scaledl.errors import UsageError
from scaledl.optimize.candidate import Candidate
from scaledl.optimize.frontier import Constraints, choose, pareto
from scaledl.optimize.registry import (
    MethodConfig,
    MethodSpace,
    apply_method,
    build_space,
    method_names,
    methods,
    register_method,
    resolve_methods,
    unregister_method,
)
from scaledl.optimize.search import Ladder


def test_builtin_methods_are_registered() -> None:
    names = method_names()
    for name in ("prune", "unstructured", "slim", "distill", "int8-static", "int8-dynamic", "bf16"):
        assert name in names
    assert "unstructured" not in [m.name for m in resolve_methods(None)]  # size only: opt-in
    assert methods()["prune"].needs_weights and not methods()["int8-static"].needs_weights


def test_unknown_method_lists_the_valid_ones() -> None:
    with pytest.raises(UsageError) as err:
        resolve_methods(["prune", "sparsify-magic"])
    assert err.value.exit_code == 2
    assert "sparsify-magic" in err.value.message and "int8-static" in err.value.message


def test_bad_setting_names_the_valid_ones() -> None:
    with pytest.raises(UsageError, match=r"unknown key --set prune\.ratio \(valid keys: ratios"):
        build_space(methods()["prune"], {"ratio": 0.5})
    with pytest.raises(UsageError, match=r"--set prune\.ratios: ratios must be"):
        build_space(methods()["prune"], {"ratios": [1.5]})
    space = build_space(methods()["prune"], {"ratios": [0.7, 0.2]})
    assert space.ratios == [0.2, 0.7]  # type: ignore[attr-defined]


class _TagConfig(MethodConfig):
    label: str = "x"

    def tag(self) -> str:
        return f"tag:{self.label}"


class _TagSpace(MethodSpace):
    def configs(self, ctx: object) -> list[MethodConfig]:  # type: ignore[override]
        return [_TagConfig(label="a")]


@pytest.fixture
def tag_method() -> Iterator[str]:
    @register_method("test-tag", config=_TagConfig, space=_TagSpace, kind="graph", default=False)
    def tag(candidate: Candidate, config: _TagConfig, ctx: object) -> Candidate:
        """Appends a tag (a new method is a config + a handler, nothing else)."""
        return candidate.derive(config.tag())

    yield "test-tag"
    unregister_method("test-tag")


def test_a_new_method_is_added_by_registering(tag_method: str) -> None:
    assert tag_method in method_names()
    assert methods()[tag_method].summary.startswith("Appends a tag")
    parent = Candidate(id="c00", transforms=[], onnx=b"")
    child = apply_method(parent, _TagConfig(label="b"), ctx=None)  # type: ignore[arg-type]
    assert child.transforms == ["tag:b"] and child.base == "c00"
    unregister_method(tag_method)
    with pytest.raises(UsageError):
        apply_method(parent, _TagConfig(), ctx=None)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("passing", "tried", "best"),
    [
        ({0, 1, 2, 3, 4}, [2, 3, 4], 4),
        ({0, 1}, [2, 0, 1], 1),
        (set(), [2, 0], None),
        ({0, 1, 2}, [2, 3], 2),
    ],
)
def test_ladder_bisects_to_the_most_aggressive_passing(
    passing: set[int], tried: list[int], best: int | None
) -> None:
    configs = [_TagConfig(label=str(i)) for i in range(5)]
    ladder = Ladder(None, configs)  # type: ignore[arg-type]
    walked = []
    while (config := ladder.next()) is not None:
        index = configs.index(config)
        walked.append(index)
        ladder.report(index in passing)
    assert walked == tried
    assert (ladder.lo if ladder.lo >= 0 else None) == best


def _cand(cid: str, accuracy: float, p50: float, size: int, p95: float | None = None) -> Candidate:
    c = Candidate(id=cid, transforms=[cid], onnx=b"x" * size, status="ok")
    c.val = {"accuracy": accuracy, "loss": 0.1}
    c.latency = LatencyStats.from_samples(np.array([p50 / 1e3] * 9 + [(p95 or p50) / 1e3]), 1)
    return c


def test_choice_is_the_fastest_that_meets_every_constraint() -> None:
    parent = _cand("c00", 0.98, 1.0, 1000)
    fast_bad = _cand("c01", 0.90, 0.2, 300)
    ok_slow = _cand("c02", 0.975, 0.6, 400)
    ok_fast = _cand("c03", 0.972, 0.4, 500)
    cons = Constraints(parent_quality=0.98, max_drop=0.01, task="classification")
    choice = choose([parent, fast_bad, ok_slow, ok_fast], cons, tie_tolerance=0.05)
    assert choice.chosen is ok_fast
    assert "c03" in choice.reason and "is the fastest" in choice.reason
    # within the tie tolerance the more accurate one wins
    near = _cand("c04", 0.979, 0.41, 900)
    assert choose([parent, ok_fast, near], cons, tie_tolerance=0.05).chosen is near
    assert {c.id for c in pareto([parent, fast_bad, ok_slow, ok_fast], cons)} == {
        "c00",
        "c01",
        "c02",
        "c03",
    }
    dominated = _cand("c05", 0.95, 0.9, 900)
    assert dominated not in pareto([parent, ok_fast, dominated], cons)
    # Faster than c03 by timing noise only, and far less accurate: kept only without a tie.
    noise_fast = _cand("c06", 0.70, 0.399, 500)
    assert noise_fast in pareto([parent, ok_fast, noise_fast], cons)
    assert noise_fast not in pareto([parent, ok_fast, noise_fast], cons, tie=0.05)
    # Truly faster (beyond the tie) stays on the frontier however inaccurate.
    assert fast_bad in pareto([parent, ok_fast, fast_bad], cons, tie=0.05)
    # Equal on quality and size within the tie: one is kept (the faster), not both.
    twin = _cand("c07", 0.972, 0.41, 500)
    assert {c.id for c in pareto([parent, ok_fast, twin], cons, tie=0.05)} == {"c00", "c03"}


def test_accuracies_within_one_validation_row_are_equal_and_the_smaller_file_wins() -> None:
    parent = _cand("c00", 1.0, 0.08, 285_000)
    pruned = _cand("c07", 1.0, 0.031, 113_000)
    pruned_int8 = _cand("c29", 1 - 1 / 179, 0.030, 35_000)
    worse_int8 = _cand("c30", 1 - 3 / 179, 0.030, 34_000)
    cons = Constraints(parent_quality=1.0, max_drop=0.02, task="classification", val_count=179)
    choice = choose([parent, pruned, pruned_int8, worse_int8], cons, tie_tolerance=0.25)
    assert choice.chosen is pruned_int8
    assert "179 validation rows" in choice.reason
    # without the row count a single row still decides
    cons.val_count = 0
    assert choose([parent, pruned, pruned_int8], cons, tie_tolerance=0.25).chosen is pruned


def test_diagnosis_says_which_constraint_failed_by_how_much() -> None:
    parent = _cand("c00", 0.98, 1.0, 1000)
    small = _cand("c01", 0.97, 0.5, 100)
    cons = Constraints(
        parent_quality=0.98, max_drop=0.01, task="classification", latency_ms=0.1, max_size_mb=1.0
    )
    choice = choose([parent, small], cons, tie_tolerance=0.05)
    assert choice.chosen is None and choice.best_effort is small
    assert any("latency" in line and "5.0×" in line for line in choice.diagnosis)
    assert not any(line.startswith("size") for line in choice.diagnosis)


def test_ladder_walks_on_without_a_config_that_does_not_apply() -> None:
    configs = [_TagConfig(label=str(i)) for i in range(4)]
    ladder = Ladder(None, list(configs))  # type: ignore[arg-type]
    assert ladder.next() is configs[1]
    ladder.drop()  # e.g. depth 0.5 of a one-layer model
    assert ladder.next() is configs[2]
    ladder.report(True)
    assert ladder.next() is configs[3]
    ladder.report(False)
    assert ladder.next() is None and ladder.configs[ladder.lo] is configs[2]
