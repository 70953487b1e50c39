"""Email connector against a REAL local SMTP server (aiosmtpd): plain, STARTTLS + AUTH, stable Message-IDs, refusals."""

from __future__ import annotations

import datetime as dt
import ipaddress
import socket
import ssl
from email import message_from_bytes, policy

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from integrations.connectors.email import EmailConnector, message_id_for
from integrations.errors import ApiBadRequest, ApiHostError, ApiUnauthorized


class Capture:
    """aiosmtpd handler that keeps every accepted envelope."""

    def __init__(self) -> None:
        self.envelopes: list[tuple[str, list[str], bytes]] = []

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):  # noqa: N802 - aiosmtpd hook name
        if address.endswith("@blocked.example"):
            return "550 5.1.1 mailbox unavailable"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):  # noqa: N802 - aiosmtpd hook name
        self.envelopes.append((envelope.mail_from, list(envelope.rcpt_tos), envelope.original_content))
        return "250 Message accepted for delivery"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def smtp_server():
    capture = Capture()
    controller = Controller(capture, hostname="127.0.0.1", port=_free_port())
    controller.start()
    yield controller, capture
    controller.stop()


def _self_signed(tmp_path) -> tuple[str, str]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = tmp_path / "smtp.crt", tmp_path / "smtp.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    return str(cert_path), str(key_path)


@pytest.fixture
def tls_smtp_server(tmp_path, monkeypatch):
    """STARTTLS required, AUTH LOGIN/PLAIN only after TLS, one valid account."""
    cert, key = _self_signed(tmp_path)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    monkeypatch.setenv("SSL_CERT_FILE", cert)  # the client trusts our test CA through the default store

    def authenticate(server, session, envelope, mechanism, auth_data):
        ok = isinstance(auth_data, LoginPassword) and auth_data.login == b"bastion" and auth_data.password == b"smtp-pass"
        return AuthResult(success=ok, handled=False)

    capture = Capture()
    controller = Controller(
        capture, hostname="127.0.0.1", port=_free_port(), tls_context=context, require_starttls=True, authenticator=authenticate, auth_required=True
    )
    controller.start()
    yield controller, capture
    controller.stop()


def _connector(controller, **config) -> EmailConnector:
    credentials = config.pop("credentials", {})
    return EmailConnector(
        config={"host": "127.0.0.1", "port": controller.port, "from_email": "Bastion <crisis@acme.example>", **config}, credentials=credentials
    )


def test_send_email_exact_recipients_subject_body_and_message_id(smtp_server):
    controller, capture = smtp_server
    connector = _connector(controller)
    payload = {
        "to": ["ava.chen@acme.example", "Marcus Okafor <marcus.okafor@acme.example>"],
        "subject": "SEV1: war room open",
        "body": "Join now.",
        "html": "<p>Join <b>now</b>.</p>",
    }
    result = connector.perform("send_email", payload, idempotency_key="notify-1")
    assert result.external_id == message_id_for("notify-1", "crisis@acme.example") and result.external_id.endswith("@acme.example>")
    [(mail_from, rcpt_tos, raw)] = capture.envelopes
    assert mail_from == "crisis@acme.example" and rcpt_tos == ["ava.chen@acme.example", "marcus.okafor@acme.example"]
    message = message_from_bytes(raw, policy=policy.default)
    assert message["Subject"] == "SEV1: war room open" and message["Message-ID"] == result.external_id
    assert message.get_body(("plain",)).get_content().strip() == "Join now."
    assert message.get_body(("html",)).get_content().strip() == "<p>Join <b>now</b>.</p>"


def test_retry_sends_the_identical_message_id(smtp_server):
    controller, capture = smtp_server
    connector = _connector(controller)
    payload = {"to": ["ava.chen@acme.example"], "subject": "Update", "body": "x"}
    first = connector.perform("send_email", payload, idempotency_key="same-key")
    second = connector.perform("send_email", payload, idempotency_key="same-key")
    other = connector.perform("send_email", payload, idempotency_key="other-key")
    ids = [message_from_bytes(raw, policy=policy.default)["Message-ID"] for _f, _r, raw in capture.envelopes]
    # SMTP has no server-side dedup: two copies travel, but they carry one Message-ID that clients collapse.
    assert ids == [first.external_id, first.external_id, other.external_id] and first.external_id == second.external_id != other.external_id


def test_test_connection_plain(smtp_server):
    controller, _capture = smtp_server
    result = _connector(controller).test_connection()
    assert result.ok and result.identity == f"anonymous @ 127.0.0.1:{controller.port}" and "8bitmime" in result.detail["esmtp_features"]


def test_starttls_and_auth(tls_smtp_server):
    controller, capture = tls_smtp_server
    good = _connector(controller, use_tls=True, credentials={"username": "bastion", "password": "smtp-pass"})
    assert good.test_connection().detail["tls"] == "starttls"
    good.perform("send_email", {"to": ["ava.chen@acme.example"], "subject": "TLS", "body": "secure"}, idempotency_key="tls")
    assert [rcpt for _f, rcpt, _raw in capture.envelopes] == [["ava.chen@acme.example"]]
    wrong = _connector(controller, use_tls=True, credentials={"username": "bastion", "password": "wrong"})
    with pytest.raises(ApiUnauthorized):
        wrong.test_connection()
    with pytest.raises(ApiUnauthorized):
        wrong.perform("send_email", {"to": ["ava.chen@acme.example"], "subject": "x", "body": "x"}, idempotency_key="nope")
    assert len(capture.envelopes) == 1


def test_refused_recipient_and_bad_input_send_nothing(smtp_server):
    controller, capture = smtp_server
    connector = _connector(controller)
    with pytest.raises(ApiBadRequest, match="refused the recipients"):
        connector.perform("send_email", {"to": ["x@blocked.example"], "subject": "s", "body": "b"}, idempotency_key="r")
    with pytest.raises(ApiBadRequest, match="not an email address"):
        connector.perform("send_email", {"to": ["not-an-address"], "subject": "s", "body": "b"}, idempotency_key="r")
    with pytest.raises(ApiBadRequest, match="subject"):
        connector.perform("send_email", {"to": ["ava.chen@acme.example"], "subject": " ", "body": "b"}, idempotency_key="r")
    assert capture.envelopes == []


def test_unreachable_server_is_transient():
    connector = EmailConnector(config={"host": "127.0.0.1", "port": _free_port(), "from_email": "crisis@acme.example", "timeout": 2})
    with pytest.raises(ApiHostError) as error:
        connector.test_connection()
    assert error.value.retryable
