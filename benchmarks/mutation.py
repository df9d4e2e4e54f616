"""Mutation testing of the safety-critical engine: would the suite notice a broken line?

    .venv/bin/python benchmarks/mutation.py                       # every module below, every mutant
    .venv/bin/python benchmarks/mutation.py safety                # one module
    .venv/bin/python benchmarks/mutation.py planfile --sample 40 --seed 1   # 40 mutants drawn at random
    .venv/bin/python benchmarks/mutation.py cache --list          # the mutants, without running them

For each module, every mutant of ``benchmarks/mutation_ops.py`` (operators, comparisons,
constants, ``continue``/``break``, return values, calls made for their effect) is run against
the module's test selection (``MODULES``) by ``benchmarks/mutation_worker.py``: one pytest
process per module, the mutated function swapped in place, only the tests that execute the
mutated line, ``-x`` style, a time limit per test. A mutant is *killed* when a test fails (or
times out), *survived* otherwise.

Message-only mutants (a change inside the text of an error or warning message, see
``mutation_ops``) are not run: they are counted apart and listed. Survivors that no behaviour
can tell from the original are named in ``EQUIVALENT`` with the reason; they stay in the
results, marked as such. The score is killed / (mutants run - equivalent); the score counting
equivalents as survivors is printed beside it.

Prints the score per module and the survivors; writes ``benchmarks/results/mutation.json``
(the modules run replace their earlier entry) and ``benchmarks/results/mutation.md``
(unless ``--no-write``; a ``--sample`` run is marked as one). Slow: not part of ``.ci/run``.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))
from mutation_ops import Mutant, mutants  # noqa: E402
from mutation_report import write_markdown  # noqa: E402

# module name -> (file, the tests that exercise it)
MODULES: dict[str, tuple[str, list[str]]] = {
    "safety": (
        "resend_iac/engine/safety.py",
        ["tests/test_engine_safety.py", "tests/test_safety_counts.py"],
    ),
    "diff": (
        "resend_iac/engine/diff.py",
        [
            "tests/test_diff.py",
            "tests/test_diff_subscriptions.py",
            "tests/test_diff_plan_record.py",
            "tests/test_property_based.py",
        ],
    ),
    "planfile": (
        "resend_iac/engine/planfile.py",
        [
            "tests/test_planfile.py",
            "tests/test_planfile_edited.py",
            "tests/test_engine_safety.py",
            "tests/test_fuzz_untrusted.py::test_the_plan_fast_path_never_accepts_what_the_schema_refuses",
        ],
    ),
    "cache": (
        "resend_iac/engine/cache.py",
        ["tests/test_refresh_cache.py", "tests/test_cache_entries.py"],
    ),
    "consent": (
        "resend_iac/engine/consent.py",
        ["tests/test_consent.py", "tests/test_diff.py", "tests/test_diff_plan_record.py"],
    ),
}

# Survivors no behaviour can tell apart, per module: mutant key (see Mutant.key) -> why.
EQUIVALENT: dict[str, dict[str, str]] = {
    "safety": {},
    "diff": {
        "_Differ._contact_update | boolean | `w is h or w == h` -> `w is h and w == h`": (
            "the fast check only: a value equal but not identical then goes through DeepDiff, which "
            "finds the same (no) change; slower, same plan"
        ),
        "_Differ._subscriptions | constant | `'opt_in'` -> `'XXopt_inXX'`": (
            "the fast check only: a topic nobody declares then goes the slow way, where "
            "_topic_default gives opt_in; slower, same plan"
        ),
        "_Differ.memberships | statement | `append(_join(key, live_c, name))` removed": (
            "unreachable with a live State: this branch runs when the contact's live segments equal "
            "the declared ones, and a live contact's segments come from the live segments' member "
            "lists, so none of them is missing live"
        ),
        "_Differ._contact_update | loop | `continue` -> `break` (#3)": (
            "after the consent guard keeps a field: unsubscribed is the last of the contact's "
            "mutable fields (first_name, last_name, unsubscribed), so there is nothing after it to stop"
        ),
        "_diff | constant | `''` -> `'XX'`": (
            "the sort key of a change without a parent: changes of the same kind and key either all "
            "have a parent (memberships) or none has, so '' or 'XX' never meets a segment name"
        ),
        "diff | statement | `gc.disable()` removed": (
            "speed and memory only: the cyclic collector also runs during the diff; same plan"
        ),
    },
    "planfile": {
        **dict.fromkeys(
            [
                "<module> | constant | `'property'` -> `'XXpropertyXX'`",
                "<module> | constant | `'segment'` -> `'XXsegmentXX'`",
                "<module> | constant | `'topic'` -> `'XXtopicXX'`",
                "<module> | constant | `'subscription'` -> `'XXsubscriptionXX'`",
                "<module> | constant | `'create'` -> `'XXcreateXX'`",
                "<module> | constant | `'update'` -> `'XXupdateXX'`",
                "<module> | constant | `'replace'` -> `'XXreplaceXX'`",
                "<module> | constant | `'delete'` -> `'XXdeleteXX'`",
                "<module> | constant | `'create'` -> `'XXcreateXX'` (#2)",
                "<module> | constant | `'delete'` -> `'XXdeleteXX'` (#2)",
                "<module> | constant | `'create'` -> `'XXcreateXX'` (#3)",
                "<module> | constant | `'update'` -> `'XXupdateXX'` (#2)",
                "<module> | constant | `'replace'` -> `'XXreplaceXX'` (#2)",
                "<module> | constant | `'delete'` -> `'XXdeleteXX'` (#3)",
                "<module> | constant | `'update'` -> `'XXupdateXX'` (#4)",
            ],
            "_ACTIONS is read only for contact and membership changes (the fast check); the entries of the other kinds are never looked up (the schema checks their actions)",
        ),
        **dict.fromkeys(
            [
                f"_plain_change_ok | return | `return False` -> `return None`{n}"
                for n in ["", *(f" (#{i})" for i in range(2, 13))]
            ],
            "the fast check is read as true or false only (`if not _plain_change_ok(change)`)",
        ),
        "<module> | constant | `1` -> `2` (#2)": "the size of plan_schema's cache (one schema): same answers",
        "<module> | constant | `4096` -> `4097`": "the size of the property-key check's cache: same answers",
        "_address_problem | compare | `ord(ch) < 32` -> `ord(ch) <= 32`": (
            "character 32 is the space, refused by isspace() just before"
        ),
        "_address_problem | constant | `32` -> `33`": "character 32 is the space, refused by isspace() just before",
    },
    "cache": {
        "holds | return | `return False` -> `return None`": (
            "every caller reads the answer as true or false (`if holds(...)`, `not holds(...)`)"
        ),
        "RefreshCache._open | statement | `conn.execute('DELETE FROM contacts')` removed": (
            "a file of another schema gets a new salt, so its check no longer matches and the "
            "same rows are deleted two lines on (the check's DELETE)"
        ),
        "RefreshCache._open | constant | `32` -> `33`": "the salt's length: any random salt does",
        "RefreshCache._open | statement | `conn.execute('PRAGMA journal_mode=DELETE')` removed": (
            "DELETE is SQLite's default journal mode; the pragma only changes a file someone "
            "switched to WAL by hand"
        ),
    },
    "consent": {},
}


def _present(name: str) -> bool:
    path, tests = MODULES[name]
    return (ROOT / path).exists()


def _tests(name: str) -> list[str]:
    return [t for t in MODULES[name][1] if (ROOT / t.split("::")[0]).exists()]


def _module_name(path: str) -> str:
    return path[: -len(".py")].replace("/", ".")


def run_module(
    name: str, chosen: list[Mutant], factor: float, floor: float, verbose: bool
) -> tuple[dict[int, dict[str, Any]], dict[str, Any]]:
    """Run ``chosen`` mutants of module ``name``; results by mutant index, and the baseline."""
    path, _ = MODULES[name]
    results: dict[int, dict[str, Any]] = {}
    baseline: dict[str, Any] = {}
    todo = [m.index for m in chosen]
    by_index = {m.index: m for m in chosen}
    with tempfile.TemporaryDirectory(prefix="mutation-") as tmp:
        while todo:
            out = Path(tmp) / f"out-{len(results)}.jsonl"
            job = Path(tmp) / "job.json"
            job.write_text(
                json.dumps(
                    {
                        "module": _module_name(path),
                        "indices": todo,
                        "out": str(out),
                        "factor": factor,
                        "floor": floor,
                    }
                )
            )
            env = {
                **os.environ,
                "MUTATION_JOB": str(job),
                "PYTHONPATH": os.pathsep.join([str(HERE), os.environ.get("PYTHONPATH", "")]).rstrip(
                    os.pathsep
                ),
            }
            cmd = [
                sys.executable,
                "-m",
                "pytest",
                "-q",
                "-p",
                "mutation_worker",
                "-p",
                "no:timeout",
                "-p",
                "no:cacheprovider",
                "-o",
                "addopts=",
                *_tests(name),
            ]
            proc = subprocess.Popen(
                cmd,
                cwd=ROOT,
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
            seen = 0
            started: tuple[int, float, float] | None = None  # index, when, limit
            killed_hung = False
            while True:
                done = proc.poll() is not None
                lines = out.read_text().splitlines() if out.exists() else []
                for line in lines[seen:]:
                    rec = json.loads(line)
                    if rec["event"] == "baseline":
                        baseline = rec
                        print(f"  baseline: {rec['tests']} tests, {rec['seconds']} s", flush=True)
                    elif rec["event"] == "baseline_failed":
                        proc.wait()
                        raise SystemExit(
                            f"{name}: the unmutated selection fails at {rec['test']}; fix that first:\n{rec['when']}"
                        )
                    elif rec["event"] == "contaminated":
                        raise SystemExit(
                            f"{name}: {rec['test']} fails unmutated after the mutants ran: a mutant's "
                            f"effect outlived it, so the kills are suspect:\n{rec['when']}"
                        )
                    elif rec["event"] == "start":
                        started = (rec["index"], time.monotonic(), rec["limit"])
                    elif rec["event"] == "result":
                        results[rec["index"]] = rec
                        started = None
                        if verbose or rec["status"] == "survived":
                            m = by_index[rec["index"]]
                            print(f"  {rec['status']:8} {m.line:4} {m.scope}: {m.desc}", flush=True)
                seen = len(lines)
                if done:
                    break
                if started and time.monotonic() - started[1] > started[2]:
                    os.killpg(proc.pid, signal.SIGKILL)  # our own worker, hung in a mutant
                    proc.wait()
                    results[started[0]] = {
                        "index": started[0],
                        "status": "timeout",
                        "killer": "the whole selection's time limit",
                        "tests": None,
                        "seconds": round(started[2], 1),
                    }
                    killed_hung = True
                    break
                time.sleep(0.2)
            output = proc.stdout.read().decode(errors="replace") if proc.stdout else ""
            proc.wait()
            left = [i for i in todo if i not in results]
            if left and not killed_hung:
                raise SystemExit(
                    f"{name}: the worker stopped with {len(left)} mutants left:\n{output[-3000:]}"
                )
            todo = left
    return results, baseline


def summarise(name: str, found: list[Mutant], chosen: list[Mutant], results: dict[int, dict[str, Any]]):
    equivalent = EQUIVALENT.get(name, {})
    rows = []
    for m in chosen:
        r = results[m.index]
        status = r["status"]
        if status == "survived" and m.key in equivalent:
            status = "equivalent"
        rows.append({**m.as_dict(), "status": status, "killer": r["killer"], "seconds": r["seconds"]})
    killed = sum(r["status"] in ("killed", "timeout") for r in rows)
    survived = [r for r in rows if r["status"] == "survived"]
    equiv = [r for r in rows if r["status"] == "equivalent"]
    run = len(rows)
    scored = run - len(equiv)
    return {
        "file": MODULES[name][0],
        "mutants": len(found),
        "message_only": [m.as_dict() for m in found if m.message_only],
        "run": run,
        "killed": killed,
        "timeouts": sum(r["status"] == "timeout" for r in rows),
        "survived": survived,
        "equivalent": [{**r, "why": equivalent[r["key"]]} for r in equiv],
        "score": round(killed / scored, 4) if scored else None,
        "score_equivalents_as_survivors": round(killed / run, 4) if run else None,
        "killers": {str(r["index"]): r["killer"] for r in rows if r["killer"]},
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("modules", nargs="*", help=f"of {', '.join(MODULES)} (default: all present)")
    ap.add_argument("--sample", type=int, help="run N mutants drawn at random (per module)")
    ap.add_argument("--seed", type=int, default=0, help="seed of --sample (default 0)")
    ap.add_argument(
        "--list", action="store_true", help="list the mutants (and message-only ones); run nothing"
    )
    ap.add_argument("--factor", type=float, default=10.0, help="a test's time limit: baseline x this (10)")
    ap.add_argument("--floor", type=float, default=5.0, help="a test's time limit: at least this (5 s)")
    ap.add_argument("--no-write", action="store_true", help="print only; leave benchmarks/results alone")
    ap.add_argument("-v", "--verbose", action="store_true", help="print every mutant's result")
    ap.add_argument("--out", default=str(HERE / "results"), help="directory of mutation.json/.md")
    args = ap.parse_args(argv)
    names = args.modules or [n for n in MODULES if _present(n)]
    for n in names:
        if n not in MODULES or not _present(n):
            ap.error(f"unknown or missing module {n!r} (known: {', '.join(MODULES)})")
    report: dict[str, Any] = {}
    for name in names:
        source = (ROOT / MODULES[name][0]).read_text(encoding="utf-8")
        found = mutants(source)
        runnable = [m for m in found if not m.message_only]
        if args.list:
            for m in found:
                tag = "message-only" if m.message_only else m.op
                print(f"{name} #{m.index:<4} {m.line:4} {tag:12} {m.scope}: {m.desc}")
            continue
        chosen = runnable
        if args.sample and args.sample < len(runnable):
            chosen = sorted(random.Random(args.seed).sample(runnable, args.sample), key=lambda m: m.index)
        print(
            f"{name}: {len(found)} mutants, {len(found) - len(runnable)} message-only (not run), "
            f"running {len(chosen)} against {' '.join(_tests(name))}",
            flush=True,
        )
        t0 = time.monotonic()
        results, baseline = run_module(name, chosen, args.factor, args.floor, args.verbose)
        summary = summarise(name, found, chosen, results)
        summary["seconds"] = round(time.monotonic() - t0, 1)
        summary["tests"] = _tests(name)
        summary["baseline"] = baseline
        summary["sample"] = {"n": args.sample, "seed": args.seed} if chosen is not runnable else None
        report[name] = summary
        print(
            f"{name}: score {summary['score']:.1%} ({summary['killed']} killed of {summary['run']} run, "
            f"{len(summary['equivalent'])} equivalent, {len(summary['survived'])} survived; "
            f"{summary['score_equivalents_as_survivors']:.1%} counting equivalents as survivors; "
            f"{len(summary['message_only'])} message-only not run) in {summary['seconds']} s",
            flush=True,
        )
        for r in summary["survived"]:
            print(f"  SURVIVED {r['line']:4} {r['scope']}: {r['desc']}")
        for r in summary["equivalent"]:
            print(f"  equivalent {r['line']:4} {r['scope']}: {r['desc']} ({r['why']})")
    if args.list or args.no_write or not report:
        return 0
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    path = out / "mutation.json"
    data = json.loads(path.read_text()) if path.exists() else {"modules": {}}
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True
    ).stdout.strip()
    dirty = subprocess.run(
        ["git", "status", "--porcelain", "--", "resend_iac", "tests"],
        cwd=ROOT,
        capture_output=True,
        text=True,
    ).stdout.strip()
    commit += " + uncommitted changes" if dirty else ""
    stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    command = "benchmarks/mutation.py " + " ".join(argv if argv is not None else sys.argv[1:])
    for name, summary in report.items():
        data["modules"][name] = {**summary, "commit": commit, "date": stamp, "command": command.strip()}
    path.write_text(json.dumps(data, indent=1) + "\n")
    write_markdown(data, out / "mutation.md")
    print(f"wrote {path} and {out / 'mutation.md'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
