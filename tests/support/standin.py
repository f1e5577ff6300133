"""A local stand-in for the providers the notifier talks to: an HTTP server for district webhooks,
the SMS and push gateways and the Zalo OA API, and an SMTP server (aiosmtpd) for handlers' e-mail.
It accepts everything and records each message with its Idempotency-Key (``X-Idempotency-Key`` by
e-mail), so a test can count what a recipient really received — repeats included."""

import json
import threading
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from tests.support.mailbox import MailBox


class StandIn:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.by_key: Counter[str] = Counter()
        self.bodies: dict[str, dict] = {}
        stand_in = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - the stdlib's name
                raw = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                try:
                    body = json.loads(raw or b"{}")
                except ValueError:
                    body = {"raw": raw.decode("utf-8", "replace")}
                stand_in.record(self.headers.get("Idempotency-Key"), {"path": self.path, **body})
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.end_headers()
                self.wfile.write(b'{"ok": true}')

            def log_message(self, *_: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

        self.mail = MailBox(lambda m: self.record(m["X-Idempotency-Key"], {
            "path": "smtp", "to": str(m["To"]), "text": m.get_content().strip()}))
        self.smtp_port = self.mail.port

    def record(self, key: str | None, body: dict) -> None:
        with self.lock:
            key = key or f"no-key-{len(self.by_key)}"
            self.by_key[key] += 1
            self.bodies.setdefault(key, body)

    def keys_for_case(self, case_id: str) -> list[str]:
        with self.lock:
            return [k for k, b in self.bodies.items() if str(b.get("case_id")) == case_id]

    def repeats(self) -> int:
        """Messages received more than once under the same key (a receiver drops those)."""
        with self.lock:
            return sum(n - 1 for n in self.by_key.values() if n > 1)

    def close(self) -> None:
        self.server.shutdown()
        self.mail.close()
