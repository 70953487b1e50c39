"""Email connector: notifications over SMTP through Django's email framework (plain text plus optional HTML).

Idempotency, honestly: SMTP has no server-side deduplication. The connector derives the Message-ID from the
idempotency key, so a retried send carries the identical Message-ID and mail clients and archives that collapse
duplicates by Message-ID show one message; the relay itself may still deliver a second copy. Exactly-once therefore
rests on the caller storing the returned Message-ID and not calling again once a send succeeded (playbook steps do).
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from email.utils import parseaddr
from typing import Any

from django.core.mail import EmailMultiAlternatives
from django.core.mail.message import sanitize_address

from integrations.connectors.base import (
    ActionResult,
    ActionSpec,
    AuthMethod,
    BaseConnector,
    Capability,
    Category,
    ConnectionTest,
    ConnectorManifest,
    CredentialField,
    FieldInfo,
    FieldShape,
    Idempotency,
    Page,
    TextFormat,
)
from integrations.connectors.email.smtp import SMTP_FAILURES, VettedEmailBackend, smtp_error, smtp_port
from integrations.connectors.kit.concurrent import map_concurrently
from integrations.errors import ApiBadRequest, ApiHostError
from integrations.ssrf import OutboundTarget

HTML_FIELD = FieldShape(format=TextFormat.HTML, optional=True)
DEFAULT_SESSIONS = 10


def message_id_for(idempotency_key: str, from_email: str) -> str:
    """A stable RFC 5322 Message-ID: same idempotency key → same Message-ID on every retry."""
    domain = parseaddr(from_email)[1].rpartition("@")[2] or "bastion.local"
    return f"<bastion.{hashlib.sha256(idempotency_key.encode()).hexdigest()[:40]}@{domain}>"


class EmailConnector(BaseConnector):
    manifest = ConnectorManifest(
        key="email",
        name="Email (SMTP)",
        category=Category.MESSAGING,
        description="Send notification emails through your SMTP relay.",
        logo="connectors/email.svg",
        auth_methods=(AuthMethod.BASIC, AuthMethod.NONE),
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
            CredentialField(
                "max_connections",
                "SMTP sessions at once",
                is_secret=False,
                is_required=False,
                help_text=f"How many messages of one notification step are sent side by side (default {DEFAULT_SESSIONS}); lower it if your relay limits sessions.",
            ),
        ),
        actions=(
            ActionSpec(
                "send_email",
                "Send email",
                "Send a plain-text email with an optional HTML alternative; the Message-ID is derived from the idempotency key.",
                {"to": "[email]", "subject": "string", "body": "string", "html": "string?"},
                idempotency=Idempotency.NONE,
                fields={
                    "subject": FieldShape(max_chars=200, single_line=True),
                    "body": FieldShape(max_chars=20000),
                    "html": HTML_FIELD,
                    "body_html": HTML_FIELD,
                },
                verb="sent",
                kept_on_undo="E-mails cannot be unsent.",
                bulk=True,  # a step's per-person messages go out side by side from one task (max_connections sessions)
            ),
        ),
        capabilities=(Capability.ACTIONS,),
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
        except SMTP_FAILURES as error:
            raise smtp_error(error, host=str(self.config.get("host") or "")) from error
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

    def perform(self, action: str, payload: Mapping[str, Any], *, idempotency_key: str, known_new: bool = False) -> ActionResult:
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
        except SMTP_FAILURES as error:
            raise smtp_error(error, host=str(self.config.get("host") or "")) from error
        if sent != 1:
            raise ApiHostError("The SMTP server accepted no message.")
        return ActionResult(external_id=message_id, data={"message_id": message_id, "to": message_data["to"], "subject": message_data["subject"]}, created=True)

    def perform_bulk(
        self, action: str, payloads: list[Mapping[str, Any]], *, idempotency_keys: list[str], known_new: bool = False
    ) -> list[ActionResult | Exception]:
        """Each message in its own SMTP session, up to max_connections at once; each payload's own result or error."""
        try:
            sessions = max(1, min(50, int(self.config.get("max_connections") or DEFAULT_SESSIONS)))
        except (TypeError, ValueError):
            sessions = DEFAULT_SESSIONS
        pairs = list(zip(payloads, idempotency_keys, strict=True))
        return map_concurrently(lambda pair: self.perform(action, pair[0], idempotency_key=pair[1], known_new=known_new), pairs, limit=sessions)


CONNECTOR = EmailConnector
