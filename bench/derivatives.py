"""2. Derivatives (and 7. memory of a Celery worker making them).

The previews of a 12-megapixel JPEG and of a 4000×3000 PNG: reports.media.previews_make (one
decode, the thumbnail and three blurred inspect views) against vipsthumbnail making one
1000×600 thumbnail of the same file, both timed in this run (median of several). Then the same
images go through intake to a Celery worker, whose peak resident memory is read.
"""

import shutil
import statistics
import subprocess
import time

from . import stack

SIZE = (4000, 3000)
INSPECT_BOX = "1000x600"  # media.INSPECT_MAX_WIDTH × INSPECT_HEIGHT, the largest preview


def _ours(data: bytes) -> float:
    from reports.intake.media import previews_make

    t = time.perf_counter()
    previews_make(data)
    return time.perf_counter() - t


def _vips(path, out) -> float:
    t = time.perf_counter()
    subprocess.run(["vipsthumbnail", str(path), "--size", INSPECT_BOX, "-o", f"{out}[Q=80]"], check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, timeout=60)
    return time.perf_counter() - t


def vips_startup(repeats: int) -> float:
    """vipsthumbnail on a 64×48 JPEG: what starting the command costs, whatever the image."""
    from PIL import Image

    folder = stack.OUT / "derivatives"
    folder.mkdir(exist_ok=True)
    Image.new("RGB", (64, 48)).save(folder / "tiny.jpg")
    _vips(folder / "tiny.jpg", folder / "tiny-vips.jpg")
    return statistics.median(_vips(folder / "tiny.jpg", folder / "tiny-vips.jpg") for _ in range(repeats)) * 1000


def compare(name: str, data: bytes, suffix: str, repeats: int, startup_ms: float) -> dict:
    folder = stack.OUT / "derivatives"
    folder.mkdir(exist_ok=True)
    path = folder / f"{name}.{suffix}"
    path.write_bytes(data)
    ours, vips = [], []
    _ours(data), _vips(path, folder / f"{name}-vips.jpg")  # warm caches and imports
    for _ in range(repeats):  # interleaved, so that a busy moment hits both
        ours.append(_ours(data))
        vips.append(_vips(path, folder / f"{name}-vips.jpg"))
    ours_ms, vips_ms = statistics.median(ours) * 1000, statistics.median(vips) * 1000
    work_ms = max(1.0, vips_ms - startup_ms)
    stack.say(f"{name} ({len(data) / 1e6:.1f} MB): previews_make {ours_ms:.0f} ms, vipsthumbnail {vips_ms:.0f} ms "
              f"(medians of {repeats}); ratio {ours_ms / vips_ms:.2f}; against vipsthumbnail less its start-up "
              f"({startup_ms:.0f} ms): {ours_ms / work_ms:.2f}")
    return {"bytes": len(data), "ours_ms": ours_ms, "vips_ms": vips_ms, "ratio": ours_ms / vips_ms,
            "vips_work_ms": work_ms, "ratio_to_work": ours_ms / work_ms,
            "ours_all_ms": [round(x * 1000) for x in ours], "vips_all_ms": [round(x * 1000) for x in vips]}


def through_celery(images: list[tuple[str, bytes, str]]) -> dict:
    """Push each image through intake in this process; a Celery worker makes the previews."""
    from django.db import connection

    from reports.intake.media import image_inspect
    from reports.intake.provenance import MetadataInput
    from reports.intake.submission import submission_create
    from reports.models import Item, Scanner

    from .ingest import metadata, scanner_token

    scanner_token("bench-large")
    scanner = Scanner.objects.get(name="bench-large")
    celery = stack.celery_start(concurrency=2)
    baseline = max(stack.peak_rss_mb(pid) for pid in celery.children())
    t0 = time.perf_counter()
    for i, (_, data, mime) in enumerate(images):
        validator = MetadataInput(data=metadata(i))
        validator.is_valid(raise_exception=True)
        submission_create(scanner=scanner, metadata=validator.validated_data, data=data,
                          facts=image_inspect(data, claimed_type=mime))
    deadline = time.monotonic() + 300
    while Item.objects.filter(state=Item.State.QUEUED).count() < len(images) and time.monotonic() < deadline:
        time.sleep(0.05)
    seconds = time.perf_counter() - t0
    queued = Item.objects.filter(state=Item.State.QUEUED).count()
    peak = max(stack.peak_rss_mb(pid) for pid in celery.children())
    celery.stop()
    connection.close()
    stack.say(f"through Celery: {queued}/{len(images)} large images queued in {seconds:.1f} s; pool worker peak RSS "
              f"{peak:.0f} MB (idle {baseline:.0f} MB)")
    return {"queued": queued, "seconds": seconds, "celery_worker_peak_rss_mb": peak, "celery_worker_idle_rss_mb": baseline}


def run() -> dict:
    from devtools.synthetic import synthetic_image

    if not shutil.which("vipsthumbnail"):
        raise RuntimeError("vipsthumbnail is missing (Debian: apt-get install libvips-tools; make bench installs it)")
    repeats = stack.scaled(7, 3)
    t = time.perf_counter()
    jpeg = synthetic_image(20_001, size=SIZE)
    png = synthetic_image(20_002, size=SIZE, fmt="PNG")
    stack.say(f"made a {SIZE[0]}×{SIZE[1]} JPEG and PNG in {time.perf_counter() - t:.1f} s")
    startup = vips_startup(repeats)
    stack.say(f"vipsthumbnail start-up (a 64×48 JPEG): {startup:.0f} ms")
    results = {"vips_startup_ms": startup, "jpeg": compare("12mp-jpeg", jpeg, "jpg", repeats, startup),
               "png": compare("12mp-png", png, "png", repeats, startup)}
    more = [synthetic_image(20_003 + i, size=SIZE) for i in range(stack.scaled(4, 1))]
    results["celery"] = through_celery([("jpeg", jpeg, "image/jpeg"), ("png", png, "image/png")]
                                       + [("jpeg", d, "image/jpeg") for d in more])
    results["rows"] = [
        (f"12 MP JPEG previews {results['jpeg']['ours_ms']:.0f} ms vs vipsthumbnail {results['jpeg']['vips_ms']:.0f} ms: "
         f"{results['jpeg']['ratio']:.2f}× (against vips's work less its {startup:.0f} ms start-up: "
         f"{results['jpeg']['ratio_to_work']:.2f}×)", "≤ 2×", "yes" if results["jpeg"]["ratio"] <= 2 else "**no**"),
        (f"4000×3000 PNG previews {results['png']['ours_ms']:.0f} ms vs vipsthumbnail {results['png']['vips_ms']:.0f} ms: "
         f"{results['png']['ratio']:.2f}× (less start-up: {results['png']['ratio_to_work']:.2f}×)", "≤ 2×",
         "yes" if results["png"]["ratio"] <= 2 else "**no**"),
        (f"peak RSS of a Celery worker making large previews: {results['celery']['celery_worker_peak_rss_mb']:.0f} MB "
         f"(idle {results['celery']['celery_worker_idle_rss_mb']:.0f} MB)", "(recorded)", "—"),
    ]
    return results
