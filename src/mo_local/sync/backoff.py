"""Retry policy for network errors: capped exponential backoff with full jitter."""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how long to retry a call that failed on the network.

    `sleep` and `rng` are injectable so tests run without waiting. Full jitter
    (a uniform delay in [0, min(cap, base·2ⁿ)]) spreads the retries of many
    devices after an outage instead of having them return in lock-step.
    """

    attempts: int = 5
    base_seconds: float = 0.25
    cap_seconds: float = 8.0
    sleep: Callable[[float], None] = field(default=time.sleep, repr=False, compare=False)
    rng: random.Random = field(default_factory=random.SystemRandom, repr=False, compare=False)

    def delay(self, failures: int) -> float:
        """The pause after the `failures`-th consecutive failure (1-based)."""
        ceiling = min(self.cap_seconds, self.base_seconds * (2 ** (failures - 1)))
        return self.rng.uniform(0.0, ceiling)

    def pause(self, failures: int) -> None:
        """Sleep for `delay(failures)`."""
        self.sleep(self.delay(failures))


NO_RETRY = RetryPolicy(attempts=1)
