"""Declarative configuration: YAML files (+ CSV seed lists) -> the desired ``State``.

``load(paths)`` returns the state or raises ``ConfigError``; ``validate(paths)`` returns
``(state | None, diagnostics)``; ``dump_yaml(state)`` writes the format back. The
``check_*`` functions check one object (used by the Pulumi providers too).
See docs/format.md for the format.
"""

from resend_iac.config.checks import check_contact, check_property, check_segment, check_topic, schema
from resend_iac.config.dump import dump_yaml
from resend_iac.config.loader import ConfigError, Diagnostic, LoadResult, load, read, validate

__all__ = [
    "ConfigError",
    "Diagnostic",
    "LoadResult",
    "check_contact",
    "check_property",
    "check_segment",
    "check_topic",
    "dump_yaml",
    "load",
    "read",
    "schema",
    "validate",
]
