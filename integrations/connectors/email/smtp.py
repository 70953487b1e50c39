"""SMTP under the SSRF guard: the vetted connection classes, the port rule, and smtplib failures as the one error tree."""

from __future__ import annotations

import logging
import smtplib
import socket
from collections.abc import Mapping
from typing import Any

from django.core.mail.backends.smtp import EmailBackend

from integrations.errors import ApiBadRequest, ApiError, ApiHostError, ApiTimeout, ApiUnauthorized, UnsafeBaseUrl
from integrations.ssrf import connect_vetted, host_unresolved

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


def smtp_error(error: Exception, *, host: str) -> ApiError:
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


# What sending or greeting can raise: smtplib's errors, socket failures, and the guard refusing the address.
SMTP_FAILURES = (smtplib.SMTPException, OSError, UnsafeBaseUrl)
