"""The Pulumi ``ContactList`` provider: a whole declared file or directory (the YAML/CSV
format of ``resend-iac``), planned, checked and applied through the engine's one entry point
(``engine.run.converge``). The one-object providers are in ``providers.py``."""

from __future__ import annotations

import hashlib
import json
import os
import uuid
from pathlib import Path
from typing import Any

from pulumi.dynamic import (
    CheckFailure,
    CheckResult,
    CreateResult,
    DiffResult,
    ReadResult,
    ResourceProvider,
    UpdateResult,
)

from resend_iac.engine.plan import NO_CHANGES  # the summary of an empty plan
from resend_iac.pulumi.common import PROVIDER_KEY, _changed, _client, _unknown

__all__ = ["ContactListProvider", "EMPTY_PLAN_DIGEST", "NO_CHANGES", "digest", "plan_digest"]


def _files(path: Path) -> list[Path]:
    if path.is_dir():
        return sorted(
            p
            for p in path.rglob("*")
            if p.is_file() and not any(part.startswith(".") for part in p.relative_to(path).parts)
        )
    return [path]


def digest(path: str | Path) -> str:
    """sha256 over the names and bytes of the declared files: Pulumi sees a change when
    a file changes."""
    root = Path(path)
    h = hashlib.sha256()
    for f in _files(root):
        h.update(str(f.relative_to(root) if root.is_dir() else f.name).encode() + b"\0")
        h.update(f.read_bytes() + b"\0")
    return h.hexdigest()


def _refresh() -> Any:
    """The refresh policy of ``resend-iac plan``: the cache at ``$RESEND_IAC_CACHE`` (default
    ``.resend-iac/cache.sqlite`` in the Pulumi project directory; ``none`` turns it off),
    ``$RESEND_IAC_REFRESH`` (auto|full) and ``$RESEND_IAC_REFRESH_BUDGET``."""
    from resend_iac.engine.cache import RefreshCache, cache_path
    from resend_iac.engine.live import DEFAULT_BUDGET, Refresh

    env = os.environ
    path = cache_path(None, env.get("RESEND_IAC_CACHE", "").lower() in ("none", "off"))
    cache = RefreshCache.open(path, env.get("RESEND_API_KEY", "")) if path else None
    return Refresh(
        env.get("RESEND_IAC_REFRESH") or "auto",
        int(env.get("RESEND_IAC_REFRESH_BUDGET") or DEFAULT_BUDGET),
        cache,
    )


async def _plan(client: Any, desired: Any, refresh: Any = None) -> tuple[Any, Any]:
    """(plan, live) for ``desired``, through the engine's one entry point (engine/live.py),
    as ``resend-iac plan`` does."""
    from resend_iac.engine.live import plan_live

    return await plan_live(client, desired, refresh=refresh or _refresh())


def _plan_sync(desired: Any) -> Any:
    with _client() as client:  # the engine's async calls, on the shared client's loop
        plan, _live = client.run(_plan(client.async_client, desired))
    return plan


def _refusal(plan: Any, exc: Any, path: str) -> str:
    return (
        f"{plan.summary()} Refusing to apply: {'; '.join(exc.reasons)}. Review the plan "
        f"(`resend-iac plan {path}`), then raise the fraction in the policy of {path} "
        "to apply it anyway."
    )


def plan_digest(plan: Any) -> str:
    """Identifies the plan's changes: update applies only the plan that check showed."""
    changes = json.dumps([c.to_dict() for c in plan.changes], sort_keys=True, default=str)
    return hashlib.sha256(changes.encode()).hexdigest()[:16]


EMPTY_PLAN_DIGEST = hashlib.sha256(b"[]").hexdigest()[:16]  # plan_digest of a plan with no changes


async def _plan_and_apply(
    client: Any,
    desired: Any,
    path: str,
    expected_summary: str | None,
    expected_digest: str | None,
) -> tuple[Any, Any]:
    from resend_iac.engine import SafetyError
    from resend_iac.engine.run import converge

    def expect(plan: Any) -> None:
        if expected_digest is not None and plan_digest(plan) != expected_digest:
            raise RuntimeError(
                "the live team changed since this update was planned "
                f"(planned: {expected_summary!r}; now: {plan.summary()!r}); "
                "nothing was applied: run `pulumi up` again to review the new plan"
            )

    try:
        outcome = await converge(client, desired, refresh=_refresh(), expect=expect)
    except SafetyError as exc:
        raise RuntimeError(_refusal(exc.plan, exc, path)) from None
    return outcome.plan, outcome.result


class ContactListProvider(ResourceProvider):
    """A whole declared file or directory (the YAML/CSV format of ``resend-iac``), managed
    through the diff engine in one resource.

    - check validates the files (the same messages as ``resend-iac validate``), reads the
      live team and adds inputs: ``digest`` (of the files), ``plan_summary`` (the engine's
      plan, e.g. "Plan: 3 to create, 0 to update, 0 to replace, 0 to delete.") and
      ``plan_digest`` (which identifies the plan's changes).
      The preview shows ``plan_summary`` changing, and fails when the plan trips the
      safety thresholds of the files' policy.
    - diff reports a change when the path or files changed or the plan is not empty.
    - create/update apply the plan through ``engine.apply`` (after ``check_safety``), and
      refuse if the live team changed between the plan and the update.
    - read (refresh) recomputes ``plan_summary``: drift shows up as a pending plan.
    - delete leaves the team's contacts alone: deleting people is never implicit.
    """

    resource_type_name = "dynamic/resend:ContactList"
    FIELDS = ("path", "digest", "plan_summary", "plan_digest")

    def check(self, olds: dict[str, Any], news: dict[str, Any]) -> CheckResult:
        from resend_iac.config import validate
        from resend_iac.engine import SafetyError, check_safety

        path = news.get("path")
        if _unknown(path):
            return CheckResult(news, [])
        if not isinstance(path, str) or not path:
            return CheckResult(news, [CheckFailure("path", "path must name a declared file or directory")])
        p = Path(path)
        if not p.exists():
            return CheckResult(
                news,
                [
                    CheckFailure(
                        "path",
                        f"{path}: no such file or directory (relative paths are read from the "
                        f"Pulumi project directory, {os.getcwd()})",
                    )
                ],
            )
        state, diagnostics = validate([p])
        if state is None or diagnostics:
            return CheckResult(
                news,
                [CheckFailure("path", str(d)) for d in diagnostics]
                or [CheckFailure("path", f"{path}: invalid")],
            )
        inputs = {**news, "digest": digest(p)}
        try:
            plan = _plan_sync(state)
        except Exception as exc:  # noqa: BLE001 - reported as a check failure
            return CheckResult(
                inputs, [CheckFailure("path", f"could not plan {path} against the live team: {exc}")]
            )
        try:
            check_safety(plan, state.policy)
        except SafetyError as exc:  # the thresholds are on
            return CheckResult(inputs, [CheckFailure("path", _refusal(plan, exc, path))])
        inputs["plan_summary"] = plan.summary()
        inputs["plan_digest"] = plan_digest(plan)
        return CheckResult(inputs, [])

    def diff(self, id_: str, olds: dict[str, Any], news: dict[str, Any]) -> DiffResult:
        changed = _changed(olds, news, ("path", "digest"))
        # structured, not the summary's wording: the plan's changes identify a pending plan
        pending = news.get("plan_digest") not in (None, EMPTY_PLAN_DIGEST)
        return DiffResult(changes=bool(changed) or pending or _unknown(news.get("path")), replaces=[])

    def create(self, props: dict[str, Any]) -> CreateResult:
        outs = self._apply(props)
        return CreateResult(f"contactlist-{uuid.uuid4()}", outs)

    def update(self, id_: str, olds: dict[str, Any], news: dict[str, Any]) -> UpdateResult:
        return UpdateResult(self._apply(news))

    def read(self, id_: str, props: dict[str, Any]) -> ReadResult:
        from resend_iac.config import load

        path = props.get("path")
        if not path or not Path(path).exists():
            return ReadResult(id_, props)
        plan = _plan_sync(load([path]))
        outs = {k: v for k, v in props.items() if k != PROVIDER_KEY}
        outs["plan_summary"] = plan.summary()
        return ReadResult(id_, outs)

    def delete(self, id_: str, props: dict[str, Any]) -> None:
        """Nothing live is deleted: the declared contacts stay in the team."""

    def _apply(self, props: dict[str, Any]) -> dict[str, Any]:
        from resend_iac.config import load

        path = props["path"]
        desired = load([path])
        with _client() as client:
            plan, _result = client.run(
                _plan_and_apply(
                    client.async_client,
                    desired,
                    path,
                    props.get("plan_summary"),
                    props.get("plan_digest"),
                )
            )
        return {
            "path": path,
            "digest": digest(path),
            "plan_summary": NO_CHANGES,  # what is pending now: the plan was applied
            "applied": plan.summary(),
        }
