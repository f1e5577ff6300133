"""E-mail through a real SMTP server on loopback: what the handler reads is what was written, the
notifier keeps its connection to the mail server rather than opening one per message, and a
connection the server has dropped meanwhile costs nothing but a new one."""

import asyncio
import dataclasses
import socket
import ssl
import subprocess
import uuid
from email import message_from_bytes, policy
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller

from services.notifier.domain import Delivery
from services.notifier.mail import MailProvider
from services.notifier.main import mail_tls
from services.notifier.settings import NotifierSettings
from services.notifier.providers import Permanent, Transient, Unanswered


class Server:
    """An SMTP server that keeps each mail with the connection (peer address) it came on."""

    def __init__(self, utf8: bool = False) -> None:
        self.utf8 = utf8  # whether it offers SMTPUTF8 (addresses that are not ASCII)
        self.mails: list[tuple[Any, Any]] = []
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        self.controller: Controller | None = None

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802 - aiosmtpd's name
        self.mails.append((session.peer, message_from_bytes(envelope.content, policy=policy.default)))
        return "250 OK"

    def start(self) -> None:
        self.controller = Controller(self, hostname="127.0.0.1", port=self.port, enable_SMTPUTF8=self.utf8)
        self.controller.start()

    def stop(self) -> None:
        self.controller.stop()  # closes every connection it has


@pytest.fixture
def server():
    s = Server()
    s.start()
    yield s
    s.stop()


def delivery(n: int) -> Delivery:
    return Delivery(delivery_id=uuid.uuid4(), case_id=uuid.uuid4(), cause_event_id=uuid.uuid4(),
                    correlation_id=uuid.uuid4(), recipient="handler", channel="email",
                    target="tiepnhan@phunhuan.example.vn", template="assigned",
                    subject=f"[1022] Phản ánh mới số {n}: Hỗ trợ nhu yếu phẩm",
                    text=f"Kính gửi cán bộ tiếp nhận,\nPhản ánh số {n} cần xử lý trước 17 giờ.", payload={},
                    source_topic="unit.assignments.v1")


async def test_mails_arrive_as_written_over_one_kept_connection(server):
    mail = MailProvider("127.0.0.1", server.port, "Tổng đài 1022 <tongdai1022@hcmc.example>", timeout=5)
    sent = [delivery(n) for n in range(3)]
    for d in sent:
        await mail.send(d)
    await asyncio.to_thread(mail.close)

    assert [(str(m["Subject"]), m.get_content().strip(), m["To"], m["Message-ID"]) for _, m in server.mails] == [
        (d.subject, d.text, d.target, f"<{d.delivery_id}@notifier.1022>") for d in sent]
    assert all(m["From"].addresses[0].addr_spec == "tongdai1022@hcmc.example" for _, m in server.mails)
    assert all(m["From"].addresses[0].display_name == "Tổng đài 1022" for _, m in server.mails)
    assert len({peer for peer, _ in server.mails}) == 1  # one connection for the three


async def test_a_connection_the_server_dropped_is_replaced_and_the_mail_still_goes(server):
    mail = MailProvider("127.0.0.1", server.port, "tongdai1022@hcmc.example", timeout=5)
    await mail.send(delivery(1))
    server.stop()  # the mail server restarts: the kept connection is dead
    server.start()
    await mail.send(delivery(2))
    await asyncio.to_thread(mail.close)

    assert [str(m["Subject"]) for _, m in server.mails] == [delivery(1).subject, delivery(2).subject]
    assert len({peer for peer, _ in server.mails}) == 2


class SlowServer(Server):
    """A mail server that takes its time over each envelope command, as a busy one does."""

    async def handle_MAIL(self, server: Any, session: Any, envelope: Any, address: str, options: list) -> str:  # noqa: N802
        await asyncio.sleep(0.4)
        envelope.mail_from = address
        return "250 OK"

    async def handle_RCPT(self, server: Any, session: Any, envelope: Any, address: str, options: list) -> str:  # noqa: N802
        await asyncio.sleep(0.4)
        envelope.rcpt_tos.append(address)
        return "250 OK"


async def test_a_send_cut_short_by_its_time_out_never_arrives_later_nor_twice():
    """The dispatcher gives a send its time-out and tries again later. A cut send once went on in
    its thread and arrived after all: each try a copy, while the record said none had."""
    slow = SlowServer()
    slow.start()
    try:
        mail = MailProvider("127.0.0.1", slow.port, "tongdai1022@hcmc.example", timeout=5)
        late = delivery(1)
        for _ in range(3):  # three tries, each longer than the time-out, as the dispatcher makes them
            with pytest.raises(TimeoutError):
                await asyncio.wait_for(mail.send(late), 0.6)
        await asyncio.sleep(2)  # anything still on its way has arrived by now
        assert slow.mails == []
        await asyncio.wait_for(mail.send(late), 5)  # a try with the time it needs
        await asyncio.to_thread(mail.close)
    finally:
        slow.stop()
    assert [m["Message-ID"] for _, m in slow.mails] == [f"<{late.delivery_id}@notifier.1022>"]


async def test_an_address_that_cannot_be_written_is_refused_for_good_not_tried_for_an_hour(server):
    """A line break in a citizen's e-mail address raised while the message was written, before a
    word was sent; read as "maybe taken", it was claimed again and again, 25 times, holding back
    that citizen's later messages. The message goes on, and the server's mail is untouched."""
    mail = MailProvider("127.0.0.1", server.port, "Tổng đài 1022 <tongdai1022@hcmc.example>", timeout=5)
    broken = dataclasses.replace(delivery(1), target="binh@example.vn\nBcc: everyone@example.vn")
    try:
        with pytest.raises(Permanent):
            await mail.send(broken)
        await mail.send(delivery(2))
    finally:
        mail.close()
    assert [m["Subject"] for _, m in server.mails] == [delivery(2).subject]


@pytest.mark.parametrize("utf8", [True, False], ids=["a server with SMTPUTF8", "one without"])
async def test_an_address_that_is_not_ascii_goes_where_the_server_takes_it_and_is_refused_where_not(utf8):
    """Intake takes bình@ví-dụ.vn. Written as the classic message, its mail raised TypeError on a
    server offering SMTPUTF8, outside every outcome, and was claimed again 25 times."""
    server = Server(utf8=utf8)
    server.start()
    mail = MailProvider("127.0.0.1", server.port, "Tổng đài 1022 <tongdai1022@hcmc.example>", timeout=5)
    to_binh = dataclasses.replace(delivery(1), target="bình@ví-dụ.vn")
    try:
        if utf8:
            await mail.send(to_binh)
            [(_, arrived)] = server.mails
            assert arrived["To"] == "bình@ví-dụ.vn" and arrived["Subject"] == to_binh.subject
            assert arrived.get_content().strip() == to_binh.text
        else:
            with pytest.raises(Permanent):
                await mail.send(to_binh)
            await mail.send(delivery(2))  # the connection is as good as before
            assert [m["Subject"] for _, m in server.mails] == [delivery(2).subject]
    finally:
        mail.close()
        server.stop()


async def test_a_server_not_offering_starttls_as_configured_is_tried_again_not_refused_for_good(server):
    """Its mail server's settings are the notifier's to mend: each message waits out its tries."""
    mail = MailProvider("127.0.0.1", server.port, "Tổng đài 1022 <tongdai1022@hcmc.example>", timeout=5,
                        tls=mail_tls(NotifierSettings()))
    try:
        with pytest.raises(Transient) as failed:
            await mail.send(delivery(1))
        assert not isinstance(failed.value, Unanswered) and server.mails == []
    finally:
        mail.close()


class TlsServer(Server):
    """A mail server offering STARTTLS with a certificate of its own, for 127.0.0.1."""

    def __init__(self, cert: Path, key: Path) -> None:
        super().__init__()
        self.tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        self.tls.load_cert_chain(cert, key)

    def start(self) -> None:
        self.controller = Controller(self, hostname="127.0.0.1", port=self.port, tls_context=self.tls,
                                     require_starttls=True)
        self.controller.start()


@pytest.fixture
def certificate(tmp_path):
    cert, key = tmp_path / "relay.pem", tmp_path / "relay.key"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=relay",
                    "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", str(key), "-out", str(cert)],
                   check=True, capture_output=True)
    return cert, key


async def test_starttls_checks_the_relays_certificate(certificate):
    """smtplib's STARTTLS without a context checks neither the certificate nor the name: anyone on
    the way to the relay could read every mail, and the relay's password. A relay whose certificate
    no CA the notifier trusts vouches for is not sent to; one its configured CA signed is."""
    cert, key = certificate
    relay = TlsServer(cert, key)
    relay.start()
    untrusted = MailProvider("127.0.0.1", relay.port, "tongdai1022@hcmc.example", timeout=5,
                             tls=mail_tls(NotifierSettings()))
    trusted = MailProvider("127.0.0.1", relay.port, "tongdai1022@hcmc.example", timeout=5,
                           tls=mail_tls(NotifierSettings(smtp_ca_file=str(cert))))
    try:
        with pytest.raises(Transient):  # the notifier's set-up to mend: tried again, not refused for good
            await untrusted.send(delivery(1))
        assert relay.mails == []
        await trusted.send(delivery(2))
        assert [m["Subject"] for _, m in relay.mails] == [delivery(2).subject]
    finally:
        untrusted.close()
        trusted.close()
        relay.stop()


def test_a_login_in_clear_to_a_relay_elsewhere_is_refused_at_start():
    with pytest.raises(ValueError, match="in clear"):
        NotifierSettings(smtp_host="smtp.hcmc.example", smtp_user="tongdai1022", smtp_password="secret")
    NotifierSettings(smtp_host="smtp.hcmc.example", smtp_user="tongdai1022", smtp_starttls=True)
    NotifierSettings(smtp_host="127.0.0.1", smtp_user="tongdai1022")  # a relay on this host: nothing on the way
    NotifierSettings(smtp_user="tongdai1022")  # no mail at all: nothing is sent in clear


class RefusingServer(Server):
    """A mail server that refuses the notifier's sender address, or the message itself."""

    def __init__(self, refuse: str) -> None:
        super().__init__()
        self.refuse = refuse

    async def handle_EHLO(self, server: Any, session: Any, envelope: Any, hostname: str,  # noqa: N802
                          responses: list[str]) -> list[str]:
        if self.refuse == "greeting":
            return ["550 5.7.1 Not accepting mail from this host"]
        session.host_name = hostname  # as aiosmtpd's own EHLO does
        return responses

    async def handle_HELO(self, server: Any, session: Any, envelope: Any, hostname: str) -> str:  # noqa: N802
        if self.refuse == "greeting":
            return "550 5.7.1 Not accepting mail from this host"
        session.host_name = hostname
        return f"250 {server.hostname}"

    async def handle_MAIL(self, server: Any, session: Any, envelope: Any, address: str, options: list) -> str:  # noqa: N802
        if self.refuse == "sender":
            return "553 5.7.1 Sender address not allowed"
        envelope.mail_from = address
        return "250 OK"

    async def handle_RCPT(self, server: Any, session: Any, envelope: Any, address: str,  # noqa: N802
                          options: list) -> str:
        # Postfix checks the client and the sender at RCPT TO by default (smtpd_delay_reject).
        if self.refuse in RCPT_REFUSALS:
            return RCPT_REFUSALS[self.refuse]
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
        return "554 5.6.0 Message content rejected" if self.refuse == "message" else await super().handle_DATA(
            server, session, envelope)


RCPT_REFUSALS = {"relaying": "554 5.7.1 <binh@example.vn>: Relay access denied",
                 "sender at recipient": "553 5.1.8 <tongdai1022@hcmc.example>: Sender address rejected",
                 "recipient": "550 5.1.1 <binh@example.vn>: Recipient address rejected: User unknown",
                 "relaying, no enhanced code": "550 relay not permitted",
                 "recipient, no enhanced code": "550 Unrouteable address"}


@pytest.mark.parametrize(("refused", "kind"), [
    ("greeting", Transient), ("sender", Transient), ("relaying", Transient), ("sender at recipient", Transient),
    ("relaying, no enhanced code", Transient), ("recipient", Permanent), ("recipient, no enhanced code", Permanent),
    ("message", Permanent)])
async def test_a_refused_sender_is_the_notifiers_to_mend_and_a_refused_message_is_final(refused, kind):
    """A mail server refusing the configured sender address, or relaying for this notifier, failed
    every e-mail for good at once; like a refused login, it is now tried again while it is mended.
    A recipient or a message refused is final. Either way the outcome gives the server's codes,
    never its words (a content filter may quote the message)."""
    server = RefusingServer(refused)
    server.start()
    mail = MailProvider("127.0.0.1", server.port, "Tổng đài 1022 <tongdai1022@hcmc.example>", timeout=5)
    try:
        with pytest.raises((Transient, Permanent)) as failed:
            await mail.send(delivery(1))
        assert type(failed.value) is kind and server.mails == []
        assert "no enhanced code" in refused or "5." in str(failed.value)
        words = set(str(failed.value).lower().replace(":", " ").split())
        assert not {"rejected", "denied", "accepting", "binh"} & words
    finally:
        mail.close()
        server.stop()
