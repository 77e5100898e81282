"""Operations: a request id on every log line (carried into the Celery tasks a request
queues), JSON log lines as an option (LOG_FORMAT=json), and optional Sentry-compatible error
reporting (SENTRY_DSN) that never sends media, metadata or personal data."""

import contextvars
import json
import logging
import re
import uuid

request_id_var = contextvars.ContextVar("request_id", default="")
REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")


# --- Request ids ---------------------------------------------------------------------------------

class RequestIdMiddleware:
    """Takes the proxy's X-Request-ID (from a trusted proxy, if well formed) or makes one; every
    log line of the request and of the tasks it queues carries it; the response says it."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        from django.conf import settings

        given = request.META.get("HTTP_X_REQUEST_ID", "")
        trusted = request.META.get("REMOTE_ADDR") in settings.TSREVIEW_TRUSTED_PROXIES
        request_id = given if trusted and REQUEST_ID.match(given) else uuid.uuid4().hex
        token = request_id_var.set(request_id)
        try:
            response = self.get_response(request)
        finally:
            request_id_var.reset(token)
        response["X-Request-ID"] = request_id
        return response


class RequestIdFilter(logging.Filter):
    def filter(self, record):
        record.request_id = request_id_var.get()
        return True


def connect_celery(app) -> None:
    """A task published during a request carries its id in a header; the worker sets it for the
    task's log lines."""
    from celery.signals import before_task_publish, setup_logging, task_postrun, task_prerun

    @setup_logging.connect(weak=False)
    def _logging(**kwargs):  # the worker logs as the web does (LOGGING), not in Celery's own format
        import logging.config

        from django.conf import settings

        logging.config.dictConfig(settings.LOGGING)

    @before_task_publish.connect(weak=False)
    def _publish(headers=None, **kwargs):
        if headers is not None and request_id_var.get():
            headers["request_id"] = request_id_var.get()

    @task_prerun.connect(weak=False)
    def _start(task=None, **kwargs):
        given = getattr(task.request, "request_id", None) or (task.request.headers or {}).get("request_id", "")
        # (in-process, eager tasks keep the id of the request that runs them)
        task.request._request_id_token = request_id_var.set(given or request_id_var.get())

    @task_postrun.connect(weak=False)
    def _end(task=None, **kwargs):
        token = getattr(task.request, "_request_id_token", None)
        if token is not None:
            request_id_var.reset(token)


# --- JSON log lines --------------------------------------------------------------------------------

class JsonFormatter(logging.Formatter):
    """One JSON object a line: time, level, logger, message, request id, and the exception's
    traceback if any. Messages are the code's own (no media, hashes of unconfirmed media or
    tokens are ever logged: STYLE)."""

    def format(self, record):
        line = {"time": self.formatTime(record, "%Y-%m-%dT%H:%M:%S") + f".{int(record.msecs):03d}Z",
                "level": record.levelname, "logger": record.name, "message": record.getMessage(),
                "request_id": getattr(record, "request_id", "")}
        for extra in ("task_id", "task_name"):
            if hasattr(record, extra):
                line[extra] = getattr(record, extra)
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return json.dumps(line, default=str)


JsonFormatter.converter = __import__("time").gmtime


def logging_config(*, fmt: str, level: str) -> dict:
    formatter = {"()": "tsreview.observability.JsonFormatter"} if fmt == "json" else {
        "format": "%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s"}
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {"request_id": {"()": "tsreview.observability.RequestIdFilter"}},
        "formatters": {"default": formatter},
        "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "default", "filters": ["request_id"]}},
        "root": {"handlers": ["console"], "level": level},
        "loggers": {"django.request": {"level": "ERROR"}, "celery": {"level": "WARNING"}},
    }


# --- Error reporting ---------------------------------------------------------------------------------

DATA_MODULES = ("psycopg", "django.db", "redis", "kombu", "botocore", "lxml")
KEPT_HEADERS = {"user-agent", "content-type", "content-length", "x-request-id"}


def scrub(event: dict, hint=None) -> dict:
    """What leaves for the error tracker: the exception's type, message and code lines, the
    request's method and path, the request id. Never a body (media, metadata), query string,
    cookie, authorization header, user, local variable or log argument."""
    request = event.get("request") or {}
    url = str(request.get("url") or "")
    event["request"] = {"method": request.get("method", ""), "url": url.split("?", 1)[0],
                        "headers": {k: v for k, v in (request.get("headers") or {}).items() if k.lower() in KEPT_HEADERS}}
    for key in ("user", "extra", "server_name", "modules"):
        event.pop(key, None)
    contexts = event.get("contexts") or {}
    event["contexts"] = {k: v for k, v in contexts.items() if k in ("runtime", "os", "trace")}
    for exception in (event.get("exception") or {}).get("values", []):
        for frame in (exception.get("stacktrace") or {}).get("frames", []):
            frame.pop("vars", None)
        if str(exception.get("module") or "").startswith(DATA_MODULES):
            exception["value"] = ""  # database errors quote the row's values ("Key (...)=(...)")
        else:
            exception["value"] = str(exception.get("value") or "")[:300]
    if "logentry" in event:
        event["logentry"] = {"message": event["logentry"].get("message", "")}  # the format, not its arguments
    breadcrumbs = event.get("breadcrumbs") or {}
    for crumb in breadcrumbs.get("values", []):
        crumb.pop("data", None)
    event.setdefault("tags", {})["request_id"] = request_id_var.get()
    return event


def scrub_breadcrumb(crumb: dict, hint=None) -> dict | None:
    if crumb.get("category") in ("query", "redis", "httplib"):
        return None  # SQL, cache keys, URLs of outside calls
    crumb.pop("data", None)
    return crumb


def sentry_init(dsn: str, *, environment: str = "", release: str = "", transport=None) -> None:
    import sentry_sdk
    from sentry_sdk.integrations.celery import CeleryIntegration
    from sentry_sdk.integrations.django import DjangoIntegration

    sentry_sdk.init(dsn=dsn, environment=environment or None, release=release or None, transport=transport,
                    integrations=[DjangoIntegration(), CeleryIntegration()],
                    data_collection={"user_info": False, "http_bodies": [], "database_query_data": False,
                                     "queues": False, "stack_frame_variables": False},
                    max_request_body_size="never", include_local_variables=False,
                    include_source_context=True, before_send=scrub, before_breadcrumb=scrub_breadcrumb,
                    traces_sample_rate=0.0, default_integrations=True)
