"""A network between a service and PostgreSQL that can be cut, as a broken network is: nothing
passes either way, and neither side hears of it."""

import asyncio
import contextlib


class Cut:
    """A TCP proxy to PostgreSQL that can be cut: from then on it passes nothing either way, though
    both connections stay open. A side that closes is closed on the other side too."""

    def __init__(self, port: int):
        self.upstream_port, self.flowing = port, True
        self.server: asyncio.Server | None = None

    async def __aenter__(self) -> "Cut":
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self.server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *_) -> None:
        self.server.close()

    async def _serve(self, client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        server_r, server_w = await asyncio.open_connection("127.0.0.1", self.upstream_port)

        async def pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            with contextlib.suppress(ConnectionError):
                while data := await reader.read(65536):
                    if self.flowing:
                        writer.write(data)
                        await writer.drain()
            for w in (client_w, server_w):
                w.close()

        await asyncio.gather(pipe(client_r, server_w), pipe(server_r, client_w))
