"""The Pulumi dynamic resources: what a Pulumi program declares.

Each resource passes its inputs to its provider (``providers.py``); outputs not known
before creation (``created_at``, a ContactList's ``digest`` and ``plan_summary``) are
declared as ``None`` inputs so that they are attributes of the resource.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import pulumi
from pulumi import Input  # noqa: E402
from pulumi.dynamic import Resource

from resend_iac.model.schema import CONTACT
from resend_iac.pulumi.contact_list import ContactListProvider
from resend_iac.pulumi.providers import (
    ContactPropertyProvider,
    ContactProvider,
    SegmentProvider,
    TopicProvider,
)

__all__ = ["ContactProperty", "Segment", "Topic", "Contact", "ContactList"]


class ContactProperty(Resource, module="resend", name="ContactProperty"):
    """A custom contact property. Changing ``key`` or ``type`` replaces it."""

    key: pulumi.Output[str]
    type: pulumi.Output[str]
    fallback_value: pulumi.Output[Any]
    created_at: pulumi.Output[str]

    def __init__(
        self,
        resource_name: str,
        *,
        key: Input[str],
        type: Input[str],
        fallback_value: Input[Any] | None = None,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        props = {"key": key, "type": type, "fallback_value": fallback_value, "created_at": None}
        super().__init__(ContactPropertyProvider(), resource_name, props, opts)


class Segment(Resource, module="resend", name="Segment"):
    """A segment; ``name`` is the Resend segment name (renamed in place when it changes)."""

    name: pulumi.Output[str]
    created_at: pulumi.Output[str]

    def __init__(
        self,
        resource_name: str,
        *,
        name: Input[str],
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__(SegmentProvider(), resource_name, {"name": name, "created_at": None}, opts)


class Topic(Resource, module="resend", name="Topic"):
    """A topic. Changing ``default_subscription`` replaces it."""

    name: pulumi.Output[str]
    default_subscription: pulumi.Output[str]
    description: pulumi.Output[str | None]
    visibility: pulumi.Output[str | None]
    created_at: pulumi.Output[str]

    def __init__(
        self,
        resource_name: str,
        *,
        name: Input[str],
        default_subscription: Input[str] = "opt_in",
        description: Input[str] | None = None,
        visibility: Input[str] | None = None,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        props = {
            "name": name,
            "default_subscription": default_subscription,
            "description": description,
            "visibility": visibility,
            "created_at": None,
        }
        super().__init__(TopicProvider(), resource_name, props, opts)


class Contact(Resource, module="resend", name="Contact"):
    """One contact. Changing ``email`` replaces it. ``segment_ids`` lists the segments it
    belongs to; ``topics`` maps topic ids to ``"opt_in"``/``"opt_out"`` (use
    ``topic.id.apply(lambda id: {id: "opt_in"})`` to build it from Topic resources)."""

    email: pulumi.Output[str]
    first_name: pulumi.Output[str | None]
    last_name: pulumi.Output[str | None]
    unsubscribed: pulumi.Output[bool | None]
    properties: pulumi.Output[dict | None]
    segment_ids: pulumi.Output[list | None]
    topics: pulumi.Output[dict | None]
    created_at: pulumi.Output[str]

    def __init__(
        self,
        resource_name: str,
        *,
        email: Input[str],
        first_name: Input[str] | None = None,
        last_name: Input[str] | None = None,
        unsubscribed: Input[bool] | None = None,
        properties: Input[Mapping[str, Input[Any]]] | None = None,
        segment_ids: Input[Sequence[Input[str]]] | None = None,
        topics: Input[Mapping[str, Input[str]]] | None = None,
        opts: pulumi.ResourceOptions | None = None,
        **fields: Input[Any],
    ) -> None:
        # Every field of the contact schema is an input (the named ones above, and any other
        # the schema declares, by keyword).
        given = {"first_name": first_name, "last_name": last_name, "unsubscribed": unsubscribed, **fields}
        unknown = sorted(set(given) - {f.name for f in CONTACT.values})
        if unknown:
            raise TypeError(f"Contact() got unexpected keyword argument(s): {', '.join(unknown)}")
        props = {
            "email": email,
            **{f.name: given.get(f.name) for f in CONTACT.values},
            "properties": properties,
            "segment_ids": segment_ids,
            "topics": topics,
            "created_at": None,
        }
        super().__init__(ContactProvider(), resource_name, props, opts)


class ContactList(Resource, module="resend", name="ContactList"):
    """A whole declared file or directory (our YAML/CSV format), managed through the diff
    engine in one resource. ``plan_summary`` is the engine's pending plan (shown by the
    preview); ``applied`` the summary of the last plan applied. Deleting the resource
    leaves the team's contacts alone."""

    path: pulumi.Output[str]
    digest: pulumi.Output[str]
    plan_summary: pulumi.Output[str]
    applied: pulumi.Output[str]

    def __init__(
        self,
        resource_name: str,
        *,
        path: Input[str],
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        props = {"path": path, "digest": None, "plan_summary": None, "applied": None}
        super().__init__(ContactListProvider(), resource_name, props, opts)
