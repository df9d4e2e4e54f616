"""The schema of each kind: every field declared once, with what the rest of the code needs.

Modelled on Terraform's plugin framework (an attribute is Required/Optional/Computed,
``RequiresReplace``, ``Sensitive``) and octoDNS's record types (a type owns its data,
its validation and its changes). Everything that handles a field reads it from here: the
diff (which fields compare, how, which force a replacement), apply's request bodies and
CSV import columns, both fingerprint rows, the plan file's checks, export, the reader's
item -> model converters, CSV column targets, the Pulumi providers' inputs and the
redaction of plans.

A *kind* (contact, property, segment, topic) has scalar ``fields`` in a fixed order (the
order of plan fields, fingerprint rows and exported keys) and, for contacts, *relations*
(custom property values, segment memberships, topic subscriptions) that are kept apart:
they are read, written and diffed through their own endpoints.

Adding a managed contact field = one ``Field`` in ``CONTACT``'s tuple (and the emulator
accepting it); the model's ``Contact`` gets the attribute from here (``extend_contact``
is the hook a test uses to add a synthetic one).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from resend_iac.model import PROPERTY_KEY_MAX, TOPIC_DESCRIPTION_MAX, TOPIC_NAME_MAX, UNSET

JSON_TYPES = {str: "string", bool: "boolean", int: "integer", float: "number"}


def _equal(a: Any, b: Any) -> bool:
    return bool(a == b)


@dataclass(frozen=True)
class Field:
    """One scalar field of a kind.

    - ``name``: the attribute of the model object, the key in files, plans and Pulumi inputs.
    - ``api``: the key in API requests and responses.
    - ``types``: the Python types a value may have (``bool`` is never a number).
    - ``nullable``: ``None`` is a value (it clears the field).
    - ``listed``: the list endpoint carries it (else only a detail read does).
    - ``mutable``: the API can change it in place; ``False`` = RequiresReplace (delete,
      create). A key that is mutable is renamed in place where objects are held by id
      (Pulumi); the diff, which keys objects by it, sees a rename as another object.
    - ``personal``: a person's data: masked in redacted plans.
    - ``empty_is_null``: ``""`` and ``None`` are the same value (Resend returns null).
    - ``default``: what a new object has when the field is not given (the API's default);
      also what the reader fills in when an item omits it (or gives null).
    - ``key``: the field that names the object (a contact's email, a property's key...).
    - ``api_field``: ``False`` for a desired-only setting (a segment's ``membership``,
      a contact's ``protect``): never sent, never read, not in the fingerprint.
    - ``required``: always present in the model (never UNSET): written to plans even when
      the file leaves it to its default.
    - ``owned_by_contact``: consent; the files may only move it toward less email
      (``less_email`` is that value); anything else needs ``--allow-resubscribe``.
    - ``compare``: equality of two values (after ``empty_is_null``), default ``==``.
    - ``max_length``: Resend's limit on a string value.
    """

    name: str
    types: tuple[type, ...]
    api: str = ""
    nullable: bool = False
    listed: bool = True
    mutable: bool = True
    personal: bool = False
    empty_is_null: bool = False
    default: Any = None
    key: bool = False
    api_field: bool = True
    required: bool = False
    owned_by_contact: bool = False
    less_email: Any = None
    compare: Callable[[Any, Any], bool] = _equal
    max_length: int | None = None
    choices: tuple[str, ...] | None = None
    description: str = ""

    def __post_init__(self) -> None:
        if not self.api:
            object.__setattr__(self, "api", self.name)

    def norm(self, value: Any) -> Any:
        """The value as compared: UNSET -> None, and ``""`` -> None where empty is null."""
        if value is UNSET:
            return None
        if self.empty_is_null and value == "":
            return None
        return value

    def same(self, a: Any, b: Any) -> bool:
        """``a`` and ``b`` are the same value of this field (UNSET counts as None)."""
        a, b = self.norm(a), self.norm(b)
        return a is b or self.compare(a, b)

    def resubscribes(self, before: Any, after: Any) -> bool:
        """Moving from ``before`` to ``after`` gives the contact more email than they chose
        (only for consent fields: ``owned_by_contact``)."""
        return self.owned_by_contact and before == self.less_email and after != self.less_email

    def from_api(self, item: dict[str, Any]) -> Any:
        """The field's value in an API item (the default when missing or null)."""
        value = item.get(self.api)
        if value is None or (self.empty_is_null and value == "" and self.default is not None):
            return self.default
        if bool in self.types and len(self.types) == 1:
            return bool(value)
        return value

    def type_ok(self, value: Any) -> bool:
        """``value`` has one of the field's types (``None`` when nullable; a bool is not a number)."""
        if value is None:
            return self.nullable
        if type(value) is bool:
            return bool in self.types
        return isinstance(value, self.types) and (not self.choices or value in self.choices)

    def json_schema(self) -> dict[str, Any]:
        """This field as a JSON Schema fragment (used by the test that checks the shipped schemas)."""
        names = sorted({JSON_TYPES[t] for t in self.types})
        if names == ["integer", "number"]:
            names = ["number"]
        if self.nullable:
            names.append("null")
        return {"type": names[0] if len(names) == 1 else names}


@dataclass(frozen=True)
class Relation:
    """A contact's relation to objects of another kind, read and written through their own
    endpoints: ``properties`` (key -> value), ``segments`` (names), ``topics`` (name ->
    subscription). ``listed``: the contact list carries it; ``personal``: its values are a
    person's data (redacted); ``owned_by_contact``: consent (an opt-out stays an opt-out)."""

    name: str
    target: str  # the kind of the related objects
    shape: str  # "map" (name -> value) or "set" (names)
    listed: bool = False
    personal: bool = False
    owned_by_contact: bool = False
    less_email: Any = None


@dataclass(frozen=True)
class Kind:
    """A kind of object: its fields in order, which one is the key, its relations, and
    what a replacement costs (the plan's warning)."""

    name: Literal["property", "segment", "topic", "contact"]
    plural: str  # the State's map of this kind
    fields: tuple[Field, ...]
    relations: tuple[Relation, ...] = ()
    normalised_key: bool = False  # the map key is a normalised form of the key field (contacts)
    replace_note: str = ""  # what Resend drops when an object of this kind is replaced

    @property
    def key(self) -> Field:
        return next(f for f in self.fields if f.key)

    def field(self, name: str) -> Field:
        return next(f for f in self.fields if f.name == name)

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(f.name for f in self.fields)

    @property
    def api_fields(self) -> tuple[Field, ...]:
        """Fields that exist in the API (sent, read, fingerprinted)."""
        return tuple(f for f in self.fields if f.api_field)

    @property
    def values(self) -> tuple[Field, ...]:
        """API fields other than the key."""
        return tuple(f for f in self.fields if f.api_field and not f.key)

    def pulumi_immutable(self) -> tuple[str, ...]:
        """The API fields (key included) a change of which replaces the object."""
        return tuple(f.name for f in self.api_fields if not f.mutable)

    def pulumi_mutable(self) -> tuple[str, ...]:
        """The API fields (key included) an update changes in place."""
        return tuple(f.name for f in self.api_fields if f.mutable)

    @property
    def immutable(self) -> tuple[Field, ...]:
        return tuple(f for f in self.fields if f.api_field and not f.key and not f.mutable)

    @property
    def mutable(self) -> tuple[Field, ...]:
        return tuple(f for f in self.fields if f.api_field and not f.key and f.mutable)

    @property
    def settings(self) -> tuple[Field, ...]:
        """Desired-only settings (not in the API)."""
        return tuple(f for f in self.fields if not f.api_field)

    @property
    def fingerprint_fields(self) -> tuple[Field, ...]:
        """The fields of a fingerprint row after the map key (the key field itself only where
        the map key is its normalised form)."""
        return tuple(f for f in self.fields if f.api_field and (self.normalised_key or not f.key))

    def plan_fields(self, obj: Any) -> dict[str, Any]:
        """An object's fields as a plan shows them: the key and required fields always,
        the others when managed (not UNSET); desired-only settings never."""
        out: dict[str, Any] = {}
        for f in self.fields:
            if not f.api_field:
                continue
            value = getattr(obj, f.name)
            if f.key or f.required or value is not UNSET:
                out[f.name] = value
        return out

    def payload(self, fields: dict[str, Any]) -> dict[str, Any]:
        """Plan fields -> the body of a create request (API names; consent fields only
        toward less email: a create never subscribes anyone the API would not)."""
        out: dict[str, Any] = {}
        for f in self.api_fields:
            if f.name not in fields:
                continue
            value = fields[f.name]
            if f.owned_by_contact and value != f.less_email:
                continue
            out[f.api] = value
        return out

    def update_payload(self, fields: dict[str, Any]) -> dict[str, Any]:
        """Changed plan fields -> the body of an update request (API names)."""
        return {f.api: fields[f.name] for f in self.mutable if f.name in fields}

    def from_api(self, item: dict[str, Any], **extra: Any) -> dict[str, Any]:
        """An API item -> the keyword arguments of the model class (every API field)."""
        out = {f.name: f.from_api(item) for f in self.api_fields}
        out[self.key.name] = item[self.key.api]
        out.update(extra)
        return out


SUBSCRIPTIONS = ("opt_in", "opt_out")

PROPERTY = Kind(
    "property",
    "properties",
    (
        Field("key", (str,), key=True, mutable=False, max_length=PROPERTY_KEY_MAX),
        Field("type", (str,), mutable=False, required=True, default="string", choices=("string", "number")),
        Field("fallback_value", (str, int, float), nullable=True),
    ),
    replace_note="Resend drops its values on every contact; values the files declare are written again, "
    "all others are lost.",
)

SEGMENT = Kind(
    "segment",
    "segments",
    (
        Field("name", (str,), key=True),  # renamed in place (PATCH /segments/{id})
        Field(
            "membership",
            (str,),
            api_field=False,
            default="authoritative",
            choices=("authoritative", "additive"),
        ),
        Field("renamed_from", (str,), api_field=False, description="the live name to rename in place"),
    ),
)

TOPIC = Kind(
    "topic",
    "topics",
    (
        Field("name", (str,), key=True, max_length=TOPIC_NAME_MAX),  # renamed in place (PATCH)
        Field(
            "default_subscription",
            (str,),
            mutable=False,
            required=True,
            default="opt_in",
            choices=SUBSCRIPTIONS,
        ),
        Field("description", (str,), nullable=True, max_length=TOPIC_DESCRIPTION_MAX),
        Field("visibility", (str,), default="private", empty_is_null=True, choices=("public", "private")),
        Field(
            "renamed_from",
            (str,),
            api_field=False,
            max_length=TOPIC_NAME_MAX,
            description="the live name to rename in place",
        ),
    ),
    replace_note="Resend drops every contact's subscription to it; subscriptions the files declare are set again.",
)

CONTACT = Kind(
    "contact",
    "contacts",
    (
        Field("email", (str,), key=True, mutable=False, personal=True, max_length=254),
        Field("first_name", (str,), nullable=True, personal=True, empty_is_null=True),
        Field("last_name", (str,), nullable=True, personal=True, empty_is_null=True),
        Field("unsubscribed", (bool,), default=False, owned_by_contact=True, less_email=True),
        Field("protect", (bool,), api_field=False, default=None),
    ),
    relations=(
        Relation("properties", "property", "map", personal=True),
        Relation("segments", "segment", "set", listed=False),
        Relation("topics", "topic", "map", owned_by_contact=True, less_email="opt_out"),
    ),
    normalised_key=True,
)

KINDS = {k.name: k for k in (PROPERTY, SEGMENT, TOPIC, CONTACT)}
