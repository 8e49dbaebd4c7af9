"""The one polling loop of the test suites."""

import time


def wait_until(pred, timeout, interval=0.05, what="condition", detail=None):
    """Calls pred until it returns something true, and returns that value.

    After `timeout` seconds (pred is called once more at the deadline)
    raises TimeoutError naming `what`; `detail`, a callable, adds text to the
    message (a log tail, the last value seen)."""
    deadline = time.monotonic() + timeout
    while True:
        value = pred()
        if value:
            return value
        if time.monotonic() > deadline:
            msg = "timed out after %.1fs waiting for %s" % (timeout, what)
            if detail is not None:
                try:
                    msg += "\n" + str(detail())
                except Exception as e:   # noqa: BLE001 - the timeout is the error
                    msg += "\n(detail failed: %r)" % (e,)
            raise TimeoutError(msg)
        time.sleep(interval)
