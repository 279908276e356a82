"""Elastic world size: a checkpoint written by 1 process resumes on 2, and one written by 2 on 1.

The interrupted run stops mid-epoch, after a mid-epoch checkpoint; the resumed run trains the
remaining global batches exactly once (split across however many processes it has), and ends
where an uninterrupted one-process run does, up to the float rounding of a different reduction
order (the recipe has no dropout: nothing depends on the rank's own seed).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import torch

from scaledl.data.augment import build_augmenter
from scaledl.modalities import load_splits
from scaledl.pipeline.train import build_model_for, model_spec_for
from scaledl.preprocess import fit_preprocessing
from scaledl.recipe import validate_recipe
from scaledl.train.distributed import DistContext
from scaledl.train.loop import Trainer
from tests.conftest import quick_recipe

pytestmark = pytest.mark.slow
CRASH_AT = (1, 4)  # (epoch, step): after the checkpoint written after step 2 of epoch 1
RESUMED_AT = (1, 3)


class Crash(Exception):
    pass


def _trainer(ckpt: Path | None, steps: list[Any], crash: bool, dist: DistContext) -> Trainer:
    recipe = validate_recipe(
        quick_recipe(
            model={"family": "cnn", "channels": [8], "depth": 1},
            train={"epochs": 2, "batch_size": 128, "lr": 0.005},
            augment={"policy": [{"op": "crop", "padding": 1}, {"op": "mixup", "p": 0.3}]},
        )
    )
    splits = load_splits(recipe.data, seed=0, task="classification")
    prep = fit_preprocessing(splits)

    def record(rec: dict[str, Any]) -> None:
        steps.append((rec["epoch"], rec["step"], rec["index"].tolist()))
        if crash and (rec["epoch"], rec["step"]) == CRASH_AT:
            raise Crash

    return Trainer(
        build_model_for(recipe, model_spec_for(recipe, prep, 10)),
        splits,
        recipe.train,
        prep,
        seed=0,
        augmenter=build_augmenter(recipe.augment, splits.kind),
        checkpoint_dir=ckpt,
        fingerprint="elastic",
        checkpoint_every=3,
        step_callbacks=[record],
        dist=dist,
    )


def _run(ckpt: Path | None, crash: bool, dist: DistContext | None = None) -> dict[str, Any]:
    steps: list[Any] = []
    trainer = _trainer(ckpt, steps, crash, dist or DistContext())
    try:
        result = trainer.fit(resume=ckpt is not None)
    except Crash:
        return {"steps": steps, "weights": None, "history": None}
    return {"steps": steps, "weights": result.model.state_dict(), "history": result.history}


def _rank_main(rank: int, world: int, root: str, crash: bool) -> None:
    """One rank of a spawned gloo group; writes its steps (and rank 0 its weights) to `root`."""
    torch.set_num_threads(1)
    torch.distributed.init_process_group(
        "gloo", init_method=f"file://{root}/rendezvous", rank=rank, world_size=world
    )
    ctx = DistContext(rank, world, 0, torch.device("cpu"), "gloo")
    try:
        out = _run(Path(root) / "ckpt", crash, ctx)
    finally:
        ctx.close()
    Path(root, f"steps{rank}.json").write_text(json.dumps(out["steps"]))
    if rank == 0 and out["weights"] is not None:
        torch.save({"weights": out["weights"], "history": out["history"]}, f"{root}/final.pt")


def _group(root: Path, crash: bool) -> dict[str, Any]:
    import torch.multiprocessing as mp

    (root / "rendezvous").unlink(missing_ok=True)
    mp.start_processes(_rank_main, args=(2, str(root), crash), nprocs=2, start_method="spawn")
    steps = [s for r in (0, 1) for s in json.loads((root / f"steps{r}.json").read_text())]
    final = root / "final.pt"
    done = torch.load(final, weights_only=True) if final.is_file() and not crash else {}
    return {"steps": steps, "weights": done.get("weights"), "history": done.get("history")}


@pytest.fixture(scope="module")
def reference() -> dict[str, Any]:
    return _run(None, crash=False)


def _merged(steps: list[Any]) -> dict[tuple[int, int], list[int]]:
    """Each (epoch, step)'s global batch: the ranks' slices in rank order are contiguous."""
    merged: dict[tuple[int, int], list[int]] = {}
    for epoch, step, index in steps:
        merged.setdefault((epoch, step), []).extend(index)
    return merged


def _check(reference: dict[str, Any], first: dict[str, Any], second: dict[str, Any]) -> None:
    before = {k: v for k, v in _merged(first["steps"]).items() if k < RESUMED_AT}
    after = _merged(second["steps"])
    assert min(after) == RESUMED_AT  # continued at the step after the checkpoint
    expected = _merged(reference["steps"])
    assert {**before, **after}.keys() == expected.keys()
    for key, index in {**before, **after}.items():  # every remaining sample exactly once
        assert sorted(index) == sorted(expected[key]), key
    for key, value in reference["weights"].items():
        if value.is_floating_point():
            assert torch.allclose(value, second["weights"][key], atol=2e-3), key
    for ref, got in zip(reference["history"], second["history"], strict=True):
        assert got["val_accuracy"] == pytest.approx(ref["val_accuracy"], abs=0.02)


def test_one_process_checkpoint_resumes_on_two(reference: dict[str, Any], tmp_path: Path) -> None:
    first = _run(tmp_path / "ckpt", crash=True)
    second = _group(tmp_path, crash=False)
    per_step: dict[tuple[int, int], int] = {}
    for epoch, step, _ in second["steps"]:
        per_step[(epoch, step)] = per_step.get((epoch, step), 0) + 1
    assert set(per_step.values()) == {2}  # both ranks trained a slice of every global batch
    _check(reference, first, second)


def test_two_process_checkpoint_resumes_on_one(reference: dict[str, Any], tmp_path: Path) -> None:
    first = _group(tmp_path, crash=True)
    second = _run(tmp_path / "ckpt", crash=False)
    _check(reference, first, second)
