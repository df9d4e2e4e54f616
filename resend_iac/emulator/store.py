"""The emulator's SQLite state: ``Store`` is the core (db.py) plus one data class per resource.

Adding a resource with tables: a ``StoreCore`` subclass in its module (``SCHEMA``,
``TABLES``, its methods), added to ``Store``'s bases below; its routes go in app.py's
``RESOURCES``. The names other modules imported from here before the split are re-exported.
"""

from __future__ import annotations

from resend_iac.emulator.broadcasts import BroadcastsData
from resend_iac.emulator.contacts import CONTACT_COLS, CONTACT_JSON, ContactsData
from resend_iac.emulator.db import StoreCore
from resend_iac.emulator.errors import (
    CONTACT_FIELDS,
    EMAIL_RE,
    IMPORT_PROPERTY_TYPES,
    PROPERTY_KEY_RE,
    PROPERTY_TYPES,
    SUBSCRIPTIONS,
    UNKNOWNS,
    UUID_RE,
    VISIBILITIES,
    APIError,
    check_fallback,
    check_value,
    invalid,
    is_uuid,
    missing,
    new_id,
    not_found,
    now_text,
    valid_email,
)
from resend_iac.emulator.imports import ImportsData
from resend_iac.emulator.properties import PropertiesData
from resend_iac.emulator.segments import SegmentsData
from resend_iac.emulator.topics import TopicsData


class Store(ContactsData, PropertiesData, SegmentsData, TopicsData, ImportsData, BroadcastsData):
    """All state (see ``StoreCore`` for locking, transactions, ``list_lag`` and profiles)."""


__all__ = [
    "CONTACT_COLS",
    "CONTACT_FIELDS",
    "CONTACT_JSON",
    "EMAIL_RE",
    "IMPORT_PROPERTY_TYPES",
    "PROPERTY_KEY_RE",
    "PROPERTY_TYPES",
    "SUBSCRIPTIONS",
    "UNKNOWNS",
    "UUID_RE",
    "VISIBILITIES",
    "APIError",
    "Store",
    "StoreCore",
    "check_fallback",
    "check_value",
    "invalid",
    "is_uuid",
    "missing",
    "new_id",
    "not_found",
    "now_text",
    "valid_email",
]
