"""Email connector: notifications over SMTP through Django's email framework (plain text plus optional HTML).

Idempotency, honestly: SMTP has no server-side deduplication. The connector derives the Message-ID from the
idempotency key, so a retried send carries the identical Message-ID and mail clients and archives that collapse
duplicates by Message-ID show one message; the relay itself may still deliver a second copy. Exactly-once therefore
rests on the caller storing the returned Message-ID and not calling again once a send succeeded (playbook steps do).
"""

from __future__ import annotations

import hashlib
import logging
import smtplib
import socket
from collections.abc import Mapping
from email.utils import parseaddr
from typing import Any

from django.core.mail import EmailMultiAlternatives
from django.core.mail.backends.smtp import EmailBackend
from django.core.mail.message import sanitize_address

from integrations.connectors.base import ActionResult, ActionSpec, BaseConnector, ConnectionTest, ConnectorManifest, CredentialField, FieldInfo, Page
from integrations.errors import ApiBadRequest, ApiError, ApiHostError, ApiTimeout, ApiUnauthorized, UnsafeBaseUrl
from integrations.ssrf import OutboundTarget, connect_vetted, host_unresolved

logger = logging.getLogger(__name__)


class _VettedSMTP(smtplib.SMTP):
    """smtplib.SMTP whose socket goes only to an address the SSRF guard vetted (integrations.ssrf.vet_outbound)."""

    def _get_socket(self, host: str, port: int, timeout: float) -> socket.socket:
        return connect_vetted((host, port), timeout, source_address=self.source_address, scheme="smtp")


class _VettedSMTPSSL(smtplib.SMTP_SSL):
    """Implicit TLS over a vetted socket; the certificate is checked for the configured host name."""

    def _get_socket(self, host: str, port: int, timeout: float) -> socket.socket:
        sock = connect_vetted((host, port), timeout, source_address=self.source_address, scheme="smtps")
        return self.context.wrap_socket(sock, server_hostname=self._host)


class VettedEmailBackend(EmailBackend):
    """Django's SMTP backend with the connection classes swapped for the vetted ones (no other change)."""

    @property
    def connection_class(self) -> type[smtplib.SMTP]:
        return _VettedSMTPSSL if self.use_ssl else _VettedSMTP


def smtp_port(config: Mapping[str, Any]) -> int:
    """The configured port (25 when unset); ApiBadRequest for anything that is not a TCP port."""
    raw = config.get("port") or 25
    try:
        port = int(raw)
    except (TypeError, ValueError):
        raise ApiBadRequest(f"The SMTP port must be a number, not {str(raw)[:40]!r}.") from None
    if not 0 < port < 65536:
        raise ApiBadRequest(f"The SMTP port must be between 1 and 65535, not {port}.")
    return port


def message_id_for(idempotency_key: str, from_email: str) -> str:
    """A stable RFC 5322 Message-ID: same idempotency key → same Message-ID on every retry."""
    domain = parseaddr(from_email)[1].rpartition("@")[2] or "bastion.local"
    return f"<bastion.{hashlib.sha256(idempotency_key.encode()).hexdigest()[:40]}@{domain}>"


def _as_api_error(error: Exception, *, host: str) -> ApiError:
    """Map smtplib/socket failures onto the one error tree with fixed messages: a reply is never echoed to people.

    Whatever answers on the configured port writes the reply text (an SSH or HTTP banner when it is not a mail server), so
    only the SMTP code, which Bastion interprets, reaches the message; the full reply is logged for the operator.
    """
    code = getattr(error, "smtp_code", None)
    logger.warning("email.smtp_failed", extra={"error_class": type(error).__name__, "smtp_code": code, "detail": repr(error)[:500]})
    if isinstance(error, UnsafeBaseUrl):
        return error
    if isinstance(error, socket.gaierror):
        return host_unresolved(host, error)
    if isinstance(error, smtplib.SMTPAuthenticationError):
        return ApiUnauthorized(f"The SMTP server refused the login (code {error.smtp_code}).", status=error.smtp_code)
    if isinstance(error, smtplib.SMTPRecipientsRefused):
        return ApiBadRequest(f"The SMTP server refused the recipients: {', '.join(sorted(error.recipients))}.")
    if isinstance(error, smtplib.SMTPSenderRefused):
        return ApiBadRequest(f"The SMTP server refused the sender address (code {error.smtp_code}).", status=error.smtp_code)
    if isinstance(error, smtplib.SMTPNotSupportedError):
        return ApiBadRequest("The SMTP server does not support an extension this configuration needs (STARTTLS or AUTH).")
    if isinstance(error, socket.timeout | TimeoutError):
        return ApiTimeout("Timed out talking to the SMTP server.")
    if isinstance(error, smtplib.SMTPResponseException) and 400 <= error.smtp_code < 500:
        return ApiHostError(f"Temporary SMTP failure (code {error.smtp_code}).", status=error.smtp_code)
    if isinstance(error, smtplib.SMTPResponseException) and 500 <= error.smtp_code < 600:
        return ApiBadRequest(f"The SMTP server refused the message (code {error.smtp_code}).", status=error.smtp_code)
    if isinstance(error, smtplib.SMTPResponseException | smtplib.SMTPServerDisconnected):
        return ApiHostError("The server at the SMTP host and port did not answer as a mail server.")
    return ApiHostError("Could not talk to the SMTP server (connection failed).")


class EmailConnector(BaseConnector):
    manifest = ConnectorManifest(
        key="email",
        name="Email (SMTP)",
        category="messaging",
        description="Send notification emails through your SMTP relay.",
        logo="connectors/email.svg",
        auth_methods=("basic", "none"),
        credential_fields=(
            CredentialField("username", "SMTP username", is_secret=False, is_required=False),
            CredentialField("password", "SMTP password", is_required=False),
        ),
        config_fields=(
            CredentialField("host", "SMTP host", is_secret=False),
            CredentialField("port", "SMTP port", is_secret=False, help_text="587 with STARTTLS, 465 with implicit TLS, 25 plain."),
            CredentialField("use_tls", "STARTTLS", is_secret=False, is_required=False),
            CredentialField("use_ssl", "Implicit TLS", is_secret=False, is_required=False),
            CredentialField("from_email", "From address", is_secret=False),
        ),
        actions=(
            ActionSpec(
                "send_email",
                "Send email",
                "Send a plain-text email with an optional HTML alternative; the Message-ID is derived from the idempotency key.",
                {"to": "[email]", "subject": "string", "body": "string", "html": "string?"},
                idempotency="none",
            ),
        ),
        capabilities=("actions",),
        docs_url="https://docs.djangoproject.com/en/5.2/topics/email/",
    )

    @classmethod
    def outbound_targets(cls, config: Mapping[str, Any]) -> list[OutboundTarget]:
        host = str(config.get("host") or "").strip()
        if not host:
            return []
        try:
            port = smtp_port(config)
        except ApiBadRequest:
            return []  # refused by the connection test with its own message; nothing to connect to
        return [OutboundTarget("host", "smtps" if config.get("use_ssl") else "smtp", host, port)]

    def _connection(self) -> Any:
        if not self.config.get("host"):
            raise ApiBadRequest("Email needs an SMTP host (config host).")
        if self.config.get("use_tls") and self.config.get("use_ssl"):
            raise ApiBadRequest("Choose STARTTLS (use_tls) or implicit TLS (use_ssl), not both.")
        return VettedEmailBackend(
            fail_silently=False,
            host=str(self.config["host"]).strip(),
            port=smtp_port(self.config),
            username=self.credentials.get("username") or self.config.get("username") or "",
            password=self.credentials.get("password") or "",
            use_tls=bool(self.config.get("use_tls")),
            use_ssl=bool(self.config.get("use_ssl")),
            timeout=float(self.config.get("timeout", 10)),
        )

    @property
    def from_email(self) -> str:
        sender = self.config.get("from_email")
        if not sender:
            raise ApiBadRequest("Email needs a From address (config from_email).")
        return str(sender)

    def test_connection(self) -> ConnectionTest:
        """Open an SMTP session (EHLO, STARTTLS when configured, AUTH when a username is set) and close it."""
        connection = self._connection()
        try:
            connection.open()
            # Django only greets when it needs STARTTLS or AUTH; greet explicitly so a plain relay is proven too.
            connection.connection.ehlo_or_helo_if_needed()
            features = sorted(connection.connection.esmtp_features)
        except (smtplib.SMTPException, OSError, UnsafeBaseUrl) as error:
            raise _as_api_error(error, host=str(self.config.get("host") or "")) from error
        finally:
            connection.close()
        user = self.credentials.get("username") or "anonymous"
        return ConnectionTest(
            ok=True,
            identity=f"{user} @ {self.config['host']}:{smtp_port(self.config)}",
            scopes=[],
            detail={"esmtp_features": features, "tls": "starttls" if self.config.get("use_tls") else "implicit" if self.config.get("use_ssl") else "none"},
        )

    def discover_fields(self, entity: str) -> list[FieldInfo]:
        raise KeyError("email has no readable entities")

    def read(self, entity: str, *, cursor: Any = None, page: Any = None) -> Page:
        raise KeyError("email has no readable entities")

    def from_bastion(self, entity: str, data: Mapping[str, Any]) -> dict[str, Any]:
        recipients = data.get("to")
        if isinstance(recipients, str):
            recipients = [recipients]
        clean = []
        for address in recipients or []:
            name, email = parseaddr(str(address))
            if "@" not in email:
                raise ApiBadRequest(f"'{address}' is not an email address.")
            clean.append(sanitize_address((name, email), "utf-8"))
        if not clean:
            raise ApiBadRequest("An email needs at least one recipient.")
        if not str(data.get("subject", "")).strip():
            raise ApiBadRequest("An email needs a subject.")
        return {"to": clean, "subject": str(data["subject"]), "body": str(data.get("body", "")), "html": data.get("html")}

    def perform(self, action: str, payload: Mapping[str, Any], *, idempotency_key: str) -> ActionResult:
        if action != "send_email":
            raise KeyError(f"email has no action '{action}'")
        message_data = self.from_bastion("messages", payload)
        message_id = message_id_for(idempotency_key, self.from_email)
        message = EmailMultiAlternatives(
            subject=message_data["subject"],
            body=message_data["body"],
            from_email=self.from_email,
            to=message_data["to"],
            headers={"Message-ID": message_id, "X-Bastion-Idempotency": hashlib.sha256(idempotency_key.encode()).hexdigest()[:16]},
            connection=self._connection(),
        )
        if message_data["html"]:
            message.attach_alternative(str(message_data["html"]), "text/html")
        try:
            sent = message.send(fail_silently=False)
        except (smtplib.SMTPException, OSError, UnsafeBaseUrl) as error:
            raise _as_api_error(error, host=str(self.config.get("host") or "")) from error
        if sent != 1:
            raise ApiHostError("The SMTP server accepted no message.")
        return ActionResult(external_id=message_id, data={"message_id": message_id, "to": message_data["to"], "subject": message_data["subject"]}, created=True)


CONNECTOR = EmailConnector
