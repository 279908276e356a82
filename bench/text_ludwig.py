"""Ludwig on SST-2 for bench/text.py: its own venv (CPU torch pinned first), its default text
configuration, the same split and time budget as scaledl.

    python bench/text_ludwig.py --train T.tsv --val V.tsv --test D.tsv --budget-s 600

Run by bench/text.py; prints one JSON object. Ludwig's own pins may conflict with the CPU torch
this machine uses: every step that fails is recorded with its exact error instead of a number.

Two environment fix-ups let Ludwig import beside the CPU torch, and both are recorded in the
result. The torchvision and torchaudio wheels from PyPI are CUDA builds, and their C++
extensions cannot load against the CPU torch. Ludwig imports both packages at start-up but its
text path never calls their compiled operators.
- torchaudio: its extension libraries are renamed aside, so torchaudio runs in its
  pure-Python mode.
- torchvision: it registers shape functions for operators that its unloaded library never
  defined. The runner skips those registrations.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import last_lines, run_logged

ROOT = Path(__file__).resolve().parents[1]
VENV = ROOT / ".cache" / "bench-text" / "ludwig-venv"
TORCH = "torch==2.13.0"
LUDWIG = "ludwig==0.11.0"  # the newest release that runs on Python 3.11 (0.11.1+ need 3.12)

# Runs inside the Ludwig venv: train with Ludwig's default text configuration.
RUNNER = r"""
import json, sys, time, logging
import torch, torch.library

_register_fake = torch.library.register_fake
def _register_fake_if_defined(op, *args, **kwargs):
    # torchvision's CUDA-built library did not load, so its operators do not exist; skip
    # their shape functions instead of failing the import (Ludwig's text path never runs them)
    if isinstance(op, str) and op.startswith("torchvision::"):
        try:
            getattr(torch.ops.torchvision, op.split("::", 1)[1])
        except (AttributeError, RuntimeError):
            return lambda fn: fn
    return _register_fake(op, *args, **kwargs)
torch.library.register_fake = _register_fake_if_defined

import pandas as pd
from ludwig.api import LudwigModel
from ludwig.callbacks import Callback

train, val, test = sys.argv[1], sys.argv[2], sys.argv[3]
epochs, threads = int(sys.argv[4]), int(sys.argv[5])
budget_s, checkpoints = float(sys.argv[7]), int(sys.argv[8])
import torch; torch.set_num_threads(threads)
def read(path):
    return pd.read_csv(path, sep="\t", quoting=3, keep_default_na=False, dtype={"sentence": str})

class TimeBudget(Callback):
    # Stops training at the first validation checkpoint past the budget: Ludwig has no time
    # budget of its own, and a callback's should_early_stop is its hook for stopping.
    deadline = float("inf")
    stopped = False
    def on_train_start(self, *args, **kwargs):
        self.deadline = time.monotonic() + budget_s
    def should_early_stop(self, trainer, progress_tracker, is_coordinator):
        self.stopped = self.stopped or time.monotonic() > self.deadline
        return self.stopped

config = {
    "input_features": [{"name": "sentence", "type": "text"}],
    "output_features": [{"name": "label", "type": "binary"}],
    "trainer": {"epochs": epochs, "checkpoints_per_epoch": checkpoints},
}
budget = TimeBudget()
model = LudwigModel(config, logging_level=logging.INFO, callbacks=[budget])
start = time.perf_counter()
model.train(training_set=read(train), validation_set=read(val), test_set=read(test),
            skip_save_processed_input=True, skip_save_model=True, skip_save_log=True,
            skip_save_training_description=True, skip_save_training_statistics=True,
            skip_save_progress=True, output_directory=sys.argv[6])
seconds = time.perf_counter() - start
BIG = {"vocab", "str2freq", "str2idf", "idx2str", "str2idx"}  # the data set's vocabulary
def trim(o):
    if isinstance(o, dict):
        return {k: f"<{len(v)} entries>" if k in BIG else trim(v) for k, v in o.items()}
    return [trim(v) for v in o] if isinstance(o, list) else o
stats, _, _ = model.evaluate(read(test), collect_predictions=False, collect_overall_stats=False)
accuracy = float(stats["label"]["accuracy"])
print("RESULT " + json.dumps(
    {"train_seconds": seconds, "accuracy": accuracy, "stopped_by_time_budget": budget.stopped,
     "config": trim(model.config)}, default=str))
"""


def install() -> dict[str, Any]:
    """The venv with CPU torch first, then Ludwig (torch held at its pin)."""
    python = VENV / "bin" / "python"
    marker = VENV / ".ludwig-installed"
    if marker.exists():
        return {"installed": True, "venv": str(VENV), "cached": True}
    VENV.parent.mkdir(parents=True, exist_ok=True)
    steps = [
        [sys.executable, "-m", "venv", str(VENV)],
        [str(python), "-m", "pip", "install", "-q", TORCH],
        [str(python), "-m", "pip", "install", "-q", LUDWIG, TORCH],
    ]
    for cmd in steps:
        code, log = run_logged(cmd, 2400, {"PIP_DISABLE_PIP_VERSION_CHECK": "1"})
        if code != 0:
            return {"installed": False, "command": " ".join(cmd[2:]), "error": last_lines(log)}
    code, log = run_logged(
        [str(python), "-c", "import ludwig, torch; print(ludwig.__version__, torch.__version__)"],
        300,
    )
    if code != 0:
        return {"installed": False, "command": "import ludwig", "error": last_lines(log)}
    marker.write_text(log.strip())
    return {"installed": True, "venv": str(VENV), "versions": log.strip()}


def disable_cuda_extensions() -> list[str]:
    """Rename torchaudio's compiled libraries aside (idempotent); returns what was renamed.

    They link CUDA libraries the CPU torch does not ship, so loading them fails at import.
    Without them torchaudio reports its extension as unavailable and imports.
    """
    renamed = []
    for lib in sorted(VENV.glob("lib/python*/site-packages/torchaudio/lib/*.so")):
        lib.rename(lib.with_name(lib.name + ".disabled"))
        renamed.append(lib.name)
    return renamed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--train", required=True)
    parser.add_argument("--val", required=True)
    parser.add_argument("--test", required=True)
    parser.add_argument("--budget-s", type=float, default=600.0)
    parser.add_argument("--epochs", type=int, default=3, help="epochs asked of Ludwig")
    parser.add_argument(
        "--checkpoints-per-epoch",
        type=int,
        default=10,
        help="Ludwig's validation checkpoints per epoch (where the time budget can stop it)",
    )
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--workdir", default=str(ROOT / ".cache" / "bench-text" / "ludwig-run"))
    args = parser.parse_args()
    started = time.perf_counter()
    result: dict[str, Any] = {"peer": LUDWIG, "install": install()}
    result["install_seconds"] = round(time.perf_counter() - started, 1)
    if result["install"]["installed"]:
        renamed = disable_cuda_extensions()
        result["environment_fixups"] = [
            "torchaudio's compiled libraries renamed aside"
            + (f" ({', '.join(renamed)})" if renamed else " (earlier)"),
            "torchvision's shape functions for its unloaded operators skipped",
        ]
        script = Path(args.workdir) / "runner.py"
        script.parent.mkdir(parents=True, exist_ok=True)
        script.write_text(RUNNER)
        cmd = [
            str(VENV / "bin" / "python"),
            str(script),
            args.train,
            args.val,
            args.test,
            str(args.epochs),
            str(args.threads),
            args.workdir,
            str(args.budget_s),
            str(args.checkpoints_per_epoch),
        ]
        env = {"OMP_NUM_THREADS": str(args.threads), "MKL_NUM_THREADS": str(args.threads)}
        t0 = time.perf_counter()
        # over the budget: preprocessing, the checkpoint that notices the budget is spent and
        # the test evaluation come after it; the kill is the limit
        code, log = run_logged(["nice", *cmd], args.budget_s * 2.0, env)
        result["wall_seconds"] = round(time.perf_counter() - t0, 1)
        found = [line for line in log.splitlines() if line.startswith("RESULT ")]
        if code == 0 and found:
            result.update(json.loads(found[-1][len("RESULT ") :]))
            rest = [line for line in log.splitlines() if not line.startswith("RESULT ")]
            result["log_tail"] = last_lines("\n".join(rest), 8)
        else:
            result["error"] = last_lines(log, 20)
            result["exit_code"] = code
    print(json.dumps(result, default=str))


if __name__ == "__main__":
    main()
