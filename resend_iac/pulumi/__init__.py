"""Pulumi dynamic resources over the same client and engine as the CLI.

    from resend_iac.pulumi import Contact, ContactList, ContactProperty, Segment, Topic

The providers read ``RESEND_API_KEY``/``RESEND_API_URL`` when they run; the key is never
stored in the Pulumi state. See docs/pulumi.md.
"""

from resend_iac.pulumi.providers import (
    ContactListProvider,
    ContactPropertyProvider,
    ContactProvider,
    SegmentProvider,
    TopicProvider,
)
from resend_iac.pulumi.resources import Contact, ContactList, ContactProperty, Segment, Topic

__all__ = [
    "Contact", "ContactList", "ContactProperty", "Segment", "Topic",
    "ContactListProvider", "ContactPropertyProvider", "ContactProvider", "SegmentProvider",
    "TopicProvider",
]
