"""A scanner's webhook endpoint for the demo: it checks each Standard Webhooks signature with the
secret tsreview printed for the demo scanner, and logs the events it gets (one line each).

`make run` starts it on 127.0.0.1:8003 and points the demo scanner's callback URL at it; its
log is var/webhook-receiver.log. The secret file is read on every request, so the receiver can
start before the secret is made (and follows a rotation).

    python -m devtools.webhook_receiver --port 8003 --secret-file var/webhook-secret
"""

import argparse
import base64
import hashlib
import hmac
import json
import sys
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path


def signature_valid(secret: str, headers, body: bytes, tolerance: int = 300) -> bool:
    msg_id, timestamp = headers.get("webhook-id", ""), headers.get("webhook-timestamp", "")
    if not secret or not msg_id or not timestamp.isdigit() or abs(time.time() - int(timestamp)) > tolerance:
        return False
    key = base64.b64decode(secret.removeprefix("whsec_"))
    expected = base64.b64encode(hmac.new(key, f"{msg_id}.{timestamp}.".encode() + body, hashlib.sha256).digest()).decode()
    return any(hmac.compare_digest(entry.partition(",")[2], expected)
               for entry in headers.get("webhook-signature", "").split(" ") if entry.startswith("v1,"))


def handler(secret_file: Path):
    seen: set[str] = set()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            body = self.rfile.read(int(self.headers.get("content-length") or 0))
            secret = secret_file.read_text().strip() if secret_file.exists() else ""
            valid = signature_valid(secret, self.headers, body)
            self.send_response(204 if valid else 401)
            self.end_headers()
            try:
                event = json.loads(body)
            except ValueError:
                event = {}
            msg_id = self.headers.get("webhook-id", "")
            repeat = " (repeat: already had it)" if msg_id in seen else ""
            seen.add(msg_id)
            data = event.get("data", {})
            extra = " ".join(f"{k}={data[k]}" for k in ("reason", "report", "overturned") if k in data)
            print(f"{time.strftime('%H:%M:%S')} {'signature ok' if valid else 'BAD SIGNATURE'} {msg_id} "
                  f"{event.get('type', '?')} {data.get('external_id', '')} {extra}{repeat}", flush=True)

        def log_message(self, *args):
            pass

    return Handler


def main():
    parser = argparse.ArgumentParser(description="A demo webhook receiver that verifies signatures and logs events.")
    parser.add_argument("--port", type=int, default=8003)
    parser.add_argument("--secret-file", type=Path, required=True)
    args = parser.parse_args()
    server = ThreadingHTTPServer(("127.0.0.1", args.port), handler(args.secret_file))
    print(f"webhook receiver on http://127.0.0.1:{args.port}/hooks (secret from {args.secret_file})", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        sys.exit(0)


if __name__ == "__main__":
    main()
