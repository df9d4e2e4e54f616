"""``resend-iac emulator``: serve the local Resend API."""

from __future__ import annotations

import sqlite3

import click

from resend_iac.cli import main


@main.command("emulator")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to bind.")
@click.option("--port", default=8025, show_default=True, type=click.IntRange(0, 65535))
@click.option(
    "--db",
    "db_path",
    default=".resend-iac/emulator.db",
    show_default=True,
    help="SQLite file for the state (`:memory:` for a throwaway).",
)
@click.option(
    "--rate-limit",
    default=5.0,
    show_default=True,
    type=click.FloatRange(min=0),
    help="Requests per second per team; 0 turns limiting off.",
)
@click.option(
    "--api-key",
    "api_keys",
    multiple=True,
    help="Accepted API key (repeatable); without any, every Bearer key is accepted.",
)
@click.option(
    "--fail-rate",
    default=0.0,
    show_default=True,
    type=click.FloatRange(0, 1),
    help="Share of requests answered with a 500 or 503 (nothing changed).",
)
@click.option(
    "--latency-ms",
    default=0.0,
    show_default=True,
    type=click.FloatRange(min=0),
    help="Delay added to every answer.",
)
@click.option(
    "--unknowns",
    default="benign",
    show_default=True,
    type=click.Choice(["benign", "hostile"]),
    help="Where the real API's behaviour is unknown: the harmless or the harmful "
    "reading (see docs/emulator.md).",
)
@click.option(
    "--list-lag",
    default=0.0,
    show_default=True,
    type=click.FloatRange(min=0),
    help="Seconds during which contact lists leave out a contact just written.",
)
@click.option(
    "--seed",
    "seed_paths",
    multiple=True,
    type=click.Path(exists=True),
    help="Config file or directory to load into the emulator before serving (repeatable).",
)
@click.option(
    "--allow-host",
    "allow_hosts",
    multiple=True,
    metavar="NAME",
    help="Another name clients may reach the emulator by (the Host header; repeatable). "
    "The address served on, --host, localhost, 127.0.0.1 and ::1 are always accepted; any "
    "other Host is refused (DNS rebinding).",
)
def emulator(
    host: str,
    port: int,
    db_path: str,
    rate_limit: float,
    api_keys: tuple[str, ...],
    fail_rate: float,
    latency_ms: float,
    unknowns: str,
    list_lag: float,
    seed_paths: tuple[str, ...],
    allow_hosts: tuple[str, ...],
) -> None:
    """Run a faithful local Resend API (contacts, properties, segments, topics, imports)."""
    from resend_iac.emulator import create_app
    from resend_iac.emulator.server import serve

    try:
        app = create_app(
            db_path,
            rate_limit=rate_limit,
            api_keys=api_keys,
            fail_rate=fail_rate,
            latency_ms=latency_ms,
            unknowns=unknowns,
            list_lag=list_lag,
            allowed_hosts=(host, *allow_hosts),
        )
    except (OSError, sqlite3.Error) as e:
        raise click.ClickException(
            f"cannot open the emulator database {db_path}: {e}. Give a writable file with "
            "--db PATH (or --db :memory:)."
        ) from None
    if seed_paths:
        from resend_iac.cli.target import seed_app
        from resend_iac.config import ConfigError

        # Seed at full speed and without injected faults; then serve as configured.
        saved = app.rate_limit, app.fail_rate, app.latency
        app.rate_limit, app.fail_rate, app.latency = 0, 0.0, 0.0
        try:
            # The seeding client uses an accepted key (the first --api-key), not a made-up one.
            seed_app(app, list(seed_paths), api_key=api_keys[0] if api_keys else "re_local")
        except ConfigError as e:
            from resend_iac.secrets import mask_secrets

            lines = [str(d) for d in getattr(e, "diagnostics", [])] or [str(e)]
            raise click.ClickException(
                mask_secrets(
                    "\n".join(lines) + f"\n{len(lines)} error(s) in the seed files; the emulator "
                    "was not started."
                )
            ) from None
        finally:
            app.rate_limit, app.fail_rate, app.latency = saved
            app.reset_stats()
    click.echo(
        f"Resend emulator on http://{host}:{port} (db: {db_path}, rate limit: "
        f"{'off' if not rate_limit else f'{rate_limit:g}/s'}, unknowns: {unknowns}"
        f"{f', list lag: {list_lag:g} s' if list_lag else ''})",
        err=True,
    )
    click.echo(f"Web view: http://{host}:{port}/_emulator/ui", err=True)
    serve(host, port, app=app)
