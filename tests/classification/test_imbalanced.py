"""Imbalanced classification (risk scoring): class weights, precision/recall/PR-AUC, and a
decision threshold chosen on validation, stored in the package and applied by evaluation and
/predict."""

from __future__ import annotations

from pathlib import Path

import httpx
import numpy as np
import pytest

from scaledl.config.monitor import MonitorConfig
from scaledl.errors import RecipeError
from scaledl.metrics import average_precision, best_f1_threshold, classification_metrics
from scaledl.package import open_package
from tests.monitor.server import monitored_server


def _table(path: Path, rows: int = 2000, seed: int = 0) -> Path:
    """Two noisy features; 6 % positives, shifted by one standard deviation."""
    rng = np.random.default_rng(seed)
    y = (rng.random(rows) < 0.06).astype(int)
    x = rng.normal(0, 1, (rows, 2)) + y[:, None] * np.array([1.2, 0.8])
    lines = ["a,b,label"] + [f"{a:.5f},{b:.5f},{t}" for (a, b), t in zip(x, y, strict=True)]
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.fixture(scope="module")
def risk_package(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from scaledl.pipeline import train_recipe
    from scaledl.recipe import validate_recipe

    root = tmp_path_factory.mktemp("risk")
    recipe = validate_recipe(
        {
            "name": "risk",
            "data": {"source": str(_table(root / "risk.csv")), "val_fraction": 0.25},
            "model": {"family": "mlp", "hidden": [16]},
            "train": {
                "epochs": 6,
                "batch_size": 64,
                "lr": 0.01,
                "threads": 1,
                "class_weights": "balanced",
                "threshold": "max_f1",
            },
            "export": {"exporter": "legacy"},
        }
    )
    return train_recipe(recipe, root / "run").package


def test_metrics_match_their_definitions() -> None:
    from sklearn.metrics import average_precision_score, f1_score

    rng = np.random.default_rng(1)
    actual = rng.random(400) < 0.1
    scores = np.round(rng.random(400) * 0.7 + actual * 0.3, 2)
    assert average_precision(scores, actual) == pytest.approx(
        average_precision_score(actual, scores)
    )
    threshold = best_f1_threshold(scores, actual)
    probs = np.stack([1 - scores, scores], axis=1)
    best = classification_metrics(probs, actual.astype(int), threshold=threshold)["f1"]
    for other in (0.3, 0.5, 0.7, 0.9):
        assert best >= f1_score(actual, scores >= other) - 1e-12


def test_threshold_is_chosen_on_validation_and_stored(risk_package: Path) -> None:
    from scaledl.evaluate import evaluate_package

    pkg = open_package(risk_package)
    decision = pkg.manifest.decision
    assert decision is not None and decision.positive_label == "1"
    assert 0.0 < decision.threshold < 1.0 and "validation" in decision.chosen_by
    metrics = pkg.manifest.metrics
    for key in ("precision", "recall", "f1", "pr_auc", "accuracy_argmax", "threshold"):
        assert metrics.get(key) is not None, key
    assert metrics.get("pr_auc") > 0.06  # better than the positives' share (a random ranking)
    evaluation = evaluate_package(risk_package)
    assert evaluation.metrics["threshold"] == decision.threshold
    assert evaluation.metrics["recall"] == pytest.approx(metrics.get("recall"))
    confusion = np.asarray(evaluation.confusion)
    assert confusion[1, 1] / confusion[1].sum() == pytest.approx(metrics.get("recall"))


def test_predict_applies_the_threshold(risk_package: Path, tmp_path: Path) -> None:
    from scaledl.evaluate import predict_raw
    from scaledl.metrics import softmax

    pkg = open_package(risk_package)
    threshold = pkg.manifest.decision.threshold  # type: ignore[union-attr]
    grid = np.stack(np.meshgrid(np.linspace(-2, 3, 40), np.linspace(-2, 3, 40)), -1).reshape(-1, 2)
    p = softmax(predict_raw(pkg, grid.astype(np.float32)))[:, 1]
    assert abs(threshold - 0.5) > 0.01, "balanced weights + max F1 moved it from argmax"
    # rows where the threshold and argmax disagree
    flips = grid[(p >= threshold) != (p >= 0.5)][:1]
    expected = "1" if threshold < 0.5 else "0"
    with monitored_server(risk_package, tmp_path, MonitorConfig()) as server:
        answer = httpx.post(
            f"{server.url}/v2/models/risk/predict",
            json=flips.tolist(),
            headers=server.headers(),
            timeout=30,
        )
    assert answer.status_code == 200, answer.text
    prediction = answer.json()["predictions"][0]
    assert prediction["label"] == expected and prediction["threshold"] == threshold
    assert prediction["top"][0]["label"] != expected  # argmax alone would have said otherwise


def test_class_weights_must_fit_the_classes(tmp_path: Path) -> None:
    from scaledl.pipeline import train_recipe
    from scaledl.recipe import validate_recipe

    recipe = validate_recipe(
        {
            "data": {"source": str(_table(tmp_path / "t.csv", rows=200))},
            "model": {"family": "mlp", "hidden": [4]},
            "train": {"epochs": 1, "class_weights": [1.0, 2.0, 3.0]},
        }
    )
    with pytest.raises(RecipeError, match="lists 3 weight"):
        train_recipe(recipe, tmp_path / "run")
