"""An outbound-webhook receiver for the end-to-end tests that verifies every delivery with the
published Standard Webhooks library (PyPI `standardwebhooks`), independent of SquareMCP's own
signing code, and de-duplicates on `webhook-id` as the spec tells receivers to.

  python webhook_receiver.py PORT

Control (loopback only, JSON): POST /_secret {"secret": "whsec_..."}; POST /_mode {"mode": "up" |
"down" | "flap"} (down: every delivery answers 503; flap: each id fails on its first request,
then succeeds); GET /_state -> {"events": {id: event}, "requests": {id: n}, "rejected": n}.
"""

import json
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from standardwebhooks import Webhook

lock = threading.Lock()
state = {"secret": None, "mode": "up", "events": {}, "requests": {}, "rejected": 0}


class Handler(BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def reply(self, status, body=b""):
        self.send_response(status)
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        with lock:
            body = json.dumps({k: state[k] for k in ("events", "requests", "rejected", "mode")}).encode()
        self.reply(200, body)

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("content-length", "0")))
        if self.path in ("/_secret", "/_mode"):
            with lock:
                state.update(json.loads(body))
            return self.reply(204)
        headers = {k.lower(): v for k, v in self.headers.items()}
        with lock:
            secret, mode = state["secret"], state["mode"]
        try:
            event = Webhook(secret).verify(body, headers)
        except Exception:
            with lock:
                state["rejected"] += 1
            return self.reply(400)
        msg_id = headers["webhook-id"]
        with lock:
            state["requests"][msg_id] = state["requests"].get(msg_id, 0) + 1
            first = state["requests"][msg_id] == 1
            if mode == "down" or (mode == "flap" and first):
                return self.reply(503)
            # Dedupe on webhook-id: a repeat is acknowledged, not processed again.
            state["events"].setdefault(msg_id, event)
        self.reply(200, b"ok")


ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), Handler).serve_forever()
