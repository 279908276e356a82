"""Speech benchmark on the Free Spoken Digit Dataset (FSDD), side by side in one run:

    python bench/speech.py [--only accuracy,robustness,optimize,serve,drift] [--quick]

- accuracy: `examples/fsdd-cnn.yaml` trained with scaledl (test accuracy, training time) beside a
  classic baseline, MFCC features + a scikit-learn SVM, on the same clips and split;
- robustness: test accuracy with white noise at 20, 10 and 5 dB SNR, for the recipe as it is
  and with noise augmentation in training (the same recipe plus a noise/gain/shift policy);
- optimize: `scaledl optimize` on the trained package; batch-1 ONNX Runtime latency (one thread,
  a 1-second clip, the front-end included) of the parent and of the chosen package, and their
  test accuracies;
- serve: p50 latency of `POST /predict` with a WAV upload (wrk, one connection) beside the
  in-process ONNX Runtime loop on the same graph: the added latency;
- drift: false-alarm rate of the monitor's tests on clean windows of 50–500 clips, and the
  detection rate at 200 clips for noise at 10 dB SNR, a +12 dB gain and a telephone band
  (300–3400 Hz), with a model, profile and stream pool on disjoint rows.

Results: bench/results/speech.json (kept per section when `--only` runs a part).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import REPO, RESULTS, write_results

FSDD = REPO.parent / "shared" / "datasets" / "fsdd"
RECIPE = REPO / "examples" / "fsdd-cnn.yaml"
WORK = REPO / ".cache" / "bench-speech"
NOISE_RECIPE = REPO / "examples" / "fsdd-cnn-noise.yaml"  # the same recipe + a noise policy
SNRS = (20, 10, 5)
TRAIN_CPU_SECONDS: dict[str, float] = {}  # training runs of this process: user + system CPU
REUSE_SEARCH = False  # --reuse-search: measure the last `scaledl optimize` output again


def recipe(path: Path = RECIPE, **changes: Any) -> Any:
    import yaml

    from scaledl.recipe import validate_recipe

    doc = yaml.safe_load(path.read_text())
    doc["data"]["source"] = str(FSDD)
    for key, value in changes.items():
        section, _, name = key.partition(".")
        doc.setdefault(section, {})[name] = value
    return validate_recipe(doc)


def train(name: str, rec: Any) -> Path:
    """Train once; a later run with the same recipe reuses the package."""
    from scaledl.package import open_package
    from scaledl.pipeline.train import train_recipe

    package = WORK / name / "package"
    if package.exists() and open_package(package).manifest.lineage.recipe_hash == rec.digest():
        return package
    shutil.rmtree(WORK / name, ignore_errors=True)
    before = resource.getrusage(resource.RUSAGE_SELF)
    out = train_recipe(rec, WORK / name).package
    after = resource.getrusage(resource.RUSAGE_SELF)
    # CPU time does not grow with other processes' load the way wall-clock time does
    TRAIN_CPU_SECONDS[name] = round(
        (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime), 1
    )
    return out


def splits() -> Any:
    from scaledl.modalities import load_splits

    rec = recipe()
    return load_splits(rec.data, seed=rec.seed)


def predict(package: Path, x: np.ndarray, threads: int = 2) -> np.ndarray:
    from scaledl.evaluate import run_session
    from scaledl.export.runtime import create_session
    from scaledl.package import open_package

    session = create_session(open_package(package).onnx_path, threads=threads)
    return run_session(session, np.ascontiguousarray(x, dtype=np.float32))


def accuracy(package: Path, x: np.ndarray, y: np.ndarray) -> float:
    return float((predict(package, x).argmax(axis=1) == y).mean())


def add_noise(x: np.ndarray, snr_db: float, seed: int = 0) -> np.ndarray:
    """White noise at `snr_db` against each clip's recorded part (its zero padding excluded)."""
    power = (x.astype(np.float64) ** 2).sum(1) / np.maximum((x != 0).sum(1), 1)
    sigma = np.sqrt(power / 10 ** (snr_db / 10))[:, None]
    noise = np.random.default_rng(seed).normal(size=x.shape) * sigma
    return np.clip(x + noise, -1, 1).astype(np.float32)


# ---- accuracy ------------------------------------------------------------------------------
def mfcc_features(x: np.ndarray, rate: int) -> np.ndarray:
    """20 MFCCs and their deltas per 25 ms frame, pooled: mean and std over the clip and the
    mean over 5 equal time segments (a fixed-length vector per clip)."""
    import librosa

    rows = []
    for clip in x:
        m = librosa.feature.mfcc(
            y=clip, sr=rate, n_mfcc=20, n_fft=256, win_length=200, hop_length=80
        )
        d = librosa.feature.delta(m)
        both = np.concatenate([m, d])
        segments = np.array_split(np.arange(both.shape[1]), 5)
        seg = np.concatenate([both[:, s].mean(axis=1) for s in segments])
        rows.append(np.concatenate([both.mean(axis=1), both.std(axis=1), seg]))
    return np.asarray(rows, dtype=np.float32)


def bench_accuracy(quick: bool) -> dict[str, Any]:
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    from sklearn.svm import SVC

    from scaledl.package import open_package

    s = splits()
    t0 = time.perf_counter()
    package = train("fsdd-cnn", recipe())
    metrics = open_package(package).manifest.metrics
    wall = time.perf_counter() - t0
    t0 = time.perf_counter()
    rate = 8000
    train_x = np.concatenate([s.train.x, s.val.x])
    train_y = np.concatenate([s.train.y, s.val.y])
    clf = make_pipeline(StandardScaler(), SVC(C=10.0, gamma="scale"))
    clf.fit(mfcc_features(train_x, rate), train_y)
    baseline = float(clf.score(mfcc_features(s.test.x, rate), s.test.y))
    baseline_s = time.perf_counter() - t0
    return {
        "test_clips": len(s.test),
        "scaledl": {
            "recipe": str(RECIPE.relative_to(REPO)),
            "test_accuracy": metrics.accuracy,
            "train_seconds": metrics.train_seconds,
            "epochs": metrics.epochs_run,
            "wall_seconds_incl_packaging": round(wall, 1) if wall > 5 else None,
            "process_cpu_seconds": TRAIN_CPU_SECONDS.get("fsdd-cnn"),
            "package": str(package),
        },
        "mfcc_svm_baseline": {
            "features": "20 MFCC + deltas (librosa), mean/std + 5 segment means",
            "classifier": "StandardScaler + SVC(rbf, C=10), trained on train+val",
            "test_accuracy": round(baseline, 4),
            "seconds": round(baseline_s, 1),
        },
        "targets": {"test_accuracy": ">= 0.98", "train_seconds": "<= 300 on 2 cores"},
    }


# ---- robustness ----------------------------------------------------------------------------
def bench_robustness(quick: bool) -> dict[str, Any]:
    s = splits()
    plain = train("fsdd-cnn", recipe())
    augmented = train("fsdd-cnn-noise", recipe(NOISE_RECIPE))
    rows = []
    for snr in (None, *SNRS):
        x = s.test.x if snr is None else add_noise(s.test.x, snr, seed=1)
        a, b = accuracy(plain, x, s.test.y), accuracy(augmented, x, s.test.y)
        rows.append(
            {
                "snr_db": snr if snr is not None else "clean",
                "without_noise_augmentation": round(a, 4),
                "with_noise_augmentation": round(b, 4),
                "gain_points": round(100 * (b - a), 1),
            }
        )
    return {
        "noise": "white Gaussian, SNR vs each clip's recorded part",
        "augmented_recipe": str(NOISE_RECIPE.relative_to(REPO)),
        "rows": rows,
    }


# ---- optimize ------------------------------------------------------------------------------
def latency_ms(package: Path, rounds: int = 7, runs: int = 300) -> float:
    """Median over rounds of the median batch-1 latency, one thread, a 1-second clip."""
    from scaledl.export.runtime import create_session
    from scaledl.package import open_package

    pkg = open_package(package)
    session = create_session(pkg.onnx_path, threads=1)
    name = pkg.manifest.signature.inputs[0].name
    samples = pkg.manifest.signature.inputs[0].shape[1]
    x = add_noise(np.zeros((1, samples), np.float32) + 1e-3, 20)
    for _ in range(30):
        session.run(None, {name: x})
    medians = []
    for _ in range(rounds):
        times = []
        for _ in range(runs):
            t = time.perf_counter()
            session.run(None, {name: x})
            times.append(time.perf_counter() - t)
        medians.append(float(np.median(times)) * 1000)
    return float(np.median(medians))


def bench_optimize(quick: bool) -> dict[str, Any]:
    s = splits()
    parent = train("fsdd-cnn", recipe())
    out = WORK / "optimized"
    budget = "8" if quick else "40"
    cmd = [
        sys.executable,
        "-m",
        "scaledl",
        "optimize",
        str(parent),
        "--out",
        str(out),
        "--time-budget-min",
        budget,
        "--max-accuracy-drop",
        "0.01",
        "--methods",
        "frontend,prune,distill,int8-static",
    ]
    if not (REUSE_SEARCH and _chosen(out) is not None):
        shutil.rmtree(out, ignore_errors=True)
        run = subprocess.run(cmd, capture_output=True, text=True, cwd=REPO, check=False)
        if _chosen(out) is None:
            return {"error": run.stdout[-2000:] + run.stderr[-2000:]}
    return {"command": " ".join(cmd[1:]), **measure_optimized(parent, out, s)}


def measure_optimized(parent: Path, out: Path, s: Any) -> dict[str, Any]:
    """Latency (interleaved rounds) and test accuracy of the parent and the chosen package."""
    from scaledl.package import open_package

    chosen = _chosen(out)
    assert chosen is not None
    lat: dict[str, list[float]] = {"parent": [], "chosen": []}
    for _ in range(3):  # interleaved, so load changes hit both alike
        lat["parent"].append(latency_ms(parent))
        lat["chosen"].append(latency_ms(chosen))
    p, c = float(np.median(lat["parent"])), float(np.median(lat["chosen"]))
    pa, ca = accuracy(parent, s.test.x, s.test.y), accuracy(chosen, s.test.x, s.test.y)
    frontier = json.loads((out / "frontier.json").read_text())
    return {
        "search_seconds": frontier["seconds"],
        "candidates": len(frontier["candidates"]),
        "chosen": str(chosen.relative_to(out)),
        "transforms": open_package(chosen).manifest.lineage.transforms,
        "parent_ms_batch1": round(p, 4),
        "chosen_ms_batch1": round(c, 4),
        "rounds_ms": {k: [round(v, 4) for v in vals] for k, vals in lat.items()},
        "speedup": round(p / c, 2),
        "parent_test_accuracy": round(pa, 4),
        "chosen_test_accuracy": round(ca, 4),
        "test_drop_points": round(100 * (pa - ca), 2),
        "targets": {"speedup": ">= 3", "test_drop_points": "<= 1"},
    }


def _chosen(out: Path) -> Path | None:
    """The package the search chose (or its best effort when none met every constraint)."""
    frontier = out / "frontier.json"
    if not frontier.exists():
        return None
    doc = json.loads(frontier.read_text())
    for key in ("chosen_package", "best_effort_package"):
        if doc.get(key) and (out / doc[key]).exists():  # relative to the output folder
            return out / doc[key]
    return None


# ---- serve ---------------------------------------------------------------------------------
def bench_serve(quick: bool) -> dict[str, Any]:
    from scaledl.data.audio_io import encode_wav
    from serve_load import free_port, wait_ready, wrk

    s = splits()
    package = train("fsdd-cnn", recipe())
    seconds = 5.0 if quick else 15.0
    with tempfile.TemporaryDirectory(prefix="bench-speech-") as tmp:
        work = Path(tmp)
        shutil.copytree(package, work / "repo" / "digits" / "1")
        body = work / "clip.wav"
        body.write_bytes(encode_wav(s.test.x[0], 8000))
        port = free_port()
        cmd = [
            sys.executable,
            "-m",
            "scaledl",
            "serve",
            str(work / "repo"),
            "--no-auth",
            "--threads",
            "1",
            "--port",
            str(port),
            "--log-level",
            "warning",
        ]
        proc = subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.DEVNULL)
        try:
            url = f"http://127.0.0.1:{port}"
            wait_ready(url + "/v2/health/ready", proc)
            runs = {"wav": [], "inprocess": []}
            for _ in range(3):
                stats = wrk(
                    f"{url}/v2/models/digits/predict",
                    body,
                    {"Content-Type": "audio/wav"},
                    1,
                    seconds,
                    work,
                )
                runs["wav"].append(stats["p50_us"] / 1000)
                inproc = subprocess.run(
                    [
                        sys.executable,
                        str(Path(__file__).parent / "serve_load.py"),
                        str(package),
                        "1",
                        str(seconds),
                    ],
                    capture_output=True,
                    text=True,
                    check=True,
                )
                runs["inprocess"].append(
                    json.loads(inproc.stdout.splitlines()[-1])["p50_us"] / 1000
                )
        finally:
            proc.terminate()
            proc.wait(60)
    wav, inproc_ms = float(np.median(runs["wav"])), float(np.median(runs["inprocess"]))
    return {
        "clip": "1 s, 8 kHz, 16-bit mono WAV (16 KB)",
        "predict_wav_p50_ms_c1": round(wav, 3),
        "inprocess_ort_p50_ms": round(inproc_ms, 3),
        "added_p50_ms": round(wav - inproc_ms, 3),
        "rounds": {k: [round(v, 3) for v in vals] for k, vals in runs.items()},
        "target": {"added_p50_ms": "<= 1"},
    }


# ---- drift ---------------------------------------------------------------------------------
def telephone(x: np.ndarray) -> np.ndarray:
    from scipy.signal import butter, sosfilt

    sos = butter(4, [300, 3400], btype="bandpass", fs=8000, output="sos")
    return np.asarray(sosfilt(sos, x, axis=1), dtype=np.float32)


SHIFTS = {
    "noise_10db": lambda x: add_noise(x, 10, seed=7),
    "gain_plus_12db": lambda x: np.clip(x * 10 ** (12 / 20), -1, 1).astype(np.float32),
    "telephone_band": telephone,
}


def drift_setup() -> tuple[Any, Any, np.ndarray, np.ndarray, Path]:
    """All 2,500 clips in four disjoint parts: model training (30%), its validation (10%), the
    profile's output reference (a third of the rest) and the clean stream pool (the rest)."""
    from scaledl.data import DataConfig
    from scaledl.data.dataset import stratified_split
    from scaledl.modalities import load_data
    from scaledl.monitor.profile import ProfileOptions, build_profile
    from scaledl.monitor.reference import input_feature_names, input_features
    from scaledl.package import open_package

    rec = recipe()
    loaded = load_data(DataConfig.model_validate(rec.data.model_dump()))
    assert loaded.test is not None
    x = np.concatenate([loaded.data.x, loaded.test.x])
    y = np.concatenate([loaded.data.y, loaded.test.y])
    model_idx, ref_idx, pool_idx = stratified_split(y, (0.4, 0.2), seed=0)
    cache = WORK / "drift.npz"
    np.savez(cache, x=x[model_idx], y=y[model_idx], labels=np.array(loaded.labels))
    drift_recipe = recipe(
        **{
            "data.source": str(cache),
            "data.kind": "audio",
            "data.val_fraction": 0.25,
            "data.test_fraction": 0.01,
        }
    )
    package = train("drift-model", drift_recipe)
    spec = open_package(package).preprocessing
    # PCA on one random half of the model's rows, the input reference from the other half
    # (the split's indices are sorted, i.e. grouped by class: never cut them in order)
    features = input_features(spec, x[np.random.default_rng(0).permutation(model_idx)])
    half = len(features) // 2
    profile = build_profile(
        features[:half],
        features[half:],
        x[ref_idx],
        lambda batch: predict(package, batch),
        kind="audio",
        heldout_y=y[ref_idx],
        options=ProfileOptions(seed=0),
        feature_names=input_feature_names(spec),
    )
    return profile, spec, x[pool_idx], y[pool_idx], package


def wilson(hits: int, n: int) -> list[float]:
    z, p = 1.96, hits / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return [round(max(0.0, centre - half), 4), round(min(1.0, centre + half), 4)]


def bench_drift(quick: bool) -> dict[str, Any]:
    from scaledl.monitor.config import DriftConfig
    from scaledl.monitor.drift import Window, detect_drift
    from scaledl.monitor.reference import input_features

    profile, spec, pool_x, pool_y, package = drift_setup()
    config = DriftConfig()
    trials = 60 if quick else 300

    def pool(x: np.ndarray) -> Window:
        return Window.from_batch(profile, input_features(spec, x), predict(package, x))

    def rate(window: Window, size: int, seed: int) -> dict[str, Any]:
        rng = np.random.default_rng(seed)
        hits = 0
        for _ in range(trials):
            idx = rng.choice(len(window), size, replace=False)
            sub = Window(
                window.features[idx],
                predicted=window.predicted[idx],  # type: ignore[index]
                score=window.score[idx],
            )  # type: ignore[index]
            hits += detect_drift(profile, sub, config).drift
        return {
            "window": size,
            "trials": trials,
            "rate": round(hits / trials, 4),
            "ci95": wilson(hits, trials),
        }

    clean = pool(pool_x)
    false_alarms = [rate(clean, n, seed=n) for n in (50, 100, 200, 500) if n <= len(pool_x) // 2]
    detection = {}
    for name, shift in SHIFTS.items():
        shifted = shift(pool_x)
        detection[name] = {
            **rate(pool(shifted), 200, seed=1),
            "model_accuracy": round(accuracy(package, shifted, pool_y), 4),
        }
    return {
        "alpha": config.alpha,
        "stream_pool_clips": len(pool_x),
        "model_accuracy_on_clean_pool": round(accuracy(package, pool_x, pool_y), 4),
        "false_alarms": false_alarms,
        "detection_at_200": detection,
        "targets": {"false_alarm_rate": "0.05 ± 0.015", "detection_at_200": ">= 0.90"},
    }


SECTIONS = {
    "accuracy": bench_accuracy,
    "robustness": bench_robustness,
    "optimize": bench_optimize,
    "serve": bench_serve,
    "drift": bench_drift,
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", default=",".join(SECTIONS), help="comma-separated sections")
    parser.add_argument("--quick", action="store_true", help="shorter runs (a smoke test)")
    parser.add_argument(
        "--reuse-search", action="store_true", help="optimize: measure the last search's output"
    )
    args = parser.parse_args()
    global REUSE_SEARCH
    REUSE_SEARCH = args.reuse_search
    os.environ.setdefault("SCALEDL_CACHE_DIR", str(WORK / "cache"))
    WORK.mkdir(parents=True, exist_ok=True)
    done: dict[str, Any] = {}
    for name in args.only.split(","):
        load = [round(v, 2) for v in os.getloadavg()]
        t0 = time.perf_counter()
        body = SECTIONS[name](args.quick)
        uptime = subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()
        done[name] = {
            **body,
            "section_seconds": round(time.perf_counter() - t0),
            "machine_load": {"loadavg_at_start": load, "uptime_at_end": uptime},
            "quick": args.quick,
        }
        print(name, json.dumps(done[name], indent=1, default=str), flush=True)
    # Sections may run in separate processes: merge into what is there at the end.
    previous = RESULTS / "speech.json"
    results = json.loads(previous.read_text()).get("results", {}) if previous.exists() else {}
    write_results(
        "speech",
        {
            "command": "python bench/speech.py  (sections may be run apart with --only)",
            "cores": os.cpu_count(),
            "results": {**results, **done},
        },
    )


if __name__ == "__main__":
    main()
