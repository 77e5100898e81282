"""tsreview settings: one file, read from the environment.

With no environment at all this is the embedded default (SQLite, tasks run in-process, files
and a generated media key under ./var). Production sets TSREVIEW_ENV=production and the
variables listed in docs/deploy.md; anything secret may also come from a file (NAME_FILE).
"""

import json
import os
from pathlib import Path
from urllib.parse import unquote, urlparse

BASE_DIR = Path(__file__).resolve().parent.parent


def env(name, default=""):
    """A variable from the environment, or from the file named by NAME_FILE."""
    if os.environ.get(f"{name}_FILE"):
        return Path(os.environ[f"{name}_FILE"]).read_text().strip()
    return os.environ.get(name, default)


def env_bool(name, default=False):
    return env(name, str(default)).lower() in ("1", "true", "yes", "on")


def env_int(name, default):
    return int(env(name, str(default)))


def env_float(name, default):
    return float(env(name, str(default)))


def database_from_url(url):
    """postgres://user:pass@host:port/name or sqlite:///path (relative to the project)."""
    parts = urlparse(url)
    if parts.scheme == "sqlite":
        path = parts.path[1:] if parts.path.startswith("/") else parts.path
        # The embedded default serves one team's pages from one process: WAL lets reads go on
        # while one write commits; IMMEDIATE takes the write lock when a transaction starts
        # (no "database is locked" halfway through); the timeout lets writers queue briefly.
        return {"ENGINE": "django.db.backends.sqlite3", "NAME": BASE_DIR / path if path else ":memory:",
                "OPTIONS": {"transaction_mode": "IMMEDIATE", "timeout": 20,
                            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;"}}
    if parts.scheme in ("postgres", "postgresql"):
        return {
            "ENGINE": "django.db.backends.postgresql",
            "NAME": unquote(parts.path.lstrip("/")),
            "USER": unquote(parts.username or ""),
            "PASSWORD": unquote(parts.password or ""),
            "HOST": parts.hostname or "",
            "PORT": str(parts.port or ""),
            "CONN_MAX_AGE": env_int("DB_CONN_MAX_AGE", 60),
            # A kept connection is checked (SELECT 1) before a request or task first uses it, so
            # one that a database restart or failover cut is replaced instead of failing it.
            "CONN_HEALTH_CHECKS": True,
            "OPTIONS": {"connect_timeout": env_int("DB_CONNECT_TIMEOUT", 5)},
        }
    raise ValueError(f"DATABASE_URL: unsupported scheme {parts.scheme!r}")


# Only the two known modes: a mistyped TSREVIEW_ENV (say "prod") must not start the embedded
# demo's settings (no second factor, a default secret) on a production server.
TSREVIEW_ENV = env("TSREVIEW_ENV", "embedded") or "embedded"
if TSREVIEW_ENV not in ("embedded", "production"):
    raise RuntimeError(f"TSREVIEW_ENV={TSREVIEW_ENV!r} is not a known mode: set it to production, or to embedded "
                       "(the demo: SQLite, no second factor, a default secret), or leave it unset (embedded).")
PRODUCTION = TSREVIEW_ENV == "production"
# Where the embedded default keeps its state: the SQLite database, media, keys, audit checkpoints.
VAR_DIR = Path(env("TSREVIEW_VAR_DIR", str(BASE_DIR / "var")))

SECRET_KEY = env("SECRET_KEY", "" if PRODUCTION else "embedded-default-not-secret")
if PRODUCTION and not SECRET_KEY:
    raise RuntimeError("SECRET_KEY must be set in production")
DEBUG = env_bool("DEBUG", False)
ALLOWED_HOSTS = [h for h in env("ALLOWED_HOSTS", "127.0.0.1,localhost,testserver").split(",") if h]
CSRF_TRUSTED_ORIGINS = [o for o in env("CSRF_TRUSTED_ORIGINS", "").split(",") if o]

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django_otp",
    "django_otp.plugins.otp_totp",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "reports",
]

MIDDLEWARE = [
    "tsreview.observability.RequestIdMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "tsreview.middleware.SecurityHeadersMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "tsreview.middleware.NullOriginMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django_otp.middleware.OTPMiddleware",
    "accounts.middleware.TwoFactorMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django.contrib.auth.middleware.LoginRequiredMiddleware",
]

ROOT_URLCONF = "tsreview.urls"
WSGI_APPLICATION = "tsreview.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "reports.web.context.nav_context",
            ],
        },
    },
]

# Two roles in production (docs/security.md): DATABASE_URL is the runtime role that web and
# workers use (no UPDATE or DELETE on the append-only tables, no TRUNCATE, no DDL, no trigger
# control); DATABASE_OWNER_URL is the role that owns the tables and runs
# `manage.py migrate --database owner` (which also grants the runtime role its privileges).
# Without DATABASE_OWNER_URL one role does both (the embedded SQLite default, a first try).
DATABASES = {"default": database_from_url(env("DATABASE_URL", f"sqlite:///{VAR_DIR.resolve() / 'tsreview.sqlite3'}"))}
if env("DATABASE_OWNER_URL"):
    DATABASES["owner"] = database_from_url(env("DATABASE_OWNER_URL"))
if DATABASES["default"]["ENGINE"].endswith("sqlite3") and DATABASES["default"]["NAME"] != ":memory:":
    # The embedded database holds who looked at what: only this account may read it. Its folder
    # (the embedded default's var/) is made 0700; the file is created 0600 before SQLite opens
    # it (SQLite gives its -wal and -shm files the same mode) and narrowed if it was wider.
    _sqlite = Path(DATABASES["default"]["NAME"])
    if not _sqlite.parent.exists():
        _sqlite.parent.mkdir(parents=True, mode=0o700)
    elif _sqlite.parent.resolve() in (VAR_DIR.resolve(), (BASE_DIR / "var").resolve()) and _sqlite.parent.stat().st_mode & 0o077:
        _sqlite.parent.chmod(0o700)  # ours: an older var/ made with the default umask
    os.close(os.open(_sqlite, os.O_WRONLY | os.O_CREAT, 0o600))
    for _path in (_sqlite, _sqlite.with_name(_sqlite.name + "-wal"), _sqlite.with_name(_sqlite.name + "-shm")):
        if _path.exists() and _path.stat().st_mode & 0o077:
            _path.chmod(0o600)
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator", "OPTIONS": {"min_length": 12}},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "login"
# Password + TOTP for every person; the embedded demo relaxes it and says so on the login page.
TSREVIEW_REQUIRE_2FA = env_bool("TSREVIEW_REQUIRE_2FA", PRODUCTION)
OTP_TOTP_ISSUER = env("OTP_TOTP_ISSUER", "tsreview")
# Failed sign-ins per name and per address in a window of this many minutes, counted by an
# atomic counter in the cache (CACHE_URL: shared by every web worker) before the password check.
TSREVIEW_LOGIN_FAILURES_PER_USER = env_int("TSREVIEW_LOGIN_FAILURES_PER_USER", 5)
TSREVIEW_LOGIN_FAILURES_PER_IP = env_int("TSREVIEW_LOGIN_FAILURES_PER_IP", 20)
TSREVIEW_LOGIN_LOCKOUT_MINUTES = env_int("TSREVIEW_LOGIN_LOCKOUT_MINUTES", 15)
# The TLS proxy in front (README): its address is not the client's; X-Forwarded-For is read
# only from these. None by default: the header is ignored unless the proxy is listed here.
TSREVIEW_TRUSTED_PROXIES = [h.strip() for h in env("TSREVIEW_TRUSTED_PROXIES", "").split(",") if h.strip()]
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "login"

LANGUAGE_CODE = "en-gb"
TIME_ZONE = env("TIME_ZONE", "UTC")
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = Path(env("STATIC_ROOT", str(VAR_DIR / "static")))

# --- Sessions and cookies -------------------------------------------------------------------
SESSION_COOKIE_AGE = env_int("SESSION_IDLE_SECONDS", 30 * 60)
SESSION_SAVE_EVERY_REQUEST = True  # the age is an idle timeout, renewed by activity
SESSION_EXPIRE_AT_BROWSER_CLOSE = True
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
CSRF_COOKIE_HTTPONLY = True
SESSION_COOKIE_SECURE = CSRF_COOKIE_SECURE = PRODUCTION
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "no-referrer"
X_FRAME_OPTIONS = "DENY"
if PRODUCTION:
    SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", True)
    SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^readyz$"]  # a load balancer asks over plain HTTP
    SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 31536000)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = True
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")

# --- Media: encrypted at rest, outside any served folder --------------------------------------
# Where the ciphertext lives: "local" (a folder, the embedded default) or "s3" (an S3-compatible
# bucket through django-storages; encryption happens before upload, docs/deploy.md).
TSREVIEW_MEDIA_STORAGE = env("TSREVIEW_MEDIA_STORAGE", "local")
TSREVIEW_MEDIA_ROOT = Path(env("TSREVIEW_MEDIA_ROOT", str(VAR_DIR / "media")))
TSREVIEW_S3_BUCKET = env("TSREVIEW_S3_BUCKET", "")
TSREVIEW_S3_ENDPOINT_URL = env("TSREVIEW_S3_ENDPOINT_URL", "")  # empty: AWS itself
TSREVIEW_S3_REGION = env("TSREVIEW_S3_REGION", "")
TSREVIEW_S3_ACCESS_KEY_ID = env("TSREVIEW_S3_ACCESS_KEY_ID", "")  # empty: boto3's own chain (instance role, ...)
TSREVIEW_S3_SECRET_ACCESS_KEY = env("TSREVIEW_S3_SECRET_ACCESS_KEY", "")
TSREVIEW_S3_PREFIX = env("TSREVIEW_S3_PREFIX", "")  # a folder in the bucket, if it is shared
TSREVIEW_S3_ADDRESSING_STYLE = env("TSREVIEW_S3_ADDRESSING_STYLE", "")  # "path" for most self-hosted servers
# 32 bytes, urlsafe base64. The embedded default makes var/media.key on first use.
TSREVIEW_MEDIA_KEY = env("TSREVIEW_MEDIA_KEY", "")
TSREVIEW_MEDIA_KEY_FILE_DEFAULT = None if PRODUCTION else VAR_DIR / "media.key"
# Earlier keys, comma-separated, still accepted for reading during a rotation (docs/security.md).
TSREVIEW_MEDIA_OLD_KEYS = env("TSREVIEW_MEDIA_OLD_KEYS", "")
TSREVIEW_MAX_UPLOAD_BYTES = env_int("TSREVIEW_MAX_UPLOAD_BYTES", 25 * 1024 * 1024)
TSREVIEW_MAX_IMAGE_PIXELS = env_int("TSREVIEW_MAX_IMAGE_PIXELS", 50_000_000)
TSREVIEW_MAX_FRAMES = env_int("TSREVIEW_MAX_FRAMES", 1000)
# Moving media (DESIGN §5b). Each refusal names its limit. A video's upload streams into the
# encrypted store, so this limit is not held in memory.
TSREVIEW_MAX_VIDEO_BYTES = env_int("TSREVIEW_MAX_VIDEO_BYTES", 2 * 1024 ** 3)
TSREVIEW_VIDEO_MAX_SECONDS = env_int("TSREVIEW_VIDEO_MAX_SECONDS", 3 * 3600)
TSREVIEW_VIDEO_MAX_PIXELS = env_int("TSREVIEW_VIDEO_MAX_PIXELS", 3840 * 2160)
TSREVIEW_VIDEO_MAX_FRAMES = env_int("TSREVIEW_VIDEO_MAX_FRAMES", 3 * 3600 * 60)
TSREVIEW_VIDEO_MAX_FPS = env_int("TSREVIEW_VIDEO_MAX_FPS", 120)
TSREVIEW_VIDEO_MAX_STREAMS = env_int("TSREVIEW_VIDEO_MAX_STREAMS", 8)
# At most this many frames are sampled (regular interval plus scene changes) for review.
TSREVIEW_VIDEO_SAMPLED_FRAMES = env_int("TSREVIEW_VIDEO_SAMPLED_FRAMES", 48)
# "Play a segment": a reduced clip without sound of at most this many seconds.
TSREVIEW_VIDEO_SEGMENT_SECONDS = env_int("TSREVIEW_VIDEO_SEGMENT_SECONDS", 10)
# A video's derivatives are made in a child process under these limits (address space, CPU).
TSREVIEW_DECODE_MEMORY_BYTES = env_int("TSREVIEW_DECODE_MEMORY_BYTES", 3 * 1024 ** 3)
TSREVIEW_DECODE_CPU_SECONDS = env_int("TSREVIEW_DECODE_CPU_SECONDS", 300)
# Django reads non-file fields into memory; the metadata part is small.
DATA_UPLOAD_MAX_MEMORY_SIZE = 1024 * 1024
# Uploads are held in memory up to the upload limit and never spooled to a temporary file: the
# bytes of unreviewed media are never on disk in plaintext (no TemporaryFileUploadHandler; a
# body over the limit is refused by its Content-Length before it is read).
FILE_UPLOAD_HANDLERS = ["django.core.files.uploadhandler.MemoryFileUploadHandler"]
FILE_UPLOAD_MAX_MEMORY_SIZE = TSREVIEW_MAX_UPLOAD_BYTES + 1024 * 1024

# --- The audit log (DESIGN §6, docs/security.md) -------------------------------------------
# Links are HMAC-SHA256 under this key, which is not in the database: "ID:KEY" with KEY 32 bytes
# in urlsafe base64 and ID a short name of your choosing (the embedded default makes
# var/audit.key on first use). Earlier keys stay listed in TSREVIEW_AUDIT_OLD_KEYS (comma-
# separated ID:KEY) so that the links they made still verify after a rotation.
TSREVIEW_AUDIT_KEY = env("TSREVIEW_AUDIT_KEY", "")
TSREVIEW_AUDIT_KEY_FILE_DEFAULT = None if PRODUCTION else VAR_DIR / "audit.key"
TSREVIEW_AUDIT_OLD_KEYS = env("TSREVIEW_AUDIT_OLD_KEYS", "")
# Writers only insert events; one chaining step links them in order shortly after (a Celery
# beat task every TSREVIEW_AUDIT_CHAIN_SECONDS; in-process on SQLite). An event still unlinked
# after TSREVIEW_AUDIT_CHAIN_WINDOW_SECONDS fails verify_audit.
TSREVIEW_AUDIT_CHAIN_SECONDS = env_float("TSREVIEW_AUDIT_CHAIN_SECONDS", 5.0)
TSREVIEW_AUDIT_CHAIN_WINDOW_SECONDS = env_float("TSREVIEW_AUDIT_CHAIN_WINDOW_SECONDS", 120.0)
# A number taken by a transaction that rolled back is sealed as a gap only after it has been
# seen missing for this long (a writer between taking its number and inserting its row).
TSREVIEW_AUDIT_GAP_GRACE_SECONDS = env_float("TSREVIEW_AUDIT_GAP_GRACE_SECONDS", 1.0)
# The chain's head is checkpointed outside the database at this interval: a signed line
# appended to TSREVIEW_AUDIT_CHECKPOINTS (a file on append-only storage by default; the store
# is a class, TSREVIEW_AUDIT_CHECKPOINT_STORE, so that an object store can take its place).
TSREVIEW_AUDIT_CHECKPOINT_SECONDS = env_float("TSREVIEW_AUDIT_CHECKPOINT_SECONDS", 60.0)
TSREVIEW_AUDIT_CHECKPOINTS = env("TSREVIEW_AUDIT_CHECKPOINTS", "" if PRODUCTION else str(VAR_DIR / "audit-checkpoints.jsonl"))
TSREVIEW_AUDIT_CHECKPOINT_STORE = env("TSREVIEW_AUDIT_CHECKPOINT_STORE", "reports.audit.FileCheckpointStore")

# --- Review and wellness defaults (DESIGN §5) -------------------------------------------------
TSREVIEW_LEASE_SECONDS = env_int("TSREVIEW_LEASE_SECONDS", 600)
TSREVIEW_REQUIRE_VIEW_TO_CONFIRM = env_bool("TSREVIEW_REQUIRE_VIEW_TO_CONFIRM", True)
# A reveal counts as a view only when the page reports the original painted for this long
# (clamped by the server's own clock).
TSREVIEW_MIN_VIEW_SECONDS = env_float("TSREVIEW_MIN_VIEW_SECONDS", 0.3)
# A reveal whose page never reported its length counts as at most this long (not painted).
TSREVIEW_UNREPORTED_VIEW_SECONDS = env_float("TSREVIEW_UNREPORTED_VIEW_SECONDS", 10.0)
TSREVIEW_QA_SAMPLE_PERCENT = env_int("TSREVIEW_QA_SAMPLE_PERCENT", 10)
# Near-duplicate clusters (docs/clusters.md): a new item whose PDQ is within this Hamming
# distance of a waiting item's is reviewed with it. At most 15 (16 chunks of multi-index hashing).
TSREVIEW_CLUSTERS = env_bool("TSREVIEW_CLUSTERS", True)
# Time targets per priority tier (docs/priority.md): the first tier an item meets applies (urgent
# items, then by the PriorityPolicy's score). Minutes to a first review from intake; hours from
# the confirming decision to a finished CyberTipline report. TSREVIEW_TIME_TARGETS_JSON replaces them.
TSREVIEW_TIME_TARGETS = json.loads(env("TSREVIEW_TIME_TARGETS_JSON", "null")) or [
    {"tier": "urgent", "urgent": True, "first_review_minutes": 60, "report_hours": 24},
    {"tier": "high", "min_priority": 500, "first_review_minutes": 4 * 60, "report_hours": 48},
    {"tier": "normal", "min_priority": -32768, "first_review_minutes": 24 * 60, "report_hours": 7 * 24},
]
TSREVIEW_CLUSTER_DISTANCE = env_int("TSREVIEW_CLUSTER_DISTANCE", 12)
if not 0 <= TSREVIEW_CLUSTER_DISTANCE <= 15:
    raise RuntimeError("TSREVIEW_CLUSTER_DISTANCE must be between 0 and 15")

# --- Prometheus metrics (/metrics, docs/operations.md): a bearer token, or the scraper's address
# (addresses or networks, the direct peer). Neither set: /metrics answers 404 to everyone.
TSREVIEW_METRICS_TOKEN = env("TSREVIEW_METRICS_TOKEN", "")
TSREVIEW_METRICS_ALLOWED_IPS = [h.strip() for h in env("TSREVIEW_METRICS_ALLOWED_IPS", "").split(",") if h.strip()]

# --- Email (target breaches tell leads): SMTP in production, the console in the demo ----------
EMAIL_BACKEND = env("EMAIL_BACKEND", "django.core.mail.backends.smtp.EmailBackend" if PRODUCTION
                    else "django.core.mail.backends.console.EmailBackend")
EMAIL_HOST = env("EMAIL_HOST", "localhost")
EMAIL_PORT = env_int("EMAIL_PORT", 25)
EMAIL_HOST_USER = env("EMAIL_HOST_USER", "")
EMAIL_HOST_PASSWORD = env("EMAIL_HOST_PASSWORD", "")
EMAIL_USE_TLS = env_bool("EMAIL_USE_TLS", False)
DEFAULT_FROM_EMAIL = env("DEFAULT_FROM_EMAIL", "tsreview@localhost")

# --- Provenance policy (DESIGN §4): what a report needs, per source type ----------------------
# Each entry is a list of requirements; a requirement is a field path, or a tuple of paths of
# which one is enough.
TSREVIEW_PROVENANCE_REQUIRED = {
    "user_upload": [
        ("uploader.esp_identifier", "uploader.screen_name", "uploader.email", "uploader.profile_url"),
        "uploader.ip_events.upload",
    ],
    "storage_scan": [
        ("uploader.esp_identifier", "uploader.screen_name", "uploader.email", "uploader.profile_url"),
        "uploaded_at",
    ],
    "web_crawl": [("location_url", "page_url"), "collected_at", "publicly_available"],
    "third_party_dataset": [
        ("location_url", "page_url"),
        "collected_at",
        "publicly_available",
        "dataset.name",
        "dataset.vendor",
    ],
    # AI training data: where the file is still online, when it was collected, and the dataset
    # record that lets the vendor trace it.
    "ai_training_data": [
        ("location_url", "page_url"),
        "collected_at",
        "dataset.name",
        "dataset.vendor",
        "dataset.record_id",
    ],
    # Our own model's output: which model made it, when, and for which request or session.
    "model_output": [
        "generation.model_name",
        "generation.model_version",
        "generation.generated_at",
        ("generation.request_id", "generation.session_id"),
        "generation.user_prompt",
    ],
    "other": ["platform"],
}

# --- CyberTipline reports (DESIGN §4, §7) ----------------------------------------------------
# NCMEC's base URL: test https://exttest.cybertip.org/ispws, production
# https://report.cybertip.org/ispws. Empty means not configured: reports can be drafted and
# previewed but not approved (the report page says so).
# TSREVIEW_CYBERTIP_TARGET picks NCMEC's test or production service, each with its own
# credentials (TSREVIEW_CYBERTIP_TEST_USERNAME/_PASSWORD, ..._PRODUCTION_...). An explicit
# TSREVIEW_CYBERTIP_BASE_URL/_USERNAME/_PASSWORD overrides them (the demo's fake server).
CYBERTIP_BASE_URLS = {"test": "https://exttest.cybertip.org/ispws", "production": "https://report.cybertip.org/ispws"}
TSREVIEW_CYBERTIP_TARGET = env("TSREVIEW_CYBERTIP_TARGET", "")
if TSREVIEW_CYBERTIP_TARGET not in ("", *CYBERTIP_BASE_URLS):
    raise RuntimeError("TSREVIEW_CYBERTIP_TARGET must be test, production or empty")
_cybertip = TSREVIEW_CYBERTIP_TARGET.upper()
TSREVIEW_CYBERTIP_BASE_URL = env("TSREVIEW_CYBERTIP_BASE_URL", CYBERTIP_BASE_URLS.get(TSREVIEW_CYBERTIP_TARGET, ""))
TSREVIEW_CYBERTIP_USERNAME = env("TSREVIEW_CYBERTIP_USERNAME", env(f"TSREVIEW_CYBERTIP_{_cybertip}_USERNAME") if _cybertip else "")
TSREVIEW_CYBERTIP_PASSWORD = env("TSREVIEW_CYBERTIP_PASSWORD", env(f"TSREVIEW_CYBERTIP_{_cybertip}_PASSWORD") if _cybertip else "")
# Which setting the user name came from: recorded on each report with its target and base URL.
TSREVIEW_CYBERTIP_CREDENTIALS_SETTING = ("TSREVIEW_CYBERTIP_USERNAME" if os.environ.get("TSREVIEW_CYBERTIP_USERNAME")
                                         else f"TSREVIEW_CYBERTIP_{_cybertip}_USERNAME" if _cybertip
                                         else "TSREVIEW_CYBERTIP_USERNAME")
TSREVIEW_CYBERTIP_TIMEOUT = float(env("TSREVIEW_CYBERTIP_TIMEOUT", "30"))
TSREVIEW_CYBERTIP_MAX_RETRIES = env_int("TSREVIEW_CYBERTIP_MAX_RETRIES", 8)
# The schema every document is validated against; `manage.py cybertip_fetch_xsd` downloads it.
# A relative path is relative to the project root.
TSREVIEW_CYBERTIP_XSD = env("TSREVIEW_CYBERTIP_XSD", str(VAR_DIR / "cyber_tipline.xsd"))
# The reporter: the reporting person's email is required by NCMEC. The embedded default uses
# example values so that the demo can draft reports; production must set its own.
TSREVIEW_COMPANY_NAME = env("TSREVIEW_COMPANY_NAME", "" if PRODUCTION else "Example Photos (demo)")
TSREVIEW_REPORTER_FIRST_NAME = env("TSREVIEW_REPORTER_FIRST_NAME", "" if PRODUCTION else "Demo")
TSREVIEW_REPORTER_LAST_NAME = env("TSREVIEW_REPORTER_LAST_NAME", "" if PRODUCTION else "Reporter")
TSREVIEW_REPORTER_EMAIL = env("TSREVIEW_REPORTER_EMAIL", "" if PRODUCTION else "reports@example.org")
TSREVIEW_REPORTER_PHONE = env("TSREVIEW_REPORTER_PHONE", "")
TSREVIEW_CONTACT_FIRST_NAME = env("TSREVIEW_CONTACT_FIRST_NAME", "")
TSREVIEW_CONTACT_LAST_NAME = env("TSREVIEW_CONTACT_LAST_NAME", "")
TSREVIEW_CONTACT_EMAIL = env("TSREVIEW_CONTACT_EMAIL", "")
TSREVIEW_CONTACT_PHONE = env("TSREVIEW_CONTACT_PHONE", "")
# industryClassification is sent only by companies that signed NCMEC's hash-sharing MOU.
TSREVIEW_NCMEC_MOU_SIGNED = env_bool("TSREVIEW_NCMEC_MOU_SIGNED", False)
# Hosts that are ours: a reported page elsewhere is marked thirdPartyHostedContent.
TSREVIEW_OWN_HOSTS = [h for h in env("TSREVIEW_OWN_HOSTS", "").split(",") if h]

# --- Preservation and retention ----------------------------------------------------------------
TSREVIEW_HOLD_DAYS = env_int("TSREVIEW_HOLD_DAYS", 365)  # the legal preservation period after a report
# Media of decided items that is neither held nor needed for a report is purged after this.
TSREVIEW_RETENTION_DAYS = env_int("TSREVIEW_RETENTION_DAYS", 90)

# --- Closing the loop (issue 16): events to scanners ---------------------------------------------
# Signed webhooks (Standard Webhooks) to Scanner.callback_url: a failing endpoint is retried with
# exponential backoff for this long, then the event waits on the dead-letter list for a lead.
TSREVIEW_WEBHOOK_RETRY_SECONDS = env_int("TSREVIEW_WEBHOOK_RETRY_SECONDS", 3 * 24 * 3600)
TSREVIEW_WEBHOOK_TIMEOUT = env_float("TSREVIEW_WEBHOOK_TIMEOUT", 10.0)
# After a secret rotation the previous secret also signs for this long.
TSREVIEW_WEBHOOK_ROTATION_OVERLAP_SECONDS = env_int("TSREVIEW_WEBHOOK_ROTATION_OVERLAP_SECONDS", 24 * 3600)

# Calibration (lead page): the width of a match-distance bucket per hash type ("*" for the rest).
# PDQ distances run 0-256 with thresholds near 31; exact hashes have one bucket.
TSREVIEW_CALIBRATION_BUCKET_WIDTH = {"pdq": 4, "vpdq": 4, "tmk_pdqf": 0.02, "photodna": 2000, "*": 4}

# Feedback to NCMEC's hash sharing (docs/feedback.md): off unless all three are set. Base URL e.g.
# https://report.cybertip.org/hashsharing (test: https://exttest.cybertip.org/hashsharing).
TSREVIEW_NCMEC_HASH_BASE_URL = env("TSREVIEW_NCMEC_HASH_BASE_URL", "")
TSREVIEW_NCMEC_HASH_USERNAME = env("TSREVIEW_NCMEC_HASH_USERNAME", "")
TSREVIEW_NCMEC_HASH_PASSWORD = env("TSREVIEW_NCMEC_HASH_PASSWORD", "")
TSREVIEW_NCMEC_HASH_TIMEOUT = env_float("TSREVIEW_NCMEC_HASH_TIMEOUT", 30.0)
# Which match lists are NCMEC hash-sharing lists; entries are "<esp id>/<entry id>", or a bare
# entry id of the member TSREVIEW_NCMEC_HASH_ESP_ID.
TSREVIEW_NCMEC_HASH_LISTS = [n for n in env("TSREVIEW_NCMEC_HASH_LISTS", "NCMEC").split(",") if n]
TSREVIEW_NCMEC_HASH_ESP_ID = env("TSREVIEW_NCMEC_HASH_ESP_ID", "")
# Our reason category -> the name of NCMEC's negative feedback reason (GET feedback/{type}/reasons).
# A reason not named here uses NCMEC's only reason when there is just one, else the feedback fails
# for a lead to see.
TSREVIEW_NCMEC_FEEDBACK_REASONS = {k: v for k, v in (pair.split("=", 1) for pair in env(
    "TSREVIEW_NCMEC_FEEDBACK_REASONS", "").split(";") if "=" in pair)}
# Exports of false positives and confirmed hashes per list are signed with this Ed25519 key (32
# bytes, urlsafe base64). The embedded default derives one from SECRET_KEY; production must set it.
TSREVIEW_EXPORT_SIGNING_KEY = env("TSREVIEW_EXPORT_SIGNING_KEY", "")

# Notices to dataset vendors (docs/feedback.md): drafted this many days after the report finished
# (so as not to tip off an investigation), for material of these source types, sent when a lead
# approves. Known vendors' addresses: "Acme Data=abuse@acme.example;Other=...".
TSREVIEW_VENDOR_NOTICE_HOLD_DAYS = env_int("TSREVIEW_VENDOR_NOTICE_HOLD_DAYS", 14)
TSREVIEW_VENDOR_NOTICE_SOURCE_TYPES = {t for t in env("TSREVIEW_VENDOR_NOTICE_SOURCE_TYPES",
                                                      "third_party_dataset,ai_training_data").split(",") if t}
TSREVIEW_VENDOR_CONTACTS = {k.strip(): v.strip() for k, v in (pair.split("=", 1) for pair in env(
    "TSREVIEW_VENDOR_CONTACTS", "").split(";") if "=" in pair)}
TSREVIEW_NOTICE_FROM_EMAIL = env("TSREVIEW_NOTICE_FROM_EMAIL", "")
# Outgoing mail (vendor notices). The embedded default prints mail to the console.
EMAIL_BACKEND = env("EMAIL_BACKEND", "django.core.mail.backends.smtp.EmailBackend" if PRODUCTION
                    else "django.core.mail.backends.console.EmailBackend")
EMAIL_HOST = env("EMAIL_HOST", "localhost")
EMAIL_PORT = env_int("EMAIL_PORT", 25)
EMAIL_HOST_USER = env("EMAIL_HOST_USER", "")
EMAIL_HOST_PASSWORD = env("EMAIL_HOST_PASSWORD", "")
EMAIL_USE_TLS = env_bool("EMAIL_USE_TLS", False)
DEFAULT_FROM_EMAIL = env("DEFAULT_FROM_EMAIL", "tsreview@localhost")

# --- Celery ------------------------------------------------------------------------------------
# No broker configured means the embedded default: tasks run in-process when the transaction
# that enqueued them commits.
CELERY_BROKER_URL = env("CELERY_BROKER_URL", "")
CELERY_TASK_ALWAYS_EAGER = not CELERY_BROKER_URL
# Embedded: tasks run in-process, but Celery still takes a producer from its pool for each; an
# in-memory transport for it rather than a default AMQP host (and a "No hostname was supplied"
# warning at the first task). Only the producers': a worker started without CELERY_BROKER_URL
# still fails loudly instead of waiting on an empty in-memory queue.
CELERY_BROKER_WRITE_URL = "" if CELERY_BROKER_URL else "memory://localhost/"
CELERY_TASK_EAGER_PROPAGATES = False
CELERY_TASK_ACKS_LATE = True  # a worker killed mid-task leaves the task to run again
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_IGNORE_RESULT = True
CELERY_BROKER_CONNECTION_TIMEOUT = 2
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# A task whose worker died unacknowledged is handed out again after this long (Redis broker).
CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": env_int("CELERY_VISIBILITY_TIMEOUT", 600)}
CELERY_TASK_PUBLISH_RETRY_POLICY = {"max_retries": 2, "interval_start": 0, "interval_step": 0.5}
CELERY_BEAT_SCHEDULE = {
    "derivatives-sweep": {"task": "reports.tasks.derivatives_sweep", "schedule": 60.0},
    "report-drafts-build": {"task": "reports.tasks.report_drafts_build_task", "schedule": 300.0},
    "reports-resume": {"task": "reports.tasks.reports_resume", "schedule": 300.0},
    "retention-purge": {"task": "reports.tasks.retention_purge_task", "schedule": 24 * 3600.0},
    "audit-chain": {"task": "reports.tasks.audit_chain_task", "schedule": TSREVIEW_AUDIT_CHAIN_SECONDS},
    "targets-check": {"task": "reports.tasks.targets_check_task", "schedule": 300.0},
    "scanner-events-sweep": {"task": "reports.tasks.scanner_events_sweep", "schedule": 30.0},
    "list-feedback-resume": {"task": "reports.tasks.list_feedback_resume", "schedule": 300.0},
    "vendor-notices-draft": {"task": "reports.tasks.vendor_notices_draft_task", "schedule": 3600.0},
}

# Scanner JSON (the metadata part, a provenance PATCH) nested deeper than this is refused with
# a 400 naming the limit (docs/security.md); the deepest valid document nests 5 levels.
TSREVIEW_MAX_JSON_DEPTH = env_int("TSREVIEW_MAX_JSON_DEPTH", 32)

# --- API ---------------------------------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": ["reports.api.auth.ScannerTokenAuthentication"],
    "DEFAULT_PERMISSION_CLASSES": ["reports.api.auth.IsScanner"],
    "DEFAULT_PARSER_CLASSES": ["reports.api.parsers.LimitedJSONParser"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "EXCEPTION_HANDLER": "reports.api.errors.exception_handler",
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "UNAUTHENTICATED_USER": None,
    "DEFAULT_THROTTLE_CLASSES": ["reports.api.throttle.ScannerRateThrottle"],  # an atomic count a window
    "DEFAULT_THROTTLE_RATES": {"scanner": env("TSREVIEW_SCANNER_RATE", "6000/min")},
}
SPECTACULAR_SETTINGS = {
    "TITLE": "tsreview scanner API",
    "DESCRIPTION": "Scanners push hash-matched media, match details and provenance for human review.",
    "VERSION": "1",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
}

# Shared by every web worker in production (the scanner rate limit counts across them).
CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": env("CACHE_URL")}
          if env("CACHE_URL") else {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

# LOG_FORMAT=json: one JSON object a line (for a log shipper); every line carries the request
# id (the proxy's X-Request-ID, or a new one), also in the tasks a request queued.
from tsreview.observability import logging_config  # noqa: E402 - settings helpers, no Django

LOGGING = logging_config(fmt=env("LOG_FORMAT", "text"), level=env("LOG_LEVEL", "INFO"))

# Optional Sentry-compatible error reporting (off unless SENTRY_DSN is set). What is sent is
# scrubbed first: no request body (media, metadata), query string, cookies, authorization,
# user, local variables or database values (tsreview/observability.py, docs/deploy.md).
SENTRY_DSN = env("SENTRY_DSN", "")
if SENTRY_DSN:
    from tsreview.observability import sentry_init  # noqa: E402

    sentry_init(SENTRY_DSN, environment=env("SENTRY_ENVIRONMENT", ""), release=env("SENTRY_RELEASE", ""))
