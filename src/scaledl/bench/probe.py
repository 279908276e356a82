"""Peak memory of one model in a fresh process (`python -m scaledl.bench.probe RUNTIME PKG B T`).

In a long-lived process a second model reuses memory the allocator already holds, so its peak
looks like zero. A fresh process per model, with the runtime imported before the baseline is
taken, measures what loading and running that model alone costs.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any


def probe_memory(
    runtime: str, package: Path | str, batch: int, threads: int, trust_code: bool = False
) -> dict[str, Any]:
    """Run the probe in a subprocess; {peak_rss_mb, extra_peak_mb} (None values if it fails)."""
    cmd = [sys.executable, "-m", "scaledl.bench.probe", runtime, str(package), str(batch)]
    cmd += [str(threads), "trust-code" if trust_code else "no-trust-code"]
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=300, check=True)
        return dict(json.loads(done.stdout.strip().splitlines()[-1]))
    except (subprocess.SubprocessError, ValueError, IndexError):
        return {"peak_rss_mb": None, "extra_peak_mb": None}


def _main(
    runtime: str, package: str, batch: int, threads: int, trust_code: bool = False
) -> dict[str, Any]:
    from scaledl.bench.api import eager_runner, ort_runner, sample_inputs, tile_batch
    from scaledl.bench.memory import measure_peak
    from scaledl.package import open_package

    pkg = open_package(package)
    x = tile_batch(sample_inputs(pkg), batch)
    if runtime == "onnxruntime":
        import onnxruntime  # noqa: F401  (the runtime itself is not the model's cost)

        def work() -> Any:
            return ort_runner(pkg.onnx_path, threads)(x)
    else:
        import torch  # noqa: F401

        def work() -> Any:
            return eager_runner(pkg, threads, trust_code)(x)

    _, memory = measure_peak(work)
    return memory


if __name__ == "__main__":
    name, path, size, count, trust = sys.argv[1:6]
    print(json.dumps(_main(name, path, int(size), int(count), trust == "trust-code")))
