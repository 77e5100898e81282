"""Video derivatives of a 60 s 1280×720 H.264 synthetic video, against Debian's `ffmpeg` making
comparable frames and sheet from the command line in the same run (the issue's peer; target:
ratio ≤ 1.5×), and the whole push of that video through gunicorn until it is queued.

Ours (intake.decode.video_previews_limited, the worker's path: a child forked from a preloaded
forkserver, under its limits, reading the encrypted store; the first call of a process, which
starts the forkserver, is reported apart): up to 48 frames at a regular interval and at scene
changes; per frame a still at natural size, three blurred greyscale inspect views and a PDQ;
a contact sheet with its blurred previews. The peer: one ffmpeg run selecting the frames the
same way (interval or scene score), writing each as a JPEG still and a greyscale 400 px blurred
JPEG, and a 4×3 tiled sheet."""

import resource
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

from bench import stack


def _peer(path: Path, out: Path, interval: float) -> tuple[float, float]:
    select = f"isnan(prev_selected_t)+gte(t-prev_selected_t\\,{interval:.3f})+gt(scene\\,0.3)"
    graph = (f"[0:v]select='{select}',split=3[a][b][c];"
             "[a]null[still];"
             "[b]format=gray,scale=400:-2,gblur=sigma=12[blur];"
             "[c]scale=320:-2,format=gray,tile=4x3[sheet]")
    argv = ["ffmpeg", "-loglevel", "error", "-y", "-i", str(path), "-filter_complex", graph,
            "-map", "[still]", "-fps_mode", "vfr", "-q:v", "3", str(out / "still_%02d.jpg"),
            "-map", "[blur]", "-fps_mode", "vfr", "-q:v", "8", str(out / "blur_%02d.jpg"),
            "-map", "[sheet]", "-frames:v", "1", str(out / "sheet.jpg")]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    subprocess.run(argv, check=True)
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime


def run() -> dict:
    from devtools.synthetic import synthetic_video
    from reports.intake.decode import video_previews_limited
    from reports.intake.storage import media_store

    if not shutil.which("ffmpeg"):
        raise RuntimeError("the peer, Debian's ffmpeg, is not installed (apt-get install ffmpeg)")
    seconds = max(6, round(60 * stack.scale()))
    t0 = time.perf_counter()
    video = synthetic_video(60, seconds=seconds, size=(1280, 720), fps=30, cuts=6)
    stack.say(f"made a {seconds} s 1280×720 H.264 video ({len(video) / 1e6:.1f} MB) in {time.perf_counter() - t0:.1f} s")
    store = media_store()
    writer = store.writer()
    writer.write(video)
    blob = writer.finish()
    ours, peer, ours_cpu, peer_cpu = [], [], [], []
    t = time.perf_counter()
    video_previews_limited(blob)  # the first in this process also starts the forkserver
    cold = time.perf_counter() - t
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "in.mp4"
        path.write_bytes(video)  # for the command-line peer only: synthetic, not a pushed file
        for _ in range(5):
            used = {}
            t = time.perf_counter()
            previews, times, _ = video_previews_limited(blob, used=used)
            ours.append(time.perf_counter() - t)
            ours_cpu.append(used["cpu"])
            out = Path(tmp) / f"peer{len(peer)}"
            out.mkdir()
            wall, cpu = _peer(path, out, seconds / 24)
            peer.append(wall)
            peer_cpu.append(cpu)
        peer_frames = len(list(out.glob("still_*.jpg")))
    ours_s, peer_s = min(ours), min(peer)
    ratio = ours_s / peer_s
    cpu_ratio = min(ours_cpu) / min(peer_cpu)
    load = Path("/proc/loadavg").read_text().split()[:3]
    stack.say(f"derivatives: ours {ours_s:.2f} s ({len(times)} frames, {len(previews)} files; the first in this "
              f"process, starting the forkserver, {cold:.2f} s), "
              f"ffmpeg {peer_s:.2f} s ({peer_frames} frames) -> ratio {ratio:.2f} (target <= 1.5); "
              f"CPU time ours {min(ours_cpu):.2f} s, ffmpeg {min(peer_cpu):.2f} s -> {cpu_ratio:.2f}; "
              f"each run, ours {', '.join(f'{x:.2f}' for x in ours)} s, ffmpeg {', '.join(f'{x:.2f}' for x in peer)} s; "
              f"load average {' '.join(load)}")
    ingest = _ingest(video)
    stack.say(f"ingest end to end (gunicorn + Celery): answered {ingest['status']} in {ingest['answer_s']:.2f} s, "
              f"queued for review after {ingest['queued_s']:.2f} s")
    return {"video_seconds": seconds, "video_mb": round(len(video) / 1e6, 1), "ours_s": round(ours_s, 2),
            "ours_first_s": round(cold, 2), "ours_cpu_s": min(ours_cpu), "peer_cpu_s": round(min(peer_cpu), 2),
            "cpu_ratio": round(cpu_ratio, 2), "load_average": load,
            "peer_s": round(peer_s, 2), "ratio": round(ratio, 2), "frames": len(times), "peer_frames": peer_frames,
            "ingest": ingest,
            "rows": [(f"derivatives of a {seconds} s 1280×720 H.264 video: {ours_s:.2f} s vs ffmpeg {peer_s:.2f} s "
                      f"→ {ratio:.2f}×", "≤ 1.5×", "yes" if ratio <= 1.5 else "no"),
                     (f"that video pushed through gunicorn: answered in {ingest['answer_s']:.2f} s, queued for review "
                      f"after {ingest['queued_s']:.2f} s (previews by a Celery worker)", "(recorded)", "—")]}


def _ingest(video: bytes) -> dict:
    """One push of the video through gunicorn, then a Celery worker's derivatives, until queued."""
    import json

    from reports.models import Item

    from .ingest import metadata, scanner_token

    stack.database_reset()
    stack.media_clear()
    stack.redis_flush()
    token = scanner_token("video-ingest")
    celery = stack.celery_start(concurrency=1)
    web, port, _ = stack.gunicorn_start(workers=1)
    body, content_type = stack.multipart([("metadata", "", json.dumps(metadata(1)).encode(), None),
                                          ("file", "video.mp4", video, "video/mp4")])
    t0 = time.perf_counter()
    status, _, _ = stack.request(port, "POST", "/api/v1/submissions", body,
                                 {"Authorization": f"Bearer {token}", "Content-Type": content_type})
    answered = time.perf_counter() - t0
    deadline = time.monotonic() + 300
    while not Item.objects.filter(state=Item.State.QUEUED).exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    queued = time.perf_counter() - t0
    web.stop()
    celery.stop()
    return {"status": status, "answer_s": round(answered, 2), "queued_s": round(queued, 2)}
