"""One error tree for every vendor call, built from the response in one place."""

from __future__ import annotations

from datetime import datetime


class ApiError(Exception):
    """A vendor call failed. `retryable` tells transient failures from terminal ones."""

    retryable = False
    category = "system"  # configuration | auth | transient | system

    def __init__(self, message: str, *, status: int | None = None, vendor_code: str = "", path: str = "", retry_after: float | None = None):
        super().__init__(message)
        self.message = message
        self.status = status
        self.vendor_code = vendor_code
        self.path = path
        # The vendor's own hint of when to try again (Retry-After on a 429 or a 503); None when it gave none.
        self.retry_after = retry_after

    def __str__(self) -> str:
        where = f" ({self.status} {self.path})" if self.status else ""
        code = f" [{self.vendor_code}]" if self.vendor_code else ""
        return f"{self.message}{code}{where}"


class ApiUnauthorized(ApiError):
    category = "auth"


class ApiForbidden(ApiError):
    category = "configuration"


class ApiNotFound(ApiError):
    category = "configuration"


class ApiConflict(ApiError):
    category = "configuration"


class ApiBadRequest(ApiError):
    category = "configuration"


class ApiRateLimited(ApiError):
    retryable = True
    category = "transient"

    retry_after: float

    def __init__(self, message: str, *, retry_after: float | None = 1.0, **kwargs):
        super().__init__(message, retry_after=1.0 if retry_after is None else retry_after, **kwargs)


class ApiQuotaExhausted(ApiRateLimited):
    """A daily (or other long-window) quota is spent; wait until `reset_at`."""

    def __init__(self, message: str, *, reset_at: datetime | None = None, retry_after: float = 60.0, **kwargs):
        super().__init__(message, retry_after=retry_after, **kwargs)
        self.reset_at = reset_at


class ApiHostError(ApiError):
    """Network failure or vendor 5xx."""

    retryable = True
    category = "transient"


class ApiTimeout(ApiHostError):
    pass


class AuthRefreshFailed(ApiUnauthorized):
    """The refresh token was refused (invalid_grant): a person must reconnect."""


class UnsafeBaseUrl(ApiError):
    category = "configuration"


class WebhookRejected(Exception):
    """A webhook failed verification or parsing; `status` is the 4xx to answer."""

    def __init__(self, status: int, code: str, message: str):
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
