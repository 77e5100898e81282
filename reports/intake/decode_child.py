"""The child of intake.decode. Imported once by the forkserver (so that every fork starts with
PyAV, NumPy, Pillow and the media code loaded); `run` is what each fork does: set its limits,
take the parent's settings, do one job on one stored file, and send the outcome back."""

import os
import resource

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tsreview.settings")

import av  # noqa: E402,F401 - loaded once in the forkserver, not in every child
import numpy  # noqa: E402,F401
from django.conf import settings  # noqa: E402
from PIL import Image  # noqa: E402,F401

from . import animation, video  # noqa: E402
from .media import MediaRejected  # noqa: E402
from .storage import media_store  # noqa: E402


def _video_previews(blob: str, limit: int):
    with media_store().open(blob) as source:
        return video.video_previews_make(source, limit=limit)


def _animation_previews(blob: str, limit: int):
    return animation.animation_previews_make(media_store().get(blob), limit=limit)


def _video_inspect(blob: str, head: bytes, size: int, digests: dict, claimed_type: str):
    with media_store().open(blob) as source:
        return video.video_inspect_file(source, head=head, size=size, digests=digests, claimed_type=claimed_type)


JOBS = {"video_previews": _video_previews, "animation_previews": _animation_previews, "video_inspect": _video_inspect}


def usage() -> dict:
    """What this child used: its peak resident memory (VmHWM) in bytes, its CPU seconds."""
    times = resource.getrusage(resource.RUSAGE_SELF)
    peak = 0
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                peak = int(line.split()[1]) * 1024
    return {"peak": peak, "cpu": round(times.ru_utime + times.ru_stime, 3)}


def run(conn, job: str, args: tuple, memory: int, cpu: int, config: dict) -> None:
    resource.setrlimit(resource.RLIMIT_AS, (memory, memory))
    resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu + 1))
    try:
        for name, value in config.items():
            setattr(settings, name, value)
        outcome = ("ok", JOBS[job](*args))
    except MediaRejected as exc:
        outcome = ("rejected", (exc.status, exc.message))
    except MemoryError:  # also FFmpeg's ENOMEM (av.error.MemoryError)
        outcome = ("memory", None)
    except Exception as exc:  # noqa: BLE001 - any other failure is reported, never raised into the parent
        outcome = ("failed", f"{type(exc).__name__}: {str(exc)[:200]}")
    try:
        conn.send((*outcome, usage()))
    except MemoryError:
        conn.send(("memory", None, usage()))
    conn.close()
