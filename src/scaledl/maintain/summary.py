"""A run's log records → the rows of the summary tables the CLI prints."""

from __future__ import annotations

from typing import Any


def _pct(value: Any) -> str:
    return f"{value:.4f}" if isinstance(value, int | float) else "—"


def step_rows(records: list[dict[str, Any]]) -> list[tuple[str, str, str, str]]:
    """(step, result, numbers, seconds) per logged step."""
    rows: list[tuple[str, str, str, str]] = []
    for r in records:
        text = _describe(r)
        if text is not None:
            seconds = r.get("seconds")
            took = f"{seconds:.1f}" if isinstance(seconds, int | float) else ""
            rows.append((r["step"], text[0], text[1], took))
    return rows


def _describe(r: dict[str, Any]) -> tuple[str, str] | None:
    step = r["step"]
    if step == "check":
        a = r["assessment"]
        tests = ", ".join(
            f"{t['name']} p={t['p_value']:.2g}" for t in a["drift"]["tests"] if "p_value" in t
        )
        verdict = "retrain" if r["decision"]["retrain"] else "no action"
        why = "; ".join(r["decision"]["reasons"])
        return (
            f"{verdict}: {why}",
            f"{a['samples']} rows; accuracy {_pct(a['accuracy'])} vs reference "
            f"{_pct(a['reference_accuracy'])}; {tests}",
        )
    if step == "data":
        rows = r["rows"]
        return "old + new", f"train {rows['train']}, val {rows['val']}, test {rows['test']}"
    if step == "finetune":
        return (
            f"{r['epochs_run']} epochs (best {r['best_epoch']})",
            f"val {_pct(r['val_accuracy'])}, test {_pct(r['test_accuracy'])}, {r['seconds']:.1f} s",
        )
    if step == "optimize":
        if not r.get("ran"):
            return "skipped", r.get("reason", "")
        return f"chosen {r['chosen']}", ", ".join(r.get("transforms") or []) or "unchanged"
    if step == "publish":
        return f"version {r['version']}", r["path"]
    if step == "rollout":
        weight = r.get("canary_weight")
        extra = f" at {weight:.0%}" if weight else ""
        return f"{r['policy']}{extra}", f"version {r['version']}"
    if step == "compare":
        failed = r.get("failures")
        counted = f"{failed} failed requests" if failed is not None else "failures not counted"
        return f"{len(r['measurements'])} measurements", counted
    if step == "decision":
        return r["action"].upper(), r.get("reason", "")
    if step in ("promoted", "rolled-back"):
        return f"version {r['version']}", r.get("moved_to") or f"primary {_primary(r)}"
    return None


def _primary(r: dict[str, Any]) -> str:
    return str((r.get("routing") or {}).get("primary", "—"))


def accuracy_rows(records: list[dict[str, Any]]) -> list[tuple[str, str, str, str, str, str]]:
    """(set, channel, rows, live, new, delta) per measurement."""
    out = []
    for r in records:
        if r["step"] != "compare":
            continue
        for m in r["measurements"]:
            out.append(
                (
                    m["set"],
                    m["channel"],
                    str(m["samples"]),
                    _pct(m["live_accuracy"]),
                    _pct(m["candidate_accuracy"]),
                    f"{m['delta']:+.4f}" if isinstance(m["delta"], int | float) else "—",
                )
            )
    return out
