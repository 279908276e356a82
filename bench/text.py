"""Text benchmark on SST-2: scaledl side by side with TF-IDF + logistic regression and Ludwig,
then the optimized package, serving raw text and drift detection.

    python bench/text.py [--only train,tfidf,ludwig,ensemble,optimize,serve,drift]
                         [--threads 2] [--budget-min 10] [--recipes best,fast] [--use best]
                         [--ensemble gru,gru@1,best]
                         [--out bench/results/text.json]

- train: `scaledl train examples/sst2-best.yaml` and sst2-fast.yaml (`--recipes`): dev accuracy
  (SST-2's dev.tsv is the test split), training seconds, with `train.threads` cores; the
  optimize, serve and drift sections use the package of `--use`;
- tfidf: scikit-learn TF-IDF (word 1–2-grams) + logistic regression on the same training rows;
- ludwig: Ludwig's default text configuration in its own venv (bench/text_ludwig.py), the same
  rows and time budget;
- ensemble: the `--ensemble` members trained on one split (`recipe@seed` varies the model's
  seed), merged by `scaledl ensemble`; its dev accuracy beside TF-IDF's on the same sentences
  (a paired bootstrap interval of the difference) and Ludwig's recorded figure; the members'
  training seconds summed against the 10-minute budget;
- optimize: `scaledl optimize` on the best package; the chosen graph vs the parent's ONNX
  Runtime fp32 graph at batch 1 on dev sentences of median length, timed interleaved;
- serve: bench/text_serve.py; drift: bench/text_drift.py.

Each section replaces its own entry in the JSON and keeps the others. Timings on a shared
machine are pessimistic; `machine_load` records `uptime` when the section ran.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import REPO, RESULTS, machine

WORK = REPO / ".cache" / "bench-text"
SECTIONS = ("train", "tfidf", "ludwig", "ensemble", "optimize", "serve", "drift")
BEST, FAST = REPO / "examples" / "sst2-best.yaml", REPO / "examples" / "sst2-fast.yaml"
GRU = REPO / "examples" / "sst2-gru.yaml"
RECIPES = {"best": BEST, "fast": FAST, "gru": GRU}
TRAIN_LIMIT_S = 600.0  # the target's training budget: 10 minutes on 2 cores, all members


def load_average() -> str:
    return subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()


def cpu_seconds() -> float:
    import resource

    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def scaledl(*args: str, threads: int, cpu: dict[str, float] | None = None) -> tuple[float, str]:
    """Run the CLI; `cpu["seconds"]` gets its CPU time (user + system, all threads)."""
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "PYTHONUNBUFFERED": "1"}
    start, cpu_start = time.perf_counter(), cpu_seconds()
    proc = subprocess.run(
        [sys.executable, "-m", "scaledl", *args], capture_output=True, text=True, env=env
    )
    seconds = time.perf_counter() - start
    if cpu is not None:
        cpu["seconds"] = cpu_seconds() - cpu_start
    if proc.returncode not in (0, 1):
        raise RuntimeError(f"scaledl {' '.join(args)} failed:\n{proc.stderr[-3000:]}")
    return seconds, proc.stdout


def train_section(threads: int, recipes: list[Path]) -> dict[str, Any]:

    rows = {}
    for recipe in recipes:
        out = WORK / recipe.stem
        cpu: dict[str, float] = {}
        wall, _ = scaledl(
            "train",
            str(recipe),
            "--out",
            str(out),
            "--set",
            f"train.threads={threads}",
            threads=threads,
            cpu=cpu,
        )
        rows[recipe.stem] = {
            **trained_row(recipe, out / "package", wall, cpu),
            "threads": threads,
            "package": str(out / "package"),
        }
    return rows


def trained_row(recipe: Path, package: Path, wall: float, cpu: dict[str, float]) -> dict[str, Any]:
    """What one trained recipe is reported by: its accuracies and what training cost."""
    from scaledl.package import open_package

    pkg = open_package(package)
    m = pkg.manifest.metrics
    return {
        "recipe": str(recipe.relative_to(REPO)),
        "family": pkg.manifest.family,
        "dev_accuracy": m.accuracy,
        "val_accuracy": m.val_accuracy,
        "train_seconds": m.get("train_seconds"),
        "wall_seconds_with_packaging": round(wall, 1),
        "cpu_seconds_with_packaging": round(cpu["seconds"], 1),
        "epochs_run": m.epochs_run,
    }


def ensemble_section(
    threads: int, members: list[str], ludwig: tuple[float, float] | None
) -> dict[str, Any]:
    """Train each member (`recipe` or `recipe@seed`, all on the split of seed 0), then
    `scaledl ensemble` them; the ensemble's dev accuracy against TF-IDF's on the same
    sentences (paired bootstrap) and Ludwig's recorded figure."""
    from scaledl.package import open_package

    rows: list[dict[str, Any]] = []
    packages: list[Path] = []
    for member in members:
        name, _, seed = member.partition("@")
        out = WORK / "ensemble" / f"{name}-seed{seed or 0}"
        cpu: dict[str, float] = {}
        # every member after the first reads the first one's tokenizer: the same token ids
        shared = [f"data.text.tokenizer_from={packages[0]}"] if packages else []
        settings = [f"seed={seed or 0}", "data.split_seed=0", f"train.threads={threads}", *shared]
        wall, _ = scaledl(
            "train", str(RECIPES[name]), "--out", str(out),
            *[arg for item in settings for arg in ("--set", item)],
            threads=threads, cpu=cpu,
        )  # fmt: skip
        rows.append({"member": member, **trained_row(RECIPES[name], out / "package", wall, cpu)})
        packages.append(out / "package")
        print(json.dumps(rows[-1]), flush=True)
    ensemble, report = WORK / "ensemble" / "package", WORK / "ensemble" / "ensemble.json"
    wall, _ = scaledl(
        "ensemble", *map(str, packages), "--out", str(ensemble), "--json", str(report),
        threads=threads,
    )  # fmt: skip
    from scaledl.evaluate import predict_raw

    pkg = open_package(ensemble)
    split = split_rows()
    x_test, y_test = split["test"]
    ours = predict_raw(pkg, x_test).argmax(axis=1) == y_test
    vectorizer, model, _, _ = tfidf_fit(split)
    theirs = model.predict(vectorizer.transform(list(x_test))) == y_test
    train_s = sum(float(r["train_seconds"] or 0.0) for r in rows)
    return {
        "members": rows,
        "dev_accuracy": float(ours.mean()),
        "dev_accuracy_se": round(float(np.sqrt(ours.mean() * (1 - ours.mean()) / len(ours))), 4),
        "val_accuracy": pkg.manifest.metrics.val_accuracy,
        "dev_sentences": len(ours),
        "train_seconds": round(train_s, 1),
        "within_train_limit": train_s <= TRAIN_LIMIT_S,
        "ensemble_seconds": round(wall, 1),
        "vs_tfidf": paired_difference(ours, theirs),
        "ludwig_dev_accuracy": ludwig[0] if ludwig else None,
        "ludwig_train_seconds": ludwig[1] if ludwig else None,
        "package": str(ensemble),
    }


def paired_difference(ours: np.ndarray, theirs: np.ndarray, seed: int = 0) -> dict[str, Any]:
    """Accuracy difference on the same rows with a 90 % paired bootstrap interval."""
    diff = ours.astype(np.float64) - theirs.astype(np.float64)
    rng = np.random.default_rng(seed)
    boots = diff[rng.integers(0, len(diff), size=(10_000, len(diff)))].mean(axis=1)
    low, high = np.quantile(boots, [0.05, 0.95])
    return {
        "theirs": round(float(theirs.mean()), 4),
        "difference": round(float(diff.mean()), 4),
        "interval_90": [round(float(low), 4), round(float(high), 4)],
        "only_ours_right": int((diff > 0).sum()),
        "only_theirs_right": int((diff < 0).sum()),
    }


def split_rows() -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """The training, validation and test (dev.tsv) rows of the best recipe's split."""
    from scaledl.modalities import load_splits
    from scaledl.recipe import load_recipe

    recipe = load_recipe(BEST)
    splits = load_splits(recipe.data, seed=recipe.seed)
    return {
        "train": (splits.train.x, splits.train.y),
        "val": (splits.val.x, splits.val.y),
        "test": (splits.test.x, splits.test.y),
    }


def tfidf_section(threads: int) -> dict[str, Any]:
    rows = split_rows()
    xt, yt = rows["test"]
    vectorizer, model, val_score, seconds = tfidf_fit(rows)
    accuracy = float((model.predict(vectorizer.transform(list(xt))) == yt).mean())
    return {
        "method": "TfidfVectorizer(ngram_range=(1, 2), min_df=2, sublinear_tf) + "
        f"LogisticRegression(C={model.C})",
        "dev_accuracy": accuracy,
        "val_accuracy": val_score,
        "train_seconds": round(seconds, 1),
    }


def tfidf_fit(rows: dict[str, tuple[np.ndarray, np.ndarray]]) -> tuple[Any, Any, float, float]:
    """(vectorizer, model, validation accuracy, seconds) of the TF-IDF baseline."""
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression

    (x, y), (xv, yv) = rows["train"], rows["val"]
    start = time.perf_counter()
    best: tuple[float, Any, Any] | None = None
    for c in (1.0, 3.0, 10.0):  # C picked on the validation rows, like an epoch in training
        vectorizer = TfidfVectorizer(ngram_range=(1, 2), min_df=2, sublinear_tf=True)
        features = vectorizer.fit_transform(list(x))
        model = LogisticRegression(C=c, max_iter=2000).fit(features, y)
        score = float((model.predict(vectorizer.transform(list(xv))) == yv).mean())
        if best is None or score > best[0]:
            best = (score, vectorizer, model)
    seconds = time.perf_counter() - start
    assert best is not None
    score, vectorizer, model = best
    return vectorizer, model, score, seconds


def write_tsv(path: Path, x: np.ndarray, y: np.ndarray) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = ["sentence\tlabel"] + [f"{t}\t{int(v)}" for t, v in zip(x, y, strict=True)]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def ludwig_section(threads: int, budget_s: float) -> dict[str, Any]:
    rows = split_rows()
    files = {k: write_tsv(WORK / "ludwig-data" / f"{k}.tsv", *v) for k, v in rows.items()}
    cmd = [
        sys.executable,
        str(Path(__file__).with_name("text_ludwig.py")),
        "--train",
        str(files["train"]),
        "--val",
        str(files["val"]),
        "--test",
        str(files["test"]),
        "--budget-s",
        str(budget_s),
        "--threads",
        str(threads),
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    try:
        return dict(json.loads(proc.stdout.strip().splitlines()[-1]))
    except (IndexError, json.JSONDecodeError):
        return {"error": (proc.stderr or proc.stdout)[-3000:], "exit_code": proc.returncode}


def typical_sentences(count: int = 32) -> list[str]:
    """Dev sentences around the median length (batch-1 latency is timed on these)."""
    texts, _ = split_rows()["test"]
    order = np.argsort([len(str(t).split()) for t in texts], kind="stable")
    middle = len(order) // 2
    return [str(texts[i]) for i in order[middle - count // 2 : middle + count // 2]]


def optimize_section(threads: int, budget_min: float, parent: Path) -> dict[str, Any]:
    from scaledl.package import open_package
    from text_timing import compare_graphs

    out = WORK / "optimized"
    wall, _ = scaledl(
        "optimize",
        str(parent),
        "--out",
        str(out),
        "--time-budget-min",
        str(budget_min),
        "--max-accuracy-drop",
        "0.01",
        threads=threads,
    )
    frontier = json.loads((out / "frontier.json").read_text())
    chosen = next((c for c in frontier["candidates"] if c.get("chosen")), None)
    if chosen is None:
        return {"error": "no candidate met the budget", "frontier": str(out / "frontier.json")}
    child = Path(chosen["package"])
    if not child.is_absolute():  # the frontier names packages relative to its folder
        child = out / child
    timing = compare_graphs(parent, child, typical_sentences(), threads=1)
    parent_acc = open_package(parent).manifest.metrics.accuracy or 0.0
    child_acc = open_package(child).manifest.metrics.accuracy or 0.0
    return {
        "chosen": chosen["id"],
        "transforms": chosen.get("transforms"),
        "search_wall_seconds": round(wall, 1),
        "parent_dev_accuracy": parent_acc,
        "optimized_dev_accuracy": child_acc,
        "dev_accuracy_drop_points": round(100 * (parent_acc - child_acc), 2),
        "batch1_latency": timing,
        "speedup_p50": timing["speedup_p50"],
        "package": str(child),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--only", default=",".join(SECTIONS))
    parser.add_argument("--threads", type=int, default=2, help="cores for training")
    parser.add_argument("--budget-min", type=float, default=10.0, help="training time budget")
    parser.add_argument("--optimize-min", type=float, default=20.0)
    parser.add_argument("--out", type=Path, default=RESULTS / "text.json")
    parser.add_argument("--recipes", default="best,fast", help="train: which sst2-* recipes")
    parser.add_argument("--use", choices=sorted(RECIPES), default="best", help="package used")
    parser.add_argument(
        "--ensemble",
        default="gru,gru@1,best",
        help="ensemble: members as recipe or recipe@seed (all on the split of seed 0)",
    )
    args = parser.parse_args()
    package = WORK / RECIPES[args.use].stem / "package"
    wanted = [s.strip() for s in args.only.split(",") if s.strip()]
    unknown = sorted(set(wanted) - set(SECTIONS))
    if unknown:
        parser.error(f"unknown sections {unknown}; valid: {', '.join(SECTIONS)}")
    results: dict[str, Any] = json.loads(args.out.read_text()) if args.out.exists() else {}
    for section in wanted:
        load = load_average()
        print(f"[bench/text] {section} ({load})", flush=True)
        if section == "train":
            names = [r.strip() for r in args.recipes.split(",") if r.strip()]
            if not set(names) <= set(RECIPES):
                parser.error(f"--recipes {args.recipes}: valid: {', '.join(RECIPES)}")
            body: dict[str, Any] = train_section(args.threads, [RECIPES[n] for n in names])
        elif section == "tfidf":
            body = tfidf_section(args.threads)
        elif section == "ludwig":
            body = ludwig_section(args.threads, args.budget_min * 60)
        elif section == "ensemble":
            names = [m.strip() for m in args.ensemble.split(",") if m.strip()]
            unknown_members = [m for m in names if m.partition("@")[0] not in RECIPES]
            if unknown_members:
                parser.error(f"--ensemble {unknown_members}: valid: {', '.join(RECIPES)}")
            peer = results.get("ludwig") or {}
            ludwig = (peer["accuracy"], peer["train_seconds"]) if "accuracy" in peer else None
            body = ensemble_section(args.threads, names, ludwig)
        elif section == "optimize":
            body = optimize_section(args.threads, args.optimize_min, package)
        elif section == "serve":
            from text_serve import serve_section

            body = serve_section(package, typical_sentences())
        else:
            from text_drift import drift_section

            body = drift_section(package)
        body["machine_load"] = load
        body["command"] = " ".join(["python", "bench/text.py", *sys.argv[1:]])
        results[section] = body
        results["machine"] = machine()
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(results, indent=2, default=str))
        print(json.dumps({section: body}, indent=2, default=str)[:4000], flush=True)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
