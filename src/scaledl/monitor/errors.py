"""Live error of a regressor or forecaster, from feedback of the values that came true.

A forecast is only judged once its horizon has passed: the client sends the realised values
later (`POST /v2/models/{m}/feedback` with the request id and `values`), and the error is
computed against what the model answered then. Per sample the squared error is averaged over the
forecast's steps and targets, on the standardised scale when the model has one (each target
divided by its training standard deviation), so it is comparable with the held-out reference
error in the profile.
"""

from __future__ import annotations

import threading
from collections import OrderedDict, deque

import numpy as np

from scaledl.errors import UsageError

MAX_PENDING_VALUES = 4_000_000  # floats kept for pending forecasts (16 MB)


class PendingForecasts:
    """Outputs of recent requests by id (LRU), bounded in count and in total floats."""

    def __init__(self, capacity: int, max_values: int = MAX_PENDING_VALUES) -> None:
        self.capacity = capacity
        self.max_values = max_values
        self._items: OrderedDict[str, np.ndarray] = OrderedDict()
        self._values = 0
        self._lock = threading.Lock()

    def add(self, request_id: str, outputs: np.ndarray) -> None:
        array = np.asarray(outputs, np.float32)
        if self.capacity == 0 or array.size > self.max_values:
            return
        with self._lock:
            old = self._items.pop(request_id, None)
            self._values -= old.size if old is not None else 0
            self._items[request_id] = array
            self._values += array.size
            while len(self._items) > self.capacity or self._values > self.max_values:
                _, dropped = self._items.popitem(last=False)
                self._values -= dropped.size

    def pop(self, request_id: str) -> np.ndarray | None:
        with self._lock:
            item = self._items.pop(request_id, None)
            if item is not None:
                self._values -= item.size
            return item

    def __contains__(self, request_id: object) -> bool:
        with self._lock:
            return request_id in self._items

    def __len__(self) -> int:
        return len(self._items)


class LiveErrors:
    """The last `capacity` samples' squared errors (standardised when a scale is given)."""

    def __init__(self, capacity: int, scale: np.ndarray | None = None) -> None:
        self.scale = None if scale is None else np.asarray(scale, np.float64)
        self._errors: deque[float] = deque(maxlen=capacity)
        self._lock = threading.Lock()

    def add(self, predicted: np.ndarray, actual: np.ndarray) -> np.ndarray:
        pred = np.asarray(predicted, np.float64)
        true = np.asarray(actual, np.float64)
        if true.size != pred.size:
            raise UsageError(
                f"{true.size} realised value(s) for a forecast of {pred.size} value(s) "
                f"(shape {list(pred.shape)}); send one value per forecast step and target"
            )
        true = true.reshape(pred.shape)
        if not np.isfinite(true).all():
            raise UsageError("realised values must be finite numbers")
        err = pred - true
        if self.scale is not None and pred.ndim >= 2 and pred.shape[-1] == self.scale.shape[-1]:
            err = err / self.scale
        per_sample = (err**2).reshape(len(err), -1).mean(axis=1)
        with self._lock:
            self._errors.extend(float(e) for e in per_sample)
        return per_sample

    def error(self) -> tuple[float | None, int]:
        with self._lock:
            n = len(self._errors)
            return (float(np.mean(self._errors)) if n else None), n
