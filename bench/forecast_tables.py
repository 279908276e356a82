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
    """One row per profile reference: false alarms in sample, on held-out weeks and on the test
    period, and detection of each fault (established, then at onset)."""
    drift = doc.get("drift")
    if not drift or "references" not in drift:
        return []
    faults = list(drift["faults"])
    lines = [
        f"n = {drift['window']} forecasts, alpha {drift['alpha']}.",
        "",
        "| reference | windows | false alarms: validation period | held-out weeks | test period | "
        + " | ".join(f"{k}: established · onset" for k in faults)
        + " |",
        "|---|---:|---:|---:|---:|" + "---:|" * len(faults),
    ]
    for name, r in drift["references"].items():
        fa = r["false_alarms"]
        found = " | ".join(
            f"{r['detection_established'][k]['mean']:.0%} · {r['detection_onset'][k]['mean']:.0%}"
            for k in faults
        )
        lines.append(
            f"| {name} ({r['profile']['calibration'].replace('_', ' ')}) | "
            f"{r['profile']['windows']:,} | {fa['validation']['rate']:.1%} ± "
            f"{fa['validation']['se']:.1%} | {fa['held_out']['rate']:.1%} "
            f"({fa['held_out']['windows']}) | {fa['test']['rate']:.1%} | {found} |"
        )
    lines += ["", "Faults: " + "; ".join(f"{k}: {v}" for k, v in drift["faults"].items()) + "."]
    return lines


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
