"""examples/github-actions: the GitOps workflow's shell steps, run locally against a real
emulator server (no GitHub): a PR's comment body, the apply on merge, the nightly drift
check (a drift made through the official SDK), and the workflow file itself.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from resend_iac.render import EMAIL_RE, Redactor

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "github-actions"
SCRIPTS = EXAMPLE / "scripts"
WORKFLOW = EXAMPLE / "resend-iac.yml"
QUICKSTART = ROOT / "examples" / "quickstart"
BIN = Path(sys.executable).parent
SALT = "test-salt"  # RESEND_IAC_REDACT_SALT: lets the test compute the masks it expects
API_KEY = "re_test_gitops_0123456789"


def mask(value: str) -> str:
    r = Redactor(SALT)
    return r.email(value) if "@" in value else r.name(value)


# ------------------------------------------------------------------------------ helpers


class Repo:
    """A temporary git repository holding the declared files under resend/, where the
    scripts run as the workflow runs them (cwd = the checkout)."""

    def __init__(self, path: Path, env: dict[str, str]):
        self.path = path
        self.env = env
        self.out = path / ".resend-iac-ci"

    def git(self, *args: str) -> str:
        return subprocess.run(
            ["git", "-c", "user.name=CI", "-c", "user.email=ci@localhost", *args],
            cwd=self.path,
            check=True,
            capture_output=True,
            text=True,
        ).stdout

    def team(self) -> dict[str, Any]:
        return yaml.safe_load((self.path / "resend" / "team.yaml").read_text())

    def write_team(self, data: dict[str, Any], message: str) -> None:
        (self.path / "resend" / "team.yaml").write_text(yaml.safe_dump(data, sort_keys=False))
        self.git("commit", "-qam", message)

    def run(self, script: str, **extra_env: str) -> subprocess.CompletedProcess:
        env = {**self.env, **extra_env}
        output = self.out / "github_output"
        output.parent.mkdir(exist_ok=True)
        output.write_text("")
        env["GITHUB_OUTPUT"] = str(output)
        return subprocess.run(
            ["bash", str(SCRIPTS / script)],
            cwd=self.path,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )

    def outputs(self) -> dict[str, str]:
        lines = (self.out / "github_output").read_text().splitlines()
        return dict(line.split("=", 1) for line in lines if "=" in line)


def make_repo(tmp_path: Path, env: dict[str, str]) -> Repo:
    path = tmp_path / "repo"
    path.mkdir()
    shutil.copytree(QUICKSTART, path / "resend")
    repo = Repo(path, env)
    repo.git("init", "-q", "-b", "main")
    (path / ".gitignore").write_text(".resend-iac-ci/\n")
    repo.git("add", ".")
    repo.git("commit", "-qm", "Declare the team")
    return repo


def base_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RESEND_", "GITHUB_"))}
    env.update(
        PATH=f"{BIN}{os.pathsep}{env.get('PATH', '')}",
        RESEND_IAC_CONFIG="resend",
        RESEND_IAC_REDACT_SALT=SALT,
        NO_COLOR="1",
    )
    env.update(extra)
    return env


def contacts_of(team: dict[str, Any], email: str) -> dict[str, Any]:
    return next(c for c in team["contacts"] if c.get("email") == email)


def declared_emails(team: dict[str, Any]) -> set[str]:
    emails = set()
    for entry in team["contacts"]:
        if "email" in entry:
            emails.add(entry["email"])
        elif "emails" in entry:
            emails.update(e.strip() for e in re.split(r"[,\n]", entry["emails"]) if e.strip())
    return emails


def bootstrap(config: Path, url: str) -> None:
    """Apply the declared files to the server with the library (no CLI start-up cost)."""
    import asyncio
    import concurrent.futures

    from resend_iac.client import ResendClient, read_live
    from resend_iac.config import load
    from resend_iac.engine import apply, diff, read_scope

    desired = load([config])

    async def run() -> None:
        async with ResendClient(API_KEY, url) as client:
            property_emails, topic_emails = read_scope(desired)
            live = await read_live(client, property_emails=property_emails, topic_emails=topic_emails)
            await apply(diff(desired, live), client, live=live)

    # in a thread of its own: asyncio.run() in the main thread would leave it without a
    # current event loop, which later tests (Pulumi's mocks) rely on
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        pool.submit(asyncio.run, run()).result()


@pytest.fixture
def sdk(request):
    """The official SDK pointed at a server (a drift made 'by hand', outside resend-iac)."""
    import resend

    saved = resend.api_url, resend.api_key

    def point(url: str):
        resend.api_url, resend.api_key = url, API_KEY
        return resend

    yield point
    resend.api_url, resend.api_key = saved


# ------------------------------------------------------------------------------ the story


def test_pr_comment_merge_apply_and_nightly_drift(tmp_path, start_emulator, sdk):
    # rate limiting on (as the real API): the client adapts to the advertised rate
    server = start_emulator(db_path=":memory:", rate_limit=1000)
    resend = sdk(server.url)
    repo = make_repo(tmp_path, base_env(RESEND_API_URL=server.url, RESEND_API_KEY=API_KEY))
    team = repo.team()
    emails = declared_emails(team) | {"carl@example.com"}

    # 1. The team as main declares it (set up in-process: the scripts' turn comes next).
    bootstrap(repo.path / "resend", server.url)
    assert resend.Contacts.get(email="ada@example.com")["first_name"] == "Ada"

    # 2. A pull request adds a contact and changes a property value.
    repo.git("checkout", "-qb", "add-carl")
    team["contacts"].append({"email": "carl@example.com", "first_name": "Carl", "segments": ["beta-testers"]})
    contacts_of(team, "grace@example.com")["properties"]["plan_tier"] = 3
    repo.write_team(team, "Add Carl, Grace to tier 3")
    pr = repo.run("pr-plan.sh")
    assert pr.returncode == 0, pr.stderr
    body = (repo.out / "comment.md").read_text()
    assert body.startswith("<!-- resend-iac-plan -->\n")
    assert "**Plan: 1 contact to create, 1 to update.**" in body
    assert "| contact | 1 | 1 | 0 | 0 |" in body
    assert f"\n+ contact {mask('carl@example.com')}\n" in body
    assert f"\n~ contact {mask('grace@example.com')}\n" in body
    assert "properties.plan_tier: 2 -> 3" in body
    assert EMAIL_RE.findall(body) == []  # redacted: no raw email at all
    for raw in ("Carl", "Grace", "Hopper", "Ada", "Lovelace"):
        assert not re.search(rf"\b{raw}\b", body), raw
    assert len(body) < 65_536  # GitHub's comment limit
    assert repo.outputs() == {"changes": "true"}
    with pytest.raises(resend.exceptions.ResendError):  # a plan changes nothing
        resend.Contacts.get(email="carl@example.com")

    # 3. The merge applies exactly that.
    repo.git("checkout", "-q", "main")
    repo.git("merge", "-q", "--no-ff", "-m", "Merge add-carl", "add-carl")
    merged = repo.run("apply-on-merge.sh")
    assert merged.returncode == 0, merged.stderr + merged.stdout
    carl = resend.Contacts.get(email="carl@example.com")
    assert carl["first_name"] == "Carl"
    assert resend.Contacts.get(email="grace@example.com")["properties"]["plan_tier"]["value"] == 3
    carl_segments = resend.Contacts.Segments.list({"email": "carl@example.com"})
    assert [s["name"] for s in carl_segments["data"]] == ["beta-testers"]
    summary = (repo.out / "apply.md").read_text()
    assert "**Applied:** Apply complete: 1 created, 1 updated" in summary, summary[-300:]
    assert EMAIL_RE.findall(summary) == []
    # the CI log shows no raw email either (apply prints the plan unredacted; the script masks it)
    assert not set(re.findall(EMAIL_RE, merged.stdout + merged.stderr)) & emails

    # 4. Nightly: no drift right after an apply.
    quiet = repo.run("drift-check.sh")
    assert quiet.returncode == 0, quiet.stderr
    assert not (repo.out / "drift.md").exists()
    assert repo.outputs() == {"drift": "false"}

    # 5. Someone changes the team by hand, through the official SDK.
    resend.Contacts.update({"email": "ada@example.com", "first_name": "Augusta"})
    beta = next(s for s in resend.Segments.list()["data"] if s["name"] == "beta-testers")
    resend.Contacts.Segments.remove({"email": "carl@example.com", "segment_id": beta["id"]})
    drift = repo.run("drift-check.sh")
    assert drift.returncode == 2, drift.stderr
    issue = (repo.out / "drift.md").read_text()
    assert issue.startswith("<!-- resend-iac-drift -->\n")
    assert "**Plan: 1 contact to update; 1 membership to add.**" in issue
    assert f"\n~ contact {mask('ada@example.com')}\n" in issue
    assert f'first_name: "{mask("Augusta")}" -> "{mask("Ada")}"' in issue
    assert f"\n+ membership {mask('carl@example.com')} → beta-testers\n" in issue
    assert EMAIL_RE.findall(issue) == [] and "Augusta" not in issue
    assert repo.outputs() == {"drift": "true"}

    # 6. A merge that would touch most of the team is refused by the safety thresholds.
    repo.git("checkout", "-qb", "unsubscribe-everyone")
    for entry in team["contacts"]:
        entry["unsubscribed"] = True
    repo.write_team(team, "Unsubscribe everyone")
    warned = repo.run("pr-plan.sh")  # the reviewer is told before the merge
    assert warned.returncode == 0, warned.stderr
    comment = (repo.out / "comment.md").read_text()
    assert "| contact | 0 | 11 | 0 | 0 |" in comment
    assert "> [!WARNING]\n> ```text\n> apply will refuse this plan without --force" in comment
    assert "unsubscribed: false -> true" in comment
    repo.git("checkout", "-q", "main")
    repo.git("merge", "-q", "--no-ff", "-m", "Merge unsubscribe-everyone", "unsubscribe-everyone")
    refused = repo.run("apply-on-merge.sh")
    assert refused.returncode != 0
    refusal = (repo.out / "apply.md").read_text()
    assert "Apply failed" in refusal and "Refusing to apply" in refusal and "max_update_fraction" in refusal
    assert EMAIL_RE.findall(refusal) == []
    assert resend.Contacts.get(email="ada@example.com")["unsubscribed"] is False
    assert resend.Contacts.get(email="ada@example.com")["first_name"] == "Augusta"  # nothing applied


# ------------------------------------------------------------------------------ failures


def test_pr_comment_explains_invalid_files(tmp_path):
    repo = make_repo(tmp_path, base_env(RESEND_API_KEY=API_KEY, RESEND_API_URL="http://127.0.0.1:9"))
    team = repo.team()
    team["contacts"].append({"email": "dup@example.com", "segments": ["no-such-segment"]})
    repo.write_team(team, "Break it")
    result = repo.run("pr-plan.sh")
    assert result.returncode == 1
    body = (repo.out / "comment.md").read_text()
    assert body.startswith("<!-- resend-iac-plan -->\n")
    assert "do not validate" in body
    assert re.search(r"resend/team\.yaml:\d+(:\d+)?: .*no-such-segment", body), body
    assert "dup@example.com" not in body


def test_a_hostile_pull_request_gets_no_secret_into_its_comment(tmp_path):
    """The reported attack, end to end through the PR script: `csv: /proc/self/environ`, a
    `..` path and a symlink out of resend/ are refused at their lines; the key (in the
    script's environment) appears nowhere in the comment or the log."""
    repo = make_repo(tmp_path, base_env(RESEND_API_KEY=API_KEY, RESEND_API_URL="http://127.0.0.1:9"))
    (tmp_path / "outside.csv").write_text(f"email,{API_KEY}\n")
    (repo.path / "resend" / "leak.csv").symlink_to(tmp_path / "outside.csv")
    team = repo.team()
    team["contacts"] += [
        {"csv": "/proc/self/environ", "columns": {"nope": "email"}},
        {"csv": "../../outside.csv"},
        {"csv": "leak.csv"},
    ]
    repo.git("add", ".")
    repo.write_team(team, "Hostile")
    result = repo.run("pr-plan.sh")
    assert result.returncode == 1
    body = (repo.out / "comment.md").read_text()
    assert "do not validate" in body
    assert re.search(r"resend/team\.yaml:\d+:\d+: csv: '/proc/self/environ' is not a relative path", body), (
        body
    )
    assert body.count("leads outside resend (the config root") == 2, body
    for text in (body, result.stdout, result.stderr):
        assert API_KEY not in text and "PATH=" not in text


def test_pr_plan_without_a_key_says_so(tmp_path):
    repo = make_repo(tmp_path, base_env())
    result = repo.run("pr-plan.sh")
    assert result.returncode == 1
    assert "RESEND_API_KEY is not set" in result.stderr
    assert "No API key" in (repo.out / "comment.md").read_text()


# ------------------------------------------------------------------------------ the workflow file


def _steps(workflow: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    return [(job, step) for job, spec in workflow["jobs"].items() for step in spec["steps"]]


def _walk(node: Any, path: str = ""):
    if isinstance(node, dict):
        for k, v in node.items():
            yield from _walk(v, f"{path}.{k}")
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield from _walk(v, f"{path}[{i}]")
    else:
        yield path, node


def test_workflow_triggers_scripts_and_secret():
    text = WORKFLOW.read_text()
    workflow = yaml.safe_load(text)
    on = workflow.get("on", workflow.get(True))  # YAML 1.1 reads a bare `on` as True
    assert {"pull_request_target", "push", "schedule", "workflow_dispatch"} <= set(on)
    assert "pull_request" not in on  # the PR's own workflow would run with the key
    assert "resend/**" in on["pull_request_target"]["paths"]
    assert on["push"]["branches"] == ["main"]
    assert re.fullmatch(r"\d+ \d+ \* \* \*", on["schedule"][0]["cron"])  # daily

    calls = {}
    for job, step in _steps(workflow):
        for script in ("pr-plan.sh", "apply-on-merge.sh", "drift-check.sh"):
            if script in step.get("run", ""):
                calls[script] = (job, step)
    assert set(calls) == {"pr-plan.sh", "apply-on-merge.sh", "drift-check.sh"}
    assert calls["pr-plan.sh"][0] == "plan" and calls["apply-on-merge.sh"][0] == "apply"
    assert calls["drift-check.sh"][0] == "drift"
    jobs = workflow["jobs"]
    assert "pull_request_target" in jobs["plan"]["if"]
    assert "push" in jobs["apply"]["if"] and "refs/heads/main" in jobs["apply"]["if"]
    assert "schedule" in jobs["drift"]["if"]
    for _, step in calls.values():  # the scripts get the key, from the secret store
        assert step["env"]["RESEND_API_KEY"] == "${{ secrets.RESEND_API_KEY }}"
    assert "--force" not in text  # safety thresholds stay on

    # the key comes only from secrets: never set otherwise, never echoed or passed around
    for path, value in _walk(workflow):
        if path.endswith(".RESEND_API_KEY"):
            assert value == "${{ secrets.RESEND_API_KEY }}", path
            assert ".steps[" in path and path.endswith(".env.RESEND_API_KEY"), path
        elif path.endswith(".RESEND_IAC_LEDGER_KEY"):  # the consent ledger's key (#23)
            assert value == "${{ secrets.RESEND_IAC_LEDGER_KEY }}", path
            assert ".steps[" in path and path.endswith(".env.RESEND_IAC_LEDGER_KEY"), path
        elif isinstance(value, str):
            assert "RESEND_API_KEY" not in value, path
            assert "secrets." not in value, path
    assert not re.search(r"\bre_[A-Za-z0-9]{8,}", text)

    # the GitHub side finds its comment / issue by the markers the scripts write
    plan_script = [s for _, s in _steps(workflow) if "github-script" in s.get("uses", "")]
    assert any("<!-- resend-iac-plan -->" in s["with"]["script"] for s in plan_script)
    assert any("<!-- resend-iac-drift -->" in s["with"]["script"] for s in plan_script)
    assert "<!-- resend-iac-plan -->" in (SCRIPTS / "common.sh").read_text()
    # the scripts are where the workflow looks for them once copied
    assert workflow["env"]["RESEND_IAC_SCRIPTS"] == ".github/resend-iac"


def test_plan_job_runs_the_base_branch_and_reads_the_pull_request_as_data():
    """Threat model (docs/gitops.md): the plan job holds a full-access key, so what it runs
    comes from the base branch; the pull request's head is checked out into pr/ as data only,
    without credentials; a fork's pull request is validated without the key."""
    workflow = yaml.safe_load(WORKFLOW.read_text())
    steps = workflow["jobs"]["plan"]["steps"]
    checkouts = [s for s in steps if s.get("uses", "").startswith("actions/checkout")]
    assert len(checkouts) == 2
    base, head = checkouts
    assert "ref" not in base.get("with", {})  # pull_request_target: the base branch
    assert head["with"]["path"] == "pr" and "head.sha" in head["with"]["ref"]
    assert all(c["with"]["persist-credentials"] is False for c in checkouts)
    runs = [s for s in steps if "run" in s]
    for step in runs:  # nothing from the pull request is run or installed
        if step.get("name") == "Check that pr/resend is a real directory":  # test -L/-d only
            assert "[ -L pr/resend ] || [ ! -d pr/resend ]" in step["run"] and "bash" not in step["run"]
            continue
        assert "pr/" not in step["run"] and "requirements" not in step["run"], step
        assert step["run"].startswith(('pip install "resend-iac==', 'bash "$RESEND_IAC_SCRIPTS/')), step
    plans = [s for s in runs if "pr-plan.sh" in s["run"]]
    assert {s["env"]["RESEND_IAC_CONFIG"] for s in plans} == {"pr/resend"}
    fork = next(s for s in plans if "!=" in s["if"])
    same = next(s for s in plans if "==" in s["if"])
    assert (
        "RESEND_API_KEY" not in fork["env"]
        and same["env"]["RESEND_API_KEY"] == "${{ secrets.RESEND_API_KEY }}"
    )
    for cond in (fork["if"], same["if"]):
        assert "github.event.pull_request.head.repo.full_name" in cond and "github.repository" in cond
    for step in steps:  # a fork's run never saves into the base branch's cache scope
        if "cache/save" in step.get("uses", ""):
            assert "head.repo.full_name == github.repository" in step["if"], step


def test_scripts_never_trace_the_environment():
    for script in SCRIPTS.glob("*.sh"):
        text = script.read_text()
        assert "set -x" not in text.replace("set +x", ""), script
        assert "RESEND_API_KEY=" not in text, script
        if script.name != "common.sh":
            assert os.access(script, os.X_OK), script
            assert 'source "$(dirname "${BASH_SOURCE[0]}")/common.sh"' in text


# ------------------------------------------------------------------------------ the GitHub side

NODE = shutil.which("node")
FAKE_GITHUB = r"""
const calls = [];
const state = JSON.parse(process.env.FAKE_STATE);
const issues = {
  listComments: async () => ({ data: state.comments }),
  listForRepo: async () => ({ data: state.issues }),
};
for (const name of ['updateComment', 'createComment', 'create', 'update']) {
  issues[name] = async (args) => { calls.push([name, args]); return { data: { number: 99, html_url: 'u' } }; };
}
const github = {
  rest: { issues },
  paginate: async (fn, args) => (await fn(args)).data,
};
const context = { repo: { owner: 'o', repo: 'r' }, issue: { number: 5 }, serverUrl: 'https://github.com', runId: 1 };
const core = { info: () => {} };
(async () => {
%s
})().then(() => console.log(JSON.stringify(calls)), (e) => { console.error(e); process.exit(1); });
"""


def github_script(job: str, tmp_path: Path, state: dict, **env: str) -> list:
    """Run a job's actions/github-script step in node with a fake `github` client."""
    workflow = yaml.safe_load(WORKFLOW.read_text())
    step = next(s for s in workflow["jobs"][job]["steps"] if "github-script" in s.get("uses", ""))
    script = tmp_path / f"{job}.js"
    script.write_text(FAKE_GITHUB % step["with"]["script"])
    result = subprocess.run(
        [NODE, str(script)],
        capture_output=True,
        text=True,
        timeout=30,
        env={**os.environ, "RESEND_IAC_OUT": str(tmp_path), "FAKE_STATE": json.dumps(state), **env},
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


@pytest.mark.skipif(NODE is None, reason="node is not installed")
def test_sticky_comment_is_created_once_then_updated(tmp_path):
    body = "<!-- resend-iac-plan -->\n## resend-iac plan\n"
    (tmp_path / "comment.md").write_text(body)
    bot = {"type": "Bot"}
    calls = github_script(
        "plan",
        tmp_path,
        {
            "comments": [
                {"id": 1, "user": {"type": "User"}, "body": "quoting <!-- resend-iac-plan --> by hand"},
            ]
        },
    )
    assert calls == [["createComment", {"owner": "o", "repo": "r", "issue_number": 5, "body": body}]]
    calls = github_script(
        "plan",
        tmp_path,
        {
            "comments": [
                {"id": 1, "user": bot, "body": "another bot"},
                {"id": 2, "user": bot, "body": "<!-- resend-iac-plan -->\nold plan"},
            ]
        },
    )
    assert calls == [["updateComment", {"owner": "o", "repo": "r", "comment_id": 2, "body": body}]]


@pytest.mark.skipif(NODE is None, reason="node is not installed")
def test_drift_issue_opened_updated_and_closed(tmp_path):
    body = "<!-- resend-iac-drift -->\ndrifted\n"
    (tmp_path / "drift.md").write_text(body)
    open_issue = {"number": 7, "body": "<!-- resend-iac-drift -->\nolder drift"}
    calls = github_script("drift", tmp_path, {"issues": []}, DRIFT_EXIT="2")
    assert [c[0] for c in calls] == ["create"]
    assert calls[0][1]["body"] == body and calls[0][1]["labels"] == ["resend-iac-drift"]
    calls = github_script("drift", tmp_path, {"issues": [open_issue]}, DRIFT_EXIT="2")
    assert calls == [["update", {"owner": "o", "repo": "r", "issue_number": 7, "body": body}]]
    calls = github_script("drift", tmp_path, {"issues": [open_issue]}, DRIFT_EXIT="0")
    assert [c[0] for c in calls] == ["createComment", "update"]
    assert calls[1][1]["state"] == "closed" and calls[1][1]["issue_number"] == 7
    assert github_script("drift", tmp_path, {"issues": []}, DRIFT_EXIT="0") == []
