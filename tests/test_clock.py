"""The clocks, and wait_until (polling another process's progress with a deadline)."""
from __future__ import annotations

import pytest

from dagu.clock import FakeClock, wait_until


@pytest.mark.parametrize("ready_after, timeout, expected, elapsed", [
    (0, 1.0, True, 0.0),      # already done: no sleep at all
    (3, 1.0, True, 0.3),      # done on the 4th check, 0.1 s apart
    (None, 1.0, False, 1.0),  # never: gives up exactly at the deadline
])
def test_wait_until(ready_after, timeout, expected, elapsed):
    clock = FakeClock()
    checks = []

    def done():
        checks.append(1)
        return ready_after is not None and len(checks) > ready_after

    assert wait_until(done, timeout, 0.1, clock) is expected
    assert clock.monotonic() == pytest.approx(elapsed)
