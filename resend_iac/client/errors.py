"""The client's exceptions: ``ResendAPIError`` and its kinds (picked by ``api_error``). A leaf
module apart from ``resend_iac.errors``; ``resend_iac.client.http`` re-exports every name."""

from __future__ import annotations

from resend_iac.errors import ResendIACError

# 429s that waiting a moment does not cure.
QUOTA_ERRORS = frozenset({"daily_quota_exceeded", "monthly_quota_exceeded"})


class ResendAPIError(ResendIACError):
    """An error answer of the API (``status``, ``name``, ``message`` as in its error body),
    or a failure to get one (``status`` 0, ``name`` "connection_error").

    Raised as one of the subclasses below when the kind is known (``api_error`` picks it), so
    callers catch ``NotFoundError`` rather than compare ``.status``. Never carries the API key
    or any request header.
    """

    def __init__(
        self,
        status: int,
        name: str,
        message: str,
        *,
        method: str | None = None,
        path: str | None = None,
    ) -> None:
        self.status = status
        self.name = name
        self.message = message
        self.method = method
        self.path = path
        super().__init__(status, name, message)

    def __str__(self) -> str:
        where = f" ({self.method} {self.path})" if self.method else ""
        return f"{self.status} {self.name}: {self.message}{where}"

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.status!r}, {self.name!r}, {self.message!r})"

    def __reduce__(self):  # picklable across processes, without anything but the fields
        return (_rebuild_error, (self.status, self.name, self.message, self.method, self.path))


class NotFoundError(ResendAPIError):
    """404: the object (or route) does not exist."""


class RateLimitedError(ResendAPIError):
    """429: too many requests, or a quota exhausted (``quota``: retrying soon will not help)."""

    @property
    def quota(self) -> bool:
        return self.name in QUOTA_ERRORS


class ValidationError(ResendAPIError):
    """400/422: the request was refused as invalid (fields, parameters)."""


class AuthError(ResendAPIError):
    """The API key is missing, invalid, restricted or lacks a permission (401, 403, and the
    400 ``validation_error`` "API key is invalid" of the newer error catalogue, notes §1.5)."""


AUTH_ERROR_NAMES = frozenset(
    {"missing_api_key", "invalid_api_key", "restricted_api_key", "invalid_permission", "suspended_api_key"}
)


def _kind(status: int, name: str, message: str) -> type[ResendAPIError]:
    if name in AUTH_ERROR_NAMES or status == 401 or (status in (400, 403) and "api key" in message.lower()):
        return AuthError
    if status == 404:
        return NotFoundError
    if status == 429:
        return RateLimitedError
    if status in (400, 422):
        return ValidationError
    return ResendAPIError


def api_error(
    status: int,
    name: str,
    message: str,
    *,
    method: str | None = None,
    path: str | None = None,
) -> ResendAPIError:
    """The ResendAPIError of the right kind for an answer (or ``ResendAPIError`` itself)."""
    return _kind(status, name, message)(status, name, message, method=method, path=path)


def _rebuild_error(status, name, message, method, path) -> ResendAPIError:
    return api_error(status, name, message, method=method, path=path)


class EndpointError(ResendAPIError):
    """The API URL is not one to send the key to (plain http to another host, not a URL), or
    it answered with a redirect (``status`` 3xx): see ``client/endpoint.py``."""


class InvalidResponseError(ResendAPIError):
    """A 2xx answer that is not what the route returns (not a JSON object, a list item of the
    wrong shape, a field of the wrong type); ``message`` names the field."""
