"""gunicorn settings file for the benchmarks: nothing but a hook that marks each worker ready
once it has loaded the app, so a benchmark's clock starts when every worker can answer (a
steady state), not while some are still booting."""

import os
from pathlib import Path


def post_worker_init(worker):
    Path(os.environ["BENCH_GUNICORN_READY"], str(worker.pid)).touch()
