"""Structured logs: one JSON object per line on stderr, never a request payload.

Every line has `ts`, `level`, `logger`, `msg`; request lines add `request_id`, `method`,
`path`, `status`, `model`, `version`, `latency_ms` (and `key_id` when a key was used).
"""

from __future__ import annotations

import logging
import os
import sys
import time
from typing import Any

import orjson

EXTRA_FIELDS = (
    "request_id",
    "method",
    "path",
    "status",
    "model",
    "version",
    "latency_ms",
    "key_id",
    "url",
    "grpc_url",
    "worker",
    "reason",
)


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
            "pid": os.getpid(),
        }
        for key in EXTRA_FIELDS:
            value = record.__dict__.get(key)
            if value is not None:
                line[key] = value
        if record.exc_info:
            line["error"] = self.formatException(record.exc_info)
        return orjson.dumps(line, default=str).decode()


def configure_json_logging(level: str = "info") -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logger = logging.getLogger(name)
        logger.handlers[:] = []
        logger.propagate = True
    logging.getLogger("uvicorn.access").setLevel(logging.WARNING)
    for noisy in ("onnxscript", "onnx_ir", "torch", "asyncio"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
