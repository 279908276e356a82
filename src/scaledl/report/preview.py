"""A picture of what a policy does: original samples beside augmented views (one per epoch).

Audio is shown as the model sees it: the normalized log-mel spectrogram its front-end computes,
after the policy's waveform ops and, in the augmented views, its feature ops (SpecAugment).
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from scaledl.fsio import atomic_write_bytes


@dataclass
class Preview:
    path: Path
    samples: int
    views: int
    kind: str
    ops: list[str]


def preview_policy(recipe: Any, out: Path, samples: int = 8, views: int = 5) -> Preview:
    """Draw `samples` training rows (evenly spread) and `views` augmented versions of each."""
    import torch

    from scaledl.data.augment import build_augmenter
    from scaledl.modalities import load_splits

    splits = load_splits(recipe.data, seed=recipe.seed, task=recipe.task)
    train = splits.train
    index = np.unique(np.linspace(0, len(train) - 1, min(samples, len(train))).astype(np.int64))
    if splits.kind == "text":
        return _preview_text(recipe, splits, index, out, views)
    x = torch.from_numpy(train.x[index].astype(np.float32) * np.float32(splits.scale))
    y = torch.from_numpy(train.y[index])
    augmenter = build_augmenter(recipe.augment, splits.kind)
    columns: list[tuple[str, Any, Any]] = [("original", x, None)]
    front = _audio_frontend(splits) if splits.kind == "audio" else None
    if augmenter is not None:
        augmenter.bind(train.x, train.y, splits.scale, splits.num_classes)
        for epoch in range(views):
            ax, soft = augmenter(x, y, seed=recipe.seed, epoch=epoch, index=index)
            if front is not None:
                features = augmenter.feature_augment(seed=recipe.seed, epoch=epoch, index=index)
                ax = _spectrograms(front, ax, features)
            columns.append((f"epoch {epoch + 1}", ax, soft))
    if front is not None:
        columns[0] = ("original", _spectrograms(front, x, None), None)
    png = _render(columns, splits.kind, y.numpy(), splits.labels)
    atomic_write_bytes(Path(out), png)
    return Preview(Path(out), len(index), len(columns) - 1, splits.kind, recipe.augment.describe())


def _preview_text(recipe: Any, splits: Any, index: np.ndarray, out: Path, views: int) -> Preview:
    """Texts: the tokens of each sample (after the tokenizer fitted on the training split) and
    of its augmented views, one line each."""
    from scaledl.data.augment import build_augmenter
    from scaledl.modalities import modality
    from scaledl.modalities.text import TextModality

    unit = modality("text")
    assert isinstance(unit, TextModality)
    spec = unit.fit(splits)
    x = unit.batch_transform(spec).load(splits.train.x[index])
    augmenter = build_augmenter(recipe.augment, unit.augmentation_kind())
    decode = unit.token_strings(spec)
    lines: list[str] = []
    for r, row in enumerate(index):
        label = splits.labels[int(splits.train.y[row])] if splits.labels else ""
        lines.append(f"[{label}] original: {decode(x[r])}")
        if augmenter is not None:
            for epoch in range(views):
                ax, _ = augmenter(
                    x[r : r + 1], None, seed=recipe.seed, epoch=epoch, index=index[r : r + 1]
                )
                lines.append(f"      epoch {epoch + 1}: {decode(ax[0])}")
        lines.append("")
    png = _render_lines(lines)
    atomic_write_bytes(Path(out), png)
    return Preview(
        Path(out), len(index), views if augmenter else 0, "text", recipe.augment.describe()
    )


def _render_lines(lines: list[str]) -> bytes:
    import textwrap

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    wrapped = [w for line in lines for w in (textwrap.wrap(line, 120) or [""])]
    fig = plt.figure(figsize=(11, 0.22 * len(wrapped) + 0.4))
    fig.text(0.01, 0.99, "\n".join(wrapped), va="top", family="monospace", fontsize=8)
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=100)
    plt.close(fig)
    return buffer.getvalue()


def _audio_frontend(splits: Any) -> Any:
    """The front-end a model trained on these splits would have."""
    from scaledl.modalities import modality

    unit = modality("audio")
    spec = unit.fit(splits)
    config = unit.frontend(spec, "cnn")
    assert config is not None
    return unit.build_frontend(config)[0]


def _spectrograms(front: Any, waves: Any, feature_augment: Any) -> Any:
    """Waveforms → the normalized log-mel the model's front-end computes (and augments)."""
    import torch

    with torch.no_grad():
        features = front.logmel(waves)
        return feature_augment(features) if feature_augment is not None else features


def _render(
    columns: list[tuple[str, Any, Any]], kind: str, y: np.ndarray, labels: list[str] | None
) -> bytes:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows, cols = len(y), len(columns)
    size = {"image": 1.6, "audio": 2.2}.get(kind, 2.4)
    fig, axes = plt.subplots(rows, cols, figsize=(size * cols, size * rows), squeeze=False)
    for c, (title, batch, soft) in enumerate(columns):
        for r in range(rows):
            ax = axes[r][c]
            _draw(ax, batch[r].detach().cpu().numpy(), kind, columns[0][1][r].numpy(), c > 0)
            ax.set_title(_caption(title, r, y, soft, labels, c == 0), fontsize=7)
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=100)
    plt.close(fig)
    return buffer.getvalue()


def _draw(ax: Any, sample: np.ndarray, kind: str, original: np.ndarray, augmented: bool) -> None:
    if kind == "image":
        img = np.clip(sample.transpose(1, 2, 0), 0.0, 1.0)
        ax.imshow(img[:, :, 0] if img.shape[2] == 1 else img, cmap="gray", vmin=0, vmax=1)
        ax.set_xticks([])
        ax.set_yticks([])
        return
    if kind == "audio":  # (mel bands, frames), low frequencies at the bottom
        ax.imshow(sample, origin="lower", aspect="auto", cmap="magma", vmin=-2.5, vmax=2.5)
        ax.set_xticks([])
        ax.set_yticks([])
        return
    series = sample if kind == "table" else sample[:, 0]
    base = original if kind == "table" else original[:, 0]
    if augmented:
        ax.plot(base, color="0.75", linewidth=1)
    ax.plot(series, color="tab:blue" if augmented else "black", linewidth=1)
    ax.tick_params(labelsize=6)


def _caption(
    title: str, row: int, y: np.ndarray, soft: Any, labels: list[str] | None, first: bool
) -> str:
    def name(k: int) -> str:
        return labels[k] if labels else str(k)

    if soft is None:
        return f"{title}: {name(int(y[row]))}" if first else title
    weights = soft[row].detach().cpu().numpy()
    top = np.argsort(weights)[::-1][:2]
    parts = [f"{name(int(k))} {weights[k]:.2f}" for k in top if weights[k] > 0.005]
    return f"{title}: " + ", ".join(parts)
