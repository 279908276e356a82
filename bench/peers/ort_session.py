"""The ONNX Runtime session every peer server uses: the same options as `scaledl serve`.

Peers run in their own virtual environments (bench/serve_peers.py makes them), so this file
imports nothing from scaledl. Spinning is off and inter-op threads are 1, as in scaledl
(`--threads` sets intra-op threads), so only the servers differ.
"""

from __future__ import annotations

from typing import Any


def make_session(path: str, threads: int) -> Any:
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    options.add_session_config_entry("session.inter_op.allow_spinning", "0")
    return ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])
