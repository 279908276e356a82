"""A tiny time budget: the search ends within it, says what it skipped, and its report fits."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from scaledl.config.optimize import OptimizeConfig
from scaledl.optimize.api import optimize_package
from scaledl.optimize.candidate import Candidate
from scaledl.optimize.finalize import SearchResult

pytestmark = pytest.mark.slow
CHROMIUM = Path("/usr/bin/chromium")
BUDGET_MIN = 0.2  # 12 s: a pruned + fine-tuned variant cannot fit


@pytest.fixture(scope="module")
def tiny(digits_package: Path, tmp_path_factory: pytest.TempPathFactory) -> SearchResult:
    config = OptimizeConfig(
        time_budget_min=BUDGET_MIN,
        methods=["prune", "distill", "int8-static"],
        settings={"int8-static": {"calibrations": ["minmax", "entropy"]}},
        exporter="legacy",
    )
    return optimize_package(digits_package, config, out=tmp_path_factory.mktemp("tiny") / "opt")


def test_a_tiny_budget_ends_within_it_and_reports_what_time_left_out(tiny: SearchResult) -> None:
    budget_s = BUDGET_MIN * 60
    # Generous: loading and the last report can overrun a little on a busy machine, never 2×.
    assert tiny.seconds <= 2 * budget_s + 10, tiny.seconds
    for_time = [s for s in tiny.skipped if s["reason"].startswith("time budget")]
    assert any(s["method"].startswith("prune") for s in for_time), tiny.skipped
    jobs = [s for s in for_time if s["method"].startswith(("prune", "int8"))]
    assert jobs and all("s left before the final step" in s["reason"] for s in jobs)
    assert tiny.out_dir is not None
    frontier = json.loads((tiny.out_dir / "frontier.json").read_text())
    spent = frontier["time"]
    assert spent["budget_s"] == budget_s and spent["skipped_for_time"] == len(for_time)
    assert spent["measured_mean_s"]["score"] > 0  # estimates come from what was measured
    assert 0 < spent["search_s"] <= spent["used_s"] and spent["final_reserved_s"] > 0
    # each phase of the final step is shown beside its estimate, so the reserve can be checked
    phases = spent["final_phases_s"]
    assert {"retime", "test", "packages"} <= set(phases), phases
    assert all(p["estimate"] >= 0 and p["used"] >= 0 for p in phases.values()), phases
    assert phases["retime"]["estimate"] > 0 and phases["retime"]["used"] > 0
    rounding = 0.05 * (len(phases) + 2)  # every figure is rounded to 0.1 s
    assert sum(p["used"] for p in phases.values()) <= spent["used_s"] - spent["search_s"] + rounding
    assert frontier["met"] and frontier["promise"].startswith("promised drop ≤ 1 pt at 90%")
    chosen = next(c for c in frontier["candidates"] if c["chosen"])
    assert chosen["drop"]["upper"] <= 0.01 and chosen["test_drop"]["rows"] > 0


def test_only_what_is_packaged_is_scored_on_the_test_split(
    digits_package: Path, tmp_path: Path
) -> None:
    """A test pass per candidate can cost more than the search: the parent and the packaged
    candidates (the frontier, ties in latency counted as equal, and the winner) get one."""
    config = OptimizeConfig(
        time_budget_min=0.6,
        methods=["int8-static"],
        # Full-range int8 loses accuracy on CPUs without VNNI at the same speed as 7-bit
        # weights, so there it is off the frontier; where it keeps accuracy, all are on it.
        settings={"int8-static": {"calibrations": ["minmax", "entropy"]}},
        exporter="legacy",
    )
    result = optimize_package(digits_package, config, out=tmp_path / "opt")
    scored = [c for c in result.candidates if c.ok]
    assert len(scored) > 2, result.skipped
    assert all(bool(c.test) == bool(c.package) for c in scored), [(c.id, c.package) for c in scored]
    assert {c.id for c in scored if c.test} == {"c00", *result.kept}
    assert all(c.test_drop is not None for c in scored if c.test)


@pytest.mark.skipif(not CHROMIUM.exists(), reason="needs Debian's chromium")
def test_the_candidate_table_fits_the_page_in_chromium(tiny: SearchResult, tmp_path: Path) -> None:
    assert tiny.out_dir is not None
    page = (tiny.out_dir / "report.html").read_text()
    probe = (
        "<script>document.body.setAttribute('data-fit', "
        "document.documentElement.scrollWidth + '/' + document.documentElement.clientWidth)"
        "</script></body>"
    )
    (tmp_path / "report.html").write_text(page.replace("</body>", probe))
    args = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run"]
    args += ["--disable-background-networking", "--disable-component-update", "--disable-sync"]
    url = (tmp_path / "report.html").as_uri()
    for width in (1280, 800):
        dom = subprocess.run(
            [str(CHROMIUM), *args, f"--window-size={width},900", "--dump-dom", url],
            capture_output=True,
            text=True,
            timeout=120,
        ).stdout
        scroll, client = dom.split('data-fit="', 1)[1].split('"', 1)[0].split("/")
        assert int(scroll) <= int(client), (width, scroll, client)  # no page-wide scrollbar


@pytest.mark.parametrize(
    ("budget_min", "waiting"),
    [(30.0, 0), (0.5, 1)],  # cheap beside the time left: all first; a tiny budget: defaults only
)
def test_cheap_graph_settings_are_not_left_behind_long_fine_tunes(
    digits_package: Path, budget_min: float, waiting: int
) -> None:
    from scaledl.optimize.context import build_context
    from scaledl.optimize.ladder import Ladder
    from scaledl.optimize.search import Search

    config = OptimizeConfig(
        time_budget_min=budget_min,
        methods=["prune", "distill", "int8-static"],
        settings={"int8-static": {"calibrations": ["minmax", "entropy"], "reduce_range": False}},
    )
    search = Search(build_context(digits_package, config))
    search.ladders = [
        Ladder(m, search.spaces[m.name].configs(search.ctx))
        for m in search.methods
        if m.kind == "structure"
    ]
    # A fine-tune epoch measured at ten minutes: the whole plan cannot fit in 30 minutes.
    search.book.record("epoch", 600.0)
    graph = search.graph_configs()
    assert search.remaining_estimate() > search.book.left(1, 1)
    first, later = search._prioritize(graph)
    assert len(later) == waiting and first + later == graph


def test_the_reserve_counts_what_a_package_with_a_profile_costs(digits_package: Path) -> None:
    """A package with a monitoring profile runs the validation rows and fits the profile's PCA:
    the final step's reserve must count both, or the search overruns its budget."""
    from scaledl.optimize.budget import PACKAGE_S
    from scaledl.optimize.context import build_context
    from scaledl.optimize.search import Search
    from scaledl.package import PROFILE

    search = Search(build_context(digits_package, OptimizeConfig(time_budget_min=10.0)))
    assert PROFILE in search.ctx.parent.manifest.files
    search.book.record("metrics", 5.0)
    assert search.book.package_estimate() >= PACKAGE_S + 5.0
    # the profile's input side (preprocessing the training split, its PCA) is built once per
    # search and shared by every package
    once = search.book.profile_inputs_estimate()
    assert once > 0
    three = search.book.packages_estimate(3)
    assert three == pytest.approx(3 * search.book.package_estimate() + once)
    assert search.book.after_retime(2) >= 2 * search.book.package_estimate() + once
    search.ctx.profile_inputs()
    assert search.book.profile_inputs_estimate() == 0.0
    assert search.book.packages_estimate(0) == 0.0
    # a forecaster's profile reads windows of its own for every package: nothing is shared
    search.ctx._profile_inputs = None
    search.ctx.preprocessing = search.ctx.preprocessing.model_copy(update={"kind": "series"})
    assert search.book.profile_inputs_estimate(3) == pytest.approx(3 * once)
    assert search.ctx.profile_inputs() is None


def scored_child(cid: str, accuracy: float, ms: float, pass_s: float = 0.0) -> Candidate:
    """A candidate as the search leaves it once scored: accuracy, latency, its validation pass."""
    import numpy as np

    from scaledl.bench.latency import LatencyStats
    from scaledl.optimize.candidate import Candidate

    c = Candidate(id=cid, transforms=[cid], onnx=b"x" * 500, status="ok")
    c.val = {"accuracy": accuracy, "loss": 0.1}
    c.latency = LatencyStats.from_samples(np.full(10, ms / 1e3), 1)
    c.metrics_seconds = pass_s
    return c


def test_the_reserve_counts_the_packages_the_frontier_implies(digits_package: Path) -> None:
    """Candidates off the frontier get no package and no test pass: the reserve must not count
    them (it stopped a 10-minute search after a minute), but must count one more than the
    frontier holds for the job that runs next."""

    from scaledl.optimize.context import build_context
    from scaledl.optimize.search import Search, constraints_for

    def counts(keep: str) -> tuple[int, float]:
        search = Search(build_context(digits_package, OptimizeConfig(keep=keep)))
        parent = search.baseline()
        search.constraints = constraints_for(parent, search.ctx)
        assert parent.latency is not None
        fast = parent.latency.p25_ms / 4
        # c01 beats the rest: as accurate as the parent, 4x faster; c02-c05 are slower and worse
        search.candidates += [scored_child("c01", parent.val["accuracy"], fast)]
        search.candidates += [scored_child(f"c0{i}", 0.5, fast * 1.01) for i in range(2, 6)]
        return search.packaged_count(), search.reserve()

    on_frontier, reserve_frontier = counts("frontier")
    every, reserve_all = counts("all")
    assert (on_frontier, every) == (2, 5)
    assert reserve_frontier < reserve_all


def test_a_fine_tune_that_does_not_fit_runs_as_many_epochs_as_fit(digits_package: Path) -> None:
    """On a slow machine the full fine-tune after pruning does not fit the time left, but a
    shorter one does: the search runs the pruned variant with the epochs that fit, says so, and
    never cuts a slimmed model (trained from scratch) below half its epochs, nor a second
    chance below twice the first run's."""
    from scaledl.optimize.context import build_context
    from scaledl.optimize.search import RETRY_SCALE, Search, constraints_for

    config = OptimizeConfig(time_budget_min=5.0, methods=["prune", "slim", "distill"])
    search = Search(build_context(digits_package, config))
    parent = search.baseline()
    search.constraints = constraints_for(parent, search.ctx)
    planned = search._finetune_epochs()
    assert planned >= 2  # the digits parent trained 4 epochs
    # A fine-tune epoch measured at 150 s: the planned epochs need far more than 5 minutes,
    # one epoch (~200 s with the export and scoring) fits.
    search.book.record("epoch", 150.0)
    assert search.book.structure_estimate(planned) > search.time_left()
    assert search.book.structure_estimate(1) < search.time_left()

    slim = search.spaces["slim"].configs(search.ctx)[0]
    assert search.structure_variant(parent, slim) is None  # half its epochs do not fit either
    assert search.skipped[-1]["reason"].endswith("s kept for it)"), search.skipped[-1]

    prune = search.spaces["prune"].configs(search.ctx)[0]
    child = search.structure_variant(parent, prune)
    assert child is not None and child.ok, child and child.notes
    assert child.structure["shortened_from_epochs"] == planned
    assert child.structure["finetune_epochs"] == 1
    assert f"fine-tuned 1 of {planned} epochs" in " ".join(child.notes)
    [note] = [s for s in search.skipped if s["method"].endswith(f"({planned} epochs)")]
    assert note["reason"].startswith("time budget")
    assert "fine-tuned 1 epoch instead" in note["reason"]

    # A second chance is worth running only well beyond the first run: twice its epochs at
    # least (6 do not fit; 2 do, at the mean of the epochs measured so far).
    assert search.structure_variant(parent, prune, scale=RETRY_SCALE, first_epochs=3) is None
    again = search.structure_variant(parent, prune, scale=RETRY_SCALE, first_epochs=1)
    assert again is not None and again.ok, again and again.notes
    assert again.structure["shortened_from_epochs"] == RETRY_SCALE * planned
    assert again.structure["finetune_epochs"] >= 2


def test_a_fine_tune_slower_than_estimated_stops_at_the_end_of_its_slot(
    digits_package: Path,
) -> None:
    """A first guess (or a quiet moment) can make an epoch look far cheaper than it is: the
    trainer stops the fine-tune when the time the search gave it is spent, so the final step's
    reserve stays whole."""
    from scaledl.optimize.context import build_context
    from scaledl.optimize.search import Search, constraints_for

    config = OptimizeConfig(
        time_budget_min=0.75, methods=["prune", "distill"], settings={"distill": {"epochs": 400}}
    )
    search = Search(build_context(digits_package, config))
    parent = search.baseline()
    search.constraints = constraints_for(parent, search.ctx)
    search.book.record("epoch", 0.001)  # 400 epochs "fit" in well under a second
    slot = search._finetune_slot(0.0)
    assert 0 < slot < search.time_left()
    prune = search.spaces["prune"].configs(search.ctx)[0]
    child = search.structure_variant(parent, prune)
    assert child is not None and child.ok, child and child.notes
    ran = child.structure["finetune_epochs"]
    assert 1 <= ran < 400 and child.structure["shortened_from_epochs"] == 400
    assert "the job's time slot ended first" in " ".join(child.notes)
    # replays (cross-fitting) repeat the epochs that ran, without the slot
    assert child.chain[-1].epochs == ran and child.chain[-1].time_budget_s is None
    # the epoch it measured is a real one now, not the guess
    assert search.book.mean("epoch") > 0.001


def test_each_test_pass_is_costed_from_its_own_graphs_validation_pass(
    digits_package: Path,
) -> None:
    """A pruned graph runs the test split several times faster than its parent, and int8
    graphs off the frontier (slower than fp32 on a CPU without VNNI) are never scored on it:
    the reserve costs each packaged graph's test pass from its own validation pass, and only
    the pass not known yet (the next job's) at the mean of all."""
    from scaledl.optimize.budget import SAFETY
    from scaledl.optimize.context import build_context
    from scaledl.optimize.search import Search, constraints_for

    search = Search(build_context(digits_package, OptimizeConfig()))
    parent = search.baseline()
    search.constraints = constraints_for(parent, search.ctx)
    assert parent.latency is not None
    fast = parent.latency.p25_ms / 4
    pruned = scored_child("c01", parent.val["accuracy"], fast, pass_s=0.01)
    slow = [scored_child(f"c0{i}", 0.5, fast * 1.01, pass_s=5.0) for i in range(2, 6)]
    search.candidates += [pruned, *slow]
    for c in [pruned, *slow]:
        search.book.record("metrics", c.metrics_seconds)

    passes = search.packaged_passes()
    assert passes == [parent.metrics_seconds, 0.01]
    assert search.packaged_count() == 2  # c01, and one more for the next job
    assert search.packaged_count(next_job=False) == 1  # what the final step itself packages
    book = search.book
    rows = len(search.ctx.x_test) / len(search.ctx.x_val)
    saved = SAFETY * rows * (2 * book.mean("metrics") - sum(passes))
    assert saved > 0
    assert abs(book.packaging(2) - book.packaging(2, passes) - saved) < 1e-9
    assert search.reserve() == book.reserve(search.finalist_count(), 2, passes)
    # the re-timing is reserved for the graphs the final step would re-time, not all scored
    assert search.finalist_count() < search.ok_count()


def test_accuracy_passes_use_every_core_and_latency_the_target_threads(
    digits_package: Path,
) -> None:
    """Scoring a split is not latency: it takes every core; timing keeps `threads`."""
    import os

    from scaledl.optimize.context import build_context
    from scaledl.optimize.evaluation import make_session, scoring_session, split_metrics

    cores = len(os.sched_getaffinity(0))
    wide = build_context(digits_package, OptimizeConfig(threads=1))
    narrow = build_context(digits_package, OptimizeConfig(threads=1, scoring_threads=1))
    parent = Candidate(id="c00", transforms=[], onnx=wide.parent.onnx_path.read_bytes())
    scored = {}
    for ctx in (wide, narrow):
        session = scoring_session(parent, ctx)
        threads = session.get_session_options().intra_op_num_threads
        assert threads == (cores if ctx is wide else 1)
        scored[threads] = split_metrics(session, ctx.x_val, ctx.splits.val.y, ctx.task)[0]
    timing = make_session(parent, wide.config.threads)
    assert timing.get_session_options().intra_op_num_threads == 1
    assert scored[cores]["accuracy"] == scored[1]["accuracy"]


@pytest.mark.parametrize("threads", [0, -1, 100_000, "all"])
def test_a_bad_scoring_thread_count_is_refused(threads: object) -> None:
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match="scoring_threads"):
        OptimizeConfig(scoring_threads=threads)


def test_a_near_miss_gets_a_second_chance_when_it_would_win_after_quantization(
    digits_package: Path,
) -> None:
    """A pruned fp32 graph slower than int8 on the parent can still win once quantized: the
    second chance judges its speed as it would leave the graph methods that kept accuracy on
    the parent (full CIFAR-10: int8 at a third of fp32, a 40 %-pruned near miss at half)."""
    from scaledl.optimize.context import build_context
    from scaledl.optimize.search import Search, constraints_for

    config = OptimizeConfig(methods=["prune", "distill", "int8-static"])
    search = Search(build_context(digits_package, config))
    parent = search.baseline()
    cons = search.constraints = constraints_for(parent, search.ctx)
    accuracy, ms = parent.val["accuracy"], parent.rank_ms
    int8 = scored_child("c01", accuracy, ms / 3)
    int8.chain = [search.graph_configs()[0]]
    prune = search.spaces["prune"].configs(search.ctx)[0]
    pruned = scored_child("c02", accuracy - 0.013, ms / 2)  # over the 1-pt budget
    pruned.chain = [prune]
    search.made["c02"] = (prune, 1)
    search.candidates += [int8, pruned]
    assert cons.meets(int8) and not cons.promising(pruned)
    assert search._graph_speedup(cons) == pytest.approx(1 / 3, rel=1e-6)
    assert search._retry_pick(cons, set()) is pruned
    # without a graph method that kept accuracy, it stays slower than the best (another
    # structural variant within budget): no retry
    int8.val = {"accuracy": accuracy - 0.5, "loss": 0.1}
    slim = scored_child("c03", accuracy, ms / 2.5)
    slim.chain = [prune]
    search.made["c03"] = (prune, 1)
    search.candidates.append(slim)
    assert search._graph_speedup(cons) == 1.0
    assert search._retry_pick(cons, set()) is None
