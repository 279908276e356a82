"""`scaledl monitor report`: the drift tests on new data, as a self-contained HTML page."""

from __future__ import annotations

from typing import Any

import numpy as np

from scaledl.monitor.check import Assessment
from scaledl.monitor.profile import ReferenceProfile
from scaledl.report import HtmlReport

NAMES = {
    "ks_pca": "KS on PCA components (Bonferroni)",
    "mmd": "MMD permutation test (multivariate)",
    "confidence": "KS on top-1 confidence (output drift)",
    "classes": "chi-square on predicted classes (label shift)",
    "outputs": "KS on outputs (Bonferroni)",
}


def build_report(
    assessment: Assessment, profile: ReferenceProfile, package_name: str
) -> HtmlReport:
    drift = assessment.drift
    report = HtmlReport(f"Drift report: {package_name} on {assessment.source}")
    verdict = "DRIFT FOUND" if assessment.degraded else "no drift found"
    report.paragraph(
        f"{verdict} — {assessment.samples} new samples vs the package's reference profile "
        f"({len(profile.features)} input rows, {profile.meta['reference'].get('outputs')} output "
        f"rows). Combined p-value {drift.p_value:.3g} (Bonferroni over {len(drift.tests)} tests; "
        f"alpha {drift.alpha}).",
        "bad" if assessment.degraded else "good",
    )
    report.heading("Tests")
    report.table(
        [
            {
                "test": NAMES.get(t.name, t.name),
                "p-value": t.p_value,
                "score": t.score,
                "flags at p <": drift.alpha / len(drift.tests),
                "drift": "yes" if t.drift else "no",
            }
            for t in drift.tests
        ]
    )
    if assessment.accuracy is not None:
        report.heading("Accuracy (the new data is labelled)")
        report.table(
            [
                {
                    "accuracy": assessment.accuracy,
                    "reference accuracy": assessment.reference_accuracy or float("nan"),
                    "drop": assessment.accuracy_drop or 0.0,
                    "allowed drop": assessment.max_accuracy_drop,
                }
            ]
        )
    names = profile.meta.get("feature_names")
    channels = len(profile.channel_stats.get("mean", ()))
    # one statistic per named feature (tables): a forecaster's are per variable, not feature
    if names and len(names) == channels and assessment.feature_means is not None:
        report.heading("Input features: reference vs new data")
        report.table(_feature_shift(names, profile, assessment.feature_means))
    report.heading("Plots")
    report.figures(_figures(assessment, profile))
    means = feature_means(profile, assessment.window)
    if means:
        report.heading("Input features: reference vs new data")
        report.table(means)
    report.heading("Per-channel statistics of the reference (preprocessed inputs)")
    stats = profile.channel_stats
    names = profile.meta.get("feature_names") or []
    report.table(
        [
            {
                "channel": names[i] if i < len(names) else i,
                **{k: float(v[i]) for k, v in stats.items()},
            }
            for i in range(len(next(iter(stats.values()))))
        ][:64]
    )
    report.code(_json_summary(assessment))
    return report


def _feature_shift(
    names: list[str], profile: ReferenceProfile, means: np.ndarray
) -> list[dict[str, Any]]:
    """Each named input feature's reference mean and std, the new data's mean and the shift in
    reference standard deviations, largest shifts first."""
    stats = profile.channel_stats
    rows: list[dict[str, Any]] = []
    for i, name in enumerate(names[: len(means)]):
        std = float(stats["std"][i]) or 1.0
        shift = (float(means[i]) - float(stats["mean"][i])) / std
        rows.append(
            {
                "feature": name,
                "reference mean": float(stats["mean"][i]),
                "reference std": float(stats["std"][i]),
                "new mean": float(means[i]),
                "shift (std)": shift,
            }
        )
    return sorted(rows, key=lambda r: -abs(r["shift (std)"]))[:24]


def _figures(assessment: Assessment, profile: ReferenceProfile) -> list[tuple[Any, str]]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    window = assessment.window
    assert window is not None
    figs: list[tuple[Any, str]] = []
    ks = assessment.drift.test("ks_pca") if "ks_pca" in _names(assessment) else None
    names = profile.meta.get("feature_names")
    if ks is not None and names:
        figs.extend(_named_feature_figures(assessment, profile, names, ks.detail))
    elif ks is not None:
        fig, ax = plt.subplots(figsize=(6, 3))
        p = np.maximum(np.asarray(ks.detail["component_p_values"]), 1e-300)
        ax.bar(range(len(p)), -np.log10(p), color="#3366cc")
        ax.axhline(
            -np.log10(assessment.drift.alpha / len(assessment.drift.tests) / len(p)),
            color="#c62828",
            ls="--",
            label="threshold",
        )
        ax.set(xlabel="PCA component", ylabel="−log10 p", title="KS per component")
        ax.legend()
        figs.append((fig, "KS p-values per PCA component"))
        worst = int(ks.detail["worst_component"])
        fig, ax = plt.subplots(figsize=(6, 3))
        ax.hist(profile.features[:, worst], bins=40, density=True, alpha=0.6, label="reference")
        ax.hist(window.features[:, worst], bins=40, density=True, alpha=0.6, label="new data")
        ax.set(title=f"Component {worst} (most shifted)", xlabel="projection")
        ax.legend()
        figs.append((fig, f"Distribution of PCA component {worst}"))
    if profile.output_score is not None and window.score is not None:
        fig, ax = plt.subplots(figsize=(6, 3))
        bins = [float(v) for v in np.linspace(0, 1, 41)]
        ax.hist(
            1 / (1 + np.exp(profile.output_score)),
            bins=bins,
            density=True,
            alpha=0.6,
            label="reference",
        )
        ax.hist(
            1 / (1 + np.exp(window.score)), bins=bins, density=True, alpha=0.6, label="new data"
        )
        ax.set(title="Top-1 confidence", xlabel="confidence")
        ax.legend()
        figs.append((fig, "Top-1 confidence distribution"))
    if "classes" in _names(assessment):
        detail = assessment.drift.test("classes").detail
        ref, new = np.asarray(detail["reference_mix"]), np.asarray(detail["window_mix"])
        labels = profile.meta.get("labels") or [str(i) for i in range(len(ref))]
        fig, ax = plt.subplots(figsize=(6, 3))
        idx = np.arange(len(ref))
        ax.bar(idx - 0.2, ref, 0.4, label="reference")
        ax.bar(idx + 0.2, new, 0.4, label="new data")
        ax.set_xticks(idx, labels, rotation=45 if len(idx) > 10 else 0)
        ax.set(title="Predicted-class mix", ylabel="share")
        ax.legend()
        figs.append((fig, "Predicted-class mix"))
    return figs


def _named_feature_figures(
    assessment: Assessment, profile: ReferenceProfile, names: list[str], detail: dict[str, Any]
) -> list[tuple[Any, str]]:
    """Readable features (text: length, unknown tokens, frequency bands, representation):
    KS p-value per feature by name, and the most shifted one in its own units."""
    import matplotlib.pyplot as plt

    window = assessment.window
    assert window is not None
    p = np.maximum(np.asarray(detail["component_p_values"]), 1e-300)
    fig, ax = plt.subplots(figsize=(7, 3.2))
    ax.bar(range(len(p)), -np.log10(p), color="#3366cc")
    ax.axhline(
        -np.log10(assessment.drift.alpha / len(assessment.drift.tests) / len(p)),
        color="#c62828",
        ls="--",
        label="threshold",
    )
    ax.set_xticks(range(len(p)), names, rotation=60, ha="right", fontsize=7)
    ax.set(ylabel="−log10 p", title="KS per input feature")
    ax.legend()
    fig.tight_layout()
    figures = [(fig, "KS p-values per input feature")]
    worst = int(detail["worst_component"])
    scale = 1.0 / float(profile.projection.components[worst, worst])
    mean = float(profile.projection.mean[worst])
    fig, ax = plt.subplots(figsize=(6, 3))
    ax.hist(
        profile.features[:, worst] * scale + mean,
        bins=40,
        density=True,
        alpha=0.6,
        label="reference",
    )
    ax.hist(
        window.features[:, worst] * scale + mean, bins=40, density=True, alpha=0.6, label="new data"
    )
    ax.set(title=f"{names[worst]} (most shifted)", xlabel=names[worst])
    ax.legend()
    figures.append((fig, f"Distribution of {names[worst]}"))
    return figures


def feature_means(profile: ReferenceProfile, window: Any) -> list[dict[str, Any]]:
    """Reference and new mean of every named feature, in its own units."""
    names = profile.meta.get("feature_names") or []
    components = profile.projection.components.astype(np.float64)
    if len(names) != len(components) or window is None:
        return []
    # each row of a readable projection picks one input (scaled): map back through it
    picked = np.abs(components).argmax(axis=1)
    scale = 1.0 / components[np.arange(len(components)), picked]
    mean = profile.projection.mean.astype(np.float64)[picked]
    ref = profile.features.mean(axis=0) * scale + mean
    new = window.features.mean(axis=0) * scale + mean
    return [
        {"feature": n, "reference_mean": round(float(r), 4), "new_mean": round(float(w), 4)}
        for n, r, w in zip(names, ref, new)
    ]


def _names(assessment: Assessment) -> set[str]:
    return {t.name for t in assessment.drift.tests}


def _json_summary(assessment: Assessment) -> str:
    import json

    body = assessment.to_json()
    for test in body["drift"]["tests"]:
        test.pop("component_p_values", None)
        test.pop("component_statistics", None)
    return json.dumps(body, indent=2, default=float)
