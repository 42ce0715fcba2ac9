"""Notification e-mails against a real SMTP server on loopback (entra-behaviour.md 2.14)."""

from __future__ import annotations

import email
import email.policy
import socket
import ssl
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

from provisor.engine.jobs.model import (
    Job,
    NotificationConfig,
    Secret,
    SmtpConfig,
    SourceConfig,
    SourceType,
    TargetConfig,
)
from provisor.engine.notify import NotificationError, Notifier, should_send_quarantine
from provisor.engine.quarantine import QuarantineReason, enter
from provisor.engine.state import Quarantine

T0 = datetime(2025, 3, 1, 8, 0, tzinfo=UTC)
TARGET_TOKEN = "target-token-s3cr3t-value"
SOURCE_TOKEN = "source-token-0ther-value"
SMTP_PASSWORD = "smtp-pa55word-value"
SECRETS = (TARGET_TOKEN, SOURCE_TOKEN, SMTP_PASSWORD)


@dataclass
class Received:
    mail_from: str
    rcpt_tos: list[str]
    message: EmailMessage

    @property
    def body(self) -> str:
        return str(self.message.get_content())


class Sink:
    """aiosmtpd handler keeping every message; refuses recipients at ``refuse.example``."""

    def __init__(self) -> None:
        self.received: list[Received] = []

    async def handle_RCPT(self, server: Any, session: Any, envelope: Any, address: str, options: Any) -> str:
        if address.endswith("@refuse.example"):
            return "550 no such mailbox"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        parsed = email.message_from_bytes(envelope.content, policy=email.policy.default)
        assert isinstance(parsed, EmailMessage)
        self.received.append(Received(envelope.mail_from, list(envelope.rcpt_tos), parsed))
        return "250 Message accepted"


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


class Logins:
    def __init__(self) -> None:
        self.seen: list[tuple[str, str]] = []

    def __call__(self, server: Any, session: Any, envelope: Any, mechanism: str, data: Any) -> AuthResult:
        assert isinstance(data, LoginPassword)
        self.seen.append((data.login.decode(), data.password.decode()))
        ok = data.login == b"mailer" and data.password == SMTP_PASSWORD.encode()
        return AuthResult(success=ok, handled=False)  # handled=False: the server answers 535


@pytest.fixture
def smtp_server() -> Iterator[tuple[Sink, int]]:
    sink = Sink()
    port = free_port()
    controller = Controller(sink, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield sink, port
    finally:
        controller.stop()


@pytest.fixture(scope="module")
def tls_files(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    folder = tmp_path_factory.mktemp("tls")
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=127.0.0.1",
            "-addext",
            "subjectAltName=IP:127.0.0.1",
            "-keyout",
            str(key),
            "-out",
            str(cert),
        ],
        check=True,
        capture_output=True,
    )
    return cert, key


def server_context(tls_files: tuple[Path, Path]) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(*tls_files)
    return context


def client_context(tls_files: tuple[Path, Path]) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=str(tls_files[0]))


def make_job(name: str = "clarizen-one") -> Job:
    return Job(
        name=name,
        source=SourceConfig(type=SourceType.SCIM, url="https://dir.example/scim", token=Secret(SOURCE_TOKEN)),
        target=TargetConfig(url="https://admin:pw@app.example/scim/v2?key=abc", token=Secret(TARGET_TOKEN)),
        state="sqlite:///x.db",
    )


def make_notifier(port: int, *, host: str = "127.0.0.1", **config: Any) -> Notifier:
    smtp = config.pop("smtp", SmtpConfig(host=host, port=port))
    values: dict[str, Any] = {"emails": ("ops@example.com", "oncall@example.com"), "smtp": smtp}
    values.update(config)
    return Notifier(NotificationConfig(**values), job_file="jobs/clarizen.yaml", timeout=5)


def quarantine(
    reason: QuarantineReason, error: str = "boom", current: Quarantine | None = None
) -> Quarantine:
    return enter(reason, error, now=T0, current=current)


def assert_no_secrets(received: Received) -> None:
    raw = received.message.as_string()
    for secret in SECRETS:
        assert secret not in raw


# -- de-duplication (pure) ----------------------------------------------------------------------
def test_should_send_on_entering_and_on_reason_change_only() -> None:
    first = quarantine(QuarantineReason.BASE_ESCROW)
    again = enter(QuarantineReason.BASE_ESCROW, "still", now=T0 + timedelta(hours=6), current=first)
    other = enter(QuarantineReason.QUARANTINE_EXCEPTION, "401", now=T0 + timedelta(hours=18), current=again)
    assert should_send_quarantine(None, first)
    assert not should_send_quarantine(first, again)
    assert should_send_quarantine(again, other)


# -- quarantine e-mail --------------------------------------------------------------------------
def test_quarantine_email_content(smtp_server: tuple[Sink, int]) -> None:
    sink, port = smtp_server
    q = quarantine(QuarantineReason.QUARANTINE_EXCEPTION, f"InvalidCredentials: token {TARGET_TOKEN} refused")
    assert make_notifier(port, sender="provisor@corp.example").quarantined(make_job(), q)
    [mail] = sink.received
    assert mail.mail_from == "provisor@corp.example"
    assert mail.rcpt_tos == ["ops@example.com", "oncall@example.com"]
    assert mail.message["To"] == "ops@example.com, oncall@example.com"
    assert (
        mail.message["Subject"]
        == "[Provisor] Job 'clarizen-one' is in quarantine (EncounteredQuarantineException)"
    )
    body = mail.body
    assert "Reason: EncounteredQuarantineException" in body
    assert "token *** refused" in body  # the target echoed the token: redacted
    assert "Secret Token" in body  # what to check
    assert "provisor restart --job jobs/clarizen.yaml --scope QuarantineState" in body
    assert "2025-03-01 14:00 UTC" in body  # next attempt: +6 h
    assert "2025-03-29 08:00 UTC" in body  # disabled after 28 days
    assert "https://app.example/scim/v2" in body and "admin:pw" not in body and "key=abc" not in body
    assert mail.message["Message-ID"] and mail.message["Date"]
    assert_no_secrets(mail)


def test_quarantine_email_is_sent_once_per_reason(smtp_server: tuple[Sink, int]) -> None:
    sink, port = smtp_server
    notifier, job = make_notifier(port), make_job()
    first = quarantine(QuarantineReason.ESCROW_PROPORTION)
    retry = enter(QuarantineReason.ESCROW_PROPORTION, "again", now=T0 + timedelta(hours=6), current=first)
    changed = enter(QuarantineReason.BASE_ESCROW, "worse", now=T0 + timedelta(hours=18), current=retry)
    assert notifier.quarantined(job, first, previous=None)
    assert not notifier.quarantined(job, retry, previous=first)
    assert notifier.quarantined(job, changed, previous=retry)
    assert [m.message["Subject"].split("(")[-1] for m in sink.received] == [
        "EncounteredEscrowProportionThreshold)",
        "EncounteredBaseEscrowThreshold)",
    ]
    assert "provisioning logs" in sink.received[0].body


def test_notify_on_failure_off_suppresses_quarantine_and_failure_mails(smtp_server: tuple[Sink, int]) -> None:
    sink, port = smtp_server
    notifier = make_notifier(port, notify_on_failure=False)
    assert not notifier.quarantined(make_job(), quarantine(QuarantineReason.BASE_ESCROW))
    assert not notifier.cycle_failures(make_job(), "c1", 3, ["x"])
    assert notifier.deletion_threshold(make_job(), 800, 500)  # accidental-deletion mail is always sent
    assert len(sink.received) == 1


def test_without_recipients_nothing_is_sent(smtp_server: tuple[Sink, int]) -> None:
    sink, port = smtp_server
    notifier = make_notifier(port, emails=())
    assert not notifier.enabled
    assert not notifier.deletion_threshold(make_job(), 800, 500)
    no_relay = Notifier(NotificationConfig(emails=("ops@example.com",)))
    assert not no_relay.quarantined(make_job(), quarantine(QuarantineReason.BASE_ESCROW))
    assert sink.received == []


def test_default_sender_is_provisor_at_hostname(smtp_server: tuple[Sink, int]) -> None:
    sink, port = smtp_server
    make_notifier(port).quarantined(make_job(), quarantine(QuarantineReason.UNKNOWN))
    assert sink.received[0].mail_from == f"provisor@{socket.gethostname()}"
    assert "provisor restart --job jobs/clarizen.yaml" in sink.received[0].body


# -- deletion threshold -------------------------------------------------------------------------
def test_deletion_threshold_email(smtp_server: tuple[Sink, int]) -> None:
    sink, port = smtp_server
    assert make_notifier(port).deletion_threshold(make_job(), 1_234, 500)
    [mail] = sink.received
    assert (
        mail.message["Subject"] == "[Provisor] Job 'clarizen-one': 1,234 deletions held back (threshold 500)"
    )
    assert "at most 499 per cycle" in mail.body
    assert "StagedDelete" in mail.body and "TooManyDeletes" in mail.body
    assert "provisor allow-deletes --job jobs/clarizen.yaml" in mail.body
    assert_no_secrets(mail)


def test_too_many_deletes_quarantine_mail_is_the_deletion_threshold_mail(
    smtp_server: tuple[Sink, int],
) -> None:
    sink, port = smtp_server
    held = quarantine(QuarantineReason.TOO_MANY_DELETES)
    notifier = make_notifier(port)
    assert not notifier.quarantined(make_job(), held, previous=None)
    assert notifier.deletion_threshold(make_job(), 900, 500, previous=None)
    assert [m.message["Subject"] for m in sink.received] == [
        "[Provisor] Job 'clarizen-one': 900 deletions held back (threshold 500)"
    ]


def test_deletion_threshold_email_not_repeated_while_held(smtp_server: tuple[Sink, int]) -> None:
    sink, port = smtp_server
    held = quarantine(QuarantineReason.TOO_MANY_DELETES)
    notifier = make_notifier(port)
    assert not notifier.deletion_threshold(make_job(), 900, 500, previous=held)
    assert notifier.deletion_threshold(
        make_job(), 900, 500, previous=quarantine(QuarantineReason.BASE_ESCROW)
    )
    assert len(sink.received) == 1


# -- cycle failures -------------------------------------------------------------------------------
def test_cycle_failures_email_lists_a_capped_sample(smtp_server: tuple[Sink, int]) -> None:
    sink, port = smtp_server
    sample = [f"user{i}: EntryConflict userName taken" for i in range(30)]
    sample[0] = f"user0: 401 with Bearer {TARGET_TOKEN}\nsecond line"
    assert make_notifier(port).cycle_failures(make_job(), "cycle-42", 75, sample)
    [mail] = sink.received
    assert mail.message["Subject"] == "[Provisor] Job 'clarizen-one': 75 objects failed in cycle cycle-42"
    body = mail.body
    assert "  - user19: EntryConflict userName taken" in body
    assert "user20:" not in body  # at most 20 samples
    assert "... and 55 more" in body
    assert "user0: 401 with Bearer *** second line" in body
    assert "provisor restart --job jobs/clarizen.yaml --scope Escrows" in body
    assert_no_secrets(mail)


def test_zero_failures_send_nothing(smtp_server: tuple[Sink, int]) -> None:
    sink, port = smtp_server
    assert not make_notifier(port).cycle_failures(make_job(), "c1", 0, [])
    assert sink.received == []


# -- transport: login, STARTTLS, smtps, failures -------------------------------------------------
def test_login_over_plain_connection_to_loopback() -> None:
    sink, logins, port = Sink(), Logins(), free_port()
    controller = Controller(
        sink, hostname="127.0.0.1", port=port, authenticator=logins, auth_require_tls=False
    )
    controller.start()
    try:
        smtp = SmtpConfig(host="127.0.0.1", port=port, user="mailer", password=Secret(SMTP_PASSWORD))
        assert make_notifier(port, smtp=smtp).quarantined(
            make_job(), quarantine(QuarantineReason.BASE_ESCROW)
        )
        bad = replace(smtp, password=Secret("wrong"))
        with pytest.raises(NotificationError) as info:
            make_notifier(port, smtp=bad).quarantined(make_job(), quarantine(QuarantineReason.BASE_ESCROW))
        assert "wrong" not in str(info.value) and SMTP_PASSWORD not in str(info.value)
    finally:
        controller.stop()
    # smtplib tries every mechanism the server offers (PLAIN, then LOGIN) before giving up.
    assert logins.seen[0] == ("mailer", SMTP_PASSWORD)
    assert logins.seen[1:] and set(logins.seen[1:]) == {("mailer", "wrong")}
    assert len(sink.received) == 1
    assert_no_secrets(sink.received[0])


def test_starttls_then_login(tls_files: tuple[Path, Path]) -> None:
    sink, logins, port = Sink(), Logins(), free_port()
    controller = Controller(
        sink,
        hostname="127.0.0.1",
        port=port,
        authenticator=logins,
        tls_context=server_context(tls_files),
        require_starttls=True,
    )
    controller.start()
    try:
        smtp = SmtpConfig(host="127.0.0.1", port=port, user="mailer", password=Secret(SMTP_PASSWORD))
        config = NotificationConfig(emails=("ops@example.com",), smtp=smtp)
        notifier = Notifier(config, timeout=5, ssl_context=client_context(tls_files))
        assert notifier.deletion_threshold(make_job(), 600, 500)
        # Without trusting the self-signed certificate the TLS handshake fails: no fallback to plain text.
        with pytest.raises(NotificationError, match="CERTIFICATE_VERIFY_FAILED|certificate verify failed"):
            Notifier(config, timeout=5).deletion_threshold(make_job(), 600, 500)
    finally:
        controller.stop()
    assert logins.seen == [("mailer", SMTP_PASSWORD)]
    assert len(sink.received) == 1 and sink.received[0].rcpt_tos == ["ops@example.com"]


def test_smtps_implicit_tls(tls_files: tuple[Path, Path]) -> None:
    sink, port = Sink(), free_port()
    controller = Controller(sink, hostname="127.0.0.1", port=port, ssl_context=server_context(tls_files))
    controller.start()
    try:
        smtp = SmtpConfig(host="127.0.0.1", port=port, tls=True)
        notifier = Notifier(
            NotificationConfig(emails=("ops@example.com",), smtp=smtp), ssl_context=client_context(tls_files)
        )
        assert notifier.quarantined(make_job(), quarantine(QuarantineReason.TOTAL_ESCROW))
    finally:
        controller.stop()
    assert "EncounteredTotalEscrowThreshold" in sink.received[0].message["Subject"]


def non_loopback_address() -> str | None:
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.connect(("192.0.2.1", 9))  # no packet is sent for UDP connect
            address = str(s.getsockname()[0])
    except OSError:
        return None
    return None if address.startswith("127.") else address


def test_password_is_not_sent_unencrypted_to_a_remote_relay() -> None:
    address = non_loopback_address()
    if address is None:
        pytest.skip("no non-loopback IPv4 address")
    sink, logins, port = Sink(), Logins(), free_port(address)
    controller = Controller(sink, hostname=address, port=port, authenticator=logins, auth_require_tls=False)
    controller.start()
    try:
        smtp = SmtpConfig(host=address, port=port, user="mailer", password=Secret(SMTP_PASSWORD))
        with pytest.raises(NotificationError, match="refusing to send the SMTP password unencrypted"):
            make_notifier(port, smtp=smtp).quarantined(make_job(), quarantine(QuarantineReason.BASE_ESCROW))
    finally:
        controller.stop()
    assert logins.seen == [] and sink.received == []


def test_closed_port_raises_notification_error() -> None:
    port = free_port()
    with pytest.raises(NotificationError, match=f"127.0.0.1:{port}"):
        make_notifier(port).quarantined(make_job(), quarantine(QuarantineReason.BASE_ESCROW))


def test_silent_server_times_out() -> None:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)  # accepts the TCP connection but never greets
        port = listener.getsockname()[1]
        notifier = Notifier(
            NotificationConfig(emails=("a@b.example",), smtp=SmtpConfig("127.0.0.1", port)), timeout=0.3
        )
        with pytest.raises(NotificationError, match="timed out"):
            notifier.cycle_failures(make_job(), "c1", 1, ["x"])


def test_refused_recipient_raises(smtp_server: tuple[Sink, int]) -> None:
    sink, port = smtp_server
    everyone_refused = make_notifier(port, emails=("nobody@refuse.example",))
    with pytest.raises(NotificationError, match="no such mailbox"):
        everyone_refused.deletion_threshold(make_job(), 600, 500)
    partly = make_notifier(port, emails=("ops@example.com", "nobody@refuse.example"))
    with pytest.raises(NotificationError, match="nobody@refuse.example"):
        partly.deletion_threshold(make_job(), 600, 500)
    assert [m.rcpt_tos for m in sink.received] == [["ops@example.com"]]  # delivered to the others
