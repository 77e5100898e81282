"""A scanner's webhook endpoint on loopback, as a scanner would write it: it checks the Standard
Webhooks signature itself (written here from the specification, not with tsreview's code),
records what it got, and can be told to fail the next requests."""

import base64
import hashlib
import hmac
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

TOLERANCE_SECONDS = 300


def verify(secret: str, headers: dict, body: bytes, *, now=None) -> bool:
    """The receiver's check: webhook-signature holds "v1,<base64 sig>" entries separated by
    spaces; one must equal HMAC-SHA256 under the base64-decoded secret (without "whsec_") of
    "{webhook-id}.{webhook-timestamp}.{body}"; the timestamp must be recent."""
    msg_id, timestamp = headers.get("webhook-id", ""), headers.get("webhook-timestamp", "")
    if not msg_id or not timestamp.isdigit():
        return False
    if abs((now or time.time()) - int(timestamp)) > TOLERANCE_SECONDS:
        return False
    key = base64.b64decode(secret.split("_", 1)[1])
    expected = base64.b64encode(hmac.new(key, msg_id.encode() + b"." + timestamp.encode() + b"." + body,
                                         hashlib.sha256).digest()).decode()
    for entry in headers.get("webhook-signature", "").split(" "):
        version, _, signature = entry.partition(",")
        if version == "v1" and hmac.compare_digest(signature, expected):
            return True
    return False


class Receiver:
    def __init__(self):
        self.received: list[dict] = []  # every request: headers, body
        self.fail_next: list[int] = []  # status codes to answer the next requests with
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keeps the connection open, as most endpoints do

            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("content-length", 0)))
                with receiver.lock:
                    receiver.received.append({"headers": {k.lower(): v for k, v in self.headers.items()}, "body": body})
                    status = receiver.fail_next.pop(0) if receiver.fail_next else 204
                self.send_response(status)
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hooks/tsreview"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def events(self) -> list[dict]:
        return [json.loads(r["body"]) for r in self.received]

    def stop(self):
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
            self.server = None
