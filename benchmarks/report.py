"""Report writers for the e2e benchmark: a Markdown table and a PNG chart (JSON is the data)."""

from __future__ import annotations

from pathlib import Path

PHASES = ("initial", "drift", "noop")
PHASE_LABEL = {
    "initial": "initial state",
    "drift": "1% drift",
    "noop": "no-op",
    "warm_noop": "no-op, cache warm",
    "warm_drift": "1% changed in the files, cache warm",
}
WARM_PHASES = ("warm_noop", "warm_drift")


def _warm(data: dict, n: int) -> tuple[str, ...]:
    run = data["runs"].get(str(n), {})
    return tuple(ph for ph in WARM_PHASES if ph in run)


OURS = "resend-iac"
NAIVE = "one request per object"


def _n(x) -> str:
    return f"{x:,}" if isinstance(x, int) else str(x)


def _s(x) -> str:
    return "—" if x is None else f"{x:.1f}"


def _duration(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:,.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:,.0f} min"
    return f"{seconds / 3600:,.1f} h"


def _ours(data: dict, n: int, phase: str) -> dict:
    return data["runs"][str(n)][phase]


def _naive_requests(data: dict, n: int, phase: str) -> tuple[int, int]:
    r = data["naive_computed"][str(n)]["requests"][phase]
    return r["plan"], r["apply"]


def markdown(data: dict) -> str:
    sc = data["scenario"]
    n = sc["n"]
    rate = data["rate_limit"]
    proj = data["projected_rate"]
    rate_text = "off" if not rate else f"{rate:g} req/s"
    lines = [
        f"# End-to-end benchmark: {n:,} contacts, {sc['segments']} segments, "
        f"{sc['properties']} properties, {sc['topics']} topics",
        "",
        f"Emulator rate limit for the run: **{rate_text}** (both strategies pace themselves to it). "
        f"The real API allows {proj:g} req/s by default: the last column projects each phase's time "
        f"there as requests / {proj:g} (**projected**, not measured). Requests are counted by the "
        "emulator (`GET /_emulator/stats`).",
        "",
        f"## Requests and seconds at N = {n:,}",
        "",
        f"| phase | strategy | plan requests | plan s | apply requests | apply s | total requests "
        f"| projected at {proj:g} req/s |",
        "|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    measured_naive = data["naive_measured"].get(str(n))
    for phase in PHASES:
        o = _ours(data, n, phase)
        total = o["plan"]["requests"] + o["apply"]["requests"]
        lines.append(
            f"| {PHASE_LABEL[phase]} | {OURS} | {_n(o['plan']['requests'])} | {_s(o['plan']['seconds'])} "
            f"| {_n(o['apply']['requests'])} | {_s(o['apply']['seconds'])} | {_n(total)} "
            f"| {_duration(total / proj)} |"
        )
        pl, apl = _naive_requests(data, n, phase)
        if measured_naive:
            m = measured_naive[phase]
            ps, as_ = m["plan"]["seconds"], m["apply"]["seconds"]
            how = "measured"
        else:
            ps = as_ = None
            how = "exact count"
        lines.append(
            f"| {PHASE_LABEL[phase]} | {NAIVE} ({how}) | {_n(pl)} | {_s(ps)} | {_n(apl)} | {_s(as_)} "
            f"| {_n(pl + apl)} | {_duration((pl + apl) / proj)} |"
        )
    for phase in _warm(data, n):
        o = _ours(data, n, phase)
        total = o["plan"]["requests"] + o["apply"]["requests"]
        lines.append(
            f"| {PHASE_LABEL[phase]} | {OURS} `--refresh-budget 0` | {_n(o['plan']['requests'])} "
            f"| {_s(o['plan']['seconds'])} | {_n(o['apply']['requests'])} | {_s(o['apply']['seconds'])} "
            f"| {_n(total)} | {_duration(total / proj)} |"
        )
    if _warm(data, n):
        lines += [
            "",
            "resend-iac's cold rows run with `--refresh full` (every managed contact's details "
            "read: the cost without a cache; they fill the refresh cache). The warm rows run with "
            "`--refresh-budget 0` on that cache: only the contacts whose declared values differ "
            "from the cached digests are read in detail.",
        ]
    for nn, measured in sorted(data["naive_measured"].items(), key=lambda kv: int(kv[0])):
        nn = int(nn)
        if nn == n:
            continue
        lines += [
            "",
            f"## Both strategies measured at N = {nn:,}",
            "",
            f"| phase | strategy | plan requests | plan s | apply requests | apply s | total requests "
            f"| projected at {proj:g} req/s |",
            "|---|---|---:|---:|---:|---:|---:|---:|",
        ]
        for phase in PHASES:
            rows = []
            if str(nn) in data["runs"]:
                rows.append((OURS, _ours(data, nn, phase)))
            rows.append((NAIVE, measured[phase]))
            for name, r in rows:
                total = r["plan"]["requests"] + r["apply"]["requests"]
                lines.append(
                    f"| {PHASE_LABEL[phase]} | {name} | {_n(r['plan']['requests'])} | {_s(r['plan']['seconds'])} "
                    f"| {_n(r['apply']['requests'])} | {_s(r['apply']['seconds'])} | {_n(total)} "
                    f"| {_duration(total / proj)} |"
                )
    # Where resend-iac's requests go.
    lines += [
        "",
        f"## Where resend-iac's requests go at N = {n:,}",
        "",
        "| phase | step | requests by route |",
        "|---|---|---|",
    ]
    for phase in PHASES + _warm(data, n):
        for step in ("plan", "apply"):
            routes = _ours(data, n, phase)[step]["by_route"]
            text = ", ".join(f"`{k}` {v:,}" for k, v in routes.items()) or "none"
            lines.append(f"| {PHASE_LABEL[phase]} | {step} | {text} |")
    # Requests against N.
    ns = sorted(int(k) for k in data["runs"])
    lines += [
        "",
        "## Requests against N (plan + apply)",
        "",
        "| N | phase | resend-iac plan + apply | one request per object plan + apply | ratio, plan + apply "
        "| ratio, plan alone |",
        "|---:|---|---:|---:|---:|---:|",
    ]
    for nn in ns:
        for phase in PHASES:
            o = _ours(data, nn, phase)
            op, oa = o["plan"]["requests"], o["apply"]["requests"]
            pl, apl = _naive_requests(data, nn, phase)
            ratio = f"{(pl + apl) / (op + oa):,.1f}x" if op + oa else "—"
            plan_ratio = f"{pl / op:,.1f}x" if op and pl else "—"
            lines.append(
                f"| {nn:,} | {PHASE_LABEL[phase]} | {op:,} + {oa:,} = {op + oa:,} "
                f"| {pl:,} + {apl:,} = {pl + apl:,} | {ratio} | {plan_ratio} |"
            )
    # Diff alone.
    if data["diff"]:
        lines += [
            "",
            "## The diff alone (`engine.diff`, in-process, one child process per N)",
            "",
            "| contacts | changes found | CPU s | wall s | peak RSS of the process | RSS added by the diff "
            "| tracemalloc peak of the diff |",
            "|---:|---:|---:|---:|---:|---:|---:|",
        ]
        for r in data["diff"]:
            if "error" in r:
                lines.append(f"| {r['n']:,} | error: {r['error']} | | | | | |")
                continue
            lines.append(
                f"| {r['n']:,} | {r['changes']:,} | {r['cpu_seconds']:.2f} | {r['wall_seconds']:.2f} "
                f"| {r['rss_peak_mb']:,.0f} MB | {r['rss_diff_extra_mb']:,.0f} MB "
                + (
                    f"| {r['tracemalloc_peak_mb']:,.0f} MB |"
                    if "tracemalloc_peak_mb" in r
                    else "| — (not traced) |"
                )
            )
    lines += ["", "## Notes", ""] + [f"- {x}" for x in notes(data)]
    lines += [
        "",
        f"Produced by `.venv/bin/python {data['command'].strip()}` in {data['total_seconds']:.0f} s "
        f"on {data['machine']['cpus']} CPUs (Python {data['machine']['python']}), at commit "
        f"{data.get('git_commit', 'unknown')}.",
        "",
    ]
    return "\n".join(lines)


def notes(data: dict) -> list[str]:
    sc = data["scenario"]
    out = [
        "Scenario (`benchmarks/scenario.py`): every contact has a first and last name, `unsubscribed`, a "
        f"value for each of the {sc['properties']} properties and a subscription to each of the "
        f"{sc['topics']} topics, and is in 1 or 2 of the {sc['segments']} segments (1.5 on average); "
        "written as one YAML file plus one CSV seed list per cohort of contacts sharing segments and "
        "topics. This is the fullest declared state: both strategies have the most to read.",
        "1% drift: 1% of the contacts changed live through the API before planning, in rotation: "
        "first name, a property value, removal from a segment, a topic subscription flipped.",
        "resend-iac ran through its CLI as users run it: `resend-iac plan FILE --out PLAN`, then "
        "`resend-iac apply --plan PLAN --auto-approve` (which re-reads every list, and the property values "
        "and subscriptions of the contacts the plan changes, to check that the team did not change since "
        "the plan; an empty plan reads nothing: those reads are in the apply column). Seconds are the "
        "wall time of each command, process start included.",
        "One request per object (`benchmarks/naive.py`) is what today's Terraform and Pulumi providers do "
        "(the public Resend ones, e.g. humanlayer/pulumi-resend, manage segments, topics and contact "
        "properties as one resource each, with a GET by id to read; none manages contacts, so the model "
        "extends the same pattern to them): "
        "every property, segment, topic and contact is a resource, and so is every contact-segment "
        "membership and every contact-topic subscription. Refresh (plan) = one GET per resource "
        "(a membership reads `GET /contacts/{id}/segments`, a subscription `GET /contacts/{id}/topics`, "
        "once per pair, as there is no per-pair GET); create = one request per resource (names, "
        "unsubscribed and property values go with the contact's POST); update = one request per "
        "changed resource. A plan against an empty state reads nothing; the apply of a saved plan does "
        "not refresh again. Existing providers also re-read each object after creating it; that is not "
        "counted, so its counts are a lower bound. It sends 10 requests at a time (Terraform's default "
        "parallelism).",
    ]
    main = data["naive_computed"].get(str(sc["n"]))
    if main:
        res = main["resources"]
        alt = sum(res.values()) - res["subscription"] + (res["contact"] if res["subscription"] else 0)
        out.append(
            f"At N = {sc['n']:,} that model has {sum(res.values()):,} resources ("
            + ", ".join(f"{v:,} {k}" for k, v in res.items())
            + f"). Modelling the subscriptions as one resource per contact instead of one per pair would make "
            f"a refresh {alt:,} requests instead of {sum(res.values()):,}."
        )
    noop = data["runs"].get(str(sc["n"]), {}).get("noop", {}).get("plan", {}).get("by_route", {})
    per_contact = {k: v for k, v in noop.items() if k in ("GET /contacts/{id}", "GET /contacts/{id}/topics")}
    if per_contact:
        out.append(
            "Where resend-iac's reads go: the API's list endpoints return neither custom property values nor "
            "topic subscriptions, so reading them costs one request per contact each ("
            + ", ".join(f"`{k}` {v:,}" for k, v in per_contact.items())
            + " in the no-op plan); everything else is read in pages of 100. `apply --plan` re-reads the "
            "lists, and those two details only for the contacts the plan changes."
        )
    measured = ", ".join(f"{int(k):,}" for k in sorted(data["naive_measured"], key=int)) or "none"
    checks = data.get("naive_count_checks", [])
    ok = all(c["computed"] == c["measured"] for c in checks)
    out.append(
        f"The one-request-per-object strategy was run for real at N = {measured}; at other N its request "
        "counts are computed exactly from the resource counts (a count, not a timing): "
        + (
            "the computed counts equal the measured ones at every measured N and phase."
            if checks and ok
            else "the computed counts DIFFER from the measured ones: see `naive_count_checks` in e2e.json."
            if checks
            else "no measured run to check them against."
        )
    )
    rate = data["rate_limit"]
    out.append(
        (
            f"Rate limit {rate:g} req/s: high enough that the whole benchmark runs in minutes on this machine; "
            "our client adapts to the emulator's `ratelimit-*` headers and paces at 95% of the limit; the "
            "naive strategy paces at the same 95%. "
            if rate
            else "Rate limit off. "
        )
        + f"At the real API's {data['projected_rate']:g} req/s the request count decides the time: the "
        "projected column is requests / 5."
    )
    out.append(
        "The diff alone: desired and live States built in memory (the live one as `read_live` returns "
        "it, with values and subscriptions read, 1% drifted), then `engine.diff` timed with "
        "`time.process_time()`; the RSS columns are the child process's `ru_maxrss` (the two States "
        "included) and how much the diff raised it (its peak memory); the tracemalloc column is the peak "
        "the diff itself allocated, from a second, traced run, done only up to 100,000 contacts (tracing "
        "triples the diff's time) as a cross-check of the RSS figure."
    )
    limited_ours = sum(
        r[ph][st]["rate_limited"] for r in data["runs"].values() for ph in PHASES for st in ("plan", "apply")
    )
    limited_naive = sum(
        r[ph][st]["rate_limited"]
        for r in data["naive_measured"].values()
        for ph in PHASES
        for st in ("plan", "apply")
    )
    out.append(
        f"429 answers (rate limited) during the run: {limited_ours:,} to resend-iac, {limited_naive:,} to "
        "the one-request-per-object strategy (included in the request counts)."
    )
    for x in data.get("skipped", []):
        out.append(f"Skipped to stay within the time budget: {x}.")
    return out


def chart(data: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import FuncFormatter, NullFormatter

    ns_ours = sorted(int(k) for k in data["runs"])
    ns_naive = sorted(int(k) for k in data["naive_computed"])
    fig, axes = plt.subplots(1, 3, figsize=(13, 4.6), sharey=True)
    for ax, phase in zip(axes, PHASES):
        ours = [
            data["runs"][str(n)][phase]["plan"]["requests"] + data["runs"][str(n)][phase]["apply"]["requests"]
            for n in ns_ours
        ]
        nv = [sum(data["naive_computed"][str(n)]["requests"][phase].values()) for n in ns_naive]
        ax.plot(ns_naive, nv, "s--", color="tab:red", label="one request per object (exact count)")
        measured = [
            (int(k), v[phase]["plan"]["requests"] + v[phase]["apply"]["requests"])
            for k, v in data["naive_measured"].items()
        ]
        if measured:
            ax.plot(
                [m[0] for m in measured],
                [m[1] for m in measured],
                "o",
                mfc="none",
                ms=11,
                color="tab:red",
                label="one request per object (measured)",
            )
        ax.plot(ns_ours, ours, "o-", color="tab:blue", label="resend-iac (measured)")
        ax.set_title(PHASE_LABEL[phase])
        ax.set_xlabel("contacts (N)")
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xticks(ns_naive)
        for axis in (ax.xaxis, ax.yaxis):
            axis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:,.0f}"))
            axis.set_minor_formatter(NullFormatter())
        ax.margins(x=0.12, y=0.2)
        ax.grid(True, which="both", alpha=0.3)
        for x, y in zip(ns_ours, ours):
            ax.annotate(
                f"{y:,}",
                (x, y),
                textcoords="offset points",
                xytext=(0, -14),
                ha="center",
                fontsize=8,
                color="tab:blue",
            )
        for x, y in zip(ns_naive, nv):
            ax.annotate(
                f"{y:,}",
                (x, y),
                textcoords="offset points",
                xytext=(0, 6),
                ha="center",
                fontsize=8,
                color="tab:red",
            )
    axes[0].set_ylabel("API requests (plan + apply)")
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=3, fontsize=9, frameon=False)
    sc = data["scenario"]
    fig.suptitle(
        f"Requests against N ({sc['segments']} segments, {sc['properties']} properties, "
        f"{sc['topics']} topics)"
    )
    fig.tight_layout(rect=(0, 0.07, 1, 1))
    fig.savefig(path, dpi=110)
    plt.close(fig)
