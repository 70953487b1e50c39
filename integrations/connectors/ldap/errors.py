"""ldap3's exceptions as the shared error tree (LDAP has no HttpClient, so no classify_response: this is its error mapping)."""

from __future__ import annotations

import logging
import ssl

from ldap3.core import exceptions as ldap_exc

from integrations.errors import ApiBadRequest, ApiError, ApiForbidden, ApiHostError, ApiTimeout, ApiUnauthorized

logger = logging.getLogger("integrations.connectors.ldap")  # the connector's one logger name, as before the package split


def _socket_failure(exc: Exception) -> str:
    """A fixed description of why the socket failed: ldap3's text mixes local errors with what the peer sent, so it is not shown."""
    text = str(exc).lower()
    if "certificate" in text:
        return "TLS failed, the certificate was not accepted (check the CA certificate and the host name)"
    if "ssl" in text or "tls" in text:
        return "TLS failed (check the port and that the server speaks TLS there)"
    if "refused" in text:
        return "the connection was refused"
    if "timed out" in text or "timeout" in text:
        return "the connection timed out"
    return "the connection failed or was closed"


class _ldap_errors:
    """Translate ldap3 exceptions into the shared error tree (never leaking the password)."""

    def __init__(self, operation: str):
        self.operation = operation

    def __enter__(self) -> None:
        return None

    def __exit__(self, exc_type, exc, tb) -> bool:
        if exc is None or isinstance(exc, ApiError | ldap_exc.LDAPNoSuchObjectResult):
            return False  # a missing object is for the caller to interpret
        # Whatever answers on the configured port writes this text (a banner, when it is no directory): logged, never shown.
        logger.warning("ldap.operation_failed", extra={"operation": self.operation, "error_class": type(exc).__name__, "detail": str(exc)[:500]})
        if isinstance(exc, ldap_exc.LDAPInvalidCredentialsResult):
            raise ApiUnauthorized("The directory refused the service account credentials (invalid credentials).") from exc
        if isinstance(exc, ldap_exc.LDAPInsufficientAccessRightsResult | ldap_exc.LDAPStrongerAuthRequiredResult):
            raise ApiForbidden(f"The directory refused the {self.operation} (insufficient access rights or stronger authentication required).") from exc
        if isinstance(exc, ldap_exc.LDAPNoSuchObjectResult):
            return False  # the caller decides what a missing object means
        if isinstance(exc, ldap_exc.LDAPSocketReceiveError | ldap_exc.LDAPResponseTimeoutError):
            raise ApiTimeout(f"The directory did not answer the {self.operation} in time.") from exc
        if isinstance(exc, ldap_exc.LDAPStartTLSError | ssl.SSLError):
            raise ApiHostError(f"TLS with the directory failed ({self.operation}): check the certificate, the CA and the port.") from exc
        if isinstance(exc, ldap_exc.LDAPSocketOpenError | ldap_exc.LDAPCommunicationError | ldap_exc.LDAPSessionTerminatedByServerError):
            raise ApiHostError(f"Could not reach the directory ({self.operation}): {_socket_failure(exc)}.") from exc
        if isinstance(exc, ldap_exc.LDAPInvalidDnError | ldap_exc.LDAPInvalidFilterError | ldap_exc.LDAPAttributeError):
            # Refused client-side before anything was sent: bad data or settings, which a retry cannot fix.
            raise ApiBadRequest(f"The {self.operation} could not be sent: {exc}") from exc
        if isinstance(exc, ldap_exc.LDAPSizeLimitExceededResult | ldap_exc.LDAPAdminLimitExceededResult):
            raise ApiBadRequest(f"The directory's size limit stopped the {self.operation}; lower page_size.") from exc
        if isinstance(exc, ldap_exc.LDAPOperationResult):
            raise ApiBadRequest(f"The directory refused the {self.operation} ({exc.description}).") from exc
        if isinstance(exc, ldap_exc.LDAPException):
            raise ApiHostError(f"LDAP {self.operation} failed ({type(exc).__name__}).") from exc
        return False
