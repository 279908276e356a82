"""Drift on ETTh1 windows: false alarms on normal traffic, detection of three sensor faults.

    python bench/forecast_drift.py [--package runs/bench-forecast/linear-96/package]

The monitor's own test (`windows`: per-variable window features, calibrated on chunks of the
reference, see scaledl.monitor.calibrated) runs through `detect_drift` exactly as the live
monitor and `scaledl monitor report` run it, on windows of n = 200 consecutive forecasts (one
an hour: the traffic of an hourly forecaster). Both references a forecaster's profile can have
are built from the package and measured side by side (`--references`):
`history` (the default: the newest 10,000 windows through the validation period, calibrated out
of sample) and `validation` (that period's windows, calibrated in sample); `history-no-gaps`
is the default without the gaps between sensors (each variable against what the others
predict), to measure what they add; `history-sensor` scores a window by each sensor's sum of
standardised features instead of the default largest single one (`--windows-score sensor`).

- **false alarms**: 300 windows of 200 forecasts starting at random hours of the validation
  period (the reference period, so this measures calibration in sample) and of the test period
  (four months later, out of sample: real drift there counts as an alarm); and, held out, the
  validation period cut in blocks of 600 windows, every other block the reference (its gaps
  between sensors fitted again on it alone) and windows of 200 inside the blocks left out
  scored against it (the same season, unseen hours);
- **detection**: a fault starts at a random hour of the validation period on one sensor; the
  monitor sees the 200 forecasts after the fault has filled the look-back (an established
  fault) and, separately, the first 200 forecasts after its onset. Faults:
  level shift (+3 training standard deviations), scale change (deviations from the sensor's
  mean over the last look-back ×2), stuck sensor (the last value repeated).

Writes the "drift" section of bench/results/forecast.json.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import REPO, write_section

ETTH1 = REPO.parent / "shared" / "datasets" / "etth1" / "ETTh1.csv"
N = 200
FAULTS = {"level": 3.0, "scale": 2.0, "stuck": 0.0}
HELD_OUT_BLOCK = 600  # validation windows (25 days) per block of the held-out check
NO_GAPS = "-no-gaps"  # a reference name with this suffix: the profile without gaps
SENSOR = "-sensor"  # … with this one: windows scored by each sensor's sum of features


def package(path: Path | None, out: Path) -> Path:
    if path is not None:
        return path
    from scaledl.pipeline.train import train_recipe
    from scaledl.recipe import load_recipe

    recipe = load_recipe(REPO / "examples" / "etth1-linear.yaml", [f"data.source={ETTH1}"])
    return train_recipe(recipe, out / "linear-96").package


class Bench:
    def __init__(
        self,
        pkg_path: Path,
        alpha: float,
        reference: str,
        gaps: bool = True,
        score: str = "feature",
    ) -> None:
        from scaledl.config.monitor import DriftConfig
        from scaledl.data import DataConfig
        from scaledl.modalities import load_splits
        from scaledl.monitor.profile import ProfileOptions
        from scaledl.monitor.reference import profile_for_splits, session_predict
        from scaledl.package import open_package

        self.pkg = open_package(pkg_path)
        self.spec: Any = self.pkg.preprocessing
        config = DataConfig.model_validate(self.pkg.manifest.lineage.data)
        splits = load_splits(config, task="regression")
        options = ProfileOptions(series_reference=reference, series_gaps=gaps)
        self.gaps = gaps
        self.profile = profile_for_splits(
            splits, self.spec, session_predict(self.pkg), "regression", options
        )
        self.values = np.asarray(splits.table.values, np.float64)  # type: ignore[attr-defined]
        self.periods = {p.name: p for p in splits.periods}  # type: ignore[attr-defined]
        self.lookback = self.spec.lookback
        self.config = DriftConfig(
            alpha=alpha, tests=["windows"], min_samples=20, windows_score=score
        )
        self.rng = np.random.default_rng(0)

    def flagged(self, values: np.ndarray, last_row: int) -> bool:
        """Drift in the N windows whose last observed rows are last_row … last_row + N − 1."""
        from scaledl.modalities import modality_of
        from scaledl.monitor.drift import Window, detect_drift

        rows = values[last_row - self.lookback + 1 : last_row + N]
        windows = sliding_window_view(rows, self.lookback, axis=0).transpose(0, 2, 1)
        features = modality_of(self.spec).drift_features(self.spec, windows)
        watched = self.profile.projection.transform(features)  # the profile's own features
        return detect_drift(self.profile, Window(watched), self.config).drift

    def profile_summary(self) -> dict[str, Any]:
        meta = self.profile.meta
        return {
            "windows": len(self.profile.features),
            "features": len(meta["feature_names"]),
            "calibration": meta["calibration"],
            "gaps": sum(str(name).endswith("_gap") for name in meta["feature_names"]),
        }

    def false_alarms(self, period: str, trials: int) -> dict[str, Any]:
        p = self.periods[period]
        first = max(p.start, self.lookback)
        ends = self.rng.integers(first, p.end - N, trials)
        flags = [self.flagged(self.values, int(t)) for t in ends]
        rate = float(np.mean(flags))
        return {"trials": trials, "rate": round(rate, 4), "se": round(_se(rate, trials), 4)}

    def held_out(self, block: int = HELD_OUT_BLOCK, stride: int = 10) -> dict[str, Any]:
        """False alarms out of sample: the reference is every other block of `block` windows of
        the profile's reference, the alarms are counted on windows of N inside the blocks it
        left out (weeks of the same period that it never held)."""
        import dataclasses

        from scaledl.modalities.series.drift import feature_names
        from scaledl.monitor.drift import Window, detect_drift
        from scaledl.monitor.series_profile import watched_features

        own = len(feature_names(self.spec))  # the per-variable features, before the gaps
        features = self.profile.features[:, :own]
        blocks = [features[i : i + block] for i in range(0, len(features), block)]
        flags, per_block = [], []
        for kept in (0, 1):
            # the gaps between sensors are fitted again on the kept blocks alone
            watched = watched_features(self.spec, np.concatenate(blocks[kept::2]), self.gaps)
            half = dataclasses.replace(
                self.profile,
                features=watched.features,
                projection=watched.projection,
                meta={**self.profile.meta, "tolerance": watched.tolerance},
                _cache={},
            )
            for held in blocks[1 - kept :: 2]:
                own_flags = [
                    detect_drift(
                        half,
                        Window(watched.projection.transform(held[start : start + N])),
                        self.config,
                    ).drift
                    for start in range(0, len(held) - N + 1, stride)
                ]
                flags += own_flags
                if own_flags:
                    per_block.append(float(np.mean(own_flags)))
        # windows of one block overlap and alarm together: the blocks are the independent units
        se = (
            float(np.std(per_block, ddof=1) / np.sqrt(len(per_block)))
            if len(per_block) > 1
            else 0.0
        )
        return {
            "block": block,
            "stride": stride,
            "windows": len(flags),
            "rate": _rate(flags),
            "blocks": len(per_block),
            "se_over_blocks": round(se, 4),
            "per_block": [round(rate, 3) for rate in per_block],
        }

    def inject(self, kind: str, column: int, onset: int) -> np.ndarray:
        v = self.values.copy()
        if kind == "level":
            v[onset:, column] += FAULTS["level"] * self.spec.std[column]
        elif kind == "scale":
            local = v[onset - self.lookback : onset, column].mean()
            v[onset:, column] = local + FAULTS["scale"] * (v[onset:, column] - local)
        else:
            v[onset:, column] = v[onset - 1, column]
        return v

    def detection(self, kind: str, trials: int, established: bool) -> dict[str, Any]:
        p = self.periods["val"]
        lag = self.lookback if established else 0
        per_variable = {}
        for column, name in enumerate(self.spec.inputs):
            onsets = self.rng.integers(p.start + self.lookback, p.end - N - lag, trials)
            hits = [self.flagged(self.inject(kind, column, int(t)), int(t) + lag) for t in onsets]
            per_variable[name] = round(float(np.mean(hits)), 4)
        mean = float(np.mean(list(per_variable.values())))
        return {"trials_per_variable": trials, "mean": round(mean, 4), "per_variable": per_variable}


def _rate(flags: list[bool]) -> float:
    return round(float(np.mean(flags)), 4) if flags else float("nan")


def _se(rate: float, n: int) -> float:
    return float(np.sqrt(max(rate * (1 - rate), 1e-12) / n))


def measure(pkg_path: Path, name: str, args: argparse.Namespace) -> dict[str, Any]:
    """One profile: a reference, "-no-gaps" appended for one without gaps between sensors,
    "-sensor" for windows scored by each sensor's sum of features."""
    started = time.perf_counter()
    score = "sensor" if SENSOR in name else "feature"
    gaps = NO_GAPS not in name
    reference = name.replace(SENSOR, "").replace(NO_GAPS, "")
    bench = Bench(pkg_path, args.alpha, reference, gaps=gaps, score=score)
    reference = name
    result: dict[str, Any] = {
        "profile": bench.profile_summary(),
        "windows_score": score,
        "false_alarms": {
            "validation": bench.false_alarms("val", args.trials),
            "test": bench.false_alarms("test", args.trials),
            "held_out": bench.held_out(),
        },
        "detection_established": {},
        "detection_onset": {},
    }
    for kind in FAULTS:
        result["detection_established"][kind] = bench.detection(kind, args.fault_trials, True)
        result["detection_onset"][kind] = bench.detection(kind, args.fault_trials, False)
        print(reference, kind, json.dumps(result["detection_established"][kind]), flush=True)
    result["seconds"] = round(time.perf_counter() - started, 1)
    print(reference, json.dumps(result["false_alarms"]), flush=True)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--package", type=Path, default=None, help="a trained ETTh1 package")
    parser.add_argument("--trials", type=int, default=300, help="false-alarm windows per period")
    parser.add_argument("--fault-trials", type=int, default=30, help="per fault and variable")
    parser.add_argument("--alpha", type=float, default=0.05)
    parser.add_argument(
        "--references",
        default="history,history-sensor,history-no-gaps,validation",
        help="profiles to compare: a reference, '-no-gaps' appended for one without gaps, "
        "'-sensor' for each sensor's sum of features as a window's score",
    )
    parser.add_argument("--out", type=Path, default=Path("runs/bench-forecast"))
    args = parser.parse_args()
    from scaledl.modalities.series.drift import GAP_TOLERANCE

    load_before = os.getloadavg()
    pkg_path = package(args.package, args.out)
    result: dict[str, Any] = {
        "command": "python " + " ".join(sys.argv),
        "package": str(pkg_path),
        "window": N,
        "alpha": args.alpha,
        "faults": {
            "level": f"+{FAULTS['level']:g} training standard deviations on one sensor",
            "scale": f"deviations from the sensor's recent mean ×{FAULTS['scale']:g}",
            "stuck": "the sensor repeats its last value",
        },
        "held_out": f"every other block of {HELD_OUT_BLOCK} reference windows is the "
        "reference (gaps between sensors fitted on it), windows inside the blocks it left out "
        "are scored",
        "gap_tolerance": GAP_TOLERANCE,
        "references": {},
    }
    for reference in args.references.split(","):
        result["references"][reference] = measure(pkg_path, reference, args)
    result["machine_load"] = {
        "loadavg_before": [round(v, 2) for v in load_before],
        "loadavg_after": [round(v, 2) for v in os.getloadavg()],
    }
    path = write_section("forecast", "drift", result)
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
