"""Render bench/results/forecast.json as the markdown tables of docs/benchmarks.md.

python bench/forecast_tables.py > /tmp/forecast.md
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import RESULTS


def accuracy_table(doc: dict[str, Any]) -> list[str]:
    lines = [
        "| horizon | forecast | look-back | test MSE (std) | test MAE (std) | MSE drop-last | "
        "MSE (units) | training | parameters |",
        "|---:|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for h, summary in doc.get("summary", {}).items():
        runs = [r for r in doc["runs"] if str(r["horizon"]) == h]
        base = runs[0]["baselines"]
        for name, b in base.items():
            lines.append(
                f"| {h} | {name.replace('_', ' ')} | – | {b['mse_standardized']:.4f} | "
                f"{b['mae_standardized']:.4f} | – | {b['mse']:.3f} | – | – |"
            )
        for r in sorted(runs, key=lambda r: r["test_mse"]):
            mark = " **✓**" if r["test_mse"] <= (summary.get("target_test_mse") or 0) else ""
            lines.append(
                f"| {h} | {r['model']} ({r['family']}) | {r['lookback']} | "
                f"{r['test_mse']:.4f}{mark} | {r['test_mae']:.4f} | "
                f"{r['test_mse_drop_last']:.4f} | {r['test_mse_units']:.3f} | "
                f"{r['train_seconds']:.0f} s | {r['parameters']:,} |"
            )
    return lines


def drift_table(doc: dict[str, Any]) -> list[str]:
    drift = doc.get("drift")
    if not drift:
        return []
    fa = drift["false_alarms"]
    lines = [
        f"False alarms (n = {drift['window']}, alpha {drift['alpha']}): validation period "
        f"{fa['validation']['rate']:.1%} ± {fa['validation']['se']:.1%} "
        f"({fa['validation']['trials']} windows), test period {fa['test']['rate']:.1%}"
        + _held_out(fa.get("validation_held_out"))
        + ".",
        "",
        "| fault | "
        + " | ".join(next(iter(drift["detection_established"].values()))["per_variable"])
        + " | mean | at onset (mean) |",
        "|---|"
        + "---:|" * (len(next(iter(drift["detection_established"].values()))["per_variable"]) + 2),
    ]
    for kind, found in drift["detection_established"].items():
        onset = drift["detection_onset"][kind]["mean"]
        cells = " | ".join(f"{v:.0%}" for v in found["per_variable"].values())
        lines.append(
            f"| {kind}: {drift['faults'][kind]} | {cells} | {found['mean']:.0%} | {onset:.0%} |"
        )
    return lines


def _held_out(held: dict[str, Any] | None) -> str:
    if not held:
        return ""
    return (
        f", validation blocks held out of the reference {held['rate']:.1%} "
        f"({held['windows']} windows, blocks of {held['block']})"
    )


def optimize_lines(doc: dict[str, Any]) -> list[str]:
    opt = doc.get("optimize")
    if not opt:
        return []
    return [
        f"Parent {Path(opt['parent']).parent.name}: chosen {opt['chosen']} "
        f"({' → '.join(opt['transforms']) or 'parent'}), batch-1 p50 "
        f"{opt['parent_ort_fp32_p50_ms_batch1']:.3f} → {opt['chosen_p50_ms_batch1']:.3f} ms "
        f"(**{opt['speedup']:.2f}×**), test MSE {opt['parent_test_mse']:.4f} → "
        f"{opt['chosen_test_mse']:.4f} ({opt['test_mse_increase']:+.2%}); target ≥ 2× with ≤ 2 %: "
        f"{'met' if opt['target_met'] else 'missed'}.",
    ]


def main() -> None:
    doc = json.loads((RESULTS / "forecast.json").read_text())
    for block in (accuracy_table(doc), drift_table(doc), optimize_lines(doc)):
        print("\n".join(block) + "\n")


if __name__ == "__main__":
    main()
