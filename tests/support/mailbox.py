"""A local SMTP server (aiosmtpd) standing in for a mail system in tests: it keeps every message it
is given and can refuse chosen mailboxes."""

import socket
from collections.abc import Callable
from email import message_from_bytes, policy
from typing import Any

from aiosmtpd.controller import Controller


class MailBox:
    """A local SMTP server (aiosmtpd) that keeps every message it is given."""

    def __init__(self, on_message: Callable[[Any], None] | None = None) -> None:
        self.messages: list[Any] = []
        self.on_message = on_message  # also told of each message as it arrives
        self.unknown: set[str] = set()  # mailboxes that do not exist: refused with 550
        mailbox = self

        class Handler:
            async def handle_RCPT(self, server: Any, session: Any, envelope: Any, address: str,  # noqa: N802
                                  options: list) -> str:
                if address in mailbox.unknown:
                    return "550 5.1.1 mailbox unavailable"
                envelope.rcpt_tos.append(address)
                return "250 OK"

            async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802 - aiosmtpd's name
                message = message_from_bytes(envelope.content, policy=policy.default)
                mailbox.messages.append(message)
                if mailbox.on_message:
                    mailbox.on_message(message)
                return "250 OK"

        with socket.socket() as probe:  # aiosmtpd wants a port number, not a socket
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        self.controller = Controller(Handler(), hostname="127.0.0.1", port=self.port)
        self.controller.start()

    def to(self, address: str) -> list[Any]:
        return [m for m in self.messages if m["To"] == address]

    def close(self) -> None:
        self.controller.stop()
