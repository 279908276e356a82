"""`scaledl ensemble` on real digits packages: one verified package whose outputs are the
members' soft vote, scored beside its members; members that do not fit are refused by name."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from scaledl.package import open_package
from tests.conftest import quick_recipe, run_cli


@pytest.fixture(scope="module")
def mlp_package(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A second digits model: another family and seed, on the same split (`data.split_seed`)."""
    from scaledl.pipeline.train import train_recipe
    from scaledl.recipe import validate_recipe

    recipe = quick_recipe(
        name="digits-mlp",
        seed=7,
        data={"source": "digits", "split_seed": 0},
        model={"family": "mlp", "hidden": [64]},
    )
    return train_recipe(validate_recipe(recipe), tmp_path_factory.mktemp("mlp")).package


def _softmax(z: np.ndarray) -> np.ndarray:
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return np.asarray(e / e.sum(axis=1, keepdims=True))


def test_the_ensemble_is_the_members_soft_vote_in_one_verified_package(
    digits_package: Path, mlp_package: Path, tmp_path: Path
) -> None:
    from scaledl.data import DataConfig
    from scaledl.evaluate import predict_raw
    from scaledl.modalities import load_splits
    from scaledl.verify import verify_package

    out, report = tmp_path / "ens", tmp_path / "ens.json"
    done = run_cli(
        "ensemble", str(digits_package), str(mlp_package), "--out", str(out),
        "--weights", "2,1", "--json", str(report),
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "ensemble" in done.stdout and "digits-mlp:1" in done.stdout
    assert open_package(mlp_package).manifest.lineage.split_seed == 0  # not its seed, 7
    verify_package(out)  # the merged graph reproduces the members' average from raw inputs
    pkg = open_package(out)
    assert pkg.manifest.family == "ensemble" and not pkg.has_weights
    members = pkg.manifest.lineage.get("ensemble")["members"]
    assert [m["weight"] for m in members] == pytest.approx([2 / 3, 1 / 3], abs=1e-6)

    # computed here, member by member, on the test split none of them trained on
    lineage = pkg.manifest.lineage
    splits = load_splits(DataConfig.from_lineage(lineage.data, out), seed=lineage.split_seed)
    probs = [
        _softmax(predict_raw(open_package(p), splits.test.x)) for p in (digits_package, mlp_package)
    ]
    vote = 2 / 3 * probs[0] + 1 / 3 * probs[1]
    np.testing.assert_allclose(_softmax(predict_raw(pkg, splits.test.x)), vote, atol=1e-5)
    accuracy = float((vote.argmax(axis=1) == splits.test.y).mean())
    assert pkg.manifest.metrics.accuracy == pytest.approx(accuracy)
    own = [float((p.argmax(axis=1) == splits.test.y).mean()) for p in probs]
    assert [m["test_accuracy"] for m in members] == pytest.approx(own)
    written = json.loads(report.read_text())
    assert written["metrics"]["accuracy"] == pytest.approx(accuracy)


def test_members_that_do_not_fit_are_refused_naming_the_problem(
    digits_package: Path, mlp_package: Path, tmp_path: Path
) -> None:
    from scaledl.pipeline.train import train_recipe
    from scaledl.recipe import validate_recipe

    def refused(*args: str) -> str:
        done = run_cli("ensemble", *args, "--out", str(tmp_path / "never"))
        assert done.returncode == 2, (done.stdout, done.stderr)
        assert "Traceback" not in done.stderr and not (tmp_path / "never").exists()
        return done.stderr

    d, m = str(digits_package), str(mlp_package)
    assert "2 to 16 packages, got 1" in refused(d)
    assert "--weights gives 3 weights for 2 packages" in refused(d, m, "--weights", "1,1,1")
    assert "finite and ≥ 0" in refused(d, m, "--weights", "1,-1")
    assert "not a comma-separated list" in refused(d, m, "--weights", "a,b")
    copy = tmp_path / "copy"
    shutil.copytree(digits_package, copy)
    assert "hold the same graph" in refused(d, str(copy))
    other = validate_recipe(
        quick_recipe(name="few", data={"source": "digits", "limit_per_class": 60})
    )
    few = train_recipe(other, tmp_path / "few").package
    message = refused(d, str(few))
    assert "cannot join" in message and "differs" in message and "same data" in message
    assert "does not exist" in refused(d, str(tmp_path / "missing"))


def test_maintain_refuses_an_ensemble_naming_what_to_do(
    digits_package: Path, mlp_package: Path, tmp_path: Path
) -> None:
    from scaledl.errors import ModelError
    from scaledl.maintain.lineage import training_source
    from scaledl.maintain.repository import ModelRepository
    from scaledl.pipeline.ensemble import ensemble_packages

    ensemble_packages([digits_package, mlp_package], tmp_path / "digits" / "1")
    repo = ModelRepository(tmp_path, "digits")
    with pytest.raises(ModelError, match=r"is an ensemble.*maintain each member"):
        training_source(repo, "1", repo.open("1"))


def test_out_never_replaces_a_member_or_a_folder_that_is_not_a_package(
    digits_package: Path, mlp_package: Path, tmp_path: Path
) -> None:
    member = tmp_path / "member"
    shutil.copytree(mlp_package, member)
    notes = tmp_path / "notes"
    notes.mkdir()
    (notes / "keep.txt").write_text("mine")
    for out, expected in ((member, "is the member package"), (notes, "not a package folder")):
        done = run_cli("ensemble", str(digits_package), str(member), "--out", str(out))
        assert done.returncode == 2 and expected in done.stderr, done.stderr
    assert (notes / "keep.txt").read_text() == "mine"
    open_package(member)  # untouched: every checksum still holds


@pytest.mark.parametrize("name", ["../evil", "x" * 200, "", "a b"])
def test_a_name_that_is_not_a_plain_model_name_is_refused_before_any_work(
    digits_package: Path, mlp_package: Path, tmp_path: Path, name: str
) -> None:
    out = tmp_path / "ens"
    done = run_cli("ensemble", str(digits_package), str(mlp_package), "--out", str(out),
                   "--name", name)  # fmt: skip
    assert done.returncode == 2, (done.stdout, done.stderr)
    assert "--name" in done.stderr and "Traceback" not in done.stderr
    assert not out.exists()
