"""The one-request-per-object strategy: what today's Terraform and Pulumi providers do.

Model (see NOTES): every declared object is its own resource with its own id in a state
file, and the engine around the provider (Terraform core / the Pulumi engine) calls the
provider's Read/Create/Update once per resource:

- resources: one per custom property, segment, topic and contact (names, unsubscribed and
  property values are attributes of the contact, sent with its create/update), one per
  contact-segment membership (like ``github_team_membership``) and one per contact-topic
  subscription.
- refresh (``terraform plan`` / ``pulumi preview --refresh``): one GET per resource:
  ``GET /contact-properties/{id}``, ``GET /segments/{id}``, ``GET /topics/{id}``,
  ``GET /contacts/{id}``; a membership reads ``GET /contacts/{id}/segments`` and a
  subscription ``GET /contacts/{id}/topics`` (the API has no per-pair GET), once per pair.
- create: one request per resource (``POST``; a membership ``POST
  /contacts/{id}/segments/{segment_id}``; a subscription ``PATCH /contacts/{id}/topics``
  with its one topic). Existing providers also re-read after create
  (humanlayer/pulumi-resend ``provider/resources/segment.go`` does POST then GET); we do not
  count that, so the naive counts are a lower bound.
- update: one request per changed resource (``PATCH``; a missing membership is re-created
  with one ``POST``).
- plan then apply a saved plan: the apply does not refresh again (``terraform apply``
  without a saved plan would refresh a second time).
- an initial plan against an empty state file reads nothing.

Requests are sent with ``parallelism`` in flight (Terraform's default is 10), respecting
dependencies (properties, segments, topics, then contacts, then memberships and
subscriptions). With ``rate_limit`` set, requests are paced client-side to that rate and a
429 is retried after ``retry-after``.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from typing import Any

import httpx

from resend_iac.model import UNSET, State

PARALLELISM = 10
KINDS = ("property", "segment", "topic", "contact", "membership", "subscription")


def resource_counts(state: State) -> dict[str, int]:
    """Number of provider resources by kind for a declared State."""
    return {
        "property": len(state.properties),
        "segment": len(state.segments),
        "topic": len(state.topics),
        "contact": len(state.contacts),
        "membership": sum(len(c.segments) for c in state.contacts.values()),
        "subscription": sum(len(c.topics) for c in state.contacts.values() if c.topics),
    }


def expected_requests(state: State, drifted: int) -> dict[str, dict[str, int]]:
    """Exact request counts of the naive strategy, by phase: a count, not a timing.

    ``drifted`` = number of resources changed live before the drift phase (each drift
    changes one resource: a contact's field, a membership or a subscription).
    """
    total = sum(resource_counts(state).values())
    return {
        "initial": {"plan": 0, "apply": total},
        "drift": {"plan": total, "apply": drifted},
        "noop": {"plan": total, "apply": 0},
    }


class _Pacer:
    """Client-side pacing: at most ``rate`` request starts per second (0/None = off)."""

    def __init__(self, rate: float | None) -> None:
        self.interval = 1.0 / rate if rate else 0.0
        self.next_at = 0.0
        self.lock = asyncio.Lock()

    async def wait(self) -> None:
        if not self.interval:
            return
        async with self.lock:
            now = time.monotonic()
            if self.next_at > now:
                await asyncio.sleep(self.next_at - now)
                now = self.next_at
            self.next_at = max(now, self.next_at) + self.interval


@dataclass
class Change:
    kind: str
    key: Any
    action: str  # "create" | "update"


@dataclass
class NaiveProvider:
    base_url: str
    api_key: str = "re_benchmark"
    rate_limit: float | None = None
    parallelism: int = PARALLELISM
    # The state file: ids by (kind, key).
    ids: dict[tuple[str, Any], str] = field(default_factory=dict)
    requests_sent: int = 0
    retries: int = 0

    async def __aenter__(self) -> "NaiveProvider":
        self._client = httpx.AsyncClient(
            base_url=self.base_url,
            headers={"Authorization": f"Bearer {self.api_key}", "User-Agent": "naive-provider/1.0"},
            timeout=60.0,
            limits=httpx.Limits(max_connections=self.parallelism, max_keepalive_connections=self.parallelism),
        )
        self._pacer = _Pacer(self.rate_limit)
        self._sem = asyncio.Semaphore(self.parallelism)
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._client.aclose()

    async def _request(self, method: str, path: str, json: Any = None) -> Any:
        async with self._sem:
            for _attempt in range(20):
                await self._pacer.wait()
                self.requests_sent += 1
                resp = await self._client.request(method, path, json=json)
                if resp.status_code == 429 or resp.status_code >= 500:
                    self.retries += 1
                    await asyncio.sleep(float(resp.headers.get("retry-after", "0.2") or 0.2))
                    continue
                if resp.status_code >= 400:
                    raise RuntimeError(f"{method} {path}: {resp.status_code} {resp.text[:200]}")
                return resp.json()
            raise RuntimeError(f"{method} {path}: gave up after retries")

    async def _gather(self, coros) -> list:
        return await asyncio.gather(*coros)

    # -- create (initial apply) ---------------------------------------------------------

    async def create_all(self, desired: State) -> int:
        """Create every resource, one request each. Returns the number of requests."""
        start = self.requests_sent

        async def prop(key, p):
            body = {"key": key, "type": p.type}
            if p.fallback_value is not None and p.fallback_value is not UNSET:
                body["fallback_value"] = p.fallback_value
            self.ids["property", key] = (await self._request("POST", "/contact-properties", body))["id"]

        async def seg(name):
            self.ids["segment", name] = (await self._request("POST", "/segments", {"name": name}))["id"]

        async def top(name, t):
            body = {"name": name, "default_subscription": t.default_subscription}
            for f in ("description", "visibility"):
                v = getattr(t, f)
                if v is not UNSET and v is not None:
                    body[f] = v
            self.ids["topic", name] = (await self._request("POST", "/topics", body))["id"]

        await self._gather(
            [prop(k, p) for k, p in desired.properties.items()]
            + [seg(n) for n in desired.segments]
            + [top(n, t) for n, t in desired.topics.items()]
        )

        async def contact(key, c):
            self.ids["contact", key] = (await self._request("POST", "/contacts", _contact_body(c)))["id"]

        await self._gather([contact(k, c) for k, c in desired.contacts.items()])
        await self._gather(
            [self._add_membership(k, s) for k, c in desired.contacts.items() for s in sorted(c.segments)]
            + [
                self._set_subscription(k, t, sub)
                for k, c in desired.contacts.items()
                for t, sub in sorted((c.topics or {}).items())
            ]
        )
        return self.requests_sent - start

    async def _add_membership(self, key: str, segment: str) -> None:
        cid, sid = self.ids["contact", key], self.ids["segment", segment]
        await self._request("POST", f"/contacts/{cid}/segments/{sid}")

    async def _set_subscription(self, key: str, topic: str, sub: str) -> None:
        cid, tid = self.ids["contact", key], self.ids["topic", topic]
        await self._request("PATCH", f"/contacts/{cid}/topics", [{"id": tid, "subscription": sub}])

    # -- refresh (plan) -----------------------------------------------------------------

    async def refresh(self, desired: State) -> list[Change]:
        """Read every resource back, one GET each; return the resources that differ."""
        changes: list[Change] = []

        async def prop(key, p):
            live = await self._request("GET", f"/contact-properties/{self.ids['property', key]}")
            if p.fallback_value is not UNSET and live.get("fallback_value") != p.fallback_value:
                changes.append(Change("property", key, "update"))

        async def seg(name):
            live = await self._request("GET", f"/segments/{self.ids['segment', name]}")
            if live.get("name") != name:
                changes.append(Change("segment", name, "update"))

        async def top(name, t):
            live = await self._request("GET", f"/topics/{self.ids['topic', name]}")
            for f in ("description", "visibility"):
                v = getattr(t, f)
                if v is not UNSET and live.get(f) != v:
                    changes.append(Change("topic", name, "update"))
                    break

        async def contact(key, c):
            live = await self._request("GET", f"/contacts/{self.ids['contact', key]}")
            if _contact_differs(c, live):
                changes.append(Change("contact", key, "update"))

        async def membership(key, segment):
            live = await self._request("GET", f"/contacts/{self.ids['contact', key]}/segments")
            if self.ids["segment", segment] not in {s["id"] for s in live.get("data", [])}:
                changes.append(Change("membership", (key, segment), "create"))

        async def subscription(key, topic, sub):
            live = await self._request("GET", f"/contacts/{self.ids['contact', key]}/topics")
            tid = self.ids["topic", topic]
            got = next((t.get("subscription") for t in live.get("data", []) if t.get("id") == tid), None)
            if got != sub:
                changes.append(Change("subscription", (key, topic), "update"))

        await self._gather(
            [prop(k, p) for k, p in desired.properties.items()]
            + [seg(n) for n in desired.segments]
            + [top(n, t) for n, t in desired.topics.items()]
            + [contact(k, c) for k, c in desired.contacts.items()]
            + [membership(k, s) for k, c in desired.contacts.items() for s in sorted(c.segments)]
            + [
                subscription(k, t, sub)
                for k, c in desired.contacts.items()
                for t, sub in sorted((c.topics or {}).items())
            ]
        )
        return changes

    # -- apply a saved plan ------------------------------------------------------------

    async def apply(self, desired: State, changes: list[Change]) -> int:
        start = self.requests_sent

        async def one(ch: Change):
            if ch.kind == "contact":
                c = desired.contacts[ch.key]
                body = _contact_body(c)
                body.pop("email")
                await self._request("PATCH", f"/contacts/{self.ids['contact', ch.key]}", body)
            elif ch.kind == "membership":
                await self._add_membership(*ch.key)
            elif ch.kind == "subscription":
                key, topic = ch.key
                await self._set_subscription(key, topic, desired.contacts[key].topics[topic])
            elif ch.kind == "property":
                p = desired.properties[ch.key]
                await self._request(
                    "PATCH",
                    f"/contact-properties/{self.ids['property', ch.key]}",
                    {"fallback_value": p.fallback_value},
                )
            elif ch.kind == "segment":
                await self._request("PATCH", f"/segments/{self.ids['segment', ch.key]}", {"name": ch.key})
            elif ch.kind == "topic":
                t = desired.topics[ch.key]
                body = {f: getattr(t, f) for f in ("description", "visibility") if getattr(t, f) is not UNSET}
                await self._request("PATCH", f"/topics/{self.ids['topic', ch.key]}", body)

        await self._gather([one(ch) for ch in changes])
        return self.requests_sent - start


def _contact_body(c) -> dict:
    body: dict[str, Any] = {"email": c.email}
    for f in ("first_name", "last_name", "unsubscribed"):
        v = getattr(c, f)
        if v is not UNSET:
            body[f] = v
    if c.properties:
        body["properties"] = dict(c.properties)
    return body


def _plain(value: Any) -> Any:
    """A property value from GET /contacts/{id}: typed ``{value, type}`` or plain."""
    if isinstance(value, dict) and "value" in value:
        return value["value"]
    return value


def _contact_differs(c, live: dict) -> bool:
    for f in ("first_name", "last_name", "unsubscribed"):
        v = getattr(c, f)
        if v is not UNSET and live.get(f) != v:
            return True
    live_props = {k: _plain(v) for k, v in (live.get("properties") or {}).items()}
    for k, v in (c.properties or {}).items():
        lv = live_props.get(k)
        if isinstance(v, (int, float)) and isinstance(lv, (int, float)):
            if float(v) != float(lv):
                return True
        elif lv != v:
            return True
    return False
