"""Helpers shared by the fidelity suite's files."""

import time


def wait_until(check, timeout: float = 5.0, step: float = 0.1):
    """Poll ``check()`` until it returns something truthy; that value, or AssertionError on timeout."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(step)
    raise AssertionError("condition not met in time")
