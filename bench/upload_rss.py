"""Peak memory of a web worker receiving a 1 GiB video push (issue: under 250 MB).

gunicorn with one sync worker; the body is streamed from here in 1 MiB pieces: the metadata, then
a synthetic MP4 followed by a 1 GiB "free" box (valid MP4 that players and FFmpeg skip), so the
push is accepted and the whole GiB is hashed, encrypted and stored. The figure is the worker's
VmHWM (its most resident memory), before and after."""

import http.client
import json
import time

from bench import stack

PAD = 1024 ** 3 * stack.scale() if stack.scale() < 1 else 1024 ** 3
PIECE = 1024 * 1024


def run() -> dict:
    from devtools.synthetic import synthetic_video

    from .ingest import metadata, scanner_token

    token = scanner_token("upload-rss")
    service, port, _ = stack.gunicorn_start(workers=1)
    worker = service.children()[0]
    before = stack.peak_rss_mb(worker)
    video = synthetic_video(5, seconds=4, size=(640, 360))
    pad = int(PAD)
    boundary = "tsreview-bench-boundary"
    head = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"metadata\"\r\n\r\n{json.dumps(metadata(1))}\r\n"
            f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"big.mp4\"\r\n"
            f"Content-Type: video/mp4\r\n\r\n").encode()
    tail = f"\r\n--{boundary}--\r\n".encode()
    free_box = (pad + 8).to_bytes(4, "big") + b"free"
    length = len(head) + len(video) + len(free_box) + pad + len(tail)
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=600)
    t0 = time.monotonic()
    conn.putrequest("POST", "/api/v1/submissions")
    for name, value in (("Authorization", f"Bearer {token}"), ("Content-Length", str(length)),
                        ("Content-Type", f"multipart/form-data; boundary={boundary}")):
        conn.putheader(name, value)
    conn.endheaders()
    conn.send(head + video + free_box)
    zeros = bytes(PIECE)
    sent = 0
    while sent < pad:
        piece = zeros[: min(PIECE, pad - sent)]
        conn.send(piece)
        sent += len(piece)
    conn.send(tail)
    response = conn.getresponse()
    body = response.read()
    seconds = time.monotonic() - t0
    after = stack.peak_rss_mb(worker)
    result = {"body_mb": round(length / 1024 ** 2), "status": response.status, "seconds": round(seconds, 1),
              "mb_per_s": round(length / 1024 ** 2 / seconds, 1), "worker_peak_rss_mb_before": round(before, 1),
              "worker_peak_rss_mb_after": round(after, 1), "target_mb": 250}
    if response.status != 201:
        result["answer"] = body[:300].decode(errors="replace")
    result["rows"] = [(f"web worker peak RSS receiving a {result['body_mb']} MB video push: {result['worker_peak_rss_mb_after']} MB "
                       f"(answer {result['status']}, {result['mb_per_s']} MB/s)", "< 250 MB",
                       "yes" if response.status == 201 and after < 250 else "no")]
    stack.say(f"1 GiB push: {result['status']} in {result['seconds']} s ({result['mb_per_s']} MB/s); "
              f"worker peak RSS {result['worker_peak_rss_mb_before']} -> {result['worker_peak_rss_mb_after']} MB "
              f"(target < 250 MB)")
    return result
