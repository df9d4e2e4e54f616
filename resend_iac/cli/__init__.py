"""The command line: thin. Parses arguments, calls the package, prints.

Each command lives in its own module and registers itself on ``main``.
"""

from __future__ import annotations

import click

from resend_iac import __version__


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="resend-iac")
def main() -> None:
    """Contacts as code for Resend: declare contacts, properties, segments and topics
    in YAML/CSV, plan the changes against a team, apply them."""
    from resend_iac.secrets import install_log_filter

    install_log_filter()  # a key never reaches a log line either


# Command modules register themselves on import (order = order in --help).
from resend_iac.cli import (
    apply_cmd,  # noqa: E402,F401
    emulator_cmd,  # noqa: E402,F401
    export_cmd,  # noqa: E402,F401
    plan_cmd,  # noqa: E402,F401
    validate_cmd,  # noqa: E402,F401
)
