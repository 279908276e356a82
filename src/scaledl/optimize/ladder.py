"""A structural method's settings from mild to aggressive, walked by bisection."""

from __future__ import annotations

from scaledl.optimize.registry import Method, MethodConfig


class Ladder:
    """Configs from mild to aggressive, walked by bisection for the most aggressive that passes."""

    def __init__(self, method: Method, configs: list[MethodConfig]) -> None:
        self.method, self.configs = method, configs
        self.lo, self.hi = -1, len(configs)

    def next(self) -> MethodConfig | None:
        if self.hi - self.lo <= 1:
            return None
        return self.configs[(self.lo + self.hi) // 2]

    def report(self, passed: bool) -> None:
        cursor = (self.lo + self.hi) // 2
        if passed:
            self.lo = cursor
        else:
            self.hi = cursor

    def stop(self) -> None:
        self.lo = self.hi - 1

    def drop(self) -> None:
        """The current config does not apply to this model: walk on without it."""
        del self.configs[(self.lo + self.hi) // 2]
        self.hi -= 1

    def remaining(self) -> int:
        return max(0, self.hi - self.lo - 1).bit_length()
