"""End to end: the real CLI against a real server subprocess on 127.0.0.1 (random port).

(a) shifted digits the live model gets wrong → drift and an accuracy drop → fine-tuned on old +
    new → canary → promoted; the server then answers with the new version by default.
(b) a harmful update (labels rotated) → fine-tuned → canary → measured worse on the old test
    rows → rolled back; the server answers with the old version, zero failed requests.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import httpx
import pytest

from scaledl.maintain.log import read_log
from tests.conftest import run_cli
from tests.maintain.conftest import FAST, Traffic
from tests.serve.helpers import ServerProcess
from tests.waiting import wait_until

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


def run_maintain(repo: Path, url: str, key: str, tmp: Path, *args: str) -> tuple[int, str]:
    result = run_cli(
        "maintain",
        str(repo),
        "--model",
        "digits",
        "--server",
        url,
        "--log",
        str(tmp / "log.jsonl"),
        "--out",
        str(tmp / "work"),
        "--json",
        str(tmp / "result.json"),
        *FAST,
        *args,
        env={"SCALEDL_API_KEY": key},
        timeout=600,
    )
    return result.returncode, result.stdout + result.stderr


def admin_status(url: str, key: str) -> dict:
    r = httpx.get(f"{url}/v2/admin/models/digits", headers={"X-API-Key": key}, timeout=30)
    r.raise_for_status()
    return dict(r.json())


def by_step(records: list[dict]) -> dict[str, dict]:
    return {r["step"]: r for r in records}


def test_shifted_data_is_learned_and_promoted(
    repo: Path, serve: ServerProcess, keys: dict[str, str], new_data: dict[str, Path], tmp_path
) -> None:
    with Traffic(serve.url, keys["infer"]) as traffic:
        code, out = run_maintain(
            repo, serve.url, keys["admin"], tmp_path, "--new-data", str(new_data["shifted"])
        )
    assert code == 0, out
    assert "promoted version 2" in " ".join(out.split())
    records = read_log(tmp_path / "log.jsonl")
    assert [r["step"] for r in records] == [
        "start", "check", "data", "finetune", "optimize", "publish",
        "rollout", "compare", "decision", "promoted", "done",
    ]  # fmt: skip
    steps = by_step(records)
    check = steps["check"]["assessment"]
    assert check["degraded"] and check["drift"]["drift"]
    assert check["accuracy"] < check["reference_accuracy"] - 0.3
    assert {t["name"] for t in check["drift"]["tests"]} >= {"ks_pca", "mmd"}
    assert steps["check"]["server_monitor"] is not None  # the server runs --monitor
    assert steps["optimize"] == {**steps["optimize"], "ran": False}
    assert steps["rollout"]["policy"] == "canary" and steps["rollout"]["routing"]["canary"] == "2"

    measured = {(m["set"], m["channel"]): m for m in steps["compare"]["measurements"]}
    assert set(measured) == {(s, c) for s in ("new", "reference") for c in ("offline", "server")}
    for s in ("new", "reference"):  # the server runs the same graphs on the same rows
        for k in ("live_accuracy", "candidate_accuracy"):
            assert measured[s, "server"][k] == pytest.approx(measured[s, "offline"][k], abs=0.01)
    assert measured["new", "offline"]["delta"] > 0.1
    assert steps["compare"]["failures"] == 0
    assert steps["decision"]["action"] == "promote"

    manifest = json.loads((repo / "digits" / "2" / "manifest.json").read_text())
    lineage = manifest["lineage"]
    assert manifest["version"] == "2" and lineage["parent_version"] == "1"
    assert Path(lineage["parent"]) == (repo / "digits" / "1").resolve()
    assert Path(lineage["data"]["source"]).is_file()  # old + new, as trained on
    assert run_cli("verify", str(repo / "digits" / "2")).returncode == 0

    assert admin_status(serve.url, keys["admin"])["routing"]["primary"] == "2"
    with httpx.Client(
        base_url=serve.url, headers={"Authorization": f"Bearer {keys['infer']}"}, timeout=30
    ) as client:
        assert traffic.infer_once(client) == (200, "2")  # the new version answers by default
    assert traffic.failures() == 0, traffic.counts
    assert json.loads((tmp_path / "result.json").read_text())["outcome"] == "promoted"


def test_harmful_update_is_rolled_back(
    repo: Path, serve: ServerProcess, keys: dict[str, str], new_data: dict[str, Path], tmp_path
) -> None:
    with Traffic(serve.url, keys["infer"]) as traffic:
        code, out = run_maintain(
            repo,
            serve.url,
            keys["admin"],
            tmp_path,
            "--new-data",
            str(new_data["permuted"]),
            "--canary-weight",
            "0.5",
        )
        after = traffic.counts.copy()
    assert code == 0, out
    assert "rolled back version 2" in " ".join(out.split())
    steps = by_step(read_log(tmp_path / "log.jsonl"))
    assert steps["check"]["decision"]["retrain"]  # the accuracy drop triggered it
    decision = steps["decision"]
    assert decision["action"] == "rollback"
    failed = {c["check"] for c in decision["checks"] if not c["passed"]}
    assert "regression:offline" in failed and "regression:server" in failed
    assert steps["rolled-back"]["new_version_state"] in ("UNLOADED", "ABSENT")

    # Out of the server's sight: only version 1 remains in the repository.
    assert sorted(p.name for p in (repo / "digits").iterdir()) == [".maintain", "1"]
    assert (repo / "digits" / ".maintain" / "rejected" / "2" / "manifest.json").is_file()
    routing = admin_status(serve.url, keys["admin"])["routing"]
    assert routing["primary"] == "1" and routing["canary"] is None
    with httpx.Client(
        base_url=serve.url, headers={"Authorization": f"Bearer {keys['infer']}"}, timeout=30
    ) as client:
        assert traffic.infer_once(client) == (200, "1")
    assert sum(after.values()) > 0
    assert traffic.failures() == 0, traffic.counts


@pytest.mark.parametrize("case", ["wrong key", "rollout in progress"])
def test_server_refusals_are_usage_errors(
    repo: Path,
    serve: ServerProcess,
    keys: dict[str, str],
    new_data: dict[str, Path],
    tmp_path: Path,
    case: str,
) -> None:
    if case == "wrong key":
        key, expected = keys["infer"], "HTTP 403"
    else:
        shutil.copytree(repo / "digits" / "1", repo / "digits" / "2")
        r = httpx.post(
            f"{serve.url}/v2/admin/models/digits/canary",
            json={"version": "2", "weight": 0.1},
            headers={"X-API-Key": keys["admin"]},
            timeout=60,
        )
        assert r.status_code == 200, r.text
        key, expected = keys["admin"], "already has a canary 2 on the server"
    code, out = run_maintain(repo, serve.url, key, tmp_path, "--new-data", str(new_data["shifted"]))
    assert code == 2, out
    assert expected in " ".join(out.split())
    assert not (tmp_path / "log.jsonl").exists()


def test_shadow_policy_sees_traffic_and_ends_with_one_route(
    repo: Path, serve: ServerProcess, keys: dict[str, str], new_data: dict[str, Path], tmp_path
) -> None:
    with Traffic(serve.url, keys["infer"]) as traffic:
        code, out = run_maintain(
            repo,
            serve.url,
            keys["admin"],
            tmp_path,
            "--new-data",
            str(new_data["shifted_small"]),
            "--policy",
            "shadow",
            "--soak-seconds",
            "2",
            "--set",
            "finetune.epochs=1",
        )
    assert code == 0, out
    steps = by_step(read_log(tmp_path / "log.jsonl"))
    assert steps["rollout"]["policy"] == "shadow" and steps["rollout"]["routing"]["shadow"] == "2"
    assert steps["rollout"]["canary_weight"] is None
    shadow = steps["compare"]["shadow"]
    assert shadow["version"] == "2" and shadow["compared"] > 0  # copies of the live traffic
    routing = admin_status(serve.url, keys["admin"])["routing"]
    assert routing["shadow"] is None and routing["canary"] is None
    expected = "2" if steps["done"]["outcome"] == "promoted" else "1"
    assert routing["primary"] == expected == steps["done"]["serving"]
    assert traffic.failures() == 0, traffic.counts


def test_losing_the_server_mid_rollout_exits_1_and_says_what_to_do(
    repo: Path, serve: ServerProcess, keys: dict[str, str], new_data: dict[str, Path], tmp_path
) -> None:
    import os
    import subprocess
    import sys

    from tests.conftest import REPO

    log = tmp_path / "log.jsonl"
    args = ["--server", serve.url, "--log", str(log), "--out", str(tmp_path / "work")]
    args += ["--new-data", str(new_data["shifted_small"]), "--soak-seconds", "6", *FAST]
    args += ["--set", "finetune.epochs=1"]
    proc = subprocess.Popen(
        [sys.executable, "-m", "scaledl", "maintain", str(repo), "-m", "digits", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "SCALEDL_API_KEY": keys["admin"]},
        cwd=REPO,
    )
    wait_until(
        lambda: (
            proc.poll() is not None or (log.exists() and '"step": "rollout"' in log.read_text())
        ),
        timeout=300,
        interval=0.1,
        what="the rollout to start",
    )
    serve.stop()  # the server goes away while the canary soaks
    out, _ = proc.communicate(timeout=300)
    assert proc.returncode == 1, out
    assert "cannot reach the server" in " ".join(out.split())
    steps = by_step(read_log(log))
    assert "cannot reach the server" in steps["aborted"]["error"]
    assert "scaledl models canary digits --clear" in steps["rollback-failed"]["todo"]
    assert (repo / "digits" / "2" / "manifest.json").is_file()  # left for the user to decide
