"""No plaintext on disk, ever (issue 13, finding 3): a push larger than Django's old 4 MB
in-memory threshold is sent slowly to a real gunicorn worker, which is killed mid-upload; no
file under its temporary folder or the media root holds any of the bytes sent."""

import json
import os
import random
import signal
import socket
import sys
import time
import uuid
from pathlib import Path

import pytest

from .factories import make_metadata
from .support.fault_services import Process, app_env, free_port, listening, wait_for

OLD_THRESHOLD = 4 * 1024 * 1024  # Django's FILE_UPLOAD_MAX_MEMORY_SIZE was 4 MB: beyond it, a temp file
BODY_BYTES = 7 * 1024 * 1024


def children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == pid:
                found.append(int(entry.name))
    return found


def holds_any(path: Path, samples: list[bytes]) -> bool:
    try:
        data = path.read_bytes()
    except OSError:
        return False
    return any(sample in data for sample in samples)


@pytest.mark.django_db(transaction=True)
def test_a_worker_killed_mid_upload_leaves_no_plaintext_anywhere(scanner_token, media_root, tmp_path):
    temp = tmp_path / "tmp"  # this gunicorn's TMPDIR: fresh, so anything in it is from this upload
    temp.mkdir()
    media_root.mkdir(parents=True, exist_ok=True)
    port = free_port()
    env = app_env(media_root, TMPDIR=temp, CELERY_BROKER_URL=f"redis://127.0.0.1:{free_port()}/0")
    server = Process([sys.executable, "-m", "gunicorn", "tsreview.wsgi", "--bind", f"127.0.0.1:{port}",
                      "--workers", "1", "--timeout", "300"], env=env, log=tmp_path / "gunicorn.log")
    try:
        assert wait_for(lambda: listening(port) or not server.alive(), 60) and server.alive(), server.output()
        assert wait_for(lambda: children(server.pid), 30)
        [worker] = children(server.pid)

        payload = b"\x89PNG\r\n\x1a\n" + random.Random(13).randbytes(BODY_BYTES)
        boundary = uuid.uuid4().hex
        head = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"metadata\"\r\n"
                f"Content-Type: application/json\r\n\r\n{json.dumps(make_metadata('slow'))}\r\n"
                f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"big.png\"\r\n"
                f"Content-Type: image/png\r\n\r\n").encode()
        tail = f"\r\n--{boundary}--\r\n".encode()
        request = (f"POST /api/v1/submissions HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {scanner_token}\r\n"
                   f"Content-Type: multipart/form-data; boundary={boundary}\r\n"
                   f"Content-Length: {len(head) + len(payload) + len(tail)}\r\n\r\n").encode() + head

        def received() -> int:  # what the worker has taken in so far: the file it writes grows with it
            files = [p for folder in (media_root, temp) for p in folder.rglob("*") if p.is_file()]
            return max((p.stat().st_size for p in files if p.exists()), default=0)

        sent = 0
        with socket.create_connection(("127.0.0.1", port)) as sock:
            sock.sendall(request)
            # Slowly, past the old threshold, until the worker has taken in more than it.
            while received() < OLD_THRESHOLD + 512 * 1024 and sent < len(payload) - 256 * 1024:
                sock.sendall(payload[sent: sent + 128 * 1024])
                sent += 128 * 1024
                time.sleep(0.02)
            assert received() > OLD_THRESHOLD, (received(), sent)
            os.kill(worker, signal.SIGKILL)  # as gunicorn's timeout would, mid-upload
            assert wait_for(lambda: not Path(f"/proc/{worker}").exists() or
                            "Z" in Path(f"/proc/{worker}/stat").read_text().rsplit(")", 1)[1].split()[0], 30)
    finally:
        server.stop()

    # Pieces of what reached the worker, from the start, the middle and the end of it.
    samples = [payload[:64]] + [payload[offset: offset + 64] for offset in range(4096, sent - 64, sent // 40)]
    assert len(samples) > 30
    for folder in (temp, media_root):
        files = [p for p in folder.rglob("*") if p.is_file()]
        assert not [p for p in files if holds_any(p, samples)], f"plaintext under {folder}"
    assert not [p for p in temp.rglob("*") if p.is_file() and p.stat().st_size > 64 * 1024]  # nothing spooled at all
