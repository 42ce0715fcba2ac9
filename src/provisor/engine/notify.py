"""Notification e-mails over SMTP (entra-behaviour.md 2.14; triggers from 2.7 and 2.9).

Documented triggers: a job **enters quarantine** (one e-mail; another only when the quarantine
reason changes, :func:`should_send_quarantine`) and the **accidental-deletion threshold** is
reached. Entra documents no per-object failure e-mail (2.14, 6); :meth:`Notifier.cycle_failures`
is Provisor's own summary of a cycle's failed objects, for the engine to send when it chooses.

Which settings gate what (``NotificationConfig``): nothing is sent without recipients and an SMTP
relay. ``notify_on_failure`` ("Send an email notification when a failure occurs") gates the
quarantine and cycle-failure e-mails; the deletion-threshold e-mail is part of accidental-deletion
prevention (ADP has its own notification setting) and is always sent. It is the e-mail of a
``TooManyDeletes`` quarantine: :meth:`Notifier.quarantined` sends none for that reason, and
:meth:`Notifier.deletion_threshold` none while the job already was held for it (pass ``previous``).

Transport: ``smtps://`` (``SmtpConfig.tls``) is TLS from the first byte. Otherwise STARTTLS is used
whenever the relay offers it and is required before a login, except to a loopback relay (a local
MTA). Certificates are verified (the default context honours ``SSL_CERT_FILE``). Every network
operation has a timeout. Any failure raises :class:`NotificationError`; the engine logs it and goes
on. Bodies are plain text and never hold a secret: the job's tokens and the SMTP password are
replaced by ``***`` wherever they appear (e.g. echoed in a target's error message).
"""

from __future__ import annotations

import ipaddress
import smtplib
import socket
import ssl
from collections.abc import Sequence
from datetime import datetime
from email.message import EmailMessage
from email.policy import SMTP as SMTP_POLICY
from email.utils import formatdate, make_msgid
from typing import Final
from urllib.parse import urlsplit, urlunsplit

from provisor.engine.jobs.model import Job, NotificationConfig, SmtpConfig
from provisor.engine.quarantine import DISABLE_AFTER, QuarantineReason
from provisor.engine.state import Quarantine

__all__ = ["NotificationError", "Notifier", "should_send_quarantine"]

#: At most this many failure samples are listed in a cycle-failure e-mail.
MAX_SAMPLES: Final = 20
_MAX_SAMPLE_CHARS: Final = 300
#: CRLF line ends; headers are not folded below RFC 5322's hard limit of 998 characters (the
#: default 78 makes Python fold some subjects right after "Subject:", leaving a leading space).
_POLICY: Final = SMTP_POLICY.clone(max_line_length=998)


class NotificationError(Exception):
    """An e-mail could not be sent (relay unreachable, refused, timed out, TLS or login failed)."""


def should_send_quarantine(previous: Quarantine | None, current: Quarantine) -> bool:
    """2.14: one e-mail when the job enters quarantine, another only when the reason changes."""
    return previous is None or previous.reason != current.reason


_WHY: Final[dict[str, str]] = {
    QuarantineReason.QUARANTINE_EXCEPTION: "Provisor cannot work with the target application at all: "
    "its credentials were refused or it answered in a way SCIM does not allow.",
    QuarantineReason.ESCROW_PROPORTION: "More than 40% of the operations sent to the target application "
    "in one cycle failed.",
    QuarantineReason.BASE_ESCROW: "More than 40,000 operations sent to the target application in one "
    "cycle failed.",
    QuarantineReason.TOTAL_ESCROW: "More than 60,000 operations (including manager and group-membership "
    "updates) sent to the target application in one cycle failed.",
    QuarantineReason.TOO_MANY_DELETES: "A cycle would have disabled or deleted more accounts than the "
    "accidental-deletion threshold allows.",
}

_TODO: Final[dict[str, str]] = {
    QuarantineReason.QUARANTINE_EXCEPTION: "Check the target URL and Secret Token in the job file and that "
    "the application answers SCIM queries (a filter that matches nothing must return 200 with an empty "
    "list, not 404).",
    QuarantineReason.TOO_MANY_DELETES: "If the deletions are intended, allow them for the next cycle:\n\n"
    "    provisor allow-deletes --job {job_file}\n\n"
    "Otherwise fix their cause (assignments, scoping filters, the source directory).",
}
_TODO_ESCROWS: Final = (
    "Review the failed objects in the provisioning logs and fix their cause (missing required "
    "attributes, uniqueness clashes, values the application rejects)."
)


class Notifier:
    """Sends one job's notification e-mails through ``config.smtp``.

    Each method returns ``True`` when it sent an e-mail and ``False`` when the configuration (or
    de-duplication) says not to; it raises :class:`NotificationError` when sending fails.
    ``job_file`` is the job file's path as the admin runs commands with; ``ssl_context`` replaces
    the default, verifying context (tests, private CAs).
    """

    def __init__(
        self,
        config: NotificationConfig,
        *,
        job_file: str = "<job file>",
        timeout: float = 30.0,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        self.config = config
        self.job_file = job_file
        self.timeout = timeout
        self._ssl_context = ssl_context
        self.sender = config.sender or f"provisor@{socket.gethostname()}"

    @property
    def enabled(self) -> bool:
        """Whether there is anybody to write to and a relay to write through."""
        return bool(self.config.emails) and self.config.smtp is not None

    # -- the e-mails ---------------------------------------------------------------------------
    def quarantined(self, job: Job, quarantine: Quarantine, *, previous: Quarantine | None = None) -> bool:
        """The job is in quarantine (2.9); ``previous`` is the quarantine before this cycle.

        Sends nothing for ``TooManyDeletes``: :meth:`deletion_threshold` is that quarantine's e-mail.
        """
        if not (self.enabled and self.config.notify_on_failure):
            return False
        if quarantine.reason == QuarantineReason.TOO_MANY_DELETES or not should_send_quarantine(
            previous, quarantine
        ):
            return False
        why = _WHY.get(quarantine.reason, "The provisioning job was quarantined.")
        todo = _TODO.get(quarantine.reason, _TODO_ESCROWS)
        body = [
            f"The provisioning job '{job.name}' is in quarantine.",
            "",
            f"Reason: {quarantine.reason}",
            f"Error:  {quarantine.error}",
            "",
            why,
            "",
            *_schedule(quarantine),
            "",
            "What to do:",
            todo.format(job_file=self.job_file),
            "",
            "Then lift the quarantine at once instead of waiting for the next retry:",
            "",
            f"    provisor restart --job {self.job_file} --scope QuarantineState",
        ]
        subject = f"[Provisor] Job '{job.name}' is in quarantine ({quarantine.reason})"
        self._send(job, subject, body)
        return True

    def deletion_threshold(
        self, job: Job, staged_count: int, threshold: int, *, previous: Quarantine | None = None
    ) -> bool:
        """A cycle's disables and deletes reached the threshold and were staged (2.7); skipped when
        ``previous`` (the quarantine before this cycle) already was ``TooManyDeletes``."""
        if not self.enabled:
            return False
        if previous is not None and previous.reason == QuarantineReason.TOO_MANY_DELETES:
            return False
        body = [
            f"The provisioning job '{job.name}' held back {staged_count:,} disables or deletes.",
            "",
            f"One cycle would have disabled or deleted {staged_count:,} accounts in the target "
            f"application; the accidental-deletion threshold is {threshold:,} (at most "
            f"{max(threshold - 1, 0):,} per cycle). None of them was applied: each is logged with "
            "action StagedDelete and the job is in quarantine (TooManyDeletes).",
            "",
            "What to do:",
            _TODO[QuarantineReason.TOO_MANY_DELETES].format(job_file=self.job_file),
            "Then restart the job:",
            "",
            f"    provisor restart --job {self.job_file} --scope QuarantineState",
        ]
        subject = (
            f"[Provisor] Job '{job.name}': {staged_count:,} deletions held back (threshold {threshold:,})"
        )
        self._send(job, subject, body)
        return True

    def cycle_failures(self, job: Job, cycle_id: str, failures: int, sample: Sequence[str]) -> bool:
        """``failures`` objects failed in cycle ``cycle_id``; ``sample`` lists some of the errors."""
        if not (self.enabled and self.config.notify_on_failure) or failures <= 0:
            return False
        shown = [_clip(line) for line in sample[:MAX_SAMPLES]]
        body = [
            f"{_objects(failures)} failed in cycle {cycle_id} of the provisioning job '{job.name}'.",
            "",
            "Provisor retries them in later cycles, less and less often. Some of the errors:",
            "",
            *(f"  - {line}" for line in shown),
        ]
        if failures > len(shown):
            body.append(f"  ... and {failures - len(shown):,} more (see the provisioning logs).")
        body += [
            "",
            "What to do:",
            _TODO_ESCROWS,
            "To stop retrying them:",
            "",
            f"    provisor restart --job {self.job_file} --scope Escrows",
        ]
        subject = f"[Provisor] Job '{job.name}': {_objects(failures)} failed in cycle {cycle_id}"
        self._send(job, subject, body)
        return True

    # -- building and sending --------------------------------------------------------------------
    def _send(self, job: Job, subject: str, lines: list[str]) -> None:
        smtp = self.config.smtp
        assert smtp is not None  # checked by self.enabled
        secrets = _secrets(job, smtp)
        body = "\n".join(
            [*lines, "", "--", f"Provisor, job '{job.name}', target {_safe_url(job.target.url)}"]
        )
        message = EmailMessage(policy=_POLICY)
        message["Subject"] = _redact(subject, secrets)
        message["From"] = self.sender
        message["To"] = ", ".join(self.config.emails)
        message["Date"] = formatdate(localtime=False, usegmt=True)
        message["Message-ID"] = make_msgid(domain=self.sender.rpartition("@")[2] or None)
        message.set_content(_redact(body, secrets) + "\n")
        try:
            self._deliver(smtp, message)
        except (smtplib.SMTPException, OSError) as exc:  # ssl.SSLError and timeouts are OSErrors
            detail = _redact(str(exc) or type(exc).__name__, secrets)
            raise NotificationError(
                f"cannot send the notification e-mail via {smtp.host}:{smtp.port}: {detail}"
            ) from None

    def _deliver(self, smtp: SmtpConfig, message: EmailMessage) -> None:
        context = self._ssl_context or ssl.create_default_context()
        client: smtplib.SMTP
        if smtp.tls:
            client = smtplib.SMTP_SSL(smtp.host, smtp.port, timeout=self.timeout, context=context)
        else:
            client = smtplib.SMTP(smtp.host, smtp.port, timeout=self.timeout)
        with client:
            client.ehlo()
            encrypted = smtp.tls
            if not encrypted and client.has_extn("starttls"):
                client.starttls(context=context)
                client.ehlo()
                encrypted = True
            if smtp.user:
                if not encrypted and not _loopback(smtp.host):
                    raise NotificationError(
                        f"{smtp.host}:{smtp.port} offers no STARTTLS; refusing to send the SMTP "
                        "password unencrypted (use smtps:// or a relay with STARTTLS)"
                    )
                password = smtp.password.reveal() if smtp.password is not None else ""
                client.login(smtp.user, password)
            refused = client.send_message(message, self.sender, list(self.config.emails))
            if refused:
                raise smtplib.SMTPRecipientsRefused(refused)


def _schedule(quarantine: Quarantine) -> list[str]:
    disabled = quarantine.series_began + DISABLE_AFTER
    return [
        f"In quarantine since {_when(quarantine.series_began)} (attempt {quarantine.series_count}).",
        f"Provisor retries at {_when(quarantine.next_attempt)}; a successful retry lifts the quarantine.",
        f"If the job is still quarantined on {_when(disabled)} (28 days), it is disabled.",
    ]


def _when(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%d %H:%M %Z").strip()


def _objects(n: int) -> str:
    return f"{n:,} object" if n == 1 else f"{n:,} objects"


def _clip(line: str) -> str:
    line = " ".join(line.split())
    return line if len(line) <= _MAX_SAMPLE_CHARS else line[: _MAX_SAMPLE_CHARS - 3] + "..."


def _secrets(job: Job, smtp: SmtpConfig) -> list[str]:
    values = [job.target.token.reveal()]
    if job.source.token is not None:
        values.append(job.source.token.reveal())
    if smtp.password is not None:
        values.append(smtp.password.reveal())
    return sorted({value for value in values if value}, key=len, reverse=True)


def _redact(text: str, secrets: list[str]) -> str:
    for value in secrets:
        text = text.replace(value, "***")
    return text


def _safe_url(url: str) -> str:
    """``url`` without user-info, query or fragment (which may carry credentials)."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    netloc = f"{host}:{parts.port}" if parts.port else host
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))


def _loopback(host: str) -> bool:
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False
