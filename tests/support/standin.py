"""A local HTTP stand-in for the providers the notifier talks to (district webhooks, the SMS and
push gateways, the Zalo OA API): it answers 200 and records every POST with its Idempotency-Key,
so a test can count what a recipient really received — repeats included."""

import json
import threading
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class StandIn:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.by_key: Counter[str] = Counter()
        self.bodies: dict[str, dict] = {}
        stand_in = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - the stdlib's name
                raw = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                key = self.headers.get("Idempotency-Key") or f"no-key-{len(stand_in.by_key)}"
                try:
                    body = json.loads(raw or b"{}")
                except ValueError:
                    body = {"raw": raw.decode("utf-8", "replace")}
                with stand_in.lock:
                    stand_in.by_key[key] += 1
                    stand_in.bodies.setdefault(key, {"path": self.path, **body})
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.end_headers()
                self.wfile.write(b'{"ok": true}')

            def log_message(self, *_: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def keys_for_case(self, case_id: str) -> list[str]:
        with self.lock:
            return [k for k, b in self.bodies.items() if str(b.get("case_id")) == case_id]

    def repeats(self) -> int:
        """Messages received more than once under the same key (a receiver drops those)."""
        with self.lock:
            return sum(n - 1 for n in self.by_key.values() if n > 1)

    def close(self) -> None:
        self.server.shutdown()
