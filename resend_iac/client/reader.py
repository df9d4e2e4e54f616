"""Read a team's live state into the model, in as few requests as the API allows.

Requests: the three small lists (``/contact-properties``, ``/segments``, ``/topics``),
the contact list (pages of 100), each segment's member list (pages of 100), and then
per contact only what the list lacks and the desired state manages:
``GET /contacts/{id}`` (custom property values) for the contacts of ``property_emails``
and ``GET /contacts/{id}/topics`` for those of ``topic_emails`` that exist live.
Lists are paged sequentially (cursor); different lists and the per-contact reads run
concurrently, paced by the client's rate limiter. Per-contact reads start as soon as
the contact list page naming the contact has arrived.

A ``details`` policy (``engine/live.py``: the refresh cache) narrows the per-contact reads:
for each listed contact in scope, once the property and topic lists have arrived,
``details.decide(key, contact, state)`` says whether to read its details now; after the
contact list ends, ``details.more(state)`` names further contacts (normalised emails) to read.
A contact not read keeps ``properties``/``topics`` UNSET for the caller to fill.

Two live segments (or topics) with the same name: the first in the API's order is
kept, the others are left out (their members are not read), and a warning is logged,
appended to ``warnings`` if a list is given, and passed to ``progress`` with
``done == total == 0``.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable, Collection, Mapping
from typing import Any, Protocol

from resend_iac.client import answers
from resend_iac.client.http import ResendAPIError, _ref
from resend_iac.model import UNSET, Contact, Property, Segment, State, Topic, normalize_email
from resend_iac.model.schema import CONTACT, PROPERTY, SEGMENT, TOPIC

log = logging.getLogger("resend_iac.client")

Progress = Callable[[int, "int | None", str], None]


def plain_properties(raw: Any) -> dict[str, Any]:
    """``{"key": {"value": v, "type": t}}`` (API responses) -> ``{"key": v}``."""
    out: dict[str, Any] = {}
    for key, value in (raw or {}).items():
        out[key] = value.get("value") if isinstance(value, dict) else value
    return out


def contact_from(item: dict) -> Contact:
    """A listed contact (API item) -> a ``Contact`` whose details (properties, topics) are unread."""
    return Contact(
        **CONTACT.from_api(
            item, properties=UNSET, topics=UNSET, id=item.get("id"), created_at=item.get("created_at")
        )
    )


def property_from(item: dict) -> Property:
    """A contact property (API item) -> a ``Property``."""
    return Property(**PROPERTY.from_api(item, id=item.get("id"), created_at=item.get("created_at")))


def topic_from(item: dict) -> Topic:
    """A topic (API item) -> a ``Topic`` (no visibility given: private)."""
    return Topic(**TOPIC.from_api(item, id=item.get("id"), created_at=item.get("created_at")))


def segment_from(item: dict) -> Segment:
    """A segment (API item) -> a ``Segment``."""
    return Segment(**SEGMENT.from_api(item, id=item.get("id"), created_at=item.get("created_at")))


class Reads(Protocol):
    """The calls the reader makes (``ResendClient`` has them; so may a test's fake)."""

    def paginate(
        self, path: str, params: Mapping[str, Any] | None = None
    ) -> AsyncIterator[dict[str, Any]]: ...
    async def list_properties(self) -> list[dict[str, Any]]: ...
    async def list_topics(self) -> list[dict[str, Any]]: ...
    async def list_segments(self) -> list[dict[str, Any]]: ...
    async def get_contact(self, ref: str) -> dict[str, Any]: ...
    async def list_contact_topics(self, ref: str) -> list[dict[str, Any]]: ...


class _EveryContact:
    """``read_live(property_emails=EVERY_CONTACT)``: read the details of every listed contact
    (for export), in the same pass as the list, without knowing the emails beforehand."""

    def __contains__(self, key: object) -> bool:
        return True

    def __repr__(self) -> str:
        return "EVERY_CONTACT"


EVERY_CONTACT: Any = _EveryContact()


class DetailPolicy(Protocol):
    def decide(self, key: str, contact: Contact, state: State) -> bool: ...

    def more(self, state: State) -> Collection[str]: ...


def _email_set(emails: Collection[str]) -> Any:
    return emails if emails is EVERY_CONTACT else {normalize_email(e) for e in emails}


class _Reader:
    def __init__(
        self,
        client: Reads,
        property_emails: Collection[str],
        topic_emails: Collection[str],
        progress: Progress | None,
        warnings: list[str] | None,
        details: DetailPolicy | None = None,
    ) -> None:
        self.client = client
        self.details = details
        self.properties_read: asyncio.Future[None] | None = None
        self.property_emails = _email_set(property_emails)
        self.topic_emails = _email_set(topic_emails)
        self.progress = progress
        self.warnings = warnings
        self.state = State()
        self.topic_names: asyncio.Future[dict[str, str]] | None = None  # topic id -> name
        self.detail_total = 0
        self.detail_done = 0

    def report(self, done: int, total: int | None, what: str) -> None:
        if self.progress is not None:
            self.progress(done, total, what)

    def warn(self, message: str) -> None:
        log.warning("%s", message)
        if self.warnings is not None:
            self.warnings.append(message)
        self.report(0, 0, f"warning: {message}")

    async def run(self) -> State:
        self.topic_names = asyncio.get_running_loop().create_future()
        self.properties_read = asyncio.get_running_loop().create_future()
        async with asyncio.TaskGroup() as tg:
            tg.create_task(self.read_properties())
            tg.create_task(self.read_topics())
            segments = tg.create_task(self.read_segments())
            tg.create_task(self.read_contacts(tg))
            members = tg.create_task(self.read_members(segments))
        self.apply_members(members.result())
        self.report(len(self.state.contacts), len(self.state.contacts), "done")
        return self.state

    async def read_properties(self) -> None:
        assert self.properties_read is not None
        try:
            items = await self.client.list_properties()
        except asyncio.CancelledError:
            self.properties_read.cancel()
            raise
        except Exception as exc:
            self.properties_read.set_exception(exc)
            self.properties_read.exception()
            raise
        for item in items:
            key = answers.check_listed(item, answers.PROPERTY, "/contact-properties")["key"]
            if key in self.state.properties:
                continue
            self.state.properties[key] = property_from(item)
        self.properties_read.set_result(None)

    async def read_topics(self) -> None:
        assert self.topic_names is not None
        names: dict[str, str] = {}
        try:
            items = await self.client.list_topics()
        except asyncio.CancelledError:
            self.topic_names.cancel()
            raise
        except Exception as exc:
            self.topic_names.set_exception(exc)
            self.topic_names.exception()  # retrieved: no "never retrieved" noise
            raise
        for item in items:
            name = answers.check_listed(item, answers.TOPIC, "/topics")["name"]
            if name in self.state.topics:
                self.warn(
                    f"two live topics are named {name!r}: kept {self.state.topics[name].id}, "
                    f"left out {item.get('id')}"
                )
                continue
            self.state.topics[name] = topic_from(item)
            names[item["id"]] = name
        self.topic_names.set_result(names)

    async def read_segments(self) -> list[Segment]:
        kept: list[Segment] = []
        for item in await self.client.list_segments():
            name = answers.check_listed(item, answers.SEGMENT, "/segments")["name"]
            if name in self.state.segments:
                self.warn(
                    f"two live segments are named {name!r}: kept {self.state.segments[name].id}, "
                    f"left out {item.get('id')}"
                )
                continue
            seg = segment_from(item)
            self.state.segments[name] = seg
            kept.append(seg)
        return kept

    async def read_members(
        self, segments_task: asyncio.Task[list[Segment]]
    ) -> dict[str, set[tuple[str | None, str]]]:
        """Segment name -> (contact id, normalised email) of its members."""
        segments = await segments_task

        async def one(seg: Segment) -> tuple[str, set[tuple[str | None, str]]]:
            members: set[tuple[str | None, str]] = set()
            path = f"/segments/{_ref(seg.id or '')}/contacts"
            async for item in self.client.paginate(path):
                answers.check_listed(item, answers.MEMBER, path)
                members.add((item["id"], normalize_email(item["email"])))
            self.report(len(members), len(members), f"members of segment {seg.name!r}")
            return seg.name, members

        results = await asyncio.gather(*(one(s) for s in segments))
        return dict(results)

    async def read_contacts(self, tg: asyncio.TaskGroup) -> None:
        contacts = self.state.contacts
        async for item in self.client.paginate("/contacts"):
            email = answers.check_listed(item, answers.CONTACT, "/contacts")["email"]
            key = normalize_email(email)
            if key in contacts:
                if item.get("id") != contacts[key].id:
                    self.state.email_collisions.setdefault(key, [contacts[key].email]).append(email)
                    self.warn(
                        f"two live contacts have the email {key!r}: kept {contacts[key].id}, "
                        f"left out {item.get('id')}"
                    )
                continue
            contact = contact_from(item)
            contacts[key] = contact
            if self.details is not None and (key in self.property_emails or key in self.topic_emails):
                assert self.properties_read is not None and self.topic_names is not None
                if not self.properties_read.done() or not self.topic_names.done():
                    await asyncio.shield(self.properties_read)
                    await asyncio.shield(self.topic_names)
                if self.details.decide(key, contact, self.state):
                    self.read_details(tg, key, contact)
            else:
                self.read_details(tg, key, contact)
            if len(contacts) % 100 == 0:
                self.report(len(contacts), None, "contacts listed")
        self.report(len(contacts), len(contacts), "contacts listed")
        if self.details is not None:
            for key in self.details.more(self.state):
                if key in contacts:
                    self.read_details(tg, key, contacts[key])

    def read_details(self, tg: asyncio.TaskGroup, key: str, contact: Contact) -> None:
        if key in self.property_emails:
            self.detail_total += 1
            tg.create_task(self.read_properties_of(contact))
        if key in self.topic_emails:
            self.detail_total += 1
            tg.create_task(self.read_topics_of(contact))

    def detail_finished(self) -> None:
        self.detail_done += 1
        if self.detail_done % 50 == 0 or self.detail_done == self.detail_total:
            self.report(self.detail_done, self.detail_total, "contacts read in detail")

    async def read_properties_of(self, contact: Contact) -> None:
        ref = contact.id or contact.email
        body = answers.check_contact(await self.client.get_contact(ref), f"/contacts/{_ref(ref)}")
        contact.properties = plain_properties(body.get("properties"))
        self.detail_finished()

    async def read_topics_of(self, contact: Contact) -> None:
        assert self.topic_names is not None
        ref = contact.id or contact.email
        items = await self.client.list_contact_topics(ref)
        names = await asyncio.shield(self.topic_names)
        topics: dict[str, str] = {}
        for item in items:
            answers.check_listed(item, answers.CONTACT_TOPIC, f"/contacts/{_ref(ref)}/topics")
            name = names.get(item.get("id", ""))
            if name is None:
                # A topic left out as a duplicate name, or created after the topic list.
                continue
            if item.get("subscription"):
                topics[name] = item["subscription"]
        contact.topics = topics
        self.detail_finished()

    def apply_members(self, members: dict[str, set[tuple[str | None, str]]]) -> None:
        by_id = {c.id: c for c in self.state.contacts.values() if c.id}
        for name, found in members.items():
            for cid, key in found:
                contact = by_id.get(cid) if cid else self.state.contacts.get(key)
                if contact is not None:  # else: created between the two reads, or left out
                    contact.segments.add(name)


async def read_live(
    client: Reads,
    *,
    property_emails: Collection[str] = (),
    topic_emails: Collection[str] = (),
    progress: Progress | None = None,
    warnings: list[str] | None = None,
    details: DetailPolicy | None = None,
) -> State:
    """The team's live state (see the module docstring for what is read and how).

    ``progress(done, total, what)`` is called along the way: ``"contacts listed"``
    (every 100 contacts, total None until the end), ``"members of segment 'X'"``,
    ``"contacts read in detail"`` (per-contact reads, every 50, total = those scheduled
    so far) and ``"done"``; warnings come as ``(0, 0, "warning: ...")``.

    Raises ``ResendAPIError`` (the first failure; the other reads are cancelled), not an
    exception group.
    """
    reader = _Reader(client, property_emails, topic_emails, progress, warnings, details)
    try:
        return await reader.run()
    except BaseExceptionGroup as group:
        leaves = _leaves(group)
        first = next((e for e in leaves if isinstance(e, ResendAPIError)), leaves[0])
        raise first from None


def _leaves(group: BaseExceptionGroup) -> list[BaseException]:
    out: list[BaseException] = []
    for e in group.exceptions:
        out.extend(_leaves(e) if isinstance(e, BaseExceptionGroup) else [e])
    return out
