"""``resend-iac export``: the live team in the YAML format."""

from __future__ import annotations

import asyncio

import click

from resend_iac.cli import main
from resend_iac.cli.common import (
    Command,
    Exit,
    cache_options,
    echo,
    err,
    make_client,
    open_cache,
    target_options,
)
from resend_iac.engine.live import read_everything
from resend_iac.engine.planfile import write_atomic
from resend_iac.model import State


@main.command("export", cls=Command)
@click.option(
    "--out",
    "out",
    type=click.Path(dir_okay=False),
    default=None,
    help="Write to this file (default: standard output).",
)
@click.option(
    "--with-consent",
    is_flag=True,
    help="Also write each contact's consent state (unsubscribed, topic subscriptions).",
)
@click.option(
    "--authoritative-segments",
    is_flag=True,
    help="Write segments authoritative (the next apply removes members nobody declares).",
)
@cache_options
@target_options
def export_command(out, with_consent, authoritative_segments, cache_file, no_cache, local, api_key, api_url):
    """Write the live team (properties, segments, topics, contacts with their memberships and
    property values) in the YAML format, as a person would manage it: no nulls (omitted means
    unmanaged), no consent state unless --with-consent, segments additive unless
    --authoritative-segments; the file's header says what was left out. Planning the export
    against the same team shows no changes."""
    from resend_iac.config import dump_yaml
    from resend_iac.config.export import managed_view

    client = make_client(local, api_key, api_url, note=False)
    cache = open_cache(local, api_key, cache_file, no_cache)

    async def run() -> State:
        async with client:
            return await read_everything(client, cache, subscriptions=with_consent)

    state = asyncio.run(run())
    view, notes = managed_view(
        state, with_consent=with_consent, authoritative_segments=authoritative_segments
    )
    text = dump_yaml(view, notes)
    if out:
        try:
            write_atomic(out, text)
        except OSError as e:
            raise Exit(1, f"error: cannot write {out}: {e.strerror or e}") from None
        err(f"Exported {state.summary()} to {out}.")
    else:
        echo(text)
