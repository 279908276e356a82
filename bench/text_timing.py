"""Batch-1 latency of two text packages' graphs, interleaved, on the same texts (bench/text.py).

Each text is tokenized once with the package's own tokenizer (timed too: the server does it)
and fed alone, padded to nothing. Rounds alternate parent and child, so background load slows
both alike; medians per graph and their ratio are reported.
"""

from __future__ import annotations

import statistics
import time
from pathlib import Path
from typing import Any

import numpy as np


def _graph(path: Path, threads: int) -> tuple[Any, Any, Any]:
    from scaledl.export.runtime import create_session
    from scaledl.package import open_package
    from scaledl.preprocess import apply_preprocessing

    pkg = open_package(path)
    spin = {"session.intra_op.allow_spinning": "0", "session.inter_op.allow_spinning": "0"}
    config = {**spin, **(pkg.manifest.runtime.session_config if pkg.manifest.runtime else {})}
    session = create_session(pkg.onnx_path, threads=threads, config=config)
    spec = pkg.preprocessing
    return session, (lambda texts: apply_preprocessing(np.asarray(texts, dtype=object), spec)), pkg


def compare_graphs(
    parent: Path, child: Path, texts: list[str], threads: int = 1, rounds: int = 15
) -> dict[str, Any]:
    graphs = {name: _graph(path, threads) for name, path in (("parent", parent), ("child", child))}
    feeds = {name: [g[1]([t]) for t in texts] for name, g in graphs.items()}
    times: dict[str, list[float]] = {"parent": [], "child": []}
    tokenize: list[float] = []
    for name, (session, _, _) in graphs.items():  # warm-up
        for x in feeds[name]:
            session.run(None, {"input": x})
    for _ in range(rounds):
        for name, (session, prepare, _) in graphs.items():
            for text, x in zip(texts, feeds[name], strict=True):
                start = time.perf_counter()
                session.run(None, {"input": x})
                times[name].append(time.perf_counter() - start)
                if name == "parent":
                    start = time.perf_counter()
                    prepare([text])
                    tokenize.append(time.perf_counter() - start)
    p50 = {k: statistics.median(v) * 1e3 for k, v in times.items()}
    tokens = [int((f != 0).sum()) for f in feeds["parent"]]
    return {
        "texts": len(texts),
        "median_tokens": int(np.median(tokens)),
        "threads": threads,
        "calls_per_graph": len(times["parent"]),
        "parent_p50_ms": round(p50["parent"], 4),
        "child_p50_ms": round(p50["child"], 4),
        "tokenize_p50_ms": round(statistics.median(tokenize) * 1e3, 4),
        "speedup_p50": round(p50["parent"] / p50["child"], 2),
    }
