"""LitServe with a `LitAPI` around ONNX Runtime: `{"data": [...]}` in, `{"output": [...]}` out.

    python litserve_onnx.py --model PATH --threads 2 --port P

LitServe speaks its own JSON (no V2 protocol), the same body as bench/serve_baseline.py.
Everything else is LitServe's default (one inference worker process, no batching).
"""

from __future__ import annotations

import argparse
from typing import Any

import litserve as ls
import numpy as np
from ort_session import make_session


class OnnxAPI(ls.LitAPI):
    def __init__(self, path: str, threads: int) -> None:
        super().__init__()
        self.path, self.threads = path, threads

    def setup(self, device: Any) -> None:
        self.session = make_session(self.path, self.threads)
        first = self.session.get_inputs()[0]
        self.input_name, self.shape = first.name, [int(d) for d in first.shape[1:]]

    # no annotation on `request`: LitServe builds its endpoint from it (a JSON body when none)
    def decode_request(self, request) -> np.ndarray:
        return np.asarray(request["data"], dtype=np.float32).reshape(1, *self.shape)

    def predict(self, x: np.ndarray) -> np.ndarray:
        return self.session.run(None, {self.input_name: x})[0]

    def encode_response(self, output: np.ndarray) -> dict[str, list[float]]:
        return {"output": output[0].tolist()}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", required=True)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    server = ls.LitServer(OnnxAPI(args.model, args.threads), accelerator="cpu")
    server.run(host="127.0.0.1", port=args.port, generate_client_file=False, log_level="warning")


if __name__ == "__main__":
    main()
