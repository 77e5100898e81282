"""Decoding a video in a child process with its own CPU-time and memory limits, so that a file
built to exhaust a decoder costs only that child: the worker survives and the item goes to a
lead as unreviewable by machine. The child reads the video from the encrypted store itself,
chunk by chunk (the media key reaches it in its environment, as the worker has it), so neither
process holds the whole file and nothing is decrypted to disk."""

import os
import pickle
import resource
import subprocess
import sys

from django.conf import settings

STORE_SETTINGS = ("TSREVIEW_MEDIA_STORAGE", "TSREVIEW_S3_BUCKET", "TSREVIEW_S3_ENDPOINT_URL", "TSREVIEW_S3_REGION",
                  "TSREVIEW_S3_ACCESS_KEY_ID", "TSREVIEW_S3_SECRET_ACCESS_KEY", "TSREVIEW_S3_PREFIX",
                  "TSREVIEW_S3_ADDRESSING_STYLE")


class DecodeFailed(Exception):
    """The child ran out of CPU time or memory, or the decoder failed; says which."""


def _limits(memory: int, cpu: int):
    def apply():
        resource.setrlimit(resource.RLIMIT_AS, (memory, memory))
        resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu + 1))
    return apply


def video_previews_limited(blob: str):
    """intake.video.video_previews_make of a stored video, in a child under
    TSREVIEW_DECODE_MEMORY_BYTES and TSREVIEW_DECODE_CPU_SECONDS; DecodeFailed if it breaks
    either or fails."""
    memory, cpu = settings.TSREVIEW_DECODE_MEMORY_BYTES, settings.TSREVIEW_DECODE_CPU_SECONDS
    env = {**os.environ, "TSREVIEW_MEDIA_ROOT": str(settings.TSREVIEW_MEDIA_ROOT),
           "TSREVIEW_MEDIA_KEY": str(settings.TSREVIEW_MEDIA_KEY), "TSREVIEW_MEDIA_OLD_KEYS": settings.TSREVIEW_MEDIA_OLD_KEYS}
    env.pop("TSREVIEW_MEDIA_KEY_FILE", None)
    for name in STORE_SETTINGS:  # the same store (a folder or a bucket) as this process
        env[name] = str(getattr(settings, name))
        env.pop(f"{name}_FILE", None)
    try:
        done = subprocess.run([sys.executable, "-m", "reports.intake.decode_child", str(settings.TSREVIEW_VIDEO_SAMPLED_FRAMES),
                               blob], capture_output=True, env=env,
                              preexec_fn=_limits(memory, cpu), timeout=cpu * 4 + 30, check=False,
                              cwd=settings.BASE_DIR)
    except subprocess.TimeoutExpired:
        raise DecodeFailed(f"decoding took longer than {cpu * 4 + 30} s of wall time") from None
    if done.returncode == 0:
        return pickle.loads(done.stdout)
    if done.returncode in (-9, -24, 137, 152):  # SIGKILL / SIGXCPU: the CPU-time limit
        raise DecodeFailed(f"decoding used more than its {cpu} s of CPU time (TSREVIEW_DECODE_CPU_SECONDS)")
    if b"MemoryError" in done.stderr or b"Cannot allocate memory" in done.stderr or b"bad_alloc" in done.stderr:
        raise DecodeFailed(f"decoding needed more than its {memory} bytes of memory (TSREVIEW_DECODE_MEMORY_BYTES)")
    last = (done.stderr.decode(errors="replace").strip().splitlines() or ["no message"])[-1].strip()[:200]
    raise DecodeFailed(f"decoding failed within its limits ({memory} bytes of memory, {cpu} s of CPU): {last}")
