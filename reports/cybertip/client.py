"""The CyberTipline HTTP client (stdlib urllib: a handful of requests need no extra library).

HTTP Basic over the configured base URL. Every request and its response, or the error that
stood in for one, is stored as an ApiCall with NCMEC's Request-ID: the row is written before
the request goes out, so that a request whose answer never came is still on record.
"""

import base64
import http.client
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from dataclasses import dataclass

from django.conf import settings
from django.utils import timezone
from lxml import etree

from ..models import ApiCall

MAX_RESPONSE_BYTES = 5 * 1024 * 1024
MAX_STORED_CHARS = 200_000


class CyberTipError(Exception):
    transient = False
    code: int | None = None


class Transient(CyberTipError):
    """No answer, or an answer that says try later (timeouts, 408, 429, 5xx)."""

    transient = True


class Permanent(CyberTipError):
    """The request cannot succeed as sent: refused credentials, a bad request."""


class Rejected(Permanent):
    """HTTP 200 with a non-zero responseCode (4100 validation failed, 5102 already finished...)."""

    def __init__(self, step: str, code: int, description: str):
        super().__init__(f"{step}: NCMEC answered {code}: {description or 'no description'}")
        self.code, self.description = code, description


class NotConfigured(Permanent):
    pass


@dataclass
class Answer:
    status: int
    body: bytes
    request_id: str
    doc: etree._Element | None

    def field(self, tag: str) -> str:
        return (self.doc.findtext(tag) or "").strip() if self.doc is not None else ""


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    # Credentials go to the configured host only; a redirect is an error, not a new destination.
    def redirect_request(self, *args, **kwargs):
        return None


def _parse(body: bytes) -> etree._Element | None:
    try:
        return etree.fromstring(body, etree.XMLParser(resolve_entities=False, no_network=True))
    except etree.XMLSyntaxError:
        return None


def multipart(fields: dict[str, str], *, file_field: str, filename: str, data: bytes, content_type: str) -> tuple[bytes, str]:
    boundary = uuid.uuid4().hex
    parts = [f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'.encode()
             for name, value in fields.items()]
    parts.append(f'--{boundary}\r\nContent-Disposition: form-data; name="{file_field}"; filename="{filename}"\r\n'
                 f"Content-Type: {content_type}\r\n\r\n".encode() + data + b"\r\n")
    parts.append(f"--{boundary}--\r\n".encode())
    return b"".join(parts), f"multipart/form-data; boundary={boundary}"


class Client:
    def __init__(self, *, base_url: str, username: str, password: str, timeout: float):
        if not base_url:
            raise NotConfigured("The CyberTipline is not configured: set TSREVIEW_CYBERTIP_BASE_URL.")
        self.base_url = base_url.rstrip("/")
        self.auth = "Basic " + base64.b64encode(f"{username}:{password}".encode()).decode()
        self.timeout = timeout
        self.opener = urllib.request.build_opener(_NoRedirects)

    @classmethod
    def from_settings(cls) -> "Client":
        return cls(base_url=settings.TSREVIEW_CYBERTIP_BASE_URL, username=settings.TSREVIEW_CYBERTIP_USERNAME,
                   password=settings.TSREVIEW_CYBERTIP_PASSWORD, timeout=settings.TSREVIEW_CYBERTIP_TIMEOUT)

    # --- The documented endpoints ---------------------------------------------------------------

    def status(self, *, report=None) -> Answer:
        return self._checked(self.request("status", "GET", "/status", report=report), "status")

    def xsd(self) -> bytes:
        answer = self.request("xsd", "GET", "/xsd", store_response=False)
        if answer.status != 200:
            raise self._http_error("xsd", answer.status)
        return answer.body

    def submit(self, *, report, document: bytes) -> Answer:
        answer = self.request("submit", "POST", "/submit", body=document, content_type="text/xml; charset=utf-8", report=report)
        return self._checked(answer, "submit")

    def upload(self, *, report, report_file, report_id: int, filename: str, data: bytes, content_type: str) -> Answer:
        body, ctype = multipart({"id": str(report_id)}, file_field="file", filename=filename, data=data, content_type=content_type)
        described = f"multipart/form-data: id={report_id}; file={filename} ({content_type}, {len(data)} bytes; bytes not kept)"
        answer = self.request("upload", "POST", "/upload", body=body, content_type=ctype, described=described,
                              report=report, report_file=report_file)
        return self._checked(answer, "upload")

    def fileinfo(self, *, report, report_file, document: bytes) -> Answer:
        answer = self.request("fileinfo", "POST", "/fileinfo", body=document, content_type="text/xml; charset=utf-8",
                              report=report, report_file=report_file)
        return self._checked(answer, "fileinfo")

    def finish(self, *, report, report_id: int) -> Answer:
        return self._checked(self._form("finish", report, report_id), "finish")

    def retract(self, *, report, report_id: int) -> Answer:
        return self._checked(self._form("retract", report, report_id), "retract")

    def _form(self, step, report, report_id) -> Answer:
        body = urllib.parse.urlencode({"id": str(report_id)}).encode()
        return self.request(step, "POST", f"/{step}", body=body, content_type="application/x-www-form-urlencoded", report=report)

    # --- One request, on record -----------------------------------------------------------------

    def request(self, step: str, method: str, path: str, *, body: bytes = b"", content_type: str = "", described: str = "",
                report=None, report_file=None, store_response: bool = True) -> Answer:
        call = ApiCall.objects.create(
            report=report, report_file=report_file, step=step, method=method, url=self.base_url + path,
            request_body=described or body.decode("utf-8", errors="replace")[:MAX_STORED_CHARS], started_at=timezone.now())
        headers = {"Authorization": self.auth, "Accept": "application/xml, text/xml"}
        if content_type:
            headers["Content-Type"] = content_type
        request = urllib.request.Request(self.base_url + path, data=body if method == "POST" else None, method=method, headers=headers)
        started = time.monotonic()
        try:
            with self.opener.open(request, timeout=self.timeout) as response:
                status, data, request_id = response.status, response.read(MAX_RESPONSE_BYTES), response.headers.get("Request-ID", "")
        except urllib.error.HTTPError as exc:
            status, data, request_id = exc.code, exc.read(MAX_RESPONSE_BYTES), exc.headers.get("Request-ID", "")
        except (OSError, http.client.HTTPException) as exc:  # timeouts, refused and dropped connections
            self._store(call, started, error=f"no answer: {exc.__class__.__name__}: {exc}")
            raise Transient(f"{step}: no answer from the CyberTipline ({exc.__class__.__name__}: {exc})") from None
        doc = _parse(data)
        code = doc.findtext("responseCode") if doc is not None else None
        self._store(call, started, status=status, request_id=request_id,
                    code=int(code) if code and code.strip().lstrip("-").isdigit() else None,
                    body=data.decode("utf-8", errors="replace") if store_response else f"({len(data)} bytes)")
        return Answer(status=status, body=data, request_id=request_id, doc=doc)

    @staticmethod
    def _store(call: ApiCall, started: float, *, status=None, request_id="", code=None, body="", error="") -> None:
        call.status_code, call.request_id, call.response_code = status, request_id[:200], code
        call.response_body, call.error = body[:MAX_STORED_CHARS], error
        call.duration_ms = int((time.monotonic() - started) * 1000)
        call.save(update_fields=["status_code", "request_id", "response_code", "response_body", "error", "duration_ms"])

    def _checked(self, answer: Answer, step: str) -> Answer:
        if answer.status != 200:
            raise self._http_error(step, answer.status)
        code = answer.field("responseCode")
        if answer.doc is None or not code.lstrip("-").isdigit():
            raise Transient(f"{step}: the answer was not a CyberTipline response document")
        if int(code) != 0:
            raise Rejected(step, int(code), answer.field("responseDescription"))
        return answer

    @staticmethod
    def _http_error(step: str, status: int) -> CyberTipError:
        if status in (408, 429) or status >= 500:
            return Transient(f"{step}: HTTP {status} from the CyberTipline")
        if status in (401, 403):
            return Permanent(f"{step}: HTTP {status}: the CyberTipline refused our credentials")
        return Permanent(f"{step}: HTTP {status} from the CyberTipline")
