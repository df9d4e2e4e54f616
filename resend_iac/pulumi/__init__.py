"""Pulumi dynamic resources over the same client and engine as the CLI.

    from resend_iac.pulumi import Contact, ContactList, ContactProperty, Segment, Topic

The providers read ``RESEND_API_KEY``/``RESEND_API_URL`` when they run; the key is never
stored in the Pulumi state. See docs/pulumi.md.

Pulumi is an optional extra: ``pip install 'resend-iac[pulumi]'``. The CLI never imports this
package.
"""

try:
    import pulumi as _pulumi  # noqa: F401
except ImportError as exc:  # pragma: no cover - exercised in a venv without the extra
    raise ModuleNotFoundError(
        "resend_iac.pulumi needs the Pulumi SDK, which a plain install of resend-iac leaves out: "
        "install the extra with `pip install 'resend-iac[pulumi]'` (or add `pulumi>=3.100,<4`)",
        name="pulumi",
    ) from exc

from resend_iac.pulumi.contact_list import ContactListProvider
from resend_iac.pulumi.providers import (
    ContactPropertyProvider,
    ContactProvider,
    SegmentProvider,
    TopicProvider,
)
from resend_iac.pulumi.resources import Contact, ContactList, ContactProperty, Segment, Topic

__all__ = [
    "Contact",
    "ContactList",
    "ContactProperty",
    "Segment",
    "Topic",
    "ContactListProvider",
    "ContactPropertyProvider",
    "ContactProvider",
    "SegmentProvider",
    "TopicProvider",
]
