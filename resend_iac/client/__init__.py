"""The Resend API client and the live-state reader.

- ``ResendClient``: async httpx client with a self-adapting rate limiter, bounded
  retries that never duplicate a write, typed errors, one pagination helper.
- ``SyncResendClient``: the same methods, synchronous.
- ``read_live(client, ...)``: a team's live state as a ``model.State``.
"""

from resend_iac.client.http import (
    AuthError,
    NotFoundError,
    RateLimitedError,
    ResendAPIError,
    ResendClient,
    ValidationError,
    api_error,
)
from resend_iac.client.limiter import RateLimiter
from resend_iac.client.reader import EVERY_CONTACT, read_live
from resend_iac.client.sync import SyncResendClient

__all__ = [
    "ResendAPIError",
    "NotFoundError",
    "RateLimitedError",
    "ValidationError",
    "AuthError",
    "api_error",
    "ResendClient",
    "SyncResendClient",
    "RateLimiter",
    "read_live",
    "EVERY_CONTACT",
]
