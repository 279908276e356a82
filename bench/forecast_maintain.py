"""`scaledl maintain` on ETTh1 through a real server, with forecast requests running throughout.

    python bench/forecast_maintain.py [--family linear|dlinear] [--out runs/bench-forecast/maintain]

ETTh1's behaviour changes with the seasons and over the years (the loads' levels and the oil
temperature's cycle drift). A live forecaster (`examples/etth1-linear.yaml`: a linear map per
channel on instance-normalised windows, look-back 96, horizon 96) is trained on the first
eight months only: train 2016-07-01 … 2016-12-31, validation January 2017, test February 2017.
It is served by `scaledl serve` (a subprocess on 127.0.0.1, API keys, monitor on), and
`scaledl maintain --server` is run with the **recent** feed: every row from 2017-03-01 to the
end of the file (2018-06-26, 16 months). Maintain appends the feed to the series, retrains the
live weights on all the history before the feed's newest quarter (its newest period,
2018-02-26 … 2018-06-26, on which both versions are judged), then canaries the new version
(10 % of the traffic, a soak of real requests), measures both versions through the server and
promotes or rolls back. Two cases, each on a fresh repository and server:

- **recent**: the real feed; the retrained version must be promoted;
- **corrupted**: the same feed after a gateway fault — every reading stored twice, the clock
  advanced once per copy (a half-speed replay: stale values and a 48-hour "day") — from the
  start of the feed until one look-back before its newest period, which is sound; a version
  that learned the fault forecasts the real newest period worse and must be rolled back.

Throughout each `maintain` run a load generator sends V2 `/infer` forecast requests (one
look-back window of the recent feed each, model not pinned) and counts every answer that is
not an HTTP 200 (connection errors included) as failed. Errors are MSE on the live model's
standardised scale over every window of a period, and in original units (all 7 variables;
OT's MAE in °C), both versions scored offline in ONNX Runtime on the same windows: on the
newest period (held out from the retrain) and on the live model's old test period (February
2017, which the retrain learns from: in-sample for the new version, shown for reference).

Writes the "maintain" section of bench/results/forecast.json.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import REPO, write_section
from serve_load import free_port, wait_ready

ETTH1 = REPO.parent / "shared" / "datasets" / "etth1" / "ETTh1.csv"
MODEL = "etth1"
LIVE_PERIODS = {"train_end": "2017-01-01", "val_end": "2017-02-01", "test_end": "2017-03-01"}
RECENT_FROM = "2017-03-01"
LOOKBACK, HORIZON = 96, 96
SOAK_SECONDS = 15.0
EXPECTED = {"recent": "promoted", "corrupted": "rolled-back"}


def train_live(out: Path, family: str) -> Path:
    from scaledl.pipeline.train import train_recipe
    from scaledl.recipe import load_recipe

    overrides = [
        f"data.source={ETTH1}",
        f"data.series.lookback={LOOKBACK}",
        f"data.series.horizon={HORIZON}",
        *(f'data.series.{k}="{v}"' for k, v in LIVE_PERIODS.items()),
        "train.threads=1",
        "export.exporter=legacy",
        f"name={MODEL}",
    ]
    recipe = load_recipe(REPO / "examples" / f"etth1-{family}.yaml", overrides)
    return train_recipe(recipe, out / "live").package


def write_feeds(live: Path, out: Path) -> tuple[dict[str, Path], dict[str, Any]]:
    """The recent feed (real rows) and its corrupted copy, as CSV files in `out`."""
    from scaledl.config.maintain import SplitConfig
    from scaledl.maintain.datasets import load_new, load_old
    from scaledl.package import open_package

    lines = ETTH1.read_text().splitlines()
    header, rows = lines[0], [row for row in lines[1:] if row[:10] >= RECENT_FROM]
    feeds = {"recent": out / "recent.csv", "corrupted": out / "corrupted.csv"}
    feeds["recent"].write_text("\n".join([header, *rows]) + "\n")
    # the newest period as maintain splits the feed: the corruption stops one look-back before
    _, old_config = load_old(open_package(live), "regression")
    new = load_new(str(feeds["recent"]), old_config, SplitConfig(), "regression")
    newest = next(p for p in new.periods if p.name == "test")  # type: ignore[attr-defined]
    cut = newest.start - LOOKBACK
    stamps = [row.split(",", 1)[0] for row in rows]
    values = [row.split(",", 1)[1] for row in rows]
    corrupted = [f"{stamps[k]},{values[k // 2 if k < cut else k]}" for k in range(len(rows))]
    feeds["corrupted"].write_text("\n".join([header, *corrupted]) + "\n")
    about = {
        "recent_rows": len(rows),
        "recent_period": f"{stamps[0]} … {stamps[-1]}",
        "newest_period": f"{stamps[newest.start]} … {stamps[-1]}",
        "corrupted_rows": f"{stamps[0]} … {stamps[cut - 1]} ({cut} rows)",
    }
    return feeds, about


class Load:
    """Unpinned V2 forecast requests in a loop: (HTTP status, answering version) counts."""

    def __init__(self, url: str, key: str, windows: np.ndarray) -> None:
        self.url, self.key, self.windows = url, key, windows
        self.counts: Counter[tuple[int, str]] = Counter()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def _loop(self) -> None:
        import httpx

        headers = {"Authorization": f"Bearer {self.key}"}
        with httpx.Client(base_url=self.url, headers=headers, timeout=30) as client:
            i = 0
            while not self._stop.is_set():
                x = self.windows[i % len(self.windows)][None]
                i += 1
                body = {
                    "inputs": [
                        {"name": "input", "shape": list(x.shape), "datatype": "FP32",
                         "data": x.ravel().tolist()}
                    ]
                }  # fmt: skip
                try:
                    r = client.post(f"/v2/models/{MODEL}/infer", json=body)
                    ok = r.status_code == 200
                    self.counts[(r.status_code, r.json()["model_version"] if ok else "")] += 1
                except Exception as exc:  # a dropped connection, an unreadable answer: failed
                    self.counts[(-1, type(exc).__name__)] += 1
                self._stop.wait(0.02)

    def __enter__(self) -> Load:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(60)

    def summary(self) -> dict[str, Any]:
        failed = sum(n for (status, _), n in self.counts.items() if status != 200)
        by_version = Counter[str]()
        for (status, version), n in self.counts.items():
            if status == 200:
                by_version[version] += n
        return {
            "requests_sent": sum(self.counts.values()),
            "requests_failed": failed,
            "answered_by_version": dict(sorted(by_version.items())),
            "failures": {f"{s} {v}": n for (s, v), n in self.counts.items() if s != 200},
        }


def scored(pkg: Any, x: np.ndarray, y: np.ndarray, scale: Any, ot: int) -> dict[str, float]:
    from scaledl.evaluate import predict_raw
    from scaledl.metrics import regression_errors

    pred = np.asarray(predict_raw(pkg, x)).reshape(y.shape)
    errors = regression_errors(pred, y, scale)
    return {
        "mse_standardized": round(errors["mse_standardized"], 4),
        "mse": round(errors["mse"], 4),
        "ot_mae_celsius": round(float(np.abs(pred[..., ot] - y[..., ot]).mean()), 4),
    }


def newest(live: Path, feed: Path) -> Any:
    """The windows of the feed's newest period, as maintain splits it."""
    from scaledl.config.maintain import SplitConfig
    from scaledl.maintain.datasets import load_new, load_old
    from scaledl.package import open_package

    _, old_config = load_old(open_package(live), "regression")
    return load_new(str(feed), old_config, SplitConfig(), "regression").test


def errors(live_path: Path, candidate_path: Path, feed: Path) -> dict[str, Any]:
    """Both versions on every window of the newest period and of the old test period."""
    from scaledl.maintain.compare import error_scale
    from scaledl.maintain.datasets import load_old
    from scaledl.package import open_package

    live, candidate = open_package(live_path), open_package(candidate_path)
    old, _ = load_old(live, "regression")
    scale = error_scale(live)
    ot = old.table.columns.index("OT")  # type: ignore[attr-defined]
    out = {}
    for name, part in (("newest_period", newest(live_path, feed)), ("old_test_period", old.test)):
        x, y = np.asarray(part.x, np.float32), np.asarray(part.y, np.float64)
        live_err, cand_err = scored(live, x, y, scale, ot), scored(candidate, x, y, scale, ot)
        out[name] = {
            "windows": len(y),
            "live": live_err,
            "candidate": cand_err,
            "mse_reduction": round(
                1 - cand_err["mse_standardized"] / live_err["mse_standardized"], 4
            ),
        }
    out["old_test_period"]["note"] = "the new version trained on this period (in-sample for it)"
    return out


def serve(repo: Path, keys: Path, log: Path) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    cmd = [sys.executable, "-m", "scaledl", "serve", str(repo), "--api-keys", str(keys),
           "--port", str(port), "--monitor", "--log-level", "warning"]  # fmt: skip
    with open(log, "wb") as fh:
        proc = subprocess.Popen(cmd, stdout=fh, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    wait_ready(f"{url}/v2/health/ready", proc, timeout=180)
    return proc, url


def run_case(name: str, live: Path, feed: Path, work: Path) -> dict[str, Any]:
    import httpx

    from scaledl.serve.keys import create_key

    case = work / name
    shutil.rmtree(case, ignore_errors=True)
    (case / "repo" / MODEL).mkdir(parents=True)
    shutil.copytree(live, case / "repo" / MODEL / "1")
    infer_key, _ = create_key(case / "keys.json", "infer", "load")
    admin_key, _ = create_key(case / "keys.json", "admin", "maintain")
    windows = np.asarray(newest(live, feed).x[::24])  # one request window a day, cycled
    proc, url = serve(case / "repo", case / "keys.json", case / "server.log")
    cmd = [sys.executable, "-m", "scaledl", "maintain", str(case / "repo"), "--model", MODEL,
           "--server", url, "--new-data", str(feed), "--soak-seconds", str(SOAK_SECONDS),
           "--out", str(case / "work"), "--json", str(case / "result.json"),
           "--set", "finetune.threads=1"]  # fmt: skip
    env = {**os.environ, "SCALEDL_API_KEY": admin_key}
    try:
        with Load(url, infer_key, windows) as load:
            started = time.perf_counter()
            done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=3600)
            seconds = time.perf_counter() - started
            time.sleep(2.0)  # the load keeps going after the decision: still no failures
        status = httpx.get(
            f"{url}/v2/admin/models/{MODEL}", headers={"X-API-Key": admin_key}, timeout=30
        ).json()
    finally:
        proc.terminate()
        proc.wait(60)
    if done.returncode != 0:
        raise RuntimeError(f"maintain ({name}) exited {done.returncode}:\n{done.stderr[-3000:]}")
    return summarize(name, json.loads((case / "result.json").read_text()), live, feed, case) | {
        "maintain_seconds": round(seconds, 1),
        "serving_after": status["routing"]["primary"],
        "load": load.summary(),
        "command": " ".join(["scaledl", *cmd[3:]]).replace(str(case) + "/", ""),
    }


def summarize(
    name: str, result: dict[str, Any], live: Path, feed: Path, case: Path
) -> dict[str, Any]:
    steps = {r["step"]: r for r in result["records"]}
    version = str(result["new_version"])
    where = steps.get("rolled-back", {}).get("moved_to") or str(case / "repo" / MODEL / version)
    check, finetune = steps["check"], steps["finetune"]
    return {
        "outcome": result["outcome"],
        "expected": EXPECTED[name],
        "as_expected": result["outcome"] == EXPECTED[name],
        "decision": {k: steps["decision"][k] for k in ("action", "reason")},
        "measured_by_maintain": steps["compare"]["measurements"],
        "canary": {k: steps["rollout"].get(k) for k in ("policy", "canary_weight")},
        "check": {
            k: check["assessment"][k] for k in ("degraded", "reasons", "error", "reference_error")
        },
        "finetune": {
            k: finetune.get(k) for k in ("best_epoch", "epochs_run", "seconds", "val_error")
        },
        "union_rows": steps["data"]["rows"],
        "errors": errors(live, Path(where), feed),
        "step_seconds": {r["step"]: r.get("seconds") for r in result["records"] if "seconds" in r},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=Path("runs/bench-forecast/maintain"))
    parser.add_argument(
        "--family", default="linear", choices=["linear", "dlinear"], help="the live recipe"
    )
    parser.add_argument("--cases", default="recent,corrupted", help="comma-separated cases")
    args = parser.parse_args()
    load_before = os.getloadavg()
    started = time.perf_counter()
    args.out.mkdir(parents=True, exist_ok=True)
    live = train_live(args.out, args.family)
    feeds, about = write_feeds(live, args.out)
    cases = {name: run_case(name, live, feeds[name], args.out) for name in args.cases.split(",")}
    live_metrics = json.loads((live / "manifest.json").read_text())["metrics"]
    section: dict[str, Any] = {
        "command": "python " + " ".join(sys.argv),
        "protocol": " ".join(__doc__.split("\n\n")[2:5]).replace("\n", " "),
        "live": {
            "recipe": f"examples/etth1-{args.family}.yaml",
            "lookback": LOOKBACK,
            "horizon": HORIZON,
            "periods": LIVE_PERIODS,
            "test_mse_standardized": round(live_metrics["mse_standardized"], 4),
            "train_seconds": live_metrics.get("train_seconds"),
            "exporter": "legacy (the retrain exports with its parent's)",
        },
        "data": {**about, "corruption": "every reading stored twice, the clock advanced once "
                 "per copy (half-speed replay), until one look-back before the newest period"},
        "cases": cases,
        "target": "recent promoted, corrupted rolled back, 0 failed requests in both",
        "target_met": all(c["as_expected"] and c["load"]["requests_failed"] == 0
                          for c in cases.values()),
        "seconds": round(time.perf_counter() - started, 1),
        "machine_load": {
            "loadavg_before": [round(v, 2) for v in load_before],
            "loadavg_after": [round(v, 2) for v in os.getloadavg()],
        },
    }  # fmt: skip
    write_section("forecast", "maintain", section)
    print(
        json.dumps(
            {
                n: {k: c[k] for k in ("outcome", "maintain_seconds")}
                | {
                    "failed": c["load"]["requests_failed"],
                    "sent": c["load"]["requests_sent"],
                    "newest": c["errors"]["newest_period"]["mse_reduction"],
                }
                for n, c in cases.items()
            }
        )
    )


if __name__ == "__main__":
    main()
