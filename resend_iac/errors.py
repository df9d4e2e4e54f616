"""The one base of resend-iac's own exceptions, so a caller can catch everything resend-iac
raises on purpose with ``except ResendIACError``. A leaf module: it imports nothing of ours.

The API's errors (``resend_iac.client``) derive from it by kind: ``ResendAPIError`` and its
subclasses ``NotFoundError`` (404), ``RateLimitedError`` (429), ``ValidationError`` (400/422)
and ``AuthError`` (a missing, invalid or restricted key), each keeping ``.status``. So do
``ConfigError`` (config), ``DiffError``, ``PlanFileError``, ``SafetyError``, ``ApplyError`` and
``CacheError`` (engine) and ``TargetError`` (cli).
"""

from __future__ import annotations


class ResendIACError(Exception):
    """Base of the exceptions resend-iac raises on purpose."""
