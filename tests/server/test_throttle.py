"""Login throttle policy with a controlled clock: lockout, exponential growth, reset, bounds."""

from __future__ import annotations

import pytest

from mo_local.server import LoginThrottleSettings
from mo_local.server.errors import TooManyAttempts
from mo_local.server.throttle import LoginThrottle


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _throttle(clock: Clock, **overrides: float) -> LoginThrottle:
    settings = LoginThrottleSettings(
        max_attempts=3, base_lockout_seconds=2, max_lockout_seconds=30, **overrides
    )
    return LoginThrottle(settings, clock=clock)


def test_lockout_grows_exponentially_and_is_capped() -> None:
    clock = Clock()
    throttle = _throttle(clock)
    for _ in range(3):
        throttle.begin("a@b.c", "1.2.3.4")
    waits = []
    for _ in range(6):
        with pytest.raises(TooManyAttempts) as locked:
            throttle.begin("a@b.c", "1.2.3.4")
        wait = int(locked.value.headers["Retry-After"])
        waits.append(wait)
        clock.now += wait
        throttle.begin("a@b.c", "1.2.3.4")  # allowed after the wait, and fails again
    assert waits == [2, 4, 8, 16, 30, 30]


def test_success_clears_and_keys_are_per_email_and_client() -> None:
    clock = Clock()
    throttle = _throttle(clock)
    for _ in range(3):
        throttle.begin("a@b.c", "1.2.3.4")
    with pytest.raises(TooManyAttempts):
        throttle.begin("a@b.c", "1.2.3.4")
    throttle.begin("a@b.c", "5.6.7.8")
    throttle.begin("other@b.c", "1.2.3.4")
    clock.now += 2
    throttle.begin("a@b.c", "1.2.3.4")
    throttle.succeeded("a@b.c", "1.2.3.4")
    for _ in range(3):
        throttle.begin("a@b.c", "1.2.3.4")


def test_old_attempts_are_forgotten() -> None:
    clock = Clock()
    throttle = _throttle(clock, forget_after_seconds=60)
    for _ in range(2):
        throttle.begin("a@b.c", "ip")
    clock.now += 61
    for _ in range(3):
        throttle.begin("a@b.c", "ip")  # the count started over
    with pytest.raises(TooManyAttempts):
        throttle.begin("a@b.c", "ip")


def test_tracked_keys_are_bounded() -> None:
    clock = Clock()
    throttle = LoginThrottle(LoginThrottleSettings(max_tracked_keys=10), clock=clock)
    for n in range(100):
        throttle.begin(f"user{n}@b.c", "ip")
    assert len(throttle._entries) == 10
