"""report.html of a search: the Pareto plot, every candidate, the choice and why it won."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from scaledl.optimize.candidate import Candidate
from scaledl.optimize.evaluation import headline_metric
from scaledl.optimize.finalize import SearchResult
from scaledl.optimize.paired import DropEstimate
from scaledl.report import HtmlReport


def render_report(result: SearchResult) -> str:
    ctx, choice = result.ctx, result.choice
    report = HtmlReport(f"scaledl optimize: {ctx.parent.name}")
    report.paragraph(_summary(result), "good" if result.met else "bad")
    report.paragraph(result.promise().capitalize() + ".", "good" if _kept(result) else "bad")
    warning = result.seen_warning()
    if warning is not None:
        report.paragraph(warning[0].upper() + warning[1:] + ".", "bad")
    if result.met:
        report.heading("Why this candidate")
        report.paragraph(choice.reason)
        if result.winner is not None and result.winner.engine is not None:
            report.paragraph(_engine_text(result.winner.engine))
    else:
        report.heading("Diagnosis: no candidate meets the budget")
        for line in choice.diagnosis:
            report.paragraph(line, "bad")
        if result.winner is not None:
            report.paragraph(
                f"Best effort (smallest total excess over the limits): {result.winner.id} "
                f"({result.winner.label}), written to {result.winner.package}."
            )
    if not ctx.has_weights:
        report.paragraph(
            "This package has no PyTorch weights (ONNX only): pruning, slimming and distillation "
            "were skipped; quantization still ran on its graph.",
            "note",
        )
    report.heading("Accuracy vs latency")
    report.figure(
        pareto_figure(result), "validation accuracy vs p95 latency, marker size = file size"
    )
    report.paragraph(
        "Each point is a candidate's ONNX graph run in ONNX Runtime: accuracy on the validation "
        f"split, p95 latency at batch {ctx.config.batch_size} with {ctx.config.threads} thread(s) "
        "on this machine; marker area grows with the model file size. The dashed staircase is "
        "the accuracy-vs-p95 frontier of this plot. Packages are kept for the chosen candidate "
        "and every one that no other beats on accuracy, p25 latency (within the tie tolerance "
        "counted as equal) and size at once (every one with --keep-all); only those and the "
        "parent are scored on the test split, so the others' test cells are empty.",
        "note",
    )
    report.heading("Every candidate")
    report.table([_row(c, result) for c in result.candidates])
    if result.skipped:
        report.heading("Skipped")
        report.table([{"what": s["method"], "reason": s["reason"]} for s in result.skipped])
    report.heading("Setup")
    report.table(_setup(result))
    return report.render()


def _summary(result: SearchResult) -> str:
    parent, winner = result.parent, result.winner
    cons = result.constraints
    assert parent.latency is not None
    head = (
        f"{sum(c.ok for c in result.candidates)} candidate(s) scored in "
        f"{result.ctx.elapsed():.0f} s (budget {result.ctx.config.time_budget_min:g} min). "
    )
    if winner is None or winner.latency is None:
        return head + "No candidate could be scored."
    word = "Chosen" if result.met else "Nothing met the budget; best effort"
    speed = parent.rank_ms / winner.rank_ms if winner.rank_ms else 0.0
    smaller = parent.size_bytes / winner.size_bytes if winner.size_bytes else 0.0
    metric = headline_metric(result.ctx.task, parent.val)
    test_w, test_p = _test(winner, result), _test(parent, result)
    return head + (
        f"{word}: {winner.id} ({winner.label}): validation {metric} "
        f"{_shown(cons, winner):.4f} vs parent {_shown(cons, parent):.4f}, test {metric} "
        f"{test_w:.4f} vs {test_p:.4f}; p25/p50 {winner.latency.p25_ms:.4f}/"
        f"{winner.latency.p50_ms:.4f} ms vs {parent.latency.p25_ms:.4f}/"
        f"{parent.latency.p50_ms:.4f} ms ({speed:.1f}× faster); {winner.size_bytes / 1e3:.1f} kB "
        f"vs {parent.size_bytes / 1e3:.1f} kB ({smaller:.1f}× smaller)."
    )


def _row(c: Candidate, result: SearchResult) -> dict[str, Any]:
    cons = result.constraints
    marks = []
    if result.choice.chosen is c:
        marks.append("chosen")
    elif result.choice.best_effort is c and not result.met:
        marks.append("best effort")
    if c.id in result.frontier:
        marks.append("pareto")
    row: dict[str, Any] = {"id": c.id, "transforms": c.label, "status": c.status}
    if c.ok and c.latency is not None:
        row.update(
            {
                "precision": c.precision,
                "val": round(_shown(cons, c), 4),
                **(
                    {"drop pt": round(cons.drop(c) * 100, 2)}
                    if cons.budget == "accuracy"
                    else {"error +%": round(cons.error_increase(c) * 100, 2)}
                ),
                f"{cons.confidence:.0%} bounds": _bounds(c.drop, cons.budget),
                "test": round(_test(c, result), 4) if c.test else "",
                "test drop pt": _test_drop(c),
                "p25 ms": round(c.latency.p25_ms, 4),
                "p50 ms": round(c.latency.p50_ms, 4),
                "p95 ms": round(c.latency.p95_ms, 4),
                "kB": round(c.size_bytes / 1e3, 1),
                "meets": "yes" if cons.meets(c) else "no",
            }
        )
    row["marks"] = ", ".join(marks)
    row["package"] = c.package or ""
    row["notes"] = "; ".join(c.notes)
    return row


def _engine_text(record: dict[str, Any]) -> str:
    timed = ", ".join(f"{name} {ms:.4f} ms" for name, ms in record.get("p25_ms", {}).items())
    text = f"Engine recorded in the package: {record['engine']}"
    text += f" (p25 on this machine: {timed})." if timed else "."
    return text + "".join(f" {note}." for note in record.get("notes", []))


def _bounds(drop: DropEstimate | None, budget: str = "accuracy") -> str:
    """The paired degradation's interval, in points (accuracy) or percent (error rise)."""
    if drop is None:
        return ""
    unit = "" if budget == "accuracy" else " %"
    return f"[{drop.lower * 100:.2f}, {drop.upper * 100:.2f}]{unit}"


def _test_drop(c: Candidate) -> str:
    return "" if c.test_drop is None else c.test_drop.text().replace(" pt", "")


def _kept(result: SearchResult) -> bool:
    """Whether the winner's test drop is within the promised budget."""
    winner = result.winner
    if winner is None or winner.test_drop is None:
        return False
    return winner.test_drop.point <= result.ctx.config.max_accuracy_drop + 1e-9


def _test(c: Candidate, result: SearchResult) -> float:
    metric = headline_metric(result.ctx.task, c.test or None)
    return float(c.test.get(metric, float("nan")))


def _shown(cons: Any, c: Candidate) -> float:
    """What the report shows: accuracy, or the error itself (the budget's −quality)."""
    quality = float(cons.quality(c))
    return quality if cons.budget == "accuracy" else -quality


def _setup(result: SearchResult) -> list[dict[str, Any]]:
    ctx, cfg = result.ctx, result.ctx.config
    rows = {
        "parent package": str(ctx.parent.source),
        "data": f"{ctx.data_label} (split seed {ctx.splits.split_seed}; "
        f"val {len(ctx.splits.val)}, test {len(ctx.splits.test)} rows"
        + (f"; split keeps {ctx.splits.grouped}" if ctx.splits.grouped else "")
        + ")",
        "target": f"{cfg.target}: ONNX Runtime on {ctx.cpu.summary()}",
        "threads / batch": f"{cfg.threads} / {cfg.batch_size}",
        "quality budget": f"{cfg.budget_label(ctx.task)} (upper bound of the paired "
        f"degradation on {len(ctx.splits.val)} validation rows)",
        **(
            {
                "cross-fitting": f"{result.cross_fit['folds']} folds: candidates "
                f"{', '.join(result.cross_fit['candidates'])} were judged on "
                f"{result.cross_fit['rows']} rows (every non-test row)"
            }
            if result.cross_fit
            else {}
        ),
        "latency limit (p95)": f"{cfg.latency_ms} ms" if cfg.latency_ms else "none",
        "size limit": f"{cfg.max_size_mb} MB" if cfg.max_size_mb else "none",
        "methods": ", ".join(cfg.methods or ["defaults"]),
        "time budget / used": f"{cfg.time_budget_min:g} min / {ctx.elapsed():.0f} s",
        "timing noise / tie tolerance": f"{result.noise:.1%} / {result.tie_tolerance:.1%} "
        "(spread of per-round medians when re-timing the finalists)",
    }
    return [{"setting": k, "value": v} for k, v in rows.items()]


def frontier_2d(
    candidates: list[Candidate], quality: Callable[[Candidate], float]
) -> tuple[list[float], list[float]]:
    """The accuracy-vs-p95 staircase: each point is more accurate than every faster one."""
    xs: list[float] = []
    ys: list[float] = []
    for c in sorted(candidates, key=lambda c: (c.latency.p95_ms if c.latency else 0, -quality(c))):
        if c.latency is not None and (not ys or quality(c) > ys[-1]):
            xs.append(c.latency.p95_ms)
            ys.append(quality(c))
    return xs, ys


def pareto_figure(result: SearchResult) -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cons = result.constraints
    ok = [c for c in result.candidates if c.ok and c.latency is not None]
    fig, ax = plt.subplots(figsize=(8, 5))
    biggest = max((c.size_bytes for c in ok), default=1) or 1
    for c in ok:
        assert c.latency is not None
        x, y = c.latency.p95_ms, _shown(cons, c)
        size = 30 + 400 * (c.size_bytes / biggest)
        style: dict[str, Any]
        if result.choice.chosen is c:
            style = {"color": "#c0392b", "marker": "*", "s": size * 1.6, "zorder": 4}
        elif c is result.parent:
            style = {"color": "#2c5aa0", "marker": "s", "s": size, "zorder": 3}
        else:
            style = {"color": "#27ae60" if cons.meets(c) else "#999999", "marker": "o", "s": size}
        ax.scatter([x], [y], alpha=0.75, edgecolors="black", linewidths=0.5, **style)
        ax.annotate(c.id, (x, y), textcoords="offset points", xytext=(5, 4), fontsize=8)
    front = frontier_2d(ok, cons.quality)
    if len(front[0]) > 1:
        ys = front[1] if cons.budget == "accuracy" else [-y for y in front[1]]
        ax.step(front[0], ys, "--", where="post", color="#555555", linewidth=1)
    if cons.budget == "accuracy":
        limit = cons.parent_quality - cons.max_drop
    else:
        limit = -cons.parent_quality * (1.0 + cons.max_error_increase)
    ax.axhline(limit, color="#c0392b", linestyle=":", linewidth=1)
    if cons.latency_ms is not None:
        ax.axvline(cons.latency_ms, color="#c0392b", linestyle=":", linewidth=1)
    ax.set_xscale("log")
    ax.set_xlabel(f"p95 latency (ms, batch {result.ctx.config.batch_size}, log scale)")
    ax.set_ylabel(
        "validation accuracy"
        if cons.budget == "accuracy"
        else f"validation error ({headline_metric(result.ctx.task, result.parent.val)})"
    )
    ax.set_title("candidates: red star = chosen, blue square = parent, green = meets budget")
    ax.grid(True, alpha=0.3)
    return fig
