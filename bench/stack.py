"""What every benchmark needs: its own database, Redis db, media folder and loopback ports; the
production processes (gunicorn, Celery) started and always stopped; a small HTTP client; and
percentiles, peak memory and a place to put the figures.

Nothing here touches the developers' database (tsreview) or the suite's Redis db.
"""

import base64
import http.client
import json
import os
import re
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
VENV_BIN = Path(sys.executable).parent
OUT = ROOT / "bench" / "out"

PG_ADMIN = os.environ.get("BENCH_PG_ADMIN_URL", "postgres://postgres@127.0.0.1:5432/postgres")
# A run of its own can take other names (BENCH_DB_NAME) so two runs never share a database.
DB_NAME = os.environ.get("BENCH_DB_NAME", "tsreview_bench")
TEMPLATE_DB = f"{DB_NAME}_template"  # migrated once; each benchmark starts from a copy
DATABASE_URL = f"postgres://postgres@127.0.0.1:5432/{DB_NAME}"
BROKER_URL = os.environ.get("BENCH_BROKER_URL", "redis://127.0.0.1:6379/11")


def scale() -> float:
    return float(os.environ.get("BENCH_SCALE", "1"))


def scaled(n: int, minimum: int = 1) -> int:
    return max(minimum, round(n * scale()))


# --- Environment -------------------------------------------------------------------------------

def configure_environment(workdir: Path) -> dict:
    """The settings every process of the run shares: production mode on loopback, plain HTTP
    (the TLS proxy is not part of the measurement), the bench database and Redis db, a media
    folder and key of the run's own. The scanner rate limit is lifted: the benchmark measures
    capacity, not the throttle (6000/min per worker by default)."""
    env = {
        "TSREVIEW_ENV": "production",
        "SECRET_KEY": secrets.token_urlsafe(40),
        "ALLOWED_HOSTS": "127.0.0.1",
        "SECURE_SSL_REDIRECT": "false",
        "SECURE_HSTS_SECONDS": "0",
        "DATABASE_URL": DATABASE_URL,
        "CELERY_BROKER_URL": BROKER_URL,
        "CACHE_URL": BROKER_URL,  # as production: the rate limit and sign-in counters in Redis
        "TSREVIEW_VAR_DIR": str(workdir),
        "TSREVIEW_MEDIA_ROOT": str(workdir / "media"),
        "TSREVIEW_MEDIA_KEY": base64.urlsafe_b64encode(os.urandom(32)).decode(),
        "TSREVIEW_AUDIT_KEY": "bench:" + base64.urlsafe_b64encode(os.urandom(32)).decode(),
        "TSREVIEW_AUDIT_CHECKPOINTS": str(workdir / "audit-checkpoints.jsonl"),
        "TSREVIEW_SCANNER_RATE": "1000000/min",
        "LOG_LEVEL": "WARNING",
        # The reporter a report needs; the schema the suite uses (relative to the project root).
        "TSREVIEW_REPORTER_FIRST_NAME": "Bench", "TSREVIEW_REPORTER_LAST_NAME": "Reporter",
        "TSREVIEW_REPORTER_EMAIL": "reports@example.org", "TSREVIEW_COMPANY_NAME": "Example Photos",
        "TSREVIEW_CYBERTIP_XSD": os.environ.get("TSREVIEW_CYBERTIP_XSD", "../shared/ncmec/cyber_tipline.xsd"),
        "DJANGO_SETTINGS_MODULE": "tsreview.settings",
    }
    os.environ.update(env)
    os.environ.pop("TSREVIEW_MEDIA_KEY_FILE", None)
    os.environ.pop("TSREVIEW_AUDIT_KEY_FILE", None)
    os.environ.pop("DATABASE_OWNER_URL", None)
    os.environ.pop("DATABASE_URL_FILE", None)
    return env


def django_setup():
    import django

    django.setup()


# --- Database ----------------------------------------------------------------------------------

def _admin(sql: str) -> None:
    import psycopg

    with psycopg.connect(PG_ADMIN.replace("postgres://", "postgresql://"), autocommit=True) as conn:
        conn.execute(sql)


def database_create() -> None:
    """A fresh bench database, migrated, kept as the template every benchmark copies."""
    from django.core.management import call_command
    from django.db import connections

    connections.close_all()
    for name in (DB_NAME, TEMPLATE_DB):
        _admin(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
    _admin(f"CREATE DATABASE {DB_NAME}")
    call_command("migrate", verbosity=0, interactive=False)
    connections.close_all()
    _admin(f"CREATE DATABASE {TEMPLATE_DB} TEMPLATE {DB_NAME}")


def database_reset() -> None:
    """Back to the freshly migrated database (processes using it must be stopped)."""
    from django.db import connections

    connections.close_all()
    _admin(f"DROP DATABASE IF EXISTS {DB_NAME} WITH (FORCE)")
    _admin(f"CREATE DATABASE {DB_NAME} TEMPLATE {TEMPLATE_DB}")


def database_drop() -> None:
    from django.db import connections

    connections.close_all()
    for name in (DB_NAME, TEMPLATE_DB):
        _admin(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def redis_flush() -> None:
    import redis

    client = redis.Redis.from_url(BROKER_URL)
    client.flushdb()
    client.close()


def media_clear() -> None:
    """A new, empty media folder. The old one's files are left to the end of the run: deleting
    thousands of files just before a phase made each file that phase created cost up to 1 ms
    of kernel time more on this machine (ext4 skips inodes freed in the last minutes), and the
    stack creates five files a push where the one-process floor creates one."""
    root = Path(os.environ["TSREVIEW_MEDIA_ROOT"])
    old = root.with_name(f"{root.name}.old")
    old.mkdir(exist_ok=True)
    if root.exists():
        root.rename(old / secrets.token_hex(8))


# --- Processes ---------------------------------------------------------------------------------

def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Service:
    """A process group we started: stopped with SIGTERM, then SIGKILL, by its own id."""

    running: list["Service"] = []

    def __init__(self, name: str, argv: list[str], log: Path, env: dict | None = None):
        self.name, self.log = name, log
        self._log = open(log, "wb")
        self.proc = subprocess.Popen(argv, cwd=ROOT, stdout=self._log, stderr=subprocess.STDOUT, start_new_session=True,
                                     env={**os.environ, **(env or {})})
        Service.running.append(self)

    def children(self) -> list[int]:
        return _descendants(self.proc.pid)

    def stop(self, timeout: float = 20) -> None:
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGTERM)
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(5)
            except ProcessLookupError:
                pass
        self._log.close()
        if self in Service.running:
            Service.running.remove(self)

    @classmethod
    def stop_all(cls) -> None:
        for service in list(cls.running):
            service.stop()


def _descendants(pid: int) -> list[int]:
    found, todo = [], [pid]
    while todo:
        parent = todo.pop()
        try:
            kids = Path(f"/proc/{parent}/task/{parent}/children").read_text().split()
        except OSError:
            kids = []
        for kid in map(int, kids):
            found.append(kid)
            todo.append(kid)
    return found


def gunicorn_start(workers: int = 4) -> tuple[Service, int, Path]:
    """gunicorn as the README runs it, on a free loopback port, logging each request's server
    time (%(D)s, microseconds from the request being read to the response being written)."""
    port = free_port()
    access = OUT / f"gunicorn-{port}-access.log"
    ready = Path(tempfile.mkdtemp(prefix="gunicorn-ready-", dir=OUT))
    argv = [str(VENV_BIN / "gunicorn"), "tsreview.wsgi", "--workers", str(workers), "--bind", f"127.0.0.1:{port}",
            "--access-logfile", str(access), "--access-logformat", "%(m)s %(U)s %(s)s %(D)s", "--timeout", "60",
            "--config", str(ROOT / "bench" / "gunicorn_ready.py")]
    service = Service("gunicorn", argv, OUT / f"gunicorn-{port}.log", env={"BENCH_GUNICORN_READY": str(ready)})
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            # Every worker has loaded the app (bench/gunicorn_ready.py), and one answers.
            status, _, _ = request(port, "GET", "/login/") if len(list(ready.iterdir())) >= workers else (0, None, None)
            if status == 200:
                return service, port, access
        except OSError:
            pass
        if service.proc.poll() is not None:
            break
        time.sleep(0.2)
    service.stop()
    raise RuntimeError(f"gunicorn did not start; see {service.log}")


def celery_start(concurrency: int = 2) -> Service:
    argv = [str(VENV_BIN / "celery"), "-A", "tsreview", "worker", "--loglevel=WARNING", "--concurrency", str(concurrency),
            "--hostname", f"bench-{os.getpid()}@%h", "--without-gossip", "--without-mingle"]
    service = Service("celery", argv, OUT / "celery.log")
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and len(service.children()) < concurrency:
        if service.proc.poll() is not None:
            raise RuntimeError(f"celery did not start; see {service.log}")
        time.sleep(0.2)
    time.sleep(1.0)  # the pool children connect to the broker
    return service


def cpu_seconds() -> dict[str, float]:
    """CPU seconds (user + system) used so far by every process on the machine, with what its
    ended children used (so a PostgreSQL backend or a forked reviewer that has exited still
    counts, in its parent, once reaped), summed by role: gunicorn, celery, decoding (the limited
    children that decode moving media), postgres, redis, this benchmark (its client threads and
    forked children) and the rest. Two readings apart say where a run's CPU went."""
    tick = os.sysconf("SC_CLK_TCK")
    own = os.getpid()
    processes: dict[int, tuple[int, str, float]] = {}  # pid: (parent, command line, seconds)
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2:].split()
        seconds = sum(int(v) for v in fields[11:15]) / tick  # utime, stime, cutime, cstime
        processes[int(entry.name)] = (int(fields[1]), cmdline, seconds)
    roles: dict[str, float] = {}
    for pid, (parent, cmdline, seconds) in processes.items():
        role = ("bench" if pid == own else "gunicorn" if "gunicorn" in cmdline
                else "celery" if "celery" in cmdline else "decoding" if "forkserver" in cmdline
                else "postgres" if "postgres" in cmdline
                else "redis" if "redis" in cmdline else "other")
        if role in ("gunicorn", "celery") and role not in processes.get(parent, (0, "", 0))[1]:
            role += " (parent)"  # the arbiter, or the worker's consumer that feeds its pool
        roles[role] = roles.get(role, 0.0) + seconds
    return roles


def machine_jiffies() -> tuple[int, int]:
    """(busy, total) clock ticks of all cores since boot, from /proc/stat: two readings apart
    give how busy the machine was in between."""
    # user nice system idle iowait irq softirq steal (guest and guest_nice are within user and nice)
    values = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:9]]
    idle = values[3] + values[4]  # idle, iowait
    return sum(values) - idle, sum(values)


def busy_share(before: tuple[int, int], after: tuple[int, int]) -> float:
    return (after[0] - before[0]) / max(1, after[1] - before[1])


def cpu_used(before: dict[str, float], after: dict[str, float]) -> dict[str, float]:
    """CPU seconds per role between two cpu_seconds() readings (take the second after the
    run's processes have been reaped, before stopping the services)."""
    return {role: round(after.get(role, 0.0) - before.get(role, 0.0), 2) for role in sorted(after)
            if after.get(role, 0.0) - before.get(role, 0.0) > 0.005}


def peak_rss_mb(pid: int) -> float:
    """VmHWM: the most resident memory the process has had, in MB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


def server_times(access_log: Path, pattern: str, method: str = "GET", since_line: int = 0) -> list[float]:
    """Server times in ms of the requests whose path matches pattern, from gunicorn's log."""
    regex = re.compile(pattern)
    times = []
    for line in access_log.read_text().splitlines()[since_line:]:
        parts = line.split()
        if len(parts) == 4 and parts[0] == method and regex.fullmatch(parts[1]):
            times.append(int(parts[3]) / 1000)
    return times


# --- HTTP --------------------------------------------------------------------------------------

def request(port: int, method: str, path: str, body: bytes = b"", headers: dict | None = None, timeout: float = 60):
    """One request on a new connection (gunicorn's sync workers close each one); no redirects
    followed. Returns status, headers (lower-cased names; Set-Cookie values as a list), body."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request(method, path, body=body or None, headers=headers or {})
        response = conn.getresponse()
        data = response.read()
        out = {}
        for name, value in response.getheaders():
            name = name.lower()
            if name == "set-cookie":
                out.setdefault(name, []).append(value)
            else:
                out[name] = value
        return response.status, out, data
    finally:
        conn.close()


class Browser:
    """A reviewer's cookies, kept by hand (production cookies are Secure; this is plain HTTP on
    loopback, as behind the TLS proxy)."""

    def __init__(self, port: int, cookies: dict):
        self.port, self.cookies = port, dict(cookies)

    def _headers(self, extra=None):
        headers = {"Cookie": "; ".join(f"{k}={v}" for k, v in self.cookies.items())}
        headers.update(extra or {})
        return headers

    def _keep(self, headers):
        for cookie in headers.get("set-cookie", []):
            name, _, rest = cookie.partition("=")
            self.cookies[name.strip()] = rest.split(";", 1)[0]

    def get(self, path):
        status, headers, body = request(self.port, "GET", path, headers=self._headers())
        self._keep(headers)
        return status, headers, body

    def post(self, path, fields: dict):
        from urllib.parse import urlencode

        body = urlencode(fields, doseq=True).encode()
        status, headers, data = request(self.port, "POST", path, body, self._headers(
            {"Content-Type": "application/x-www-form-urlencoded"}))
        self._keep(headers)
        return status, headers, data


def multipart(fields: list[tuple[str, str, bytes, str | None]]) -> tuple[bytes, str]:
    """(name, filename, data, content type) parts → body and its Content-Type."""
    boundary = "bench" + secrets.token_hex(12)
    chunks = []
    for name, filename, data, content_type in fields:
        disposition = f'form-data; name="{name}"' + (f'; filename="{filename}"' if filename else "")
        head = f"--{boundary}\r\nContent-Disposition: {disposition}\r\n"
        if content_type:
            head += f"Content-Type: {content_type}\r\n"
        chunks += [head.encode(), b"\r\n", data, b"\r\n"]
    chunks.append(f"--{boundary}--\r\n".encode())
    return b"".join(chunks), f"multipart/form-data; boundary={boundary}"


# --- Figures -----------------------------------------------------------------------------------

def percentile(values, p: float) -> float:
    """Nearest-rank percentile."""
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    rank = max(1, min(len(ordered), -(-len(ordered) * p // 100)))
    return ordered[int(rank) - 1]


def say(*parts) -> None:
    print(*parts, flush=True)


def machine() -> dict:
    meminfo = Path("/proc/meminfo").read_text().split("\n", 1)[0].split()
    model = ""
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            model = line.split(":", 1)[1].strip()
            break
    return {"cores": os.cpu_count(), "memory_gib": round(int(meminfo[1]) / 1024 / 1024, 1), "cpu": model,
            "date": time.strftime("%Y-%m-%d %H:%M %Z"), "scale": scale(),
            "load_before": Path("/proc/loadavg").read_text().split()[:3]}


def workdir() -> Path:
    OUT.mkdir(parents=True, exist_ok=True)
    return Path(tempfile.mkdtemp(prefix="tsreview-bench-"))


def write_json(path: Path, data) -> None:
    path.write_text(json.dumps(data, indent=2, default=str))
