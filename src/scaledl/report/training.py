"""The training report: curves, confusion matrix, metrics, lineage and the resolved recipe."""

from __future__ import annotations

import json
from typing import Any

from scaledl.package import Package
from scaledl.report.html import HtmlReport


def _curves(history: list[dict[str, Any]]) -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    epochs = [h["epoch"] for h in history]
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.6))
    axes[0].plot(epochs, [h["train_loss"] for h in history], label="train")
    axes[0].plot(epochs, [h["val_loss"] for h in history], label="validation")
    axes[0].set(title="loss", xlabel="epoch")
    axes[0].legend()
    key = "accuracy" if "val_accuracy" in history[0] else "rmse"
    if f"train_{key}" in history[0]:
        axes[1].plot(epochs, [h[f"train_{key}"] for h in history], label="train")
    axes[1].plot(epochs, [h[f"val_{key}"] for h in history], label="validation")
    axes[1].set(title=key, xlabel="epoch")
    axes[1].legend()
    fig.tight_layout()
    return fig


def _confusion(matrix: list[list[int]], labels: list[str]) -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    m = np.asarray(matrix)
    size = max(4.0, 0.45 * len(labels) + 2)
    fig, ax = plt.subplots(figsize=(size, size * 0.85))
    im = ax.imshow(m, cmap="Blues")
    ax.set_xticks(range(len(labels)), labels, rotation=45, ha="right")
    ax.set_yticks(range(len(labels)), labels)
    ax.set(xlabel="predicted", ylabel="true", title="confusion matrix (test split, ONNX Runtime)")
    if len(labels) <= 20:
        for (i, j), v in np.ndenumerate(m):
            ax.text(
                j,
                i,
                str(v),
                ha="center",
                va="center",
                fontsize=7,
                color="white" if v > m.max() / 2 else "black",
            )
    fig.colorbar(im, ax=ax, fraction=0.046)
    fig.tight_layout()
    return fig


UTILISATION_ROWS = (
    ("samples_per_second", "samples/s in training steps", "{:,.1f}"),
    ("flops_per_sample", "FLOPs per sample (forward + backward)", "{:,.0f}"),
    ("achieved_flops_per_second", "achieved FLOP/s", "{:,.3g}"),
    ("peak_flops_per_second", "measured peak FLOP/s (matmul probe)", "{:,.3g}"),
    ("utilisation", "fraction of the peak", "{:.1%}"),
    ("data_wait_fraction", "step time spent waiting for data", "{:.1%}"),
    ("dtype", "dtype", "{}"),
    ("data_workers", "data worker processes", "{}"),
    ("prefetch", "batches prefetched", "{}"),
)


def utilisation_rows(figures: dict[str, Any]) -> list[dict[str, Any]]:
    rows = []
    for key, label, fmt in UTILISATION_ROWS:
        if key in figures:
            try:
                value = fmt.format(figures[key])
            except (TypeError, ValueError):  # a hand-edited manifest: show the value as it is
                value = str(figures[key])
            rows.append({"figure": label, "value": value})
    return rows


def training_report(
    pkg: Package,
    history: list[dict[str, Any]],
    evaluation: dict[str, Any] | None = None,
    verify_checks: list[str] | None = None,
) -> str:
    m = pkg.manifest
    report = HtmlReport(f"{m.name} v{m.version} — {m.family} ({m.task})")
    measured = m.metrics.model_dump(mode="json", exclude_none=True)
    metrics = {k: v for k, v in measured.items() if not isinstance(v, list | dict)}
    report.heading("Metrics (test split, ONNX Runtime)")
    report.table([{"metric": k, "value": v} for k, v in metrics.items()])
    speed = measured.get("utilisation")
    if isinstance(speed, dict) and speed:
        report.heading("Training speed and utilisation")
        report.table(utilisation_rows(speed))
    if history:
        report.heading("Training curves")
        report.figure(_curves(history), "training curves")
        report.table(history)
    matrix = (evaluation or {}).get("confusion_matrix") or m.metrics.confusion_matrix
    if matrix and m.labels:
        report.heading("Confusion matrix")
        report.figure(_confusion(matrix, m.labels), "confusion matrix")
    if verify_checks:
        report.heading("Verification")
        report.raw("<ul>" + "".join(f"<li>{c}</li>" for c in verify_checks) + "</ul>")
    report.heading("Signature and preprocessing")
    report.code(
        json.dumps(m.model_dump(mode="json", include={"signature", "preprocessing"}), indent=2)
    )
    report.heading("Lineage")
    report.code(json.dumps(m.lineage.model_dump(mode="json", exclude_none=True), indent=2))
    recipe = pkg.path / "recipe.yaml"
    if recipe.is_file():
        report.heading("Resolved recipe")
        report.code(recipe.read_text())
    return report.render()
