"""When the supervisor restarts a child that died, and when it gives up.

A child that dies is restarted after 1 s, then 2, 4, 8 s (capped) if it keeps dying; deaths
older than the window are forgotten, so a child that ran fine for a while starts again at 1 s.
One that died `limit` times within the window is not restarted again: something is wrong that
a restart will not fix (a broken settings file, a port taken for good), and the supervisor
stops everything and says why rather than loop forever.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

FIRST_DELAY = 1.0
MAX_DELAY = 8.0
LIMIT = 5
WINDOW = 120.0


@dataclass
class RestartPolicy:
    first_delay: float = FIRST_DELAY
    max_delay: float = MAX_DELAY
    limit: int = LIMIT
    window: float = WINDOW
    clock: Callable[[], float] = time.monotonic
    _deaths: dict[str, list[float]] = field(default_factory=dict)

    def died(self, name: str) -> float | None:
        """Record a death of `name`; the delay before restarting it, or None to give up."""
        now = self.clock()
        recent = [t for t in self._deaths.get(name, []) if now - t < self.window]
        recent.append(now)
        self._deaths[name] = recent
        if len(recent) > self.limit:
            return None
        return min(self.first_delay * 2.0 ** (len(recent) - 1), self.max_delay)

    def count(self, name: str) -> int:
        """How many times `name` died within the window (this death included)."""
        return len(self._deaths.get(name, []))
