"""Background work queued from a stage by the task's name.

A stage never imports reports.tasks (the tasks call into the stages, and the import graph
has no loops); it names the task here instead. Celery resolves the name to the registered
task, so eager mode (the embedded default, the tests) still runs it in-process.
"""

import logging

log = logging.getLogger(__name__)


def enqueue(task: str, *args, priority: int | None = None) -> bool:
    """Queue reports.tasks.<task>(*args). False when the broker cannot take it: callers whose
    work a sweep finds again may ignore that; others let the sweep or a lead retry. `priority`:
    on Redis a lower number is taken first (0 before 6); None is the broker's default (0)."""
    from celery import current_app

    name = f"reports.tasks.{task}"
    try:
        if name not in current_app.tasks:  # the app's task modules are discovered lazily
            current_app.loader.import_default_modules()
        current_app.tasks[name].apply_async(args, priority=priority)
    except Exception:  # noqa: BLE001 - any broker failure; the sweeps pick the work up again
        log.warning("could not queue %s%s; a sweep will retry", task, args)
        return False
    return True
