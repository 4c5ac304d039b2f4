"""Mail notifier: one multipart/alternative message per report, sent with aiosmtplib.

The message has a text/plain and a text/html part rendered from the same report, and a subject
with the title, priority and rule. Each send opens its own SMTP connection, so no connection is
left idle between alerts and ``close`` has nothing to release. There are no retries: an SMTP
relay queues and retries by itself once it has accepted the message.
"""

from __future__ import annotations

import re
import ssl
import time
from email.message import EmailMessage
from email.utils import formatdate, make_msgid

import aiosmtplib

from responder.errors import ConfigError, NotifyError
from responder.notify import render
from responder.notify.base import Report
from responder.notify.config import EmailConfig, check_email_auth
from responder.notify.delivery import bind_logger

# Mail clients show far less than this; the cap keeps a rule name chosen by the alert's author
# from filling the header.
SUBJECT_MAX = 200

# A line break in a header value would start a new header chosen by the alert's author.
_CONTROL_CHARACTERS = re.compile(r"[\x00-\x1f\x7f]+")


def subject(report: Report) -> str:
    """Build the subject line: the title with any control characters replaced by spaces."""
    target = report.alert.target
    where = f" on {target}" if target is not None else ""
    line = _CONTROL_CHARACTERS.sub(" ", f"{render.title(report)}{where}")
    return render.cut(line, SUBJECT_MAX)


def build_message(report: Report, config: EmailConfig) -> EmailMessage:
    """Build the multipart/alternative message for ``report``."""
    message = EmailMessage()
    message["Subject"] = subject(report)
    message["From"] = config.sender
    message["To"] = ", ".join(config.recipients)
    message["Date"] = formatdate(localtime=False, usegmt=True)
    # The domain comes from the sender because make_msgid's default looks up this host's name.
    message["Message-ID"] = make_msgid(domain=config.sender.rpartition("@")[2])
    # RFC 3834: marks the mail as sent by a program, so vacation responders do not reply to it.
    message["Auto-Submitted"] = "auto-generated"
    message["X-Falco-Rule"] = _CONTROL_CHARACTERS.sub(" ", report.alert.rule)
    message["X-Falco-Priority"] = render.priority_name(report)
    message.set_content(render.render_text(report))
    message.add_alternative(render.render_html(report), subtype="html")
    return message


def _tls_context(config: EmailConfig) -> ssl.SSLContext | None:
    if config.security == "none":
        return None
    # With no ca_file this is the system trust store, the same as aiosmtplib's default.
    return ssl.create_default_context(
        cafile=str(config.ca_file) if config.ca_file is not None else None
    )


class EmailNotifier:
    """Sends each report by mail through one SMTP server."""

    def __init__(self, name: str, config: EmailConfig) -> None:
        """Check the AUTH settings and load the CA file; raise ``ConfigError`` if either fails."""
        self.name = name
        check_email_auth(name, config)
        self._config = config
        try:
            self._tls = _tls_context(config)
        except (OSError, ssl.SSLError) as error:
            raise ConfigError(
                f"notifier {name!r}: cannot load ca_file {str(config.ca_file)!r}: {error}"
            ) from error

    def __repr__(self) -> str:
        return f"EmailNotifier(name={self.name!r}, host={self._config.host!r})"

    async def send(self, report: Report) -> None:
        """Send the report; raise ``NotifyError`` with the SMTP reply code when it fails."""
        log = bind_logger(self.name, report)
        config = self._config
        message = build_message(report, config)
        password = config.password.get_secret_value() if config.password is not None else None
        started = time.monotonic()
        try:
            await aiosmtplib.send(
                message,
                sender=config.sender,
                recipients=config.recipients,
                hostname=config.host,
                port=config.effective_port,
                username=config.username,
                password=password,
                use_tls=config.security == "tls",
                start_tls=config.security == "starttls",
                tls_context=self._tls,
                timeout=config.timeout_s,
            )
        except (aiosmtplib.SMTPException, OSError) as error:
            failure = self._describe(error)
            log.warning("notification_failed", status=failure.status, error=str(failure))
            raise failure from error
        log.info(
            "notification_sent",
            recipients=len(config.recipients),
            duration_s=round(time.monotonic() - started, 3),
        )

    async def close(self) -> None:
        """Release nothing: every send opens and closes its own connection."""

    def _describe(self, error: BaseException) -> NotifyError:
        where = f"notifier {self.name!r}: sending mail via {self._config.host}"
        if isinstance(error, aiosmtplib.SMTPRecipientsRefused):
            codes = ", ".join(
                f"{refused.recipient}: {refused.code} {refused.message}"
                for refused in error.recipients
            )
            code = error.recipients[0].code if error.recipients else None
            return NotifyError(f"{where} failed: recipients rejected ({codes})", status=code)
        if isinstance(error, aiosmtplib.SMTPAuthenticationError):
            return NotifyError(
                f"{where} failed: authentication as {self._config.username!r} rejected "
                f"({error.code} {error.message}); check username and password",
                status=error.code,
            )
        if isinstance(error, aiosmtplib.SMTPResponseException):
            return NotifyError(
                f"{where} failed: server replied {error.code} {error.message}",
                status=error.code,
            )
        if isinstance(error, aiosmtplib.SMTPTimeoutError | TimeoutError):
            return NotifyError(f"{where} timed out after {self._config.timeout_s:g} s")
        return NotifyError(f"{where} failed: {type(error).__name__}: {error}")
