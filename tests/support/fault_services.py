"""Processes a fault test starts and always stops: its own redis-server, gunicorn, Celery
workers, and a TCP proxy in front of PostgreSQL. Loopback only."""

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from urllib.parse import quote

from django.conf import settings
from django.db import connection

from ..factories import TEST_MEDIA_KEY


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for(predicate, seconds=60, interval=0.2) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return False


def listening(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def app_env(media_root, **overrides) -> dict:
    """The environment of an app process on the test database (pytest-django's test_ one)."""
    db = connection.settings_dict  # the runtime role (tests/conftest.py)
    login = quote(db["USER"]) + (f":{quote(db['PASSWORD'])}" if db["PASSWORD"] else "")
    url = f"postgres://{login}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"
    env = {**os.environ, "DATABASE_URL": url, "CELERY_BROKER_URL": settings.CELERY_BROKER_URL,
           "TSREVIEW_MEDIA_ROOT": str(media_root), "TSREVIEW_MEDIA_KEY": TEST_MEDIA_KEY, "DJANGO_SETTINGS_MODULE": "tsreview.settings",
           "TSREVIEW_AUDIT_KEY": settings.TSREVIEW_AUDIT_KEY, "TSREVIEW_AUDIT_CHECKPOINTS": settings.TSREVIEW_AUDIT_CHECKPOINTS}
    env.pop("DATABASE_OWNER_URL", None)
    env.update({k: str(v) for k, v in overrides.items()})
    return env


class Process:
    """A child in its own process group, logging to a file; stop() ends the group."""

    def __init__(self, args, *, env, log: Path, cwd: Path | None = None):
        self.log = log
        with open(log, "ab") as out:
            self.popen = subprocess.Popen(args, env=env, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                          start_new_session=True, cwd=cwd)

    @property
    def pid(self) -> int:
        return self.popen.pid

    def alive(self) -> bool:
        return self.popen.poll() is None

    def kill(self) -> None:
        """SIGKILL the whole group: no shutdown, no acknowledgements."""
        if self.alive():
            os.killpg(self.popen.pid, signal.SIGKILL)
        self.popen.wait(timeout=30)

    def stop(self) -> None:
        if self.alive():
            os.killpg(self.popen.pid, signal.SIGTERM)
            try:
                self.popen.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.kill()

    def output(self) -> str:
        return self.log.read_text(errors="replace")[-4000:] if self.log.exists() else ""


def redis_server(port: int, folder: Path) -> Process:
    folder.mkdir(parents=True, exist_ok=True)
    server = Process(["redis-server", "--bind", "127.0.0.1", "--port", str(port), "--save", "", "--appendonly", "no",
                      "--dir", str(folder)], env=dict(os.environ), log=folder / "redis.log")
    assert wait_for(lambda: listening(port), 30), server.output()
    return server


def gunicorn(port: int, env: dict, log: Path, cwd: Path | None = None) -> Process:
    server = Process([sys.executable, "-m", "gunicorn", "tsreview.wsgi", "--bind", f"127.0.0.1:{port}", "--workers", "1",
                      "--timeout", "120"], env=env, log=log, cwd=cwd)
    assert wait_for(lambda: listening(port) or not server.alive(), 60) and server.alive(), server.output()
    return server


def celery_worker(env: dict, log: Path, *extra, cwd: Path | None = None) -> Process:
    return Process([sys.executable, "-m", "celery", "-A", "tsreview", "worker", "--pool=solo", "--concurrency=1",
                    "--without-gossip", "--without-mingle", "--without-heartbeat", "--loglevel=WARNING", *extra],
                   env=env, log=log, cwd=cwd)


class TcpProxy:
    """Forwards 127.0.0.1:port to a target; stop() closes the listener and every connection
    through it, as a database server that went away would; start() serves again."""

    def __init__(self, target_port: int, port: int | None = None):
        self.target_port, self.port = target_port, port or free_port()
        self._sockets, self._lock, self._listener = [], threading.Lock(), None

    def start(self) -> "TcpProxy":
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(64)
        self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()
        return self

    def _accept(self, listener):
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return  # closed by stop()
            try:
                upstream = socket.create_connection(("127.0.0.1", self.target_port), timeout=5)
            except OSError:
                client.close()
                continue
            upstream.settimeout(None)
            with self._lock:
                self._sockets += [client, upstream]
            for src, dst in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(src, dst), daemon=True).start()

    @staticmethod
    def _pipe(src, dst):
        try:
            while data := src.recv(65536):
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for sock in (src, dst):
                try:
                    sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def stop(self) -> None:
        if self._listener is not None:
            try:
                self._listener.shutdown(socket.SHUT_RDWR)  # wakes the accepting thread; close() alone does not
            except OSError:
                pass
            self._listener.close()
            self._listener = None
        with self._lock:
            sockets, self._sockets = self._sockets, []
        for sock in sockets:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            sock.close()
