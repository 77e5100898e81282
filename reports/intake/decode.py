"""Probing and decoding moving media in a child process with its own CPU-time and memory
limits, so that a file built to exhaust a demuxer or decoder costs only that child: the web
worker or Celery worker survives, a push is refused naming the limit, and an item whose
derivatives cannot be made goes to a lead as unreviewable by machine.

The children are forked from a forkserver (multiprocessing's) that has imported PyAV, NumPy,
Pillow and this app's media code once; each file gets a fresh fork, which sets its
RLIMIT_AS and RLIMIT_CPU before touching the file, reads it from the encrypted store itself,
chunk by chunk (so neither process holds the whole file and nothing is decrypted to disk), and
sends its result back through a pipe. Starting a fork costs milliseconds where starting Python
with those imports cost about half a second. One forkserver runs per process that decodes (a
Celery worker process, a web worker), started at its first file."""

import multiprocessing
import os

from django.conf import settings

from .media import ImageFacts, MediaRejected

_context = None


class DecodeFailed(Exception):
    """The child ran out of CPU time or memory, or the decoder failed; says which."""


def _ctx():
    global _context
    if _context is None:
        # One thread for NumPy's BLAS in the forkserver: a fork copies only the calling thread.
        os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
        _context = multiprocessing.get_context("forkserver")
        _context.set_forkserver_preload(["reports.intake.decode_child"])
    return _context


def warm() -> None:
    """Start this process's forkserver now rather than at its first file (a Celery worker
    process does at start: tsreview/celery.py)."""
    from multiprocessing import forkserver

    _ctx()
    forkserver.ensure_running()


def _config() -> dict:
    """The settings the child needs (limits, the media store's place and keys), as this
    process has them now: a forkserver started earlier does not see later changes."""
    return {name: getattr(settings, name) for name in dir(settings) if name.startswith("TSREVIEW_")}


def child_run(job: str, *args, memory: int, cpu: int) -> tuple[str, object, int, int | None]:
    """Run decode_child.JOBS[job](*args) in a fresh child under `memory` bytes of address space
    and `cpu` seconds of CPU. Returns what it sent back, (kind, value, what it used: {"peak":
    its peak resident memory in bytes, "cpu": its CPU seconds}), with its exit code; kind is
    "ok", "rejected", "memory", "failed", or "died" when it sent nothing (a limit's signal, a
    crash) or "timeout"."""
    from . import decode_child

    wall = cpu * 4 + 30
    reader, writer = _ctx().Pipe(duplex=False)
    child = _ctx().Process(target=decode_child.run, args=(writer, job, args, memory, cpu, _config()), daemon=True)
    # A Celery prefork worker process (billiard's) counts as daemonic, and multiprocessing refuses
    # children to those (lest they outlive it); and its authentication key is billiard's, which
    # refuses to be pickled to the forkserver. This child is forked by the forkserver, not by
    # this process, and is waited for or killed below: while it starts, the process is not
    # daemonic and its key is multiprocessing's own kind (the same bytes).
    config = multiprocessing.current_process()._config
    daemonic, key = config.pop("daemon", None), config.get("authkey")
    try:
        if key is not None:
            config["authkey"] = multiprocessing.process.AuthenticationString(bytes(key))
        child.authkey = os.urandom(32)
        child.start()
    finally:
        if daemonic is not None:
            config["daemon"] = daemonic
        if key is not None:
            config["authkey"] = key
    writer.close()
    outcome = ("timeout", wall, {})
    try:
        if reader.poll(wall):
            try:
                outcome = reader.recv()
            except EOFError:  # died without a word: killed by a limit, or crashed
                outcome = ("died", None, {})
    finally:
        reader.close()
        if outcome[0] == "timeout":
            child.kill()
        child.join(5)
        if child.exitcode is None:
            child.kill()
            child.join()
    return (*outcome, child.exitcode)


def limited(job: str, *args):
    """child_run under TSREVIEW_DECODE_MEMORY_BYTES and TSREVIEW_DECODE_CPU_SECONDS. Returns
    (the job's result, what the child used: {"peak": bytes, "cpu": seconds}). MediaRejected raised in the
    child is raised here as it was; DecodeFailed says which limit was broken, or what failed."""
    memory, cpu = settings.TSREVIEW_DECODE_MEMORY_BYTES, settings.TSREVIEW_DECODE_CPU_SECONDS
    kind, value, used, exitcode = child_run(job, *args, memory=memory, cpu=cpu)
    if kind == "ok":
        return value, used
    if kind == "rejected":
        raise MediaRejected(*value)
    if kind == "timeout":
        raise DecodeFailed(f"decoding took longer than {value} s of wall time")
    if kind == "memory":
        raise DecodeFailed(f"decoding needed more than its {memory} bytes of memory (TSREVIEW_DECODE_MEMORY_BYTES)")
    if kind == "died" and exitcode in (-9, -24):  # SIGKILL / SIGXCPU: the CPU-time limit
        raise DecodeFailed(f"decoding used more than its {cpu} s of CPU time (TSREVIEW_DECODE_CPU_SECONDS)")
    detail = value if kind == "failed" else f"the decoder stopped (exit {exitcode})"
    raise DecodeFailed(f"decoding failed within its limits ({memory} bytes of memory, {cpu} s of CPU): {detail}")


def video_previews_limited(blob: str, *, used: dict | None = None):
    """intake.video.video_previews_make of a stored video, in a limited child; DecodeFailed if
    it breaks a limit or fails (MediaRejected counts as failing: nothing could be made). What
    the child used is put in `used` when given."""
    try:
        result, usage = limited("video_previews", blob, settings.TSREVIEW_VIDEO_SAMPLED_FRAMES)
    except MediaRejected as exc:
        raise DecodeFailed(exc.message) from None
    if used is not None:
        used.update(usage)
    return result


def animation_previews_limited(blob: str):
    """intake.animation.animation_previews_make of a stored animated picture, likewise."""
    try:
        result, _ = limited("animation_previews", blob, settings.TSREVIEW_VIDEO_SAMPLED_FRAMES)
    except MediaRejected as exc:
        raise DecodeFailed(exc.message) from None
    return result


def video_inspect_limited(blob: str, *, head: bytes, size: int, digests: dict[str, str], claimed_type: str) -> ImageFacts:
    """intake.video.video_inspect_file of an upload streamed into the store, in a limited child:
    the probe of a pushed video runs under the same limits as its decoding. MediaRejected as
    the probe says; a probe that breaks a limit is refused with 413 naming it (nothing of the
    push is kept, so the scanner is told and may send it again once the limit is raised)."""
    try:
        facts, _ = limited("video_inspect", blob, head, size, digests, claimed_type)
    except DecodeFailed as exc:
        raise MediaRejected(413, f"inspecting the video broke a limit: {exc}") from None
    return facts
