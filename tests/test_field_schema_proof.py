"""The proof that a contact field has one home: a copy of the package gets one new line in
resend_iac/model/schema.py (a synthetic managed field, ``title``: a personal, nullable
string) and nothing else, and the whole cycle works for it against the emulator (behind a
small ASGI shim that stores the field, as a Resend that had it would): validate, plan,
apply, a saved plan verified and applied, export, an empty re-plan, redaction, the Pulumi
provider's inputs and checks.

If any module still hard-codes the contact's fields, one of the steps below fails: the
field is not read, not compared, not sent, not exported or not accepted.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DECLARATION = 'Field("unsubscribed", (bool,), default=False, owned_by_contact=True, less_email=True),'
SYNTHETIC = 'Field("title", (str,), nullable=True, personal=True, empty_is_null=True),'

DRIVER = textwrap.dedent(
    '''
    import asyncio, json, sys
    from pathlib import Path

    import resend_iac
    assert resend_iac.__file__.startswith(sys.argv[1]), resend_iac.__file__  # the copy

    from resend_iac import config
    from resend_iac.emulator import create_app
    from resend_iac.engine import load_plan, save_plan
    from resend_iac.engine.live import plan_live, read_everything
    from resend_iac.engine.run import converge
    from resend_iac.local import client_for_app
    from resend_iac.render import render_json, render_text

    work = Path(sys.argv[2])


    class Shim:
        """Stores ``title`` beside the emulator: strips it from contact writes, adds it to
        contact reads (one GET, the list)."""

        def __init__(self, app):
            self.app, self.by_email, self.email_of = app, {}, {}

        async def __call__(self, scope, receive, send):
            if scope["type"] != "http" or not scope["path"].startswith("/contacts"):
                return await self.app(scope, receive, send)
            body, more = b"", True
            while more:
                message = await receive()
                body += message.get("body", b"")
                more = message.get("more_body", False)
            title, given = None, False
            if scope["method"] in ("POST", "PATCH") and body[:1] == b"{":
                data = json.loads(body)
                if "title" in data:
                    title, given = data.pop("title"), True
                    body = json.dumps(data).encode()
            ref = scope["path"].split("/")[2] if scope["path"].count("/") == 2 else None
            sent = []

            async def inner_receive():
                return {"type": "http.request", "body": body, "more_body": False}

            async def inner_send(message):
                sent.append(message)

            scope = {**scope, "headers": [(k, v) for k, v in scope["headers"] if k != b"content-length"]
                     + [(b"content-length", str(len(body)).encode())]}
            await self.app(scope, inner_receive, inner_send)
            start, chunks = sent[0], b"".join(m.get("body", b"") for m in sent[1:])
            answer = json.loads(chunks) if chunks[:1] == b"{" else None
            if answer is not None and start["status"] < 300:
                if given:
                    email = data.get("email") or self.email_of.get(ref, ref)
                    self.by_email[email.lower()] = title
                    if answer.get("id"):
                        self.email_of[answer["id"]] = email
                items = answer.get("data") if isinstance(answer.get("data"), list) else [answer]
                for item in items:
                    if isinstance(item, dict) and item.get("email"):
                        self.email_of[item.get("id")] = item["email"]
                        item["title"] = self.by_email.get(item["email"].lower())
                chunks = json.dumps(answer).encode()
            headers = [(k, v) for k, v in start["headers"] if k != b"content-length"]
            await send({**start, "headers": headers + [(b"content-length", str(len(chunks)).encode())]})
            await send({"type": "http.response.body", "body": chunks})


    app = Shim(create_app(":memory:", rate_limit=0))
    team = work / "team"
    team.mkdir()
    (team / "team.yaml").write_text(
        "version: 1\\n"
        "contacts:\\n"
        "  - {email: ada@example.com, first_name: Ada, title: Countess}\\n"
        "  - {email: grace@example.com, title: Rear Admiral}\\n"
        "  - {email: alan@example.com}\\n"
    )

    # validate: the field is accepted, a value of the wrong type is refused where it is
    state, problems = config.validate([team])
    assert state is not None and not problems, problems
    assert state.contacts["ada@example.com"].title == "Countess"
    bad = work / "bad"
    bad.mkdir()
    (bad / "team.yaml").write_text("version: 1\\ncontacts:\\n  - {email: a@example.com, title: 5}\\n")
    _, problems = config.validate([bad])
    assert problems and "title" in str(problems[0]) and "team.yaml:3" in str(problems[0]), problems


    async def cycle():
        async with client_for_app(app) as client:
            # plan, then apply it as a saved plan (verified against the team before the writes)
            plan, _ = await plan_live(client, state)
            creates = {c.key: c.after for c in plan.changes if c.kind == "contact"}
            assert creates["ada@example.com"]["title"] == "Countess", creates
            assert "title" not in creates["alan@example.com"]  # not declared: not managed
            text = render_text(plan)
            assert 'title: null -> "Countess"' in text, text
            redacted = render_text(plan, redact=True) + render_json(plan, redact=True)
            assert "Countess" not in redacted and "title" in redacted  # personal: masked
            save_plan(plan, work / "plan.json")
            outcome = await converge(client, saved=load_plan(work / "plan.json"))
            assert outcome.result.created == 3, outcome.result

            # the team now has it: re-plan is empty, export writes it
            again, _ = await plan_live(client, state)
            assert again.empty, render_text(again)
            exported = config.dump_yaml(await read_everything(client))
            assert "title: Countess" in exported and "title: Rear Admiral" in exported, exported
            reloaded = work / "export"
            reloaded.mkdir()
            (reloaded / "team.yaml").write_text(exported)
            assert config.load([reloaded]).contacts["grace@example.com"].title == "Rear Admiral"

            # a change and a clearing: one update each, applied, then nothing left
            changed = config.load([team])
            changed.contacts["ada@example.com"].title = "Lady"
            changed.contacts["grace@example.com"].title = None
            plan, _ = await plan_live(client, changed)
            updates = {c.key: (c.before, c.after) for c in plan.changes}
            assert updates == {
                "ada@example.com": ({"title": "Countess"}, {"title": "Lady"}),
                "grace@example.com": ({"title": "Rear Admiral"}, {"title": None}),
            }, updates
            await converge(client, changed)
            assert (await plan_live(client, changed))[0].empty


    asyncio.run(cycle())

    # Pulumi: the Contact provider takes it as an input, checks it, sends it when it changes
    from resend_iac.pulumi import providers
    from resend_iac.pulumi.resources import Contact as ContactResource
    import inspect

    assert "title" in providers.ContactProvider.FIELDS
    ok = providers.ContactProvider().check({}, {"email": "a@example.com", "title": "Dr"})
    assert not ok.failures, ok.failures
    refused = providers.ContactProvider().check({}, {"email": "a@example.com", "title": 5})
    assert [f.property for f in refused.failures] == ["title"], refused.failures
    assert providers._field_payload({"title": "Dr"}, {"title": "Prof"}) == {"title": "Prof"}
    assert "fields" in inspect.signature(ContactResource.__init__).parameters
    print("OK")
    '''
)


def test_a_field_declared_in_the_schema_alone_works_end_to_end(tmp_path: Path) -> None:
    pkg = tmp_path / "pkg"
    shutil.copytree(ROOT / "resend_iac", pkg / "resend_iac", ignore=shutil.ignore_patterns("__pycache__"))
    schema = pkg / "resend_iac" / "model" / "schema.py"
    text = schema.read_text("utf-8")
    assert text.count(DECLARATION) == 1
    schema.write_text(text.replace(DECLARATION, DECLARATION + "\n        " + SYNTHETIC), "utf-8")
    driver = tmp_path / "driver.py"
    driver.write_text(DRIVER, "utf-8")
    work = tmp_path / "work"
    work.mkdir()
    env = {**os.environ, "PYTHONPATH": str(pkg)}
    r = subprocess.run(
        [sys.executable, str(driver), str(pkg), str(work)],
        capture_output=True,
        text=True,
        env=env,
        timeout=240,
        cwd=tmp_path,
    )
    assert r.returncode == 0 and r.stdout.strip().endswith("OK"), r.stdout[-2000:] + r.stderr[-4000:]


def test_the_proof_fails_when_a_module_forgets_the_field(tmp_path: Path) -> None:
    """The same cycle with the field declared but the reader's converter not taking it from
    the schema (a second home for the contact's fields) fails: the test can fail."""
    pkg = tmp_path / "pkg"
    shutil.copytree(ROOT / "resend_iac", pkg / "resend_iac", ignore=shutil.ignore_patterns("__pycache__"))
    schema = pkg / "resend_iac" / "model" / "schema.py"
    schema.write_text(
        schema.read_text("utf-8").replace(DECLARATION, DECLARATION + "\n        " + SYNTHETIC), "utf-8"
    )
    reader = pkg / "resend_iac" / "client" / "reader.py"
    text = reader.read_text("utf-8")
    old = "            item, properties=UNSET,"
    assert text.count(old) == 1
    reader.write_text(text.replace(old, '            {**item, "title": None}, properties=UNSET,'), "utf-8")
    driver = tmp_path / "driver.py"
    driver.write_text(DRIVER, "utf-8")
    work = tmp_path / "work"
    work.mkdir()
    r = subprocess.run(
        [sys.executable, str(driver), str(pkg), str(work)],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(pkg)},
        timeout=240,
        cwd=tmp_path,
    )
    assert r.returncode != 0 and "AssertionError" in r.stderr, r.stdout[-1000:] + r.stderr[-2000:]
