"""E-mail over SMTP, for handlers and for web-form citizens who left an address.

The standard library's client runs in a worker thread, so the event loop never waits on a mail
server. The delivery id travels as the ``Message-ID``: a mail system — or a person — can see that
two messages with the same one are the same message.

Connections to the mail server are kept and reused, as mail clients do: a new one per message was
a TCP handshake, a greeting, EHLO and QUIT around every mail. A kept connection is checked with
RSET before it carries the next message (one round trip, and nothing sent yet if the server has
closed it meanwhile); one idle for longer than ``IDLE_SECONDS`` is closed instead, well within the
five minutes a server may wait (RFC 5321, 4.5.3.2.7).

A send the dispatcher cuts short (its send time-out) ends then: a thread cannot be cancelled, so
its connection is shut under it (a TCP connect under way still runs to its own time-out). Before,
the thread went on, and a slow server that took every try a little past the time-out delivered
each of them while each counted as failed and was tried again: up to ``NOTIFIER_MAX_ATTEMPTS``
copies, and a record saying none arrived.
"""

import asyncio
import contextlib
import email.errors
import email.policy
import queue
import re
import smtplib
import socket
import ssl
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from email.header import Header
from email.mime.text import MIMEText
from email.utils import formataddr, formatdate, parseaddr

from services.notifier.domain import Delivery
from services.notifier.providers import Permanent, Transient, Unanswered

IDLE_SECONDS = 60.0


class Attempt:
    """One send's connection, so that the event loop can end the send from outside its thread: from
    the moment the send takes a connection (a kept one to check, or a new one before it connects)
    until it gives it back."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.smtp: smtplib.SMTP | None = None
        self.cut = False

    def hold(self, smtp: smtplib.SMTP) -> None:
        """The send works on ``smtp`` now; Transient if it was cut short meanwhile."""
        with self.lock:
            if self.cut:
                raise Transient("the send was cut short")
            self.smtp = smtp

    def let_go(self) -> bool:
        """The send gives its connection back: False if it was cut short, and the connection is not to be kept."""
        with self.lock:
            self.smtp = None
            return not self.cut

    def cut_short(self) -> None:
        with self.lock:
            self.cut = True
            if self.smtp is not None and self.smtp.sock is not None:
                with contextlib.suppress(OSError):
                    self.smtp.sock.shutdown(socket.SHUT_RDWR)  # the thread's read or write fails at once


class MailProvider:
    def __init__(self, host: str, port: int, sender: str, *, timeout: float, user: str = "", password: str = "",
                 tls: ssl.SSLContext | None = None, threads: int = 8):
        self.host, self.port, self.timeout = host, port, timeout
        # Threads of its own, so that mail never waits behind the process's other thread work. Not
        # one per concurrent send: 32 threads cost the notifier a quarter more CPU at 200 req/s
        # (0.22 cores, against 0.17-0.20 with 8). The e-mail dispatcher sends at most ``at_once``
        # at a time (main.concurrency_for): a send waiting for a thread would run out its time-out.
        self.threads = ThreadPoolExecutor(threads, thread_name_prefix="smtp")
        self.at_once = threads
        self.user, self.password, self.tls = user, password, tls  # tls: STARTTLS under that context
        # A display name may be Vietnamese ("Tổng đài 1022 <…>"): encoded once, the address left readable.
        self.from_header = formataddr(parseaddr(sender), charset="utf-8")
        self.idle: queue.SimpleQueue[tuple[smtplib.SMTP, float]] = queue.SimpleQueue()

    def message(self, delivery: Delivery) -> MIMEText:
        # The classic (compat32) message: its headers are stored as given, where EmailMessage's
        # default policy parsed each one again through the header registry — a fifth of the
        # notifier's CPU under load. Non-ASCII subjects and bodies are encoded all the same.
        # An address that is not ASCII (bình@…) goes only by SMTPUTF8, which the classic message
        # cannot be written for: such a message is made under the SMTP policy.
        plain = delivery.target.isascii()
        message = MIMEText(delivery.text, "plain", "utf-8", policy=None if plain else email.policy.SMTP)
        message["From"] = self.from_header
        message["To"] = delivery.target
        message["Subject"] = Header(delivery.subject, "utf-8") if plain else delivery.subject
        message["Date"] = formatdate(usegmt=True)
        message["Message-ID"] = f"<{delivery.delivery_id}@notifier.1022>"
        message["X-Idempotency-Key"] = str(delivery.delivery_id)
        return message

    async def send(self, delivery: Delivery) -> None:
        attempt = Attempt()
        running = asyncio.get_running_loop().run_in_executor(self.threads, self._send, delivery, attempt)
        try:
            await asyncio.shield(running)
        except asyncio.CancelledError:
            if not running.done():
                attempt.cut_short()
            try:
                await running
            except Permanent:
                raise  # refused for good just then: that is its outcome, not a time-out
            except Exception:  # noqa: BLE001 - the cut's doing: the send did not go through
                raise asyncio.CancelledError from None
            # It went through just as it was cut short: that is its outcome, sent.

    def close(self) -> None:
        """Say goodbye on every kept connection."""
        while True:
            try:
                smtp, _ = self.idle.get_nowait()
            except queue.Empty:
                break
            _quit(smtp)
        self.threads.shutdown(wait=False)

    def _connection(self, attempt: Attempt) -> smtplib.SMTP:
        """A kept connection that still answers, or a new one; each held by ``attempt`` as it is tried."""
        while True:
            try:
                smtp, since = self.idle.get_nowait()
            except queue.Empty:
                break
            if time.monotonic() - since > IDLE_SECONDS:
                _quit(smtp)
                continue
            try:
                attempt.hold(smtp)
            except Transient:
                self.idle.put((smtp, since))  # untouched: still good for another send
                raise
            try:
                smtp.rset()
                return smtp
            except (smtplib.SMTPException, OSError):
                smtp.close()
        smtp = smtplib.SMTP(timeout=self.timeout)  # held before it connects, so that a cut reaches it
        smtp._host = self.host  # the name STARTTLS checks the certificate for; SMTP(host) sets it, connect() does not
        attempt.hold(smtp)
        try:
            code, greeting = smtp.connect(self.host, self.port)
            if code != 220:
                raise smtplib.SMTPConnectError(code, greeting)
            if self.tls is not None:
                smtp.starttls(context=self.tls)
            if self.user:
                smtp.login(self.user, self.password)
        except BaseException:
            smtp.close()
            raise
        return smtp

    def _send(self, delivery: Delivery, attempt: Attempt) -> None:
        message, smtp, lost = self.message(delivery), None, Transient  # built here too, off the event loop
        try:
            smtp = self._connection(attempt)
            attempt.hold(smtp)  # not cut short while it connected (a TCP connect cannot be)
            lost = Unanswered  # from here the server may have taken the message before the connection went
            try:
                smtp.send_message(message)
            except (smtplib.SMTPNotSupportedError, email.errors.MessageError) as error:
                # Before a word of it was sent: an address the server cannot take (not ASCII, and
                # no SMTPUTF8) or a header that cannot be written (a line break in it).
                raise Permanent(f"the message cannot be sent as addressed: {type(error).__name__}") from error
        except smtplib.SMTPRecipientsRefused as error:
            refusals = [(code, _enhanced(text), text) for code, text in error.recipients.values()]
            # Mail servers check the client and the sender at RCPT TO too (Postfix by default):
            # "554 5.7.1 Relay access denied", "553 5.1.8 Sender address rejected", and without an
            # enhanced code Exim's "550 relay not permitted", "550 Sender verify failed", are this
            # notifier's set-up refused, to be tried again while it is mended, not the recipient's.
            own = any(_own_refusal(*refusal) for refusal in refusals)
            kind = Permanent if all(code >= 500 for code, _, _ in refusals) and not own else Transient
            raise kind(f"SMTP refused the recipient: {', '.join(_status(c, e) for c, e, _ in refusals)}") from error
        except smtplib.SMTPResponseException as error:
            # 5xx to the message will be refused again; 4xx (greylisting, a full queue) may pass
            # later. A 5xx to this notifier's own set-up (the greeting, EHLO, STARTTLS, its login,
            # its sender address) is the notifier's to mend, not the message's: mended, it goes.
            # Taken as the message's, a mail server that refused the configured sender failed
            # every handler's and citizen's e-mail for good at its first try.
            # (EHLO is sent with the first mail when the connection needed no STARTTLS or login.)
            own = smtp is None or isinstance(error, (smtplib.SMTPAuthenticationError, smtplib.SMTPSenderRefused,
                                                     smtplib.SMTPHeloError))
            kind = Permanent if error.smtp_code >= 500 and not own else Transient
            # The code, not the server's words: a content filter quoting the message would put the
            # citizen's words where overseers read the outcome.
            raise kind(f"SMTP {_status(error.smtp_code, _enhanced(error.smtp_error))}") from error
        except (smtplib.SMTPException, OSError) as error:
            if smtp is not None:
                smtp.close()  # in an unknown state: not kept
                smtp = None
            raise lost(f"{type(error).__name__} talking to the mail server") from error
        finally:
            # A refusal leaves the connection good (smtplib reset the transaction); it is kept,
            # unless the send was cut short: then it may be shut, or half way through a command.
            if smtp is not None:
                if attempt.let_go():
                    self.idle.put((smtp, time.monotonic()))
                else:
                    smtp.close()


def _quit(smtp: smtplib.SMTP) -> None:
    with contextlib.suppress(smtplib.SMTPException, OSError):
        smtp.quit()
    smtp.close()


_ENHANCED = re.compile(rb"\s*([245]\.\d{1,3}\.\d{1,3})\b")


def _enhanced(text: bytes) -> str:
    """The enhanced status code a reply starts with (RFC 3463), or nothing."""
    found = _ENHANCED.match(text)
    return found.group(1).decode() if found else ""


def _status(code: int, enhanced: str) -> str:
    """``550 (5.1.1)``: kept apart, the two read as a phone number to redact() and were masked."""
    return f"{code} ({enhanced})" if enhanced else str(code)


_SET_UP_WORDS = re.compile(rb"\b(relay|relaying|sender)\b", re.IGNORECASE)


def _own_refusal(code: int, enhanced: str, text: bytes) -> bool:
    """Whether a refusal at RCPT TO is of this notifier (relaying, its sender), not of the recipient:
    RFC 3463's security and policy class (X.7.*), the bad sender address codes (X.1.7, X.1.8), and,
    from a server that gives no enhanced code, words of relaying or of the sender."""
    if code < 500:
        return False
    if enhanced:
        return enhanced[2:4] == "7." or enhanced[2:] in ("1.7", "1.8")
    return _SET_UP_WORDS.search(text) is not None
