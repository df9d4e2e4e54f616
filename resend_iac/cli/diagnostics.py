"""How `validate` prints its diagnostics: ``text`` (file:line:column: message, the default),
``json`` (one document on stdout) or ``github`` (workflow-command annotations, so each error
shows on the pull request's diff).

GitHub's workflow commands: ``::error file=F,line=L,col=C::message``, read from stdout. Escaping
(actions/toolkit ``command.ts``): in the message ``%``, ``\\r`` and ``\\n``; in property values
also ``:`` and ``,``.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from typing import Any

import click

from resend_iac.secrets import mask_secrets as _mask

FORMATS = ("text", "json", "github")


def escape_data(text: str) -> str:
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def escape_property(text: str) -> str:
    return escape_data(text).replace(":", "%3A").replace(",", "%2C")


def github_annotation(diagnostic: Any, level: str = "error") -> str:
    """One ``::error ...::message`` line for a ``config.Diagnostic``."""
    loc = diagnostic.location
    props = [f"file={escape_property(_mask(str(loc.file)))}"]
    if loc.line:
        props.append(f"line={int(loc.line)}")
        if loc.column:
            props.append(f"col={int(loc.column)}")
    return f"::{level} {','.join(props)}::{escape_data(_mask(str(diagnostic.message)))}"


def diagnostic_dict(diagnostic: Any) -> dict[str, Any]:
    loc = diagnostic.location
    return {
        "file": _mask(str(loc.file)),
        "line": int(loc.line or 0) or None,
        "column": int(loc.column or 0) or None,
        "message": _mask(str(diagnostic.message)),
        "text": _mask(str(diagnostic)),
    }


def json_report(diagnostics: Sequence[Any], files: Sequence[str], summary: str | None) -> str:
    return json.dumps(
        {
            "valid": not diagnostics,
            "errors": [diagnostic_dict(d) for d in diagnostics],
            "files": [_mask(str(f)) for f in files],
            "summary": summary,
        },
        indent=2,
    )


def emit(fmt: str, result: Any) -> None:
    """`validate --format json|github`: print the result (a ``config.LoadResult``) and exit:
    1 if there are errors, 0 otherwise."""
    n = len(result.diagnostics)
    summary = None if result.state is None else result.state.summary()
    if fmt == "json":
        click.echo(json_report(result.diagnostics, result.files, summary))
    else:
        for diagnostic in result.diagnostics:
            click.echo(github_annotation(diagnostic))
        if n:
            click.echo(
                f"{n} error{'s' if n != 1 else ''} found; nothing was checked against Resend.", err=True
            )
        else:
            click.echo(f"OK: {summary} in {len(result.files)} file{'s' if len(result.files) != 1 else ''}")
    sys.exit(1 if result.state is None else 0)
