"""Pulumi dynamic providers: thin over the shared client, config checks and engine. One object
each here (property, segment, topic, contact); a whole declared directory in ``contact_list.py``;
what they share in ``common.py``.

Each provider is a module-level class constructible with no arguments and holding no state,
so ``pulumi.dynamic.Resource`` pickles it (with dill) by reference: a few bytes naming the
class, never an API key. Each method builds its client when it is called, from
``RESEND_API_KEY``/``RESEND_API_URL`` in the environment of ``pulumi up``.

Inputs reach a provider as the engine sends them: numbers as floats, ``None`` values
dropped, and during a preview (check and diff) a ``pulumi.output.Unknown`` for a value that
depends on a resource not created yet.

Field semantics (the same as a declared contact in YAML, as far as Pulumi allows): a field
the program declares is managed; one it never declares is left as it is live. A field that
was declared and is then removed is cleared (names, property values, segment memberships);
topic subscriptions are kept (a subscription cannot be unset). ``unsubscribed`` is never
turned back from true to false: like ``resend-iac apply``, resubscribing people is left out.
"""

from __future__ import annotations

from typing import Any

from pulumi.dynamic import (
    CheckFailure,
    CheckResult,
    CreateResult,
    DiffResult,
    ReadResult,
    ResourceProvider,
    UpdateResult,
)

from resend_iac.client import NotFoundError
from resend_iac.client.http import _ref  # a path segment, escaped
from resend_iac.client.reader import contact_from, plain_properties, property_from, segment_from, topic_from
from resend_iac.engine.apply import contact_payload, property_payload, topic_payload
from resend_iac.engine.consent import opts_back_in
from resend_iac.model import normalize_email
from resend_iac.model.schema import CONTACT, PROPERTY, SEGMENT, TOPIC
from resend_iac.pulumi.common import (  # noqa: F401 - PROVIDER_KEY and the helpers, as before
    _CLIENTS,
    _CLIENTS_LOCK,
    PROVIDER_KEY,
    _changed,
    _client,
    _client_kwargs,
    _diff,
    _failures,
    _num,
    _plain,
    _require_key,
    _unknown,
)

__all__ = [
    "ContactPropertyProvider",
    "SegmentProvider",
    "TopicProvider",
    "ContactProvider",
]


class _ObjectProvider(ResourceProvider):
    """What the one-object providers share: read (refresh and import by id: gone live means
    gone from the stack) and delete (already gone is done). A subclass names its ``FIELDS``,
    its client ``DELETE`` method and builds its outputs in ``_outs(client, id_, props)``."""

    FIELDS: tuple[str, ...] = ()
    DELETE = ""

    @staticmethod
    def _outs(client: Any, id_: str, props: dict[str, Any]) -> dict[str, Any]:
        raise NotImplementedError

    def read(self, id_: str, props: dict[str, Any]) -> ReadResult:
        with _client() as client:
            try:
                outs = self._outs(client, id_, props)
            except NotFoundError:
                return ReadResult(None, {})
        return ReadResult(id_, outs, _plain(outs, self.FIELDS))

    def delete(self, id_: str, props: dict[str, Any]) -> None:
        with _client() as client:
            try:
                getattr(client, self.DELETE)(id_)
            except NotFoundError:
                pass  # already gone


# -- contact properties ------------------------------------------------------------------


class ContactPropertyProvider(_ObjectProvider):
    """A custom contact property. ``key`` and ``type`` are immutable in Resend: changing
    either replaces the property (deleting first: keys are unique)."""

    resource_type_name = "dynamic/resend:ContactProperty"
    FIELDS = tuple(f.name for f in PROPERTY.api_fields)
    DELETE = "delete_property"

    def check(self, olds: dict[str, Any], news: dict[str, Any]) -> CheckResult:
        from resend_iac.config.checks import property_issues

        obj = {k: _num(v) for k, v in _plain(news, self.FIELDS).items() if not _unknown(v)}
        if _unknown(news.get("key")):
            obj["key"] = "pending"  # known at create time; check the rest now
        return CheckResult(news, _failures(property_issues(obj)))

    def diff(self, id_: str, olds: dict[str, Any], news: dict[str, Any]) -> DiffResult:
        return _diff(olds, news, self.FIELDS, PROPERTY.pulumi_immutable(), delete_before_replace=True)

    def create(self, props: dict[str, Any]) -> CreateResult:
        payload = property_payload({k: _num(v) for k, v in _plain(props, self.FIELDS).items()})
        with _client() as client:
            id_ = client.create_property(payload)
            return CreateResult(id_, self._outs(client, id_))

    def update(self, id_: str, olds: dict[str, Any], news: dict[str, Any]) -> UpdateResult:
        with _client() as client:
            client.update_property(
                id_, PROPERTY.update_payload({f: _num(news.get(f)) for f in PROPERTY.pulumi_mutable()})
            )
            return UpdateResult(self._outs(client, id_))

    @staticmethod
    def _outs(client: Any, id_: str, props: dict[str, Any] | None = None) -> dict[str, Any]:
        live = property_from(client.request("GET", f"/contact-properties/{_ref(id_)}"))
        return {
            **{f: _num(getattr(live, f)) for f in ContactPropertyProvider.FIELDS},
            "created_at": live.created_at,
        }


# -- segments ----------------------------------------------------------------------------


class SegmentProvider(_ObjectProvider):
    """A segment. Its ``name`` can change in place (``PATCH /segments/{id}`` renames)."""

    resource_type_name = "dynamic/resend:Segment"
    FIELDS = tuple(f.name for f in SEGMENT.api_fields)
    DELETE = "delete_segment"

    def check(self, olds: dict[str, Any], news: dict[str, Any]) -> CheckResult:
        from resend_iac.config.checks import segment_issues

        if _unknown(news.get("name")):
            return CheckResult(news, [])
        return CheckResult(news, _failures(segment_issues(_plain(news, self.FIELDS))))

    def diff(self, id_: str, olds: dict[str, Any], news: dict[str, Any]) -> DiffResult:
        return _diff(olds, news, self.FIELDS, SEGMENT.pulumi_immutable(), delete_before_replace=False)

    def create(self, props: dict[str, Any]) -> CreateResult:
        with _client() as client:
            id_ = client.create_segment(props["name"])
            return CreateResult(id_, self._outs(client, id_))

    def update(self, id_: str, olds: dict[str, Any], news: dict[str, Any]) -> UpdateResult:
        with _client() as client:
            client.rename_segment(id_, news["name"])
            return UpdateResult(self._outs(client, id_))

    @staticmethod
    def _outs(client: Any, id_: str, props: dict[str, Any] | None = None) -> dict[str, Any]:
        live = segment_from(client.request("GET", f"/segments/{_ref(id_)}"))
        return {"name": live.name, "created_at": live.created_at}


# -- topics ------------------------------------------------------------------------------


class TopicProvider(_ObjectProvider):
    """A topic. ``default_subscription`` is immutable in Resend: changing it replaces the
    topic (deleting first, so that the name stays free). ``description`` and ``visibility``
    are managed when declared; left as they are live when not."""

    resource_type_name = "dynamic/resend:Topic"
    FIELDS = tuple(f.name for f in TOPIC.api_fields)
    DELETE = "delete_topic"

    def check(self, olds: dict[str, Any], news: dict[str, Any]) -> CheckResult:
        from resend_iac.config.checks import topic_issues

        obj = {k: v for k, v in _plain(news, self.FIELDS).items() if not _unknown(v)}
        if _unknown(news.get("name")):
            obj["name"] = "pending"
        return CheckResult(news, _failures(topic_issues(obj)))

    def diff(self, id_: str, olds: dict[str, Any], news: dict[str, Any]) -> DiffResult:
        # Required fields compare with their defaults; the others only when declared.
        required = {f.name: f.default for f in TOPIC.api_fields if f.required}
        olds = {**olds, **{k: olds.get(k, d) for k, d in required.items()}}
        news = {**news, **{k: news.get(k, d) for k, d in required.items()}}
        olds = {k: v for k, v in olds.items() if k in news or k == TOPIC.key.name or k in required}
        return _diff(olds, news, self.FIELDS, TOPIC.pulumi_immutable(), delete_before_replace=True)

    def create(self, props: dict[str, Any]) -> CreateResult:
        payload = topic_payload(_plain(props, self.FIELDS))
        for f in TOPIC.api_fields:
            if f.required:
                payload.setdefault(f.api, f.default)
        with _client() as client:
            id_ = client.create_topic(payload)
            return CreateResult(id_, self._outs(client, id_, props))

    def update(self, id_: str, olds: dict[str, Any], news: dict[str, Any]) -> UpdateResult:
        payload = {
            TOPIC.field(k).api: news.get(k)
            for k in TOPIC.pulumi_mutable()
            if news.get(k) is not None and news.get(k) != olds.get(k)
        }
        with _client() as client:
            if payload:
                client.update_topic(id_, payload)
            return UpdateResult(self._outs(client, id_, news))

    @staticmethod
    def _outs(client: Any, id_: str, props: dict[str, Any]) -> dict[str, Any]:
        item = client.request("GET", f"/topics/{_ref(id_)}")
        live = topic_from(item)
        always = [f for f in TOPIC.api_fields if f.key or f.required]
        outs = {**{f.name: getattr(live, f.name) for f in always}, "created_at": live.created_at}
        # The other fields only when declared (or on import, where nothing is), and given live.
        importing = not any(k in props for k in TopicProvider.FIELDS)
        for f in TOPIC.api_fields:
            if f not in always and (f.name in props or importing) and item.get(f.api) is not None:
                outs[f.name] = getattr(live, f.name)
        return outs


# -- contacts ----------------------------------------------------------------------------

_CONTACT_FIELDS = tuple(f.name for f in CONTACT.api_fields)  # the contact schema's API fields


def _field_payload(olds: dict[str, Any], news: dict[str, Any]) -> dict[str, Any]:
    """The contact fields that change, with their new values: None clears a field declared
    before; a consent field only moves toward less email (never back: no resubscribing)."""
    out: dict[str, Any] = {}
    for f in CONTACT.values:
        old, new = olds.get(f.name), news.get(f.name)
        if f.owned_by_contact:
            if new == f.less_email and old != f.less_email:
                out[f.name] = new
        elif old != new:
            out[f.name] = new
    return out


class ContactProvider(_ObjectProvider):
    """One contact, keyed by its id. ``email`` is immutable here: a different address is
    a different person, so changing it replaces the contact (a change of case or of
    surrounding spaces is not a change). ``segment_ids`` lists the segments it belongs to
    (its other memberships are removed); ``topics`` maps topic ids to ``opt_in``/``opt_out``.
    """

    resource_type_name = "dynamic/resend:Contact"
    FIELDS = (*_CONTACT_FIELDS, "properties", "segment_ids", "topics")
    DELETE = "delete_contact"

    # check ---------------------------------------------------------------------------
    def check(self, olds: dict[str, Any], news: dict[str, Any]) -> CheckResult:
        from resend_iac.config.checks import contact_issues

        obj = {k: v for k, v in _plain(news, (*_CONTACT_FIELDS, "topics")).items() if not _unknown(v)}
        props = news.get("properties")
        if props is not None and not _unknown(props):
            obj["properties"] = {k: _num(v) for k, v in props.items()} if isinstance(props, dict) else props
        if _unknown(news.get("email")):
            obj["email"] = "pending@example.com"  # known at create time; check the rest now
        # ``topics`` has the shape of a declared contact's (ids instead of names here).
        failures = _failures(contact_issues(obj))
        seg = news.get("segment_ids")
        if seg is not None and not _unknown(seg):
            if not isinstance(seg, list) or not all(isinstance(s, str) and s for s in seg):
                failures.append(CheckFailure("segment_ids", "segment_ids must be a list of segment ids"))
        return CheckResult(news, failures)

    # diff ----------------------------------------------------------------------------
    def diff(self, id_: str, olds: dict[str, Any], news: dict[str, Any]) -> DiffResult:
        if _unknown(news.get("email")):
            return DiffResult(changes=True, replaces=["email"])
        changed = self._changed(olds, news)
        replaces = ["email"] if "email" in changed else []
        if any(_unknown(news.get(f)) for f in self.FIELDS):
            return DiffResult(changes=True, replaces=replaces)
        return DiffResult(changes=bool(changed), replaces=replaces)

    @staticmethod
    def _changed(olds: dict[str, Any], news: dict[str, Any]) -> list[str]:
        changed = []
        if normalize_email(str(olds.get("email", ""))) != normalize_email(str(news.get("email", ""))):
            changed.append("email")
        changed += list(_field_payload(olds, news))
        if ContactProvider._property_payload(olds, news):
            changed.append("properties")
        add, remove = ContactProvider._segment_changes(olds, news)
        if add or remove:
            changed.append("segment_ids")
        if ContactProvider._topic_changes(olds, news):
            changed.append("topics")
        return changed

    @staticmethod
    def _property_payload(olds: dict[str, Any], news: dict[str, Any]) -> dict[str, Any]:
        old = {k: _num(v) for k, v in (olds.get("properties") or {}).items() if v is not None}
        new = {k: _num(v) for k, v in (news.get("properties") or {}).items() if v is not None}
        payload: dict[str, Any] = {k: v for k, v in new.items() if old.get(k) != v}
        payload.update({k: None for k in old if k not in new})  # removed: cleared
        return payload

    @staticmethod
    def _segment_changes(olds: dict[str, Any], news: dict[str, Any]) -> tuple[list[str], list[str]]:
        old, new = set(olds.get("segment_ids") or ()), set(news.get("segment_ids") or ())
        return sorted(new - old), sorted(old - new)

    @staticmethod
    def _topic_changes(olds: dict[str, Any], news: dict[str, Any]) -> list[dict[str, str]]:
        """The subscriptions to write. After ``pulumi refresh`` ``olds`` are the live outputs: an
        opt-out there (the contact's own) is never turned back into the input's opt-in (#23;
        the valve is engine/consent.py's)."""
        old, new = olds.get("topics") or {}, news.get("topics") or {}
        return [
            {"id": t, "subscription": s}
            for t, s in sorted(new.items())
            if old.get(t) != s and not opts_back_in(old.get(t), s)
        ]

    # create --------------------------------------------------------------------------
    def create(self, props: dict[str, Any]) -> CreateResult:
        declared = {
            **_plain(props, _CONTACT_FIELDS),
            "properties": {k: _num(v) for k, v in (props.get("properties") or {}).items()},
            "segments": props.get("segment_ids"),  # ids already, as are the topics' keys
            "topics": props.get("topics"),
        }
        payload = contact_payload(declared, str, str)
        with _client() as client:
            # Never POST an email that may exist: the API upserts, resetting every omitted
            # field (unsubscribed included). An existing contact is adopted by import instead.
            try:
                found = client.get_contact(payload["email"])
            except NotFoundError:
                found = None
            if found is not None:
                raise RuntimeError(
                    f"the contact {payload['email']} already exists (id {found.get('id')}); creating "
                    "it would reset its fields, consent included. Adopt it instead: "
                    f"pulumi import <type> <name> {found.get('id')}"
                )
            id_ = client.create_contact(payload)
            return CreateResult(id_, self._outs(client, id_, props))

    # update --------------------------------------------------------------------------
    def update(self, id_: str, olds: dict[str, Any], news: dict[str, Any]) -> UpdateResult:
        payload = {CONTACT.field(f).api: v for f, v in _field_payload(olds, news).items()}
        props = self._property_payload(olds, news)
        if props:
            payload["properties"] = props
        add, remove = self._segment_changes(olds, news)
        topics = self._topic_changes(olds, news)
        with _client() as client:
            if payload:
                client.update_contact(id_, payload)
            for segment_id in add:
                client.add_contact_segment(id_, segment_id)
            for segment_id in remove:
                try:
                    client.remove_contact_segment(id_, segment_id)
                except NotFoundError:
                    pass  # the segment is gone already
            if topics:  # conditional on a read right before: an opt-out since stays
                live = {t.get("id"): t.get("subscription") for t in client.list_contact_topics(id_)}
                topics = [t for t in topics if not opts_back_in(live.get(t["id"]), t["subscription"])]
            if topics:
                client.update_contact_topics(id_, topics)
            return UpdateResult(self._outs(client, id_, news))

    # live outputs --------------------------------------------------------------------
    @staticmethod
    def _outs(client: Any, id_: str, props: dict[str, Any]) -> dict[str, Any]:
        """The live contact, shaped like the inputs: the fields ``props`` declares (all of
        them when it declares none: an import), plus ``created_at``."""
        item = client.get_contact(id_)
        live = contact_from(item)
        importing = not any(k in props for k in ContactProvider.FIELDS if k != "email")
        outs: dict[str, Any] = {"email": live.email, "created_at": live.created_at}
        if props.get("email") and normalize_email(props["email"]) == normalize_email(live.email):
            outs["email"] = props["email"]  # the spelling the program uses
        for f in CONTACT.values:
            if (f.name in props or importing) and getattr(live, f.name) is not None:
                outs[f.name] = getattr(live, f.name)
        values = {k: _num(v) for k, v in plain_properties(item.get("properties")).items()}
        declared = props.get("properties") or {}
        if importing:
            outs["properties"] = {k: v for k, v in values.items() if v is not None}
        elif "properties" in props:
            outs["properties"] = {k: values[k] for k in declared if values.get(k) is not None}
        if "segment_ids" in props or importing:
            segments = [s["id"] for s in client.paginate(f"/contacts/{_ref(id_)}/segments")]
            declared_order = [s for s in props.get("segment_ids") or () if s in segments]
            outs["segment_ids"] = declared_order + sorted(set(segments) - set(declared_order))
        if "topics" in props or importing:
            live_topics = {t["id"]: t["subscription"] for t in client.list_contact_topics(id_)}
            if importing:
                outs["topics"] = live_topics
            else:
                outs["topics"] = {t: live_topics[t] for t in props["topics"] if t in live_topics}
        return outs


# -- a whole declared file or directory: resend_iac/pulumi/contact_list.py ----------------

_MOVED = frozenset(
    (
        "ContactListProvider",
        "EMPTY_PLAN_DIGEST",
        "NO_CHANGES",
        "_files",
        "_plan",
        "_plan_and_apply",
        "_plan_sync",
        "_refresh",
        "_refusal",
        "digest",
        "plan_digest",
    )
)


def __getattr__(name: str) -> Any:
    """``ContactListProvider`` and its helpers live in ``contact_list.py``; a stack that
    stored the provider under this module's name still finds it here."""
    if name in _MOVED:
        from resend_iac.pulumi import contact_list

        return getattr(contact_list, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
