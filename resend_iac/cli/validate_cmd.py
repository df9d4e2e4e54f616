"""`resend-iac validate PATH...`: check files offline; errors to stderr, summary to stdout."""

from __future__ import annotations

import sys

import click

from resend_iac import config
from resend_iac.cli import main
from resend_iac.cli.common import ALLOW_OUTSIDE_HELP
from resend_iac.cli.diagnostics import FORMATS, emit
from resend_iac.secrets import mask_secrets


@main.command("validate")
@click.argument("paths", nargs=-1, required=True, type=click.Path())
@click.option(
    "--format",
    "fmt",
    type=click.Choice(FORMATS),
    default="text",
    show_default=True,
    help="text: file:line:column: message; json: one document on stdout; "
    "github: ::error annotations for a pull request's diff.",
)
@click.option("--allow-outside", "allow_outside", multiple=True, metavar="PATH", help=ALLOW_OUTSIDE_HELP)
def validate(paths: tuple[str, ...], fmt: str = "text", allow_outside: tuple[str, ...] = ()) -> None:
    """Check YAML files (or directories of them) and their CSV seed lists: syntax,
    structure and meaning, with no network access. Prints every problem as
    file:line:column: message and exits 1; exits 0 with a summary when valid."""
    result = config.read(paths, allow_outside=allow_outside)
    if fmt != "text":
        emit(fmt, result)
    if result.state is None:
        for diagnostic in result.diagnostics:
            click.echo(mask_secrets(str(diagnostic)), err=True)
        n = len(result.diagnostics)
        click.echo(f"{n} error{'s' if n != 1 else ''} found; nothing was checked against Resend.", err=True)
        sys.exit(1)
    n = len(result.files)
    click.echo(f"OK: {result.state.summary()} in {n} file{'s' if n != 1 else ''}")
