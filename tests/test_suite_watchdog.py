"""The suite's watchdog (tests/support/watchdog.py): a run that cannot finish, or cannot exit
once finished, fails with every thread's stack instead of holding CI until its own limit."""

import os
import subprocess
import sys
import textwrap

from django.conf import settings


def pytest_command(tmp_path, body: str) -> list[str]:
    """pytest in a child process on one test file, with only the watchdog of this suite's plugins."""
    case = tmp_path / "test_case.py"
    case.write_text(textwrap.dedent(body))
    return [sys.executable, "-m", "pytest", "-q", "-p", "no:django", "-p", "no:cacheprovider",
            "-p", "tests.support.watchdog", "-c", os.devnull, "--rootdir", str(tmp_path), str(case)]


def pytest_child(tmp_path, body: str, **env) -> subprocess.CompletedProcess:
    return subprocess.run(pytest_command(tmp_path, body), cwd=settings.BASE_DIR, env={**os.environ, **env},
                          capture_output=True, text=True, timeout=120)


def test_a_run_that_cannot_exit_fails_with_the_stacks(tmp_path):
    done = pytest_child(tmp_path, """
        import threading, time

        def test_leaves_a_thread_running():
            threading.Thread(target=time.sleep, args=(3600,), name="left-running").start()
    """, TSREVIEW_TEST_EXIT_BUDGET="2")
    assert "1 passed" in done.stdout  # every test passed ...
    assert done.returncode == 1  # ... and the run still fails: it could not exit
    assert "Timeout (0:00:02)!" in done.stderr
    assert "in _shutdown" in done.stderr  # the interpreter, waiting for the thread at exit
    assert "threading.py" in done.stderr and "in run" in done.stderr  # the thread, in its sleep


def test_a_run_over_its_budget_fails_with_the_stacks(tmp_path):
    done = pytest_child(tmp_path, """
        import time

        def test_takes_a_minute():
            time.sleep(60)
    """, TSREVIEW_TEST_BUDGET="3")
    assert done.returncode == 1
    assert "Timeout (0:00:03)!" in done.stderr and "in test_takes_a_minute" in done.stderr


def test_a_run_stopped_from_outside_prints_the_stacks_first(tmp_path):
    import signal
    import time

    started = tmp_path / "started"
    command = pytest_command(tmp_path, f"""
        import pathlib, time

        def test_waits_for_something_that_never_comes():
            pathlib.Path({str(started)!r}).touch()
            time.sleep(60)
    """)
    child = subprocess.Popen(command, cwd=settings.BASE_DIR, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    while not started.exists() and time.monotonic() < deadline and child.poll() is None:
        time.sleep(0.1)
    child.send_signal(signal.SIGTERM)  # as .ci/run's deadline (timeout) would
    _, stderr = child.communicate(timeout=60)
    assert child.returncode == -signal.SIGTERM
    assert "in test_waits_for_something_that_never_comes" in stderr


def test_a_run_that_finishes_and_exits_is_left_alone(tmp_path):
    done = pytest_child(tmp_path, """
        import threading, time

        def test_waits_for_its_thread():
            thread = threading.Thread(target=time.sleep, args=(0.5,))
            thread.start()
            thread.join()
    """)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "1 passed" in done.stdout and "Timeout" not in done.stderr


def test_the_suite_runs_under_the_watchdog(request):
    assert request.config.pluginmanager.has_plugin("tests.support.watchdog")  # pytest.ini's addopts
