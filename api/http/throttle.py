"""Failed-authentication throttling: per client address and per key prefix, a fixed one-minute
window of failures each, bounded in memory (least recently seen subjects are forgotten first).
Past the limit a subject gets 429 `rate_limit_error` with `retry-after` until its window ends,
before any key lookup or token comparison is spent on it."""

from __future__ import annotations

import math
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request

from api.errors import TollgateError

WINDOW_S = 60.0
MAX_SUBJECTS = 100_000


class TooManyFailures(TollgateError):
    status, error_type = 429, "rate_limit_error"


@dataclass
class _Window:
    start: float
    failures: int


class AuthThrottle:
    def __init__(
        self,
        failures_per_window: int,
        *,
        max_subjects: int = MAX_SUBJECTS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.limit = failures_per_window
        self.max_subjects = max_subjects
        self._clock = clock
        self._windows: OrderedDict[str, _Window] = OrderedDict()

    def check(self, *subjects: str) -> None:
        """Raise 429 if any of `subjects` is over its failure limit in the current window."""
        now = self._clock()
        for subject in subjects:
            window = self._windows.get(subject)
            if window is None or now - window.start >= WINDOW_S:
                continue
            if window.failures >= self.limit:
                retry = max(1, math.ceil(window.start + WINDOW_S - now))
                raise TooManyFailures(
                    "too many failed authentication attempts; try again later",
                    headers={"retry-after": str(retry)},
                )

    def failed(self, *subjects: str) -> None:
        now = self._clock()
        for subject in subjects:
            window = self._windows.get(subject)
            if window is None or now - window.start >= WINDOW_S:
                window = _Window(now, 0)
                self._windows[subject] = window
            window.failures += 1
            self._windows.move_to_end(subject)
        while len(self._windows) > self.max_subjects:
            self._windows.popitem(last=False)


def client_address(request: Request) -> str:
    return request.client.host if request.client else "unknown"


async def get_auth_throttle(request: Request) -> AuthThrottle:
    throttle: AuthThrottle = request.app.state.auth_throttle
    return throttle


Throttle = Annotated[AuthThrottle, Depends(get_auth_throttle)]
