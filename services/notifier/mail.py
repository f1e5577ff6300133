"""E-mail over SMTP, for handlers and for web-form citizens who left an address.

The standard library's client runs in a worker thread, so the event loop never waits on a mail
server. The delivery id travels as the ``Message-ID``: a mail system — or a person — can see that
two messages with the same one are the same message.
"""

import asyncio
import smtplib
from email.message import EmailMessage
from email.utils import formatdate

from services.notifier.domain import Delivery
from services.notifier.providers import Permanent, Transient


class MailProvider:
    def __init__(self, host: str, port: int, sender: str, *, timeout: float, user: str = "", password: str = "",
                 starttls: bool = False):
        self.host, self.port, self.sender, self.timeout = host, port, sender, timeout
        self.user, self.password, self.starttls = user, password, starttls

    def message(self, delivery: Delivery) -> EmailMessage:
        message = EmailMessage()
        message["From"] = self.sender
        message["To"] = delivery.target
        message["Subject"] = delivery.subject
        message["Date"] = formatdate(usegmt=True)
        message["Message-ID"] = f"<{delivery.delivery_id}@notifier.1022>"
        message["X-Idempotency-Key"] = str(delivery.delivery_id)
        message.set_content(delivery.text)
        return message

    async def send(self, delivery: Delivery) -> None:
        await asyncio.to_thread(self._send, self.message(delivery))

    def _send(self, message: EmailMessage) -> None:
        try:
            with smtplib.SMTP(self.host, self.port, timeout=self.timeout) as smtp:
                if self.starttls:
                    smtp.starttls()
                if self.user:
                    smtp.login(self.user, self.password)
                smtp.send_message(message)
        except smtplib.SMTPRecipientsRefused as error:
            codes = [code for code, _ in error.recipients.values()]
            kind = Permanent if all(code >= 500 for code in codes) else Transient
            raise kind(f"SMTP refused the recipient ({', '.join(map(str, codes))})") from error
        except smtplib.SMTPResponseException as error:
            # 5xx will be refused again; 4xx (greylisting, a full queue) may pass later.
            kind = Permanent if error.smtp_code >= 500 else Transient
            raise kind(f"SMTP {error.smtp_code}: {error.smtp_error.decode(errors='replace')[:200]}") from error
        except (smtplib.SMTPException, OSError) as error:
            raise Transient(f"{type(error).__name__} talking to the mail server") from error
