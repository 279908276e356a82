"""Compare one window of traffic with the reference profile: a p-value and a score per test.

Tests (Rabanser et al., "Failing Loudly", NeurIPS 2019, found univariate KS on a low-dimensional
projection with a Bonferroni correction the best detector of image shifts):
- `ks_pca`: KS per projected component, Bonferroni over components;
- `mmd`: a multivariate MMD permutation test on the projected features;
- `confidence`: KS on the top-1 confidence (output drift);
- `classes`: chi-square on predicted-class counts (label shift);
- `outputs` (regression): KS per output column, Bonferroni;
- `windows` (forecasters): per-feature window means against the reference period's own
  chunks (`monitor.calibrated`), for overlapping, serially dependent windows.
The check as a whole is Bonferroni-combined: it flags drift when p = min(1, T·min pᵢ) < alpha,
so its false-alarm rate stays at alpha.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from scaledl.config.monitor import DriftConfig
from scaledl.errors import UsageError
from scaledl.monitor.outputs import class_counts, summarize_outputs
from scaledl.monitor.profile import ReferenceProfile
from scaledl.monitor.stats import chi2_homogeneity, ks_columns, mmd_permutation


@dataclass
class Window:
    """What the tests need of a window: projected inputs and output summaries."""

    features: np.ndarray  # (m, k)
    predicted: np.ndarray | None = None  # (m,) classifiers
    score: np.ndarray | None = None  # (m,) confidence score, classifiers
    values: np.ndarray | None = None  # (m, q) regression outputs

    def __len__(self) -> int:
        return len(self.features)

    @classmethod
    def from_batch(
        cls, profile: ReferenceProfile, inputs: np.ndarray, outputs: np.ndarray
    ) -> Window:
        """Preprocessed inputs and graph outputs → a window."""
        features = profile.projection.transform(inputs)
        if profile.task == "classification":
            summary = summarize_outputs(outputs)
            return cls(features, predicted=summary.predicted, score=summary.score)
        if profile.output_values is None:  # forecasters keep no per-sample outputs
            return cls(features)
        return cls(features, values=np.asarray(outputs, np.float32).reshape(len(outputs), -1))


@dataclass
class TestResult:
    name: str
    p_value: float
    score: float
    drift: bool = False
    detail: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "p_value": self.p_value,
            "score": self.score,
            "drift": self.drift,
            **self.detail,
        }


@dataclass
class DriftResult:
    tests: list[TestResult]
    p_value: float  # Bonferroni-combined over tests
    drift: bool
    alpha: float
    samples: int

    def test(self, name: str) -> TestResult:
        for t in self.tests:
            if t.name == name:
                return t
        raise KeyError(name)

    def to_json(self) -> dict[str, Any]:
        return {
            "drift": self.drift,
            "p_value": self.p_value,
            "alpha": self.alpha,
            "samples": self.samples,
            "tests": [t.to_json() for t in self.tests],
        }


def available_tests(profile: ReferenceProfile) -> list[str]:
    if profile.meta.get("kind") == "series":
        return ["windows"]
    if profile.task == "classification":
        return ["ks_pca", "mmd", "confidence", "classes"]
    return ["ks_pca", "mmd", "outputs"]


def selected_tests(profile: ReferenceProfile, config: DriftConfig) -> list[str]:
    have = available_tests(profile)
    if config.tests is None:
        return have
    wrong = [t for t in config.tests if t not in have]
    if wrong:
        raise UsageError(f"drift tests {wrong} do not apply to this model; valid: {have}")
    return list(dict.fromkeys(config.tests))


def _ks_pca(profile: ReferenceProfile, window: Window, rng: np.random.Generator) -> TestResult:
    ks = ks_columns(profile.features, window.features, rng)
    k = len(ks.p_values)
    worst = int(np.argmin(ks.p_values))
    detail: dict[str, Any] = {
        "components": k,
        "worst_component": worst,
        "component_p_values": [float(p) for p in ks.p_values],
        "component_statistics": [float(s) for s in ks.statistic],
    }
    names = profile.meta.get("feature_names")
    if names and len(names) == k:  # readable features (text): say which one moved
        detail["worst_feature"] = names[worst]
        detail["shifted_features"] = [
            names[i] for i in np.argsort(ks.p_values) if ks.p_values[i] * k < 0.05
        ]
    return TestResult(
        "ks_pca",
        p_value=float(min(1.0, k * ks.p_values[worst])),
        score=float(ks.statistic.max()),
        detail=detail,
    )


def _mmd(
    profile: ReferenceProfile, window: Window, config: DriftConfig, rng: np.random.Generator
) -> TestResult:
    features = window.features
    if len(features) > config.mmd_max_window:
        features = features[rng.choice(len(features), config.mmd_max_window, replace=False)]
    result = mmd_permutation(
        profile.mmd_reference,
        features,
        profile.mmd_bandwidth,
        config.permutations,
        rng,
        ref_kernel=profile.mmd_reference_kernel(),
    )
    return TestResult(
        "mmd",
        p_value=result.p_value,
        score=result.mmd2,
        detail={"permutations": result.permutations, "pooled_window": len(features)},
    )


def _confidence(profile: ReferenceProfile, window: Window, rng: np.random.Generator) -> TestResult:
    assert profile.output_score is not None and window.score is not None
    ks = ks_columns(profile.output_score[:, None], window.score[:, None], rng)
    ref_conf = 1.0 / (1.0 + np.exp(profile.output_score))
    win_conf = 1.0 / (1.0 + np.exp(window.score))
    return TestResult(
        "confidence",
        p_value=float(ks.p_values[0]),
        score=float(ks.statistic[0]),
        detail={
            "reference_mean_confidence": float(ref_conf.mean()),
            "window_mean_confidence": float(win_conf.mean()),
        },
    )


def _classes(
    profile: ReferenceProfile, window: Window, config: DriftConfig, rng: np.random.Generator
) -> TestResult:
    assert profile.output_predicted is not None and window.predicted is not None
    k = int(profile.num_classes or 0)
    ref_counts = class_counts(profile.output_predicted, k)
    win_counts = class_counts(window.predicted, k)
    result = chi2_homogeneity(ref_counts, win_counts, rng, config.simulations)
    return TestResult(
        "classes",
        p_value=result.p_value,
        score=result.tvd,
        detail={
            "chi2": result.statistic,
            "dof": result.dof,
            "method": result.method,
            "reference_mix": [float(v) for v in ref_counts / max(1, ref_counts.sum())],
            "window_mix": [float(v) for v in win_counts / max(1, win_counts.sum())],
        },
    )


def _outputs(profile: ReferenceProfile, window: Window, rng: np.random.Generator) -> TestResult:
    assert profile.output_values is not None and window.values is not None
    ks = ks_columns(profile.output_values, window.values, rng)
    k = len(ks.p_values)
    return TestResult(
        "outputs",
        p_value=float(min(1.0, k * ks.p_values.min())),
        score=float(ks.statistic.max()),
        detail={"columns": k},
    )


def _windows(profile: ReferenceProfile, window: Window, config: DriftConfig) -> TestResult:
    from scaledl.monitor.calibrated import groups_by_prefix, windows_test

    names = list(profile.meta.get("feature_names") or [])
    # Profiles from before the choice existed were calibrated in sample.
    out_of_sample = profile.meta.get("calibration") == "out_of_sample"
    # Profiles from before the gaps between sensors have no tolerance (none needed).
    held = profile.meta.get("tolerance")
    tolerance = np.asarray(held, np.float64) if held is not None else None
    # windows_score "sensor": a sensor's features ("OT.level", "OT.level_gap", …) are summed
    width = profile.features.shape[1]
    groups = groups_by_prefix(names, width) if config.windows_score == "sensor" else None
    p, score, detail = windows_test(
        profile.features, window.features, names, profile._cache, out_of_sample, tolerance, groups
    )
    return TestResult("windows", p_value=p, score=score, detail=detail)


def detect_drift(
    profile: ReferenceProfile, window: Window, config: DriftConfig | None = None
) -> DriftResult:
    """Run the configured tests on one window; raise UsageError on a too-small window."""
    config = config or DriftConfig()
    if len(window) < config.min_samples:
        raise UsageError(
            f"a drift window needs at least {config.min_samples} samples, got {len(window)}"
        )
    rng = np.random.default_rng(config.seed)
    names = selected_tests(profile, config)
    runners = {
        "ks_pca": lambda: _ks_pca(profile, window, rng),
        "mmd": lambda: _mmd(profile, window, config, rng),
        "confidence": lambda: _confidence(profile, window, rng),
        "classes": lambda: _classes(profile, window, config, rng),
        "outputs": lambda: _outputs(profile, window, rng),
        "windows": lambda: _windows(profile, window, config),
    }
    results = [runners[name]() for name in names]
    per_test_alpha = config.alpha / len(results)
    for result in results:
        result.drift = result.p_value < per_test_alpha
    combined = min(1.0, len(results) * min(r.p_value for r in results))
    return DriftResult(
        tests=results,
        p_value=float(combined),
        drift=combined < config.alpha,
        alpha=config.alpha,
        samples=len(window),
    )
