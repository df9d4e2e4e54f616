"""The client-side rate limiter: header parsing, the probe, and adapting up and down
against the emulator as a real server (rate limiting is on the wire)."""

from __future__ import annotations

import asyncio
import time

import httpx
import pytest

from resend_iac.client import ResendClient
from resend_iac.client.limiter import RateLimiter, advertised_limit, advertised_rate, parse_policy

KEY = "re_limiter_test_key"


def test_header_parsing():
    assert parse_policy("100;w=1") == (100.0, 1.0)
    assert parse_policy("10;w=60, 1000;w=3600") == (10.0, 60.0)
    assert parse_policy("garbage") is None and parse_policy(None) is None
    assert advertised_rate({"ratelimit-limit": "20", "ratelimit-policy": "20;w=1"}) == 20
    assert advertised_rate({"ratelimit-limit": "2"}) == 2
    assert advertised_limit({"ratelimit-policy": "30;w=60"}) == (30.0, 60.0)
    assert advertised_rate({"ratelimit-policy": "30;w=60"}) == 0.5
    assert advertised_rate({}) is None


def test_adapts_rate_to_headers_both_ways():
    lim = RateLimiter(5.0)
    lim.observe(200, {"ratelimit-limit": "100", "ratelimit-policy": "100;w=1"})
    assert lim.calibrated and 90 <= lim.rate < 100
    lim.observe(200, {"ratelimit-limit": "2", "ratelimit-policy": "2;w=1"})
    assert 1.8 <= lim.rate < 2
    slower = lim.rate
    lim.observe(429, {"ratelimit-limit": "2", "retry-after": "1"})
    assert lim.rate < slower  # a 429 despite pacing: pace slower from now on
    off = RateLimiter(None)
    off.observe(200, {"ratelimit-limit": "100"})
    assert not off.enabled and off.rate == 0


async def test_first_request_goes_alone_until_the_limit_is_known():
    in_flight = 0
    peak_before_headers = 0
    seen_headers = False
    peak = 0

    async def handler(request: httpx.Request) -> httpx.Response:
        nonlocal in_flight, peak_before_headers, seen_headers, peak
        in_flight += 1
        peak = max(peak, in_flight)
        if not seen_headers:
            peak_before_headers = max(peak_before_headers, in_flight)
        await asyncio.sleep(0.02)
        in_flight -= 1
        seen_headers = True
        return httpx.Response(
            200,
            json={"object": "list", "has_more": False, "data": []},
            headers={"ratelimit-limit": "1000", "ratelimit-policy": "1000;w=1"},
        )

    async with ResendClient(KEY, "http://api.test", transport=httpx.MockTransport(handler)) as c:
        await asyncio.gather(*(c.list_topics() for _ in range(20)))
    assert peak_before_headers == 1
    assert peak > 1  # once calibrated (1000/s), requests overlap


async def test_without_headers_keeps_the_configured_rate():
    stamps: list[float] = []

    def handler(request: httpx.Request) -> httpx.Response:
        stamps.append(time.monotonic())
        return httpx.Response(200, json={"object": "list", "has_more": False, "data": []})

    async with ResendClient(
        KEY, "http://api.test", transport=httpx.MockTransport(handler), rate_limit=20
    ) as c:
        await asyncio.gather(*(c.list_topics() for _ in range(7)))
    gaps = [b - a for a, b in zip(stamps, stamps[1:])]
    assert min(gaps) >= 0.039  # 20/s: about 50 ms apart (a late wake-up is made up)
    assert (stamps[-1] - stamps[0]) / len(gaps) >= 0.049  # never faster than 20/s


def _hammer(url: str, n: int, **kw) -> tuple[float, int, float]:
    async def go():
        async with ResendClient(KEY, url, **kw) as c:
            t0 = time.monotonic()
            await asyncio.gather(*(c.list_segments() for _ in range(n)))
            return time.monotonic() - t0, c.requests_sent, c.limiter.rate

    return asyncio.run(go())


def test_adapts_up_to_a_high_limit(start_emulator):
    server = start_emulator(rate_limit=50)
    seconds, sent, rate = _hammer(server.url, 60)  # starts at the documented 5 req/s
    st = server.stats()
    assert st["rate_limited"] == 0
    assert sent == 60
    assert 45 <= rate < 50  # paced just under the advertised 50/s
    # 60 requests at 5/s would take 12 s; loose bound for a busy machine.
    assert 60 / seconds > 15


def test_adapts_down_to_a_low_limit_without_a_429(start_emulator):
    server = start_emulator(rate_limit=2)
    seconds, sent, rate = _hammer(server.url, 6)  # starts at 5 req/s, 6 requests at once
    st = server.stats()
    assert st["rate_limited"] == 0, st
    assert st["total"] == 6 == sent
    assert rate < 2
    assert seconds >= 2.0  # 6 requests at 2/s span at least 2.5 windows


def test_429_retry_after_is_honoured_on_the_wire(start_emulator):
    """Without client-side limiting, the server's 429s are waited out and retried."""
    server = start_emulator(rate_limit=4)
    seconds, sent, _ = _hammer(server.url, 10, rate_limit=None)
    st = server.stats()
    assert st["rate_limited"] > 0  # we did provoke them
    assert sent == st["total"] == 10 + st["rate_limited"]
    assert seconds >= 1.0  # at least one retry-after (whole seconds) was waited


async def test_a_full_window_blocks_until_it_surely_ended():
    """remaining 0 after our N-th request: the window began by the time the answer to
    the request N-1 before it arrived, so it ends at most w later (not a whole
    ratelimit-reset from now)."""
    now = [0.0]
    lim = RateLimiter(5.0, clock=lambda: now[0])
    headers = {"ratelimit-limit": "2", "ratelimit-policy": "2;w=1", "ratelimit-reset": "1"}
    async with lim.slot() as first:  # the probe
        now[0] = 0.10
        first.observe(200, dict(headers, **{"ratelimit-remaining": "1"}))
    now[0] = 0.70
    async with lim.slot() as second:
        now[0] = 0.72
        second.observe(200, dict(headers, **{"ratelimit-remaining": "0"}))
    assert lim._blocked_until == pytest.approx(0.10 + 1.0 + 0.005)  # not 0.72 + 1
    # Without our own history to go by (others used the window), the reset bounds it.
    other = RateLimiter(5.0, clock=lambda: now[0])
    async with other.slot() as only:
        only.observe(200, dict(headers, **{"ratelimit-remaining": "0"}))
    assert other._blocked_until == pytest.approx(0.72 + 1.0)


async def test_a_cancelled_probe_hands_over_to_the_next_request():
    lim = RateLimiter(1000.0)
    lim.block(0.2)  # the probe will be waiting for its turn when cancelled

    async def use():
        async with lim.slot() as slot:
            slot.observe(200, {"ratelimit-limit": "1000"})

    first = asyncio.create_task(use())
    await asyncio.sleep(0.01)
    second = asyncio.create_task(use())
    await asyncio.sleep(0.01)
    first.cancel()
    await asyncio.wait_for(second, timeout=2)  # not stuck behind the cancelled probe
    assert lim.calibrated and lim.inflight == 0
