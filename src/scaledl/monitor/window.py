"""Bounded live windows: fixed-size ring buffers of per-sample summaries, never of payloads.

A sample costs k float32 projected features + a class id + a confidence score + a timestamp
(~150 bytes for k = 32), so a 500-sample window is ~75 kB whatever the traffic.
"""

from __future__ import annotations

import threading
from collections import OrderedDict, deque

import numpy as np

from scaledl.monitor.drift import Window


class SampleWindow:
    """The last `capacity` samples (and, with `max_age_s`, only those younger than that)."""

    def __init__(
        self, capacity: int, features: int, outputs: int = 0, max_age_s: float | None = None
    ) -> None:
        self.capacity = capacity
        self.max_age_s = max_age_s
        self._features = np.zeros((capacity, features), np.float32)
        self._predicted = np.zeros(capacity, np.int32)
        self._score = np.zeros(capacity, np.float64)
        self._values = np.zeros((capacity, max(outputs, 1)), np.float32)
        self._times = np.zeros(capacity, np.float64)
        self._next = 0  # write position
        self._size = 0
        self.added = 0  # samples ever added: sample i (0-based) is the i-th one recorded
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return self._size

    @property
    def nbytes(self) -> int:
        arrays = (self._features, self._predicted, self._score, self._values, self._times)
        return sum(a.nbytes for a in arrays)

    def add(
        self,
        features: np.ndarray,
        when: float,
        predicted: np.ndarray | None = None,
        score: np.ndarray | None = None,
        values: np.ndarray | None = None,
    ) -> None:
        count = len(features)
        added = count
        if count > self.capacity:  # only the newest rows can stay
            cut = slice(count - self.capacity, count)
            features = features[cut]
            predicted = predicted[cut] if predicted is not None else None
            score = score[cut] if score is not None else None
            values = values[cut] if values is not None else None
            count = self.capacity
        with self._lock:
            idx = (self._next + np.arange(count)) % self.capacity
            self._features[idx] = features
            self._times[idx] = when
            if predicted is not None:
                self._predicted[idx] = predicted
            if score is not None:
                self._score[idx] = score
            if values is not None:
                self._values[idx] = np.asarray(values).reshape(count, -1)
            self._next = int((self._next + count) % self.capacity)
            self._size = min(self.capacity, self._size + count)
            self.added += added

    def _order(self, now: float) -> np.ndarray:
        """Indices of the live samples, oldest first (expired ones dropped)."""
        start = (self._next - self._size) % self.capacity
        idx = (start + np.arange(self._size)) % self.capacity
        if self.max_age_s is not None and len(idx):
            idx = idx[self._times[idx] >= now - self.max_age_s]
            self._size = len(idx)
        return idx

    def snapshot(self, now: float, classification: bool = True) -> Window:
        """A copy of the live samples as a drift-test window."""
        return self.snapshot_since(0, now, classification)[0]

    def snapshot_since(
        self, start: int, now: float, classification: bool = True
    ) -> tuple[Window, int]:
        """The live samples recorded since sample `start` (so successive windows never share
        a sample), and the index to start the next one from."""
        with self._lock:
            idx = self._order(now)  # the newest live samples, oldest first
            idx = idx[max(0, len(idx) - max(0, self.added - start)) :]
            features = self._features[idx].copy()
            if classification:
                window = Window(
                    features,
                    predicted=self._predicted[idx].astype(np.int64),
                    score=self._score[idx].copy(),
                )
            else:
                window = Window(features, values=self._values[idx].copy())
            return window, self.added

    def since(self, start: int, now: float) -> tuple[int, int, float | None]:
        """Samples recorded since sample `start`: how many, how many are still live, and
        when the oldest live one arrived."""
        with self._lock:
            idx = self._order(now)
            new = max(0, self.added - start)
            idx = idx[max(0, len(idx) - new) :]
            oldest = float(self._times[idx[0]]) if len(idx) else None
            return new, len(idx), oldest

    def fill(self, now: float) -> float:
        with self._lock:
            return len(self._order(now)) / self.capacity


class Outcomes:
    """Live accuracy: the last `capacity` labelled predictions (correct or not)."""

    def __init__(self, capacity: int) -> None:
        self._correct: deque[bool] = deque(maxlen=capacity)
        self._lock = threading.Lock()

    def add(self, correct: np.ndarray) -> None:
        with self._lock:
            self._correct.extend(bool(c) for c in np.asarray(correct).ravel())

    def accuracy(self) -> tuple[float | None, int]:
        with self._lock:
            n = len(self._correct)
            return (sum(self._correct) / n if n else None), n


class PendingPredictions:
    """Predicted classes of recent requests, by request id, for feedback (LRU, bounded)."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self._items: OrderedDict[str, np.ndarray] = OrderedDict()
        self._lock = threading.Lock()

    def add(self, request_id: str, predicted: np.ndarray) -> None:
        if self.capacity == 0:
            return
        with self._lock:
            self._items[request_id] = np.asarray(predicted, np.int32)
            self._items.move_to_end(request_id)
            while len(self._items) > self.capacity:
                self._items.popitem(last=False)

    def pop(self, request_id: str) -> np.ndarray | None:
        """The request's predictions, once: a second feedback for it is not counted twice."""
        with self._lock:
            return self._items.pop(request_id, None)

    def __len__(self) -> int:
        return len(self._items)

    def __contains__(self, request_id: object) -> bool:
        with self._lock:
            return request_id in self._items
