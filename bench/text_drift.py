"""Drift detection on text (bench/text.py): false alarms on clean SST-2 windows, detection of
constructed shifts at n = 200.

The profile is built with the library's `build_profile` (readable text features, standardized)
from rows the model never trained on: SST-2's validation split is cut in two — a third is the
reference (inputs and outputs), two thirds the clean *stream pool* windows are drawn from
without replacement. Windows larger than half the pool are skipped (overlapping windows are not
independent trials). Shifts, each applied to the pool's texts:

- `typos`: 30% of the words of three or more letters get one edit (swap, drop, double or
  replace a letter);
- `truncated`: every text cut to its first three words;
- `other_domain`: software-licence text (the licences in /usr/share/common-licenses), lower-
  cased, punctuation split off as in SST-2, cut into pieces of the pool's own word counts;
- `label_mix`: nine positive reviews for one negative (the pool is balanced);
- `sentences`: SST-2's dev sentences — whole reviews, where training rows are mostly phrases.
"""

from __future__ import annotations

import math
import re
import time
from pathlib import Path
from typing import Any

import numpy as np

from scaledl.config.monitor import DriftConfig
from scaledl.monitor.drift import Window, detect_drift

WINDOWS = (50, 100, 200, 500, 1000)
LICENSES = Path("/usr/share/common-licenses")


def wilson(hits: int, n: int) -> list[float]:
    if n == 0:
        return [0.0, 1.0]
    z, p = 1.96, hits / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return [round(max(0.0, centre - half), 4), round(min(1.0, centre + half), 4)]


# ---- shifts -------------------------------------------------------------------------------
def typos(texts: np.ndarray, rng: np.random.Generator, share: float = 0.3) -> np.ndarray:
    letters = "abcdefghijklmnopqrstuvwxyz"

    def edit(word: str) -> str:
        i = int(rng.integers(0, len(word) - 1))
        kind = int(rng.integers(0, 4))
        if kind == 0:
            return word[:i] + word[i + 1] + word[i] + word[i + 2 :]
        if kind == 1:
            return word[:i] + word[i + 1 :]
        if kind == 2:
            return word[:i] + word[i] + word[i:]
        return word[:i] + letters[int(rng.integers(0, 26))] + word[i + 1 :]

    out = [
        " ".join(
            edit(w) if len(w) >= 3 and w.isalpha() and rng.random() < share else w
            for w in str(t).split()
        )
        for t in texts
    ]
    return np.array(out, dtype=object)


def truncated(texts: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    return np.array([" ".join(str(t).split()[:3]) for t in texts], dtype=object)


def other_domain(texts: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    words: list[str] = []
    for path in sorted(LICENSES.glob("*")):
        if path.is_file() and not path.is_symlink():
            body = path.read_text(encoding="utf-8", errors="ignore").lower()
            words += re.sub(r"([.,;:()\"'!?])", r" \1 ", body).split()
    lengths = [max(1, len(str(t).split())) for t in texts]
    out, pos = [], 0
    for n in lengths:  # the pool's own word counts, so length alone does not give it away
        if pos + n > len(words):
            pos = int(rng.integers(0, max(1, len(words) - n)))
        out.append(" ".join(words[pos : pos + n]))
        pos += n
    return np.array(out, dtype=object)


# ---- setup -----------------------------------------------------------------------------------
class TextPools:
    def __init__(self, package: Path, seed: int = 0) -> None:
        from scaledl.config.data import DataConfig
        from scaledl.modalities import load_splits
        from scaledl.monitor.profile import ProfileOptions, build_profile
        from scaledl.monitor.reference import input_feature_names, session_predict
        from scaledl.package import open_package

        self.pkg = open_package(package)
        self.spec = self.pkg.preprocessing
        data = DataConfig.model_validate(self.pkg.manifest.lineage.data)
        splits = load_splits(data, seed=self.pkg.manifest.lineage.split_seed)
        self.rng = np.random.default_rng(seed)
        order = self.rng.permutation(len(splits.val))
        cut = len(order) // 3
        reference, pool = splits.val.take(order[:cut]), splits.val.take(order[cut:])
        self.predict = session_predict(self.pkg)
        train = splits.train.x[self.rng.permutation(len(splits.train))[:20000]]
        self.profile = build_profile(
            self.features(train),
            self.features(reference.x),
            self.graph(reference.x),
            self.predict,
            kind="text",
            heldout_y=reference.y,
            labels=splits.labels,
            options=ProfileOptions(seed=seed),
            feature_names=input_feature_names(self.spec),
        )
        self.pool_x, self.pool_y = pool.x, pool.y
        self.dev_x = splits.test.x
        self.notes = {
            "reference_rows": len(reference),
            "stream_pool_rows": len(pool),
            "fit_rows": len(train),
            "features": input_feature_names(self.spec),
        }

    def graph(self, texts: np.ndarray) -> np.ndarray:
        from scaledl.preprocess import apply_preprocessing

        return apply_preprocessing(texts, self.spec)

    def features(self, texts: np.ndarray) -> np.ndarray:
        from scaledl.monitor.reference import input_features

        parts = [
            input_features(self.spec, self.graph(texts[i : i + 4096]))
            for i in range(0, len(texts), 4096)
        ]
        return np.concatenate(parts)

    def window_of(self, texts: np.ndarray) -> Window:
        outputs = np.concatenate(
            [self.predict(self.graph(texts[i : i + 2048])) for i in range(0, len(texts), 2048)]
        )
        return Window.from_batch(self.profile, self.features(texts), outputs)


def run(
    pools: TextPools,
    window: Window,
    size: int,
    trials: int,
    config: DriftConfig,
    weights: np.ndarray | None = None,
) -> dict[str, Any]:
    hits, times = 0, []
    per_test: dict[str, int] = {}
    size = min(size, len(window))  # tiny pools (a smoke run) take what there is
    for _ in range(trials):
        idx = pools.rng.choice(len(window), size=size, replace=False, p=weights)
        sub = Window(window.features[idx], predicted=window.predicted[idx], score=window.score[idx])  # type: ignore[index]
        start = time.perf_counter()
        result = detect_drift(pools.profile, sub, config)
        times.append(time.perf_counter() - start)
        hits += result.drift
        for t in result.tests:
            per_test[t.name] = per_test.get(t.name, 0) + int(t.drift)
    return {
        "window": size,
        "trials": trials,
        "rate": round(hits / trials, 4),
        "ci95": wilson(hits, trials),
        "per_test_rate": {k: round(v / trials, 4) for k, v in per_test.items()},
        "check_ms_median": round(1000 * float(np.median(times)), 2),
    }


def drift_section(
    package: Path, clean_trials: int = 200, shift_trials: int = 100, seed: int = 0
) -> dict[str, Any]:
    pools = TextPools(package, seed)
    config = DriftConfig()
    clean = pools.window_of(pools.pool_x)
    limit = len(pools.pool_y) // 2
    sizes = [m for m in WINDOWS if m <= limit]
    out: dict[str, Any] = {**pools.notes, "alpha": config.alpha, "windows": sizes}
    out["false_alarm"] = {str(m): run(pools, clean, m, clean_trials, config) for m in sizes}
    rates = [r["rate"] for r in out["false_alarm"].values()]
    out["false_alarm_max"] = max(rates)
    positive = pools.pool_y == 1
    mix = np.where(positive, 9.0 / positive.sum(), 1.0 / (~positive).sum())
    shifted = {
        "typos": pools.window_of(typos(pools.pool_x, pools.rng)),
        "truncated": pools.window_of(truncated(pools.pool_x, pools.rng)),
        "other_domain": pools.window_of(other_domain(pools.pool_x, pools.rng)),
        "sentences": pools.window_of(pools.dev_x),
    }
    out["detection_n200"] = {
        name: run(pools, window, 200, shift_trials, config) for name, window in shifted.items()
    }
    out["detection_n200"]["label_mix"] = run(
        pools, clean, 200, shift_trials, config, mix / mix.sum()
    )
    out["detection_min_n200"] = min(r["rate"] for r in out["detection_n200"].values())
    return out
