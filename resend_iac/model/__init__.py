"""One typed model of a Resend team's state, used for desired and live state alike.

The config loader fills a ``State`` from YAML/CSV (desired); the live reader fills one
from the API (live). The engine diffs two of them. Nothing here does I/O.

Unmanaged vs cleared: a contact field that a file leaves out is ``UNSET`` (the engine
leaves it as it is live); an explicit ``None`` means "clear it". Live state uses
``UNSET`` for what was not read (e.g. custom property values, which list calls omit).
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass, field, make_dataclass
from typing import TYPE_CHECKING, Any, Literal

PropertyType = Literal["string", "number"]
PROPERTY_TYPES: tuple[str, ...] = ("string", "number")
Subscription = Literal["opt_in", "opt_out"]
SUBSCRIPTIONS: tuple[str, ...] = ("opt_in", "opt_out")
Membership = Literal["authoritative", "additive"]
MEMBERSHIPS: tuple[str, ...] = ("authoritative", "additive")
Visibility = Literal["public", "private"]
VISIBILITIES: tuple[str, ...] = ("public", "private")

PROPERTY_KEY_MAX = 50
TOPIC_NAME_MAX = 50
TOPIC_DESCRIPTION_MAX = 200


class _Unset:
    """Sentinel: the field is not managed (desired) or was not read (live)."""

    _instance: "_Unset | None" = None

    def __new__(cls) -> "_Unset":
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "UNSET"

    def __bool__(self) -> bool:
        return False

    def __reduce__(self) -> str:  # pickles (and dill-pickles) to the singleton
        return "UNSET"


UNSET: Any = _Unset()

PropertyValue = str | int | float | None


def is_set(value: Any) -> bool:
    return value is not UNSET


def normalize_email(email: str) -> str:
    """The key rule for contacts: surrounding white space trimmed, compared case-insensitively
    and NFC-normalised.

    The first spelling a file gives is kept on the Contact for creation; this key is only
    used to match desired and live contacts. An email already in key form is returned as
    is (the same object: a million keys then cost no extra strings).
    """
    key = email.strip().lower()
    if not key.isascii():  # one spelling of each character: composed (NFC) é == e + U+0301
        key = unicodedata.normalize("NFC", key)
    return email if key == email else key


class FrozenDict(dict[Any, Any]):
    """A dict that refuses changes: one mapping shared by many contacts (the rows of one
    CSV entry share their topic subscriptions, as they share one frozenset of segments),
    so a change through one contact cannot reach the others. Reads, ``==``, ``dict(...)``,
    JSON, copy and pickle work as for a dict; to change a contact's map, assign a new one."""

    __slots__ = ()

    def _refuse(self, *args: Any, **kwargs: Any) -> Any:
        raise TypeError("this mapping is shared by several contacts; assign a new dict instead")

    __setitem__ = __delitem__ = __ior__ = clear = pop = popitem = setdefault = update = _refuse

    def __reduce__(self) -> tuple[Any, ...]:
        return (FrozenDict, (dict(self),))


@dataclass(frozen=True, slots=True, init=False)
class Location:
    """Where a declared object came from, for error messages: ``file:line:column``
    (a CSV row is ``file:row``, column 0)."""

    file: str
    line: int
    column: int = 0

    def __init__(self, file: str, line: int, column: int = 0) -> None:
        # One per CSV row: the slots' own setters, not the frozen dataclass's three
        # object.__setattr__ calls (half the cost).
        _set_file(self, file)
        _set_line(self, line)
        _set_column(self, column)

    def __str__(self) -> str:
        if self.column:
            return f"{self.file}:{self.line}:{self.column}"
        return f"{self.file}:{self.line}"


_set_file, _set_line, _set_column = Location.file.__set__, Location.line.__set__, Location.column.__set__  # type: ignore[misc, attr-defined]


@dataclass(slots=True)
class Property:
    """A custom contact property. ``key`` and ``type`` are immutable in Resend."""

    key: str
    type: PropertyType
    fallback_value: Any = UNSET  # str | int | float | None | UNSET
    id: str | None = None  # live only
    created_at: str | None = None  # live only
    location: Location | None = field(default=None, compare=False)


@dataclass(slots=True)
class Segment:
    name: str
    # How the engine treats members nobody declares: "authoritative" removes them,
    # "additive" leaves them. A desired-state setting; live segments keep the default.
    membership: Membership = "authoritative"
    renamed_from: str | None = None  # desired only: the live name to rename in place
    id: str | None = None
    created_at: str | None = None
    location: Location | None = field(default=None, compare=False)


@dataclass(slots=True)
class Topic:
    name: str
    default_subscription: Subscription = "opt_in"  # immutable in Resend
    description: Any = UNSET  # str | None | UNSET
    visibility: Any = UNSET  # "public" | "private" | UNSET
    renamed_from: str | None = None  # desired only: the live name to rename in place
    id: str | None = None
    created_at: str | None = None
    location: Location | None = field(default=None, compare=False)


# The schema of each kind (model/schema.py) needs UNSET, defined above.
from resend_iac.model.schema import CONTACT  # noqa: E402


def _contact_key(self: Any) -> str:
    return normalize_email(self.email)


def _contact_class() -> type:
    """``Contact``, built from the contact schema: the key (``email``, as first spelled; the
    map key is ``normalize_email(email)``), every API field (UNSET: not managed / not read),
    the relations (custom property values by key, segment names, topic subscriptions by
    topic name: desired = only the managed ones; live = everything, or UNSET when not read),
    the desired-only settings (``protect``: never delete this contact), then the live-only
    ``id`` and ``created_at`` and the ``location`` it was declared at."""
    fields: list[Any] = [(CONTACT.key.name, str)]
    for f in CONTACT.values:
        fields.append((f.name, Any, field(default=f.default if f.required else UNSET)))
    for r in CONTACT.relations:
        fields.append((r.name, Any, field(default_factory=set if r.shape == "set" else dict)))
    for f in CONTACT.settings:
        fields.append((f.name, Any, field(default=f.default)))
    fields += [
        ("id", "str | None", field(default=None)),
        ("created_at", "str | None", field(default=None)),
        ("location", "Location | None", field(default=None, compare=False)),
    ]
    cls = make_dataclass("Contact", fields, slots=True, namespace={"key": property(_contact_key)})
    cls.__module__ = __name__  # pickles as resend_iac.model.Contact
    return cls


if TYPE_CHECKING:  # what a type checker sees; the class itself is built from the schema

    class Contact:
        """The key, relations, settings and live-only attributes a type checker knows; the
        schema's other fields (first_name, ...) come through ``__getattr__`` as ``Any``."""

        email: str
        properties: Any  # dict[str, PropertyValue] | UNSET
        segments: Any  # set[str] (a frozenset when shared by a CSV entry's rows)
        topics: Any  # dict[str, Subscription] | UNSET
        protect: bool | None  # None: not said; False: said, forgets a protect (#23)
        id: str | None
        created_at: str | None
        location: Location | None

        def __init__(self, email: str, *args: Any, **fields: Any) -> None: ...

        def __getattr__(self, name: str) -> Any: ...  # fields declared in the schema only

        @property
        def key(self) -> str: ...

else:
    Contact = _contact_class()


@dataclass(slots=True)
class Policy:
    prune_contacts: bool = False
    prune_segments: bool = False
    prune_topics: bool = False
    prune_properties: bool = False
    max_delete_fraction: float = 0.3
    max_update_fraction: float = 0.3
    # The thresholds only apply to collections of at least this many live objects.
    threshold_min_objects: int = 10
    # Membership changes to a segment a broadcast is scheduled to within this many hours
    # warn with the counts (engine/broadcasts.py).
    broadcast_window_hours: float = 24.0


@dataclass(slots=True)
class State:
    """A team's state. Maps are keyed: properties by key, segments and topics by name,
    contacts by normalised email."""

    properties: dict[str, Property] = field(default_factory=dict)
    segments: dict[str, Segment] = field(default_factory=dict)
    topics: dict[str, Topic] = field(default_factory=dict)
    contacts: dict[str, Contact] = field(default_factory=dict)
    policy: Policy = field(default_factory=Policy)
    # Live only: normalised email -> the live spellings of contacts whose emails differ only
    # by case (where the API keys emails case-sensitively). The engine leaves them alone.
    email_collisions: dict[str, list[str]] = field(default_factory=dict)

    def add_contact(self, contact: Contact) -> None:
        self.contacts[contact.key] = contact

    def segment_members(self, name: str) -> set[str]:
        """Normalised emails of the contacts in segment ``name``."""
        return {k for k, c in self.contacts.items() if name in c.segments}

    def summary(self) -> str:
        return (
            f"{len(self.contacts)} contacts, {len(self.properties)} properties, "
            f"{len(self.segments)} segments, {len(self.topics)} topics"
        )
