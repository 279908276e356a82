"""`maintain` on a forecaster whose series changes behaviour: the retrained version wins on the
newest period and is promoted; one fine-tuned on a corrupted feed is worse there and rolled
back — offline, and through a real server under a request loop with zero failed requests."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import httpx
import numpy as np
import pytest

from scaledl.config.maintain import build_config
from scaledl.maintain.log import read_log
from scaledl.maintain.loop import MaintainRequest, run_maintain
from tests.conftest import run_cli
from tests.maintain.conftest import Traffic
from tests.series.conftest import START, series_recipe, series_values, write_series
from tests.serve.helpers import ServerProcess

MODEL = "synthetic"
FAST = {"finetune": {"epochs": 3, "lr": 0.003, "threads": 1, "exporter": "legacy"}}
OLD_ROWS, NEW_ROWS = 900, 600


@pytest.fixture(scope="module")
def new_data(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The series' next 600 hours. changed: the cycle is now 16 hours long (what the live
    model learned no longer holds); corrupted: the old behaviour, but the feed was resampled
    wrongly (16-hour cycles) for its first three quarters — the newest quarter, the judging
    period, is sound, and a version that learned the bad stretch forecasts it worse."""
    folder = tmp_path_factory.mktemp("new")
    start = START + np.timedelta64(OLD_ROWS, "h")
    changed = series_values(NEW_ROWS, seed=5, start=OLD_ROWS, period=16.0)
    corrupted = series_values(NEW_ROWS, seed=6, start=OLD_ROWS)
    cut = NEW_ROWS * 3 // 4  # a misconfigured resampler: 16-hour "days" until it was fixed
    corrupted[:cut] = series_values(cut, seed=6, start=OLD_ROWS, period=16.0)
    return {
        "changed": write_series(folder / "changed.csv", changed, start=start),
        "corrupted": write_series(folder / "corrupted.csv", corrupted, start=start),
    }


def _repo(package: Path, root: Path) -> Path:
    shutil.copytree(package, root / MODEL / "1")
    return root


def _decision(records: list[dict]) -> dict:
    return next(r for r in records if r["step"] == "decision")


@pytest.mark.slow
def test_changed_series_is_promoted_offline(
    series_package: Path, new_data: dict[str, Path], tmp_path: Path
) -> None:
    repo = _repo(series_package, tmp_path / "repo")
    request = MaintainRequest(
        repo, MODEL, str(new_data["changed"]), build_config(FAST, []), work_dir=tmp_path / "w"
    )
    result = run_maintain(request)
    assert result.outcome == "promoted", _decision(result.records)
    steps = {r["step"]: r for r in result.records}
    assessment = steps["check"]["assessment"]
    assert assessment["degraded"] and assessment["error"] > assessment["reference_error"]
    (measured,) = steps["compare"]["measurements"]
    assert measured["metric"] == "error" and measured["set"] == "new"
    assert measured["candidate_error"] < measured["live_error"] * 0.9
    assert steps["decision"]["checks"][0]["check"] == "gain:offline"
    union = Path(
        json.loads((repo / MODEL / "2" / "manifest.json").read_text())["lineage"]["data"]["source"]
    )
    assert union.suffix == ".csv" and len(union.read_text().splitlines()) == 1 + OLD_ROWS + NEW_ROWS
    assert run_cli("verify", str(repo / MODEL / "2")).returncode == 0


@pytest.mark.slow
def test_corrupted_feed_is_rolled_back_offline(
    series_package: Path, new_data: dict[str, Path], tmp_path: Path
) -> None:
    repo = _repo(series_package, tmp_path / "repo")
    config = build_config({**FAST, "detect": {"force": True}}, [])
    request = MaintainRequest(
        repo, MODEL, str(new_data["corrupted"]), config, work_dir=tmp_path / "w"
    )
    result = run_maintain(request)
    assert result.outcome == "rolled-back", _decision(result.records)
    decision = _decision(result.records)
    assert [c["check"] for c in decision["checks"] if not c["passed"]] == ["gain:offline"]
    assert "% lower, needed ≥ +1.00 %" in decision["reason"]
    assert not (repo / MODEL / "2").exists()  # moved out of the server's sight


def _stamp(hours: int) -> str:
    return str(START + np.timedelta64(hours, "h")).replace("T", " ")


@pytest.fixture(scope="module")
def early_package(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A forecaster trained on the first 700 hours of a 1,000-hour file, split by date: the
    file's last 300 hours come after its test period and were never its data."""
    from scaledl.pipeline import train_recipe
    from scaledl.recipe import validate_recipe

    root = tmp_path_factory.mktemp("early")
    csv = write_series(root / "series.csv", series_values(1000))
    ends = {"train_end": _stamp(500), "val_end": _stamp(600), "test_end": _stamp(700)}
    return train_recipe(validate_recipe(series_recipe(csv, **ends)), root / "run").package


@pytest.mark.slow
def test_new_rows_continue_the_series_from_the_end_of_its_test_period(
    early_package: Path, tmp_path: Path
) -> None:
    """New data that starts where the live version's test period ended is appended whole,
    even though the old file goes on (a split by date that leaves the rest unused): none of
    its rows is dropped, and the union holds no old row after the test period."""
    changed = series_values(NEW_ROWS, seed=5, start=700, period=16.0)
    feed = write_series(tmp_path / "feed.csv", changed, start=START + np.timedelta64(700, "h"))
    repo = _repo(early_package, tmp_path / "repo")
    request = MaintainRequest(
        repo, MODEL, str(feed), build_config(FAST, []), work_dir=tmp_path / "w"
    )
    result = run_maintain(request)
    data = next(r for r in result.records if r["step"] == "data")
    assert data["dropped_copies_of_test_rows"] == 0
    union = Path(data["union"]).with_suffix(".csv")
    lines = union.read_text().splitlines()
    assert len(lines) == 1 + 700 + NEW_ROWS
    assert lines[700].startswith(_stamp(699)) and lines[701].startswith(_stamp(700))
    assert float(lines[701].split(",")[1]) == pytest.approx(changed[0, 0], abs=1e-3)
    assert result.outcome == "promoted", _decision(result.records)


def test_new_rows_that_leave_a_gap_are_refused_naming_the_new_data(
    early_package: Path, tmp_path: Path
) -> None:
    from scaledl.errors import DataError

    later = START + np.timedelta64(750, "h")  # 50 hours after the test period's end
    feed = write_series(tmp_path / "late.csv", series_values(NEW_ROWS, seed=5, start=750), later)
    repo = _repo(early_package, tmp_path / "repo")
    request = MaintainRequest(repo, MODEL, str(feed), build_config(FAST, []), work_dir=tmp_path)
    with pytest.raises(DataError) as caught:
        run_maintain(request)
    assert caught.value.exit_code == 2
    assert caught.value.message == (
        f"--new-data {feed} starts at {_stamp(750)}, 50 step(s) after the live version's series "
        f"ends ({_stamp(699)}); give the rows in between: the new data must continue the series"
    )
    assert sorted(p.name for p in (repo / MODEL).iterdir()) == [".maintain", "1"]
    assert not list((repo / MODEL / ".maintain").glob("data/*"))


class SeriesTraffic(Traffic):
    """The request loop, with a look-back window as its input."""

    def infer_once(self, client: httpx.Client) -> tuple[int, str]:
        x = series_values(48)[None].astype(np.float32)
        body = {
            "inputs": [
                {
                    "name": "input",
                    "shape": list(x.shape),
                    "datatype": "FP32",
                    "data": x.ravel().tolist(),
                }
            ]
        }
        try:
            r = client.post(f"/v2/models/{self.model}/infer", json=body)
        except httpx.HTTPError as exc:
            return -1, type(exc).__name__
        version = r.json().get("model_version", "?") if r.status_code == 200 else r.text[:80]
        return r.status_code, str(version)


@pytest.mark.e2e
@pytest.mark.slow
def test_through_a_server_promote_then_roll_back_with_zero_failed_requests(
    series_package: Path, new_data: dict[str, Path], tmp_path: Path
) -> None:
    from scaledl.serve.keys import create_key

    repo = _repo(series_package, tmp_path / "repo")
    keys = tmp_path / "keys.json"
    infer, _ = create_key(keys, "infer", "t")
    admin, _ = create_key(keys, "admin", "t")
    proc = ServerProcess([str(repo), "--api-keys", str(keys), "--monitor"]).wait_ready()
    try:
        # the bad feed first (rolled back: version 2 is set aside, 1 keeps serving), then the
        # real change (version 3, promoted): both cover the same new hours
        for name, outcome, version in (
            ("corrupted", "rolled-back", "1"),
            ("changed", "promoted", "3"),
        ):
            with SeriesTraffic(proc.url, infer, model=MODEL) as traffic:
                result = run_cli(
                    "maintain", str(repo), "--model", MODEL, "--server", proc.url,
                    "--new-data", str(new_data[name]), "--log", str(tmp_path / "log.jsonl"),
                    "--out", str(tmp_path / f"work-{name}"), "--force",
                    "--set", "finetune.epochs=3", "--set", "finetune.lr=0.003",
                    "--set", "finetune.threads=1", "--set", "finetune.exporter=legacy",
                    env={"SCALEDL_API_KEY": admin}, timeout=600,
                )  # fmt: skip
            assert result.returncode == 0, result.stdout + result.stderr
            records = [r for r in read_log(tmp_path / "log.jsonl") if r["step"] == "done"]
            assert records[-1]["outcome"] == outcome
            assert traffic.failures() == 0, traffic.counts
            status = httpx.get(
                f"{proc.url}/v2/admin/models/{MODEL}", headers={"X-API-Key": admin}, timeout=30
            ).json()
            assert status["routing"]["primary"] == version
        served = [
            m for r in read_log(tmp_path / "log.jsonl") if r["step"] == "compare"
            for m in r["measurements"] if m["channel"] == "server"
        ]  # fmt: skip
        assert len(served) == 2 and all(m["metric"] == "error" for m in served)
    finally:
        proc.stop()
