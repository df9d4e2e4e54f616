"""Saved plans: ``plan --out PLAN`` writes one, ``apply --plan PLAN`` reads it.

The file is the plan's JSON (``Plan.to_dict``), written to a temporary file in the same
directory and renamed into place, so a crash never leaves half a plan behind.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

from resend_iac.engine.plan import Plan


class PlanFileError(Exception):
    pass


def write_atomic(path: str | Path, text: str) -> None:
    path = Path(path)
    directory = path.parent if str(path.parent) else Path(".")
    directory.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=directory)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise


def save_plan(plan: Plan, path: str | Path) -> None:
    write_atomic(path, json.dumps(plan.to_dict(), indent=2, sort_keys=False) + "\n")


def load_plan(path: str | Path) -> Plan:
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as e:
        raise PlanFileError(f"{path}: cannot read the plan file: {e.strerror or e}") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as e:
        raise PlanFileError(
            f"{path}:{e.lineno}:{e.colno}: not a plan file (invalid JSON: {e.msg}); "
            "write one with `resend-iac plan ... --out PLAN`"
        ) from None
    if not isinstance(data, dict) or "changes" not in data:
        raise PlanFileError(f"{path}: not a plan file (no 'changes'); write one with `resend-iac plan ... --out PLAN`")
    try:
        return Plan.from_dict(data)
    except (ValueError, KeyError, TypeError) as e:
        raise PlanFileError(f"{path}: {e}") from None
