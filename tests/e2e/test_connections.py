"""What a channel adapter's HTTP client sees of intake's connections."""

import http.client
import time
from urllib.parse import urlsplit


def test_a_pooled_connection_still_carries_a_request_after_a_lull(mesh):
    """Clients keep idle connections for 15 s (aiohttp) to 90 s (Go), balancers for about 60 s.
    A connection intake closed after 5 s idle (uvicorn's default) failed the client's next request
    on it with a disconnect; intake keeps it longer than they do."""
    intake = urlsplit(mesh.url("intake"))
    conn = http.client.HTTPConnection(intake.hostname, intake.port, timeout=10)
    try:
        conn.request("GET", "/healthz")
        first = conn.getresponse()
        first.read()
        kept = conn.sock
        time.sleep(7)  # a quiet moment at the adapter, longer than uvicorn's default keep-alive
        conn.request("GET", "/healthz")
        second = conn.getresponse()
        second.read()
        assert (first.status, second.status) == (200, 200)
        assert conn.sock is kept  # the same connection, not a new one
    finally:
        conn.close()
