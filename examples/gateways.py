"""Stand-ins for the city's message gateways (SMS, app push, the Zalo OA message API), for demos:
they accept what the notifier sends, recognise a repeat by its Idempotency-Key, and show it.

Run: ``python -m examples.gateways`` (port ``GATEWAYS_PORT``, default 8006); ``GET /messages``
lists what arrived.
"""

import os

from fastapi import FastAPI, Header, Request

MAX_KEPT = 1000


def create_app() -> FastAPI:
    app = FastAPI(title="message gateway stand-ins")
    seen: dict[str, dict] = {}

    @app.get("/healthz")
    async def healthz() -> dict:
        return {"status": "ok", "messages": len(seen)}

    @app.post("/{channel}")
    async def accept(channel: str, request: Request, idempotency_key: str | None = Header(None)) -> dict:
        body = await request.json()
        key = idempotency_key or f"unkeyed-{len(seen)}"
        first = key not in seen
        if first and len(seen) < MAX_KEPT:
            seen[key] = {"channel": channel, "text": body.get("text"), "case_id": body.get("case_id")}
        return {"ok": True, "first_time": first}

    @app.get("/messages")
    async def messages() -> list[dict]:
        return list(seen.values())

    return app


if __name__ == "__main__":
    import uvicorn

    uvicorn.run(create_app(), host="127.0.0.1", port=int(os.environ.get("GATEWAYS_PORT", "8006")), log_level="warning")
