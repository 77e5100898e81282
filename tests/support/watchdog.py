"""A run of the suite that hangs fails, with the stack of every thread, instead of holding CI
until its own limit with nothing to show (pytest.ini loads this with `-p`).

pytest-timeout fails one test that hangs, but nothing watches the rest: a fixture torn down at
the end of the session, pytest's own teardown, the interpreter waiting at exit for a thread a
test left running. faulthandler's watchdog is a thread of its own, outside the interpreter's
lock, so it fires even when the main thread is stuck in C:

- the whole run has TSREVIEW_TEST_BUDGET seconds (an hour; the suite takes 8–16 minutes here);
- once pytest is done, the process has TSREVIEW_TEST_EXIT_BUDGET seconds (5 minutes) to exit:
  a whole run exits about 3 s after its summary here (it took 10–16 s, in pytest's and the
  interpreter's full garbage collections, while every media store a test made was kept).

Either way the stacks go to stderr and the process exits with status 1. 0 turns a budget off
(a debugging session, say). A run stopped from outside with SIGTERM (.ci/run's own deadline)
prints the stacks too before it ends."""

import faulthandler
import os
import signal

RUN_BUDGET = 60 * 60
EXIT_BUDGET = 300
# The real stderr, taken as pytest loads this plugin: before pytest's capture points file
# descriptor 2 at a file of its own, which a process ended by the watchdog never shows.
STDERR = os.dup(2)


def _arm(name: str, default: int) -> None:
    seconds = int(os.environ.get(name, default))
    faulthandler.cancel_dump_traceback_later()
    if seconds > 0:
        faulthandler.dump_traceback_later(seconds, exit=True, file=STDERR)


def pytest_configure(config):
    _arm("TSREVIEW_TEST_BUDGET", RUN_BUDGET)
    faulthandler.register(signal.SIGTERM, file=STDERR, all_threads=True, chain=True)


def pytest_unconfigure(config):
    _arm("TSREVIEW_TEST_EXIT_BUDGET", EXIT_BUDGET)
