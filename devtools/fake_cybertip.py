"""A fake CyberTipline for the tests and the demo: NCMEC's documented endpoints on loopback only.

HTTP Basic; GET /status and /xsd; POST /submit, /upload, /fileinfo, /finish, /retract. Errors
come as HTTP 200 with a non-zero responseCode, as NCMEC's do: 4100 validation failed (the
shared schema, which also enforces the element order, plus the documented rules), 4110
malformed XML, 5001 no such open report, 5102 already finished. Every response carries a
Request-ID. `fail(step, how)` makes the next call of a step fail: "code:4100", "http:503",
"timeout" (do the work, answer too late) or "drop" (do the work, close without answering).

Run it for the demo: `python -m devtools.fake_cybertip --port 8001` (user demo, password demo).
"""

import argparse
import base64
import email.parser
import email.policy
import hashlib
import itertools
import os
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs

from lxml import etree

SHARED_XSD = Path(__file__).resolve().parent.parent / os.environ.get("TSREVIEW_CYBERTIP_XSD", "../shared/ncmec/cyber_tipline.xsd")
PREFIX = "/ispws"


@dataclass
class FakeReport:
    id: int
    xml: bytes
    files: dict = field(default_factory=dict)  # fileId -> {"md5", "size", "details"}
    finished: bool = False
    retracted: bool = False


class FakeCyberTipline:
    def __init__(self, *, username="tsreview", password="fake-secret", xsd_path=SHARED_XSD, slow_seconds=2.0):
        self.username, self.password = username, password
        self.xsd_bytes = Path(xsd_path).read_bytes()
        self.schema = etree.XMLSchema(etree.fromstring(self.xsd_bytes))
        self.reports: dict[int, FakeReport] = {}
        self.calls: list[dict] = []
        self.failures: dict[str, list[str]] = {}
        self.slow_seconds = slow_seconds
        self._ids = itertools.count(int(time.time()))  # unique across restarts of the demo
        self.lock = threading.Lock()
        self.server = None

    # --- Test controls --------------------------------------------------------------------------

    def fail(self, step: str, how: str, times: int = 1) -> None:
        self.failures.setdefault(step, []).extend([how] * times)

    def finished_reports(self) -> list[FakeReport]:
        return [r for r in self.reports.values() if r.finished]

    def start(self, port: int = 0) -> str:
        self.server = ThreadingHTTPServer(("127.0.0.1", port), _handler(self))
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        return f"http://127.0.0.1:{self.server.server_address[1]}{PREFIX}"

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    # --- The endpoints: each returns (HTTP status, body) ---------------------------------------

    def status(self, _body, _headers):
        return 200, response(0, "Server is up")

    def xsd(self, _body, _headers):
        return 200, self.xsd_bytes

    def submit(self, body, _headers):
        _, error = self._valid(body, "report")
        if error:
            return 200, error
        report = FakeReport(next(self._ids), body)
        self.reports[report.id] = report
        return 200, response(0, "", reportId=report.id)

    def upload(self, body, headers):
        message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
            b"Content-Type: " + headers.get("Content-Type", "").encode() + b"\r\n\r\n" + body)
        parts = {part.get_param("name", header="content-disposition"): part for part in message.iter_parts()}
        if "id" not in parts or "file" not in parts:
            return 200, response(4100, "id and file are required")
        report = self._open_report(parts["id"].get_content().strip())
        if report is None:
            return 200, response(5001, "Report does not exist or is not open")
        data = parts["file"].get_payload(decode=True)
        file_id = uuid.uuid4().hex
        report.files[file_id] = {"md5": hashlib.md5(data).hexdigest(), "size": len(data), "details": None}
        return 200, response(0, "", reportId=report.id, fileId=file_id, hash=report.files[file_id]["md5"])

    def fileinfo(self, body, _headers):
        doc, error = self._valid(body, "fileDetails")
        if error:
            return 200, error
        report = self._open_report(doc.findtext("reportId"))
        if report is None:
            return 200, response(5001, "Report does not exist or is not open")
        if doc.findtext("fileId") not in report.files:
            return 200, response(4100, "fileId is not a file of this report")
        report.files[doc.findtext("fileId")]["details"] = body
        return 200, response(0, "", reportId=report.id)

    def finish(self, body, _headers):
        report = self.reports.get(_form_id(body))
        if report is None or report.retracted:
            return 200, response(5001, "Report does not exist")
        if report.finished:
            return 200, response(5102, "Report already finished")
        report.finished = True
        files = "".join(f"<fileId>{f}</fileId>" for f in report.files)
        return 200, (f"<reportDoneResponse><responseCode>0</responseCode><reportId>{report.id}</reportId>"
                     f"<files>{files}</files></reportDoneResponse>").encode()

    def retract(self, body, _headers):
        report = self.reports.get(_form_id(body))
        if report is None or report.retracted:
            return 200, response(5001, "Report does not exist")
        if report.finished:
            return 200, response(5102, "Report already finished")
        report.retracted = True
        return 200, response(0, "", reportId=report.id)

    # --- Rules ------------------------------------------------------------------------------------

    def _open_report(self, raw) -> FakeReport | None:
        try:
            report = self.reports.get(int(raw))
        except (TypeError, ValueError):
            return None
        return report if report and not report.finished and not report.retracted else None

    def _valid(self, body: bytes, root: str):
        try:
            doc = etree.fromstring(body, etree.XMLParser(resolve_entities=False, no_network=True))
        except etree.XMLSyntaxError as exc:
            return None, response(4110, f"Malformed XML: {exc}")
        problems = [] if self.schema.validate(doc) else [e.message for e in self.schema.error_log]
        if doc.tag != root:
            problems.append(f"expected <{root}>")
        problems += documented_rules(doc)
        return doc, (response(4100, "Validation failed: " + "; ".join(problems)) if problems else None)


def documented_rules(doc) -> list[str]:
    """What NCMEC's documentation states and the schema does not enforce."""
    problems = []
    when = doc.findtext("incidentSummary/incidentDateTime")
    if when and datetime.fromisoformat(when.replace("Z", "+00:00")) > datetime.now(UTC):
        problems.append("incidentDateTime is in the future")
    if doc.tag == "report" and not (doc.findtext("reporter/reportingPerson/email") or "").strip():
        problems.append("reportingPerson email is required")
    if doc.findtext("exifViewedByEsp") == "true" and doc.findtext("fileViewedByEsp") != "true":
        problems.append("fileViewedByEsp must be true when exifViewedByEsp is true")
    for path, limit in (("originalFileName", 2056), ("locationOfFile", 2083), ("incidentSummary/platform", 256),
                        ("personOrUserReported/screenName", 256), ("additionalInfo", 3000)):
        if any(len(el.text or "") > limit for el in doc.findall(path)):
            problems.append(f"{path} longer than {limit}")
    return problems


def response(code: int, description: str, **fields) -> bytes:
    root = etree.Element("reportResponse")
    etree.SubElement(root, "responseCode").text = str(code)
    etree.SubElement(root, "responseDescription").text = description
    for name in ("reportId", "fileId", "hash"):
        if name in fields:
            etree.SubElement(root, name).text = str(fields[name])
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8")


def _form_id(body: bytes):
    try:
        return int(parse_qs(body.decode()).get("id", [""])[0])
    except ValueError:
        return None


ROUTES = {("GET", "/status"): "status", ("GET", "/xsd"): "xsd", ("POST", "/submit"): "submit",
          ("POST", "/upload"): "upload", ("POST", "/fileinfo"): "fileinfo", ("POST", "/finish"): "finish",
          ("POST", "/retract"): "retract"}


def _handler(fake: FakeCyberTipline):
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def do_GET(self):
            self._serve("GET")

        def do_POST(self):
            self._serve("POST")

        def _serve(self, method):
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            self._body = body  # what was sent, kept for the tests (an upload's bytes are not kept)
            path = self.path[len(PREFIX):] if self.path.startswith(PREFIX) else None
            step = ROUTES.get((method, path))
            expected = "Basic " + base64.b64encode(f"{fake.username}:{fake.password}".encode()).decode()
            if step is None:
                return self._answer(404, b"not found", step)
            if self.headers.get("Authorization") != expected:
                return self._answer(401, b"unauthorized", step, {"WWW-Authenticate": 'Basic realm="ispws"'})
            with fake.lock:
                how = fake.failures.get(step, []).pop(0) if fake.failures.get(step) else ""
                if how.startswith("code:"):
                    status, payload = 200, response(int(how[5:]), "Injected failure")
                elif how.startswith("http:"):
                    status, payload = int(how[5:]), b"injected"
                else:
                    status, payload = getattr(fake, step)(body, self.headers)
            if how == "drop":
                self.close_connection = True
                return self.connection.shutdown(2)
            if how == "timeout":
                time.sleep(fake.slow_seconds)
            self._answer(status, payload, step)

        def _answer(self, status, payload, step, headers=None):
            request_id = uuid.uuid4().hex
            fake.calls.append({"step": step, "status": status, "request_id": request_id, "path": self.path,
                               "body": self._body if step != "upload" else b""})
            try:
                self.send_response(status)
                self.send_header("Content-Type", "text/xml; charset=utf-8")
                self.send_header("Content-Length", str(len(payload)))
                self.send_header("Request-ID", request_id)
                for name, value in (headers or {}).items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(payload)
            except OSError:  # the client gave up waiting (the "timeout" failure)
                pass

    return Handler


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description="A fake CyberTipline on 127.0.0.1 for the demo.")
    parser.add_argument("--port", type=int, default=8001)
    args = parser.parse_args()
    fake = FakeCyberTipline(username="demo", password="demo")
    print(f"Fake CyberTipline at {fake.start(args.port)} (user demo, password demo). Ctrl-C stops.")
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        fake.stop()
