"""Where a fine-tune starts and which optimize budget is re-run, from the live lineage."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest

from scaledl.errors import ModelError, PackageError
from scaledl.maintain.lineage import recorded_budget, training_source
from scaledl.maintain.repository import ModelRepository
from scaledl.package import WEIGHTS, open_package, write_package

BUDGET = {"methods": ["int8-static"], "time_budget_min": 0.25, "max_accuracy_drop": 0.05}


def variant(src: Path, dest: Path, lineage: dict[str, Any], drop: tuple[str, ...] = ()) -> Path:
    """A real package like `src` with other lineage entries (and without some files)."""
    pkg = open_package(src)
    manifest = pkg.manifest.to_json()
    manifest["lineage"].update(lineage)
    files: dict[str, bytes | Path] = {
        rel: pkg.path / rel for rel in pkg.manifest.files if rel not in drop
    }
    return write_package(dest, manifest, files)


@pytest.fixture()
def repo(digits_package: Path, tmp_path: Path) -> ModelRepository:
    shutil.copytree(digits_package, tmp_path / "digits" / "1")
    return ModelRepository(tmp_path, "digits")


def test_a_trained_version_is_its_own_source(repo: ModelRepository) -> None:
    source = training_source(repo, "1", repo.open("1"))
    assert source.package.path == repo.path("1") and not source.optimized_live
    assert recorded_budget(repo.open("1"))[0] is None


def test_an_optimized_version_starts_from_its_parent_and_keeps_its_budget(
    repo: ModelRepository, digits_package: Path
) -> None:
    optimize = {"candidate": "c04", "chosen": True, "config": BUDGET}
    lineage = {"parent": str(digits_package), "transforms": ["int8:static"], "optimize": optimize}
    variant(digits_package, repo.dir / "2", lineage)
    source = training_source(repo, "2", repo.open("2"))
    assert source.optimized_live and source.package.path == digits_package
    assert recorded_budget(repo.open("2"))[0] == BUDGET
    # When maintain made the version, the fp32 source it kept wins over lineage.parent.
    kept = repo.keep_source(digits_package, "2")
    assert training_source(repo, "2", repo.open("2")).package.path == kept


def test_an_optimized_version_without_a_recorded_budget_skips_optimization(
    repo: ModelRepository, digits_package: Path
) -> None:
    lineage = {"parent": str(digits_package), "transforms": ["prune:0.5"], "optimize": None}
    variant(digits_package, repo.dir / "2", lineage)
    budget, why = recorded_budget(repo.open("2"))
    assert budget is None and "records no optimize budget" in why


def test_missing_parent_or_weights_are_clear_errors(
    repo: ModelRepository, digits_package: Path
) -> None:
    lineage = {"parent": "/nowhere/pkg", "transforms": ["int8:static"]}
    variant(digits_package, repo.dir / "2", lineage)
    with pytest.raises(PackageError, match="parent package '/nowhere/pkg'"):
        training_source(repo, "2", repo.open("2"))
    variant(digits_package, repo.dir / "3", {}, drop=(WEIGHTS,))
    with pytest.raises(ModelError, match="has no PyTorch weights"):
        training_source(repo, "3", repo.open("3"))


def test_version_numbers_are_never_reused(repo: ModelRepository, digits_package: Path) -> None:
    assert repo.next_version() == "2"
    shutil.copytree(digits_package, repo.dir / "2")
    moved = repo.reject("2")
    assert moved == repo.rejected_path("2") and list(repo.versions()) == ["1"]
    assert repo.next_version() == "3"


def test_one_run_per_model_at_a_time(repo: ModelRepository) -> None:
    from scaledl.maintain.repository import BusyError

    other = ModelRepository(repo.root, "digits")
    with repo.lock():
        busy = pytest.raises(BusyError, match="another `scaledl maintain` run")
        with busy as info, other.lock():
            pass
        assert info.value.exit_code == 1
    with other.lock():  # released
        pass
