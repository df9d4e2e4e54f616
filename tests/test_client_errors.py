"""API errors by kind, from a real emulator over HTTP: one base (ResendIACError), and
NotFoundError / ValidationError / AuthError / RateLimitedError subclasses of ResendAPIError,
each keeping ``.status``."""

from __future__ import annotations

import pickle

import pytest

from resend_iac.client import (
    AuthError,
    NotFoundError,
    RateLimitedError,
    ResendAPIError,
    ResendClient,
    ValidationError,
    api_error,
)
from resend_iac.errors import ResendIACError


async def _raises(client: ResendClient, method: str, path: str, **kw) -> ResendAPIError:
    with pytest.raises(ResendAPIError) as info:
        await client.request(method, path, **kw)
    return info.value


async def test_kinds_on_the_wire(emulator_server):
    async with ResendClient("re_test_key", emulator_server.url, rate_limit=None) as client:
        e = await _raises(client, "GET", "/contacts/00000000-0000-0000-0000-000000000000")
        assert type(e) is NotFoundError and e.status == 404 and isinstance(e, ResendIACError)
        e = await _raises(client, "POST", "/contacts", json={"email": "not an email"})
        assert type(e) is ValidationError and e.status in (400, 422)


async def test_auth_error_on_the_wire(start_emulator):
    server = start_emulator(db_path=":memory:", rate_limit=0, api_keys=["re_good"])
    async with ResendClient("re_wrong_key", server.url, rate_limit=None) as client:
        e = await _raises(client, "GET", "/segments")
        assert type(e) is AuthError and e.status in (400, 401, 403)


async def test_rate_limited_on_the_wire(start_emulator):
    server = start_emulator(db_path=":memory:", rate_limit=1)
    async with ResendClient("re_k", server.url, rate_limit=None, max_retries=0) as client:
        with pytest.raises(RateLimitedError) as info:
            for _ in range(10):
                await client.request("GET", "/segments")
        assert info.value.status == 429 and not info.value.quota


@pytest.mark.parametrize(
    ("status", "name", "message", "kind"),
    [
        (404, "not_found", "Contact not found", NotFoundError),
        (429, "rate_limit_exceeded", "slow down", RateLimitedError),
        (429, "daily_quota_exceeded", "quota", RateLimitedError),
        (422, "invalid_parameter", "must be a valid UUID", ValidationError),
        (400, "validation_error", "Invalid `email` field", ValidationError),
        (400, "validation_error", "API key is invalid", AuthError),
        (401, "missing_api_key", "Missing API Key", AuthError),
        (401, "restricted_api_key", "restricted", AuthError),
        (403, "invalid_api_key", "API key is invalid", AuthError),
        (500, "application_error", "boom", ResendAPIError),
        (0, "connection_error", "refused", ResendAPIError),
    ],
)
def test_api_error_picks_the_kind(status, name, message, kind):
    e = api_error(status, name, message, method="GET", path="/x")
    assert type(e) is kind and e.status == status and e.name == name
    back = pickle.loads(pickle.dumps(e))  # kind and fields survive a process boundary
    assert type(back) is kind and (back.status, back.name, back.path) == (status, name, "/x")
    assert repr(e).startswith(kind.__name__ + "(")
