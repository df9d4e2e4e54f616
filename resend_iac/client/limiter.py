"""Client-side rate limiter: paces requests so the team's limit is never exceeded by us.

A GCRA (evenly spaced slots, no burst) that

- starts at the rate it is given (Resend's documented default: 5 req/s) but, until a
  response has told it the team's real limit, lets **one request at a time** through
  (the *probe*): a team allowed 2 req/s therefore never sees a 429 caused by our first
  burst;
- adapts to the ``ratelimit-limit`` / ``ratelimit-policy: N;w=S`` headers of every
  response (up or down), pacing at ``SAFETY`` x the advertised rate so that jitter in
  arrival times does not push a window over its limit;
- on ``ratelimit-remaining: 0`` holds every request back until the server's window has
  surely ended. ``ratelimit-reset`` is whole seconds (too coarse: waiting for it would
  stall up to a second each time), so the end is inferred from our own requests: a full
  window of N holds our last N requests, so it began no later than the answer to the
  N-th last one arrived, and ends at most ``w`` seconds after that (true for fixed and
  sliding windows; for a token bucket it is merely cautious). Capped by the reset;
- on a 429 blocks every request for its ``retry-after`` (not only the one that got it)
  and paces 10% slower from then on (down to half the advertised rate): a 429 despite
  pacing means the arrival jitter, or someone else's traffic, is larger than assumed.

``RateLimiter(None)`` paces nothing and probes nothing, but still honours blocks
(a 429's ``retry-after``).
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager

SAFETY = 0.95  # pace at this share of the advertised rate
MIN_PENALTY = 0.5
EPSILON = 0.005  # seconds added to an inferred window end
HISTORY = 1024
LATE_ABSORBED = 0.01  # seconds of a late wake-up taken off the next interval  # requests remembered for inferring window ends


def _number(value: str | None) -> float | None:
    if value is None:
        return None
    try:
        return float(value.strip())
    except ValueError:
        return None


def parse_policy(value: str | None) -> tuple[float, float] | None:
    """``"100;w=1"`` (first policy of a list) -> (100.0, 1.0); None if unparsable."""
    if not value:
        return None
    first = value.split(",")[0]
    parts = [p.strip() for p in first.split(";")]
    quota = _number(parts[0])
    window = 1.0
    for p in parts[1:]:
        if p.startswith("w="):
            window = _number(p[2:]) or 1.0
    if not quota or quota <= 0 or window <= 0:
        return None
    return quota, window


def advertised_limit(headers: Mapping[str, str]) -> tuple[float, float] | None:
    """(requests, window seconds) the server allows, from ratelimit-* headers."""
    policy = parse_policy(headers.get("ratelimit-policy"))
    limit = _number(headers.get("ratelimit-limit"))
    if policy:
        quota, window = policy
        return (limit or quota), window
    if limit and limit > 0:
        return limit, 1.0  # draft-06 without a policy: the documented window is 1 s
    return None


def advertised_rate(headers: Mapping[str, str]) -> float | None:
    """Requests per second the server allows (None if it does not say)."""
    found = advertised_limit(headers)
    return found[0] / found[1] if found else None


class Slot:
    """One request's passage through the limiter; feed it the response headers."""

    __slots__ = ("_limiter", "probe", "seq", "answered_at")

    def __init__(self, limiter: "RateLimiter", probe: bool, seq: int) -> None:
        self._limiter = limiter
        self.probe = probe
        self.seq = seq
        self.answered_at: float | None = None

    @property
    def answered(self) -> bool:
        return self.answered_at is not None

    def observe(self, status: int, headers: Mapping[str, str]) -> None:
        self.answered_at = self._limiter._clock()
        self._limiter.observe(status, headers, slot=self)


class RateLimiter:
    def __init__(
        self,
        rate: float | None = 5.0,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.enabled = rate is not None and rate > 0
        self.rate: float = float(rate) if self.enabled else 0.0  # type: ignore[arg-type]
        self.calibrated = not self.enabled  # no probing when not limiting
        self.advertised: float | None = None  # last rate seen in headers
        self.limit: float | None = None  # requests per window, as advertised
        self.window = 1.0
        self.penalty = 1.0  # lowered by every 429
        self.inflight = 0
        self._clock = clock
        self._next = 0.0  # earliest time of the next slot
        self._last = -1e9  # when the last slot was handed out
        self._blocked_until = 0.0
        self._probe_done: asyncio.Event | None = None  # exists while a probe is in flight
        self._seq = 0
        self._history: deque[Slot] = deque(maxlen=HISTORY)

    def __repr__(self) -> str:
        state = f"{self.rate:g}/s" if self.enabled else "off"
        return f"RateLimiter({state}, calibrated={self.calibrated})"

    # -- adapting ---------------------------------------------------------------------

    def _set_rate(self) -> None:
        if not self.enabled or self.advertised is None:
            return
        rate = self.advertised * SAFETY * self.penalty
        if rate != self.rate:
            self.rate = rate
            self._next = self._last + 1.0 / rate

    def observe(self, status: int, headers: Mapping[str, str], slot: Slot | None = None) -> None:
        """Learn from a response's headers (any status)."""
        now = self._clock()
        found = advertised_limit(headers)
        if found is not None:
            self.limit, self.window = found
            self.advertised = found[0] / found[1]
            self.calibrated = self.calibrated or self.enabled
        if status == 429 and now >= self._blocked_until:  # once per burst of 429s
            self.penalty = max(MIN_PENALTY, self.penalty * 0.9)
        self._set_rate()
        remaining = _number(headers.get("ratelimit-remaining"))
        if self.enabled and remaining is not None and remaining <= 0 and status != 429:
            reset = _number(headers.get("ratelimit-reset"))
            until = now + (reset if reset is not None else self.window)
            if slot is not None and self.limit:
                oldest = self._find(slot.seq - int(self.limit) + 1)
                if oldest is not None and oldest.answered_at is not None:
                    until = min(until, oldest.answered_at + self.window + EPSILON)
            self.block(until - now, now=now)

    def _find(self, seq: int) -> Slot | None:
        if not self._history:
            return None
        index = seq - self._history[0].seq
        if 0 <= index < len(self._history):
            return self._history[index]
        return None

    def block(self, seconds: float, *, now: float | None = None) -> None:
        """Let no request through for ``seconds`` (a 429's retry-after, a full window)."""
        now = self._clock() if now is None else now
        self._blocked_until = max(self._blocked_until, now + max(0.0, seconds))

    # -- passing ----------------------------------------------------------------------

    @asynccontextmanager
    async def slot(self) -> AsyncIterator[Slot]:
        probe = False
        while not self.calibrated:
            if self._probe_done is None:
                self._probe_done = asyncio.Event()
                probe = True
                break
            await self._probe_done.wait()
        slot: Slot | None = None
        try:
            await self._wait_turn()
            self._seq += 1
            slot = Slot(self, probe, self._seq)
            self._history.append(slot)
            self.inflight += 1
            yield slot
        finally:
            if slot is not None:
                self.inflight -= 1
            if probe:
                if slot is not None and slot.answered and not self.calibrated:
                    # The server sent no ratelimit headers: keep the configured rate.
                    self.calibrated = True
                if slot is not None and slot.answered_at is not None and self.enabled:
                    # The probe reached the server some time before its answer came back
                    # (a cold connection can take long): space the next one from the answer.
                    self._last = slot.answered_at
                    self._next = self._last + 1.0 / self.rate
                done, self._probe_done = self._probe_done, None
                if done is not None:
                    done.set()

    async def _wait_turn(self) -> None:
        while True:
            now = self._clock()
            start = max(now, self._blocked_until)
            if self.enabled:
                start = max(start, self._next)
            if start <= now:
                if self.enabled:
                    interval = 1.0 / self.rate
                    # A sleep wakes a little late: keep the schedule (the next slot at
                    # most LATE_ABSORBED early) instead of drifting below the rate. The
                    # schedule itself never runs ahead, so no window gains a request.
                    late = now - self._next
                    base = self._next if 0 <= late < min(interval / 4, LATE_ABSORBED) else now
                    self._last = now
                    self._next = base + interval
                return
            # Reserve nothing while sleeping: the rate or a block may change meanwhile.
            await asyncio.sleep(start - now)


RATE_ENV = "RESEND_IAC_RATE_LIMIT"


def rate_limit_from_env() -> dict[str, float | None]:
    """``RESEND_IAC_RATE_LIMIT`` as the client's keyword arguments: ``{"rate_limit": N}``
    requests/s (``0``: no client-side pacing, ``None``), ``{}`` when it is not set.
    ``ValueError`` (with the message to show) when it is not a number."""
    import os

    rate = os.environ.get(RATE_ENV)
    if not rate:
        return {}
    try:
        return {"rate_limit": float(rate) or None}
    except ValueError:
        raise ValueError(
            f"{RATE_ENV}={rate!r} is not a number of requests per second (0 turns client-side pacing off)"
        ) from None
