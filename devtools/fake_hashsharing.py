"""A fake of NCMEC's hash-sharing API (v2) for the tests and the demo, on loopback only: the
feedback calls (GET feedback/{type}/reasons, PUT entries/{esp}/{entry}/{type}/feedback) and
GET status, with HTTP Basic. A PUT sets this member's vote on that fingerprint of that entry, as
the real API does. `fail(how, times)` makes the next PUTs answer HTTP <how> (e.g. 503).

Run it for the demo: `python -m devtools.fake_hashsharing --port 8002` (user demo, password demo).
"""

import argparse
import base64
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from xml.etree import ElementTree as ET

NS = "https://hashsharing.ncmec.org/hashsharing/v2"
REASONS = {"6c5c1ad4-0c52-4a4e-9a2e-6b3f39a1d0a1": "Not CSAM",
           "0f0e7b45-2d2e-4c53-8b7e-5f4d1e2b9c11": "Not a match for the fingerprint"}


class FakeHashSharing:
    def __init__(self, *, username="tsreview", password="fake-secret", member_id=4321):
        self.username, self.password, self.member_id = username, password, member_id
        self.votes: dict[tuple[str, str, str], dict] = {}  # (esp, entry, type) -> {"vote", "reason"}
        self.calls: list[dict] = []
        self.failures: list[int] = []
        self.lock = threading.Lock()
        self.server = None

    def fail(self, how: int, times: int = 1) -> None:
        self.failures.extend([how] * times)

    def start(self, port: int = 0) -> str:
        self.server = ThreadingHTTPServer(("127.0.0.1", port), _handler(self))
        threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        return f"http://127.0.0.1:{self.server.server_address[1]}/hashsharing"

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def answer(self, method: str, path: str, auth: str, body: bytes) -> tuple[int, bytes]:
        expected = "Basic " + base64.b64encode(f"{self.username}:{self.password}".encode()).decode()
        with self.lock:
            self.calls.append({"method": method, "path": path, "body": body})
            if auth != expected:
                return 401, b""
            parts = path.removeprefix("/hashsharing/v2/").split("/")
            if method == "GET" and parts == ["status"]:
                return 200, f'<status xmlns="{NS}"><member id="{self.member_id}">tsreview</member></status>'.encode()
            if method == "GET" and len(parts) == 3 and parts[0] == "feedback" and parts[2] == "reasons":
                items = "".join(f"<reason><guid>{g}</guid><name>{n}</name><type>{parts[1]}</type></reason>"
                                for g, n in REASONS.items())
                return 200, (f'<feedbackReasonsResult xmlns="{NS}"><availableFeedbackReasons>{items}'
                             "</availableFeedbackReasons></feedbackReasonsResult>").encode()
            if method == "PUT" and len(parts) == 5 and parts[0] == "entries" and parts[4] == "feedback":
                if self.failures:
                    return self.failures.pop(0), b""
                return self._vote(parts[1], parts[2], parts[3], body)
        return 404, b""

    def _vote(self, esp: str, entry: str, fingerprint: str, body: bytes) -> tuple[int, bytes]:
        try:
            root = ET.fromstring(body)
        except ET.ParseError:
            return 400, b"malformed XML"
        if root.tag != f"{{{NS}}}feedbackSubmission" or len(root) != 1:
            return 400, b"expected one vote in a feedbackSubmission"
        vote = root[0].tag.rpartition("}")[2]
        guid = root[0].findtext(f"{{{NS}}}reasonIds/{{{NS}}}guid")
        if vote not in ("affirmative", "negative") or (vote == "negative" and guid not in REASONS):
            return 400, b"a negative vote needs a known reason guid"
        self.votes[(esp, entry, fingerprint)] = {"vote": vote, "reason": REASONS.get(guid, "")}
        return 200, b""


def _handler(fake: FakeHashSharing):
    class Handler(BaseHTTPRequestHandler):
        def _serve(self):
            body = self.rfile.read(int(self.headers.get("content-length") or 0))
            status, payload = fake.answer(self.command, self.path, self.headers.get("authorization", ""), body)
            self.send_response(status)
            self.send_header("content-type", "application/xml")
            self.send_header("content-length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        do_GET = do_PUT = _serve

        def log_message(self, format, *args):
            print(f"fake hash sharing: {self.command} {self.path} -> {args[1] if len(args) > 1 else ''}", flush=True)

    return Handler


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=8002)
    args = parser.parse_args()
    fake = FakeHashSharing(username="demo", password="demo")
    print(f"fake NCMEC hash sharing on {fake.start(args.port)}", flush=True)
    threading.Event().wait()


if __name__ == "__main__":
    main()
