"""The API is read only: GET and HEAD reach it, every other method is refused with 405.

FastAPI routes answer GET only; this middleware answers HEAD as GET without the body (headers,
status and length as GET would give them) and refuses the rest before any route or body parsing.
Routes that stream for long (the CSV export, the audit stream) ask :func:`is_head` and skip the work.
"""

from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

HEAD_KEY = "oversight.head"


def is_head(scope: Scope) -> bool:
    """True when the request was a HEAD: only the headers will be sent."""
    return bool(scope.get(HEAD_KEY))


class ReadOnly:
    def __init__(self, app: ASGIApp):
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] == "GET":
            await self.app(scope, receive, send)
            return
        if scope["method"] != "HEAD":
            refusal = JSONResponse({"detail": f"{scope['method']} is not allowed: this API is read only (GET, HEAD)"},
                                   status_code=405, headers={"Allow": "GET, HEAD"})
            await refusal(scope, receive, send)
            return
        finished = False

        async def headers_only(message: Message) -> None:
            nonlocal finished
            if message["type"] != "http.response.body":
                await send(message)
            elif not finished:
                finished = True
                await send({"type": "http.response.body", "body": b"", "more_body": False})

        await self.app({**scope, "method": "GET", HEAD_KEY: True}, receive, headers_only)
