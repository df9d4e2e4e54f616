"""A read-only web view of the emulator's team at ``/_emulator/ui`` (Mailpit-style): contacts
with their property values, segments and topics; segments with their members; topics with
their subscribers; properties; imports with their counts; the recent requests.

Server-rendered with Starlette and Jinja2 templates (``templates/``), no JavaScript.
Everything shown is escaped (autoescape: contacts and names are untrusted strings), and
every page is sent with a Content-Security-Policy that allows no script at all.
Lists are paginated on ``seq`` (newest first, ``?after=SEQ`` / ``?before=SEQ``), so a page
of a team of a million contacts reads 50 rows through an index, like the API's cursors.
Only GET: nothing here changes the team. Like the other ``/_emulator/`` routes it needs no
API key (the emulator is a local tool).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import jinja2
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import Route, Router

BASE = "/_emulator/ui"
PAGE = 50
HEADERS = {
    "content-security-policy": "default-src 'none'; style-src 'unsafe-inline'; img-src 'self'",
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
    "cache-control": "no-store",
}

_env = jinja2.Environment(
    loader=jinja2.PackageLoader("resend_iac.emulator", "templates"),
    autoescape=True,  # every {{ value }} is HTML-escaped, whatever the template's name
    undefined=jinja2.StrictUndefined,
)


def _value(raw: str) -> str:
    """A stored property value (JSON text) as a person reads it."""
    value = json.loads(raw)
    return value if isinstance(value, str) else json.dumps(value)


def _time(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%H:%M:%S.%f")[:-3]


def _int(value: str | None) -> int | None:
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None


class _Pager:
    """Keyset pagination newest first on an integer column."""

    def __init__(self, request: Request) -> None:
        self.after = _int(request.query_params.get("after"))
        self.before = _int(request.query_params.get("before"))
        self.query = request.query_params

    def sql(self, column: str) -> tuple[str, list[Any], str]:
        """(extra condition, its args, ORDER BY … LIMIT)."""
        if self.before is not None:
            return f"{column} > ?", [self.before], f"ORDER BY {column} ASC LIMIT {PAGE + 1}"
        if self.after is not None:
            return f"{column} < ?", [self.after], f"ORDER BY {column} DESC LIMIT {PAGE + 1}"
        return "", [], f"ORDER BY {column} DESC LIMIT {PAGE + 1}"

    def page(self, rows: list[tuple], seq_index: int = 0) -> tuple[list[tuple], dict[str, Any]]:
        more = len(rows) > PAGE
        rows = rows[:PAGE]
        if self.before is not None:
            rows.reverse()
        newer = older = None
        if rows:
            first, last = rows[0][seq_index], rows[-1][seq_index]
            if (self.before is not None and more) or self.after is not None:
                newer = first
            if (self.before is None and more) or self.before is not None:
                older = last
        return rows, {"newer": newer, "older": older, "extra": self._keep()}

    def _keep(self) -> str:
        """Query parameters other than the cursor, for the links (already URL-encoded)."""
        from urllib.parse import urlencode

        kept = [(k, v) for k, v in self.query.multi_items() if k not in ("after", "before")]
        return ("&" + urlencode(kept)) if kept else ""


class UI:
    """The web view of one emulator app (``app.store``, ``app.stats()``, and ``app.recent``:
    the last requests as ``(time, method, path, query_string, status)``)."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.router = Router(
            routes=[
                Route(BASE, self.index),
                Route(BASE + "/", self.index),
                Route(BASE + "/contacts", self.contacts),
                Route(BASE + "/contacts/{id}", self.contact),
                Route(BASE + "/segments", self.segments),
                Route(BASE + "/segments/{id}", self.segment),
                Route(BASE + "/topics", self.topics),
                Route(BASE + "/topics/{id}", self.topic),
                Route(BASE + "/properties", self.properties),
                Route(BASE + "/imports", self.imports),
                Route(BASE + "/broadcasts", self.broadcasts),
                Route(BASE + "/broadcasts/{id}", self.broadcast),
                Route(BASE + "/requests", self.requests),
            ]
        )

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["method"] not in ("GET", "HEAD"):
            response: Response = self.render("error.html", status=405, message="The web view is read-only.")
            await response(scope, receive, send)
            return
        await self.router(scope, receive, send)

    # -- helpers ------------------------------------------------------------------------

    @property
    def store(self) -> Any:
        return self.app.store

    def read(self, sql: str, args: list[Any] | tuple = ()) -> list[tuple]:
        return self.store.read(sql, list(args))

    def render(self, template: str, status: int = 200, **context: Any) -> HTMLResponse:
        html = _env.get_template(template).render(base=BASE, **context)
        return HTMLResponse(html, status_code=status, headers=HEADERS)

    def not_found(self, what: str) -> HTMLResponse:
        return self.render("error.html", status=404, message=f"{what} not found.")

    def _details(self, seqs: list[int]) -> dict[int, dict[str, Any]]:
        """Property values, segments and topic subscriptions of the contacts ``seqs``."""
        out: dict[int, dict[str, Any]] = {s: {"properties": [], "segments": [], "topics": []} for s in seqs}
        if not seqs:
            return out
        marks = ",".join("?" * len(seqs))
        for cseq, key, raw in self.read(
            "SELECT v.contact_seq, p.key, v.value FROM contact_values v JOIN properties p"
            f" ON p.seq = v.property_seq WHERE v.contact_seq IN ({marks}) ORDER BY p.key",
            seqs,
        ):
            out[cseq]["properties"].append((key, _value(raw)))
        for cseq, sid, name in self.read(
            "SELECT m.contact_seq, s.id, s.name FROM memberships m JOIN segments s"
            f" ON s.seq = m.segment_seq WHERE m.contact_seq IN ({marks}) ORDER BY s.name",
            seqs,
        ):
            out[cseq]["segments"].append((sid, name))
        for cseq, tid, name, sub in self.read(
            "SELECT x.contact_seq, t.id, t.name, x.subscription FROM subscriptions x JOIN"
            f" topics t ON t.seq = x.topic_seq WHERE x.contact_seq IN ({marks}) ORDER BY t.name",
            seqs,
        ):
            out[cseq]["topics"].append((tid, name, sub))
        return out

    def _contact_rows(self, rows: list[tuple]) -> list[dict[str, Any]]:
        """rows of (seq, id, email, first_name, last_name, unsubscribed, created_at, ...)."""
        details = self._details([r[0] for r in rows])
        return [
            {
                "seq": r[0],
                "id": r[1],
                "email": r[2],
                "first_name": r[3],
                "last_name": r[4],
                "unsubscribed": bool(r[5]),
                "created_at": r[6],
                **details[r[0]],
                "extra": r[7:],
            }
            for r in rows
        ]

    def _count(self, sql: str, args: list[Any] | tuple = ()) -> int:
        return self.read(sql, args)[0][0]

    # -- pages --------------------------------------------------------------------------

    async def index(self, request: Request) -> HTMLResponse:
        counts = {
            "contacts": self._count("SELECT count(*) FROM contacts"),
            "segments": self._count("SELECT count(*) FROM segments"),
            "topics": self._count("SELECT count(*) FROM topics"),
            "properties": self._count("SELECT count(*) FROM properties"),
            "imports": self._count("SELECT count(*) FROM imports"),
            "broadcasts": self._count("SELECT count(*) FROM broadcasts"),
        }
        return self.render("index.html", counts=counts, stats=self.app.stats(), recent=self._recent(10))

    async def contacts(self, request: Request) -> HTMLResponse:
        pager = _Pager(request)
        q = (request.query_params.get("q") or "").strip()
        key = getattr(self.store, "email_key", str.lower)  # how this store keys emails
        q = key(q) if q else q
        cond, args, order = pager.sql("seq")
        conds = [cond] if cond else []
        if q:  # an email prefix, through the unique index on email_key
            conds.append("email_key >= ?")
            args.append(q)
            last = ord(q[-1]) + 1  # below q with its last character raised: every string
            if 0xD800 <= last <= 0xDFFF:  # that starts with q (surrogates can't be stored)
                last = 0xE000
            if last <= 0x10FFFF:
                conds.append("email_key < ?")
                args.append(q[:-1] + chr(last))
        where = (" WHERE " + " AND ".join(conds)) if conds else ""
        rows = self.read(
            "SELECT seq, id, email, first_name, last_name, unsubscribed, created_at"
            f" FROM contacts{where} {order}",
            args,
        )
        rows, nav = pager.page(rows)
        total = self._count("SELECT count(*) FROM contacts")
        return self.render(
            "contacts.html",
            contacts=self._contact_rows(rows),
            nav=nav,
            total=total,
            q=request.query_params.get("q") or "",
            path=BASE + "/contacts",
        )

    async def contact(self, request: Request) -> HTMLResponse:
        cid = request.path_params["id"]
        rows = self.read(
            "SELECT seq, id, email, first_name, last_name, unsubscribed, created_at"
            " FROM contacts WHERE id = ?",
            [cid],
        )
        if not rows:
            return self.not_found("Contact")
        return self.render("contact.html", contact=self._contact_rows(rows)[0])

    async def segments(self, request: Request) -> HTMLResponse:
        pager = _Pager(request)
        cond, args, order = pager.sql("s.seq")
        where = f" WHERE {cond}" if cond else ""
        rows = self.read(
            "SELECT s.seq, s.id, s.name, s.created_at, (SELECT count(*) FROM"
            " memberships m WHERE m.segment_seq = s.seq) FROM segments s"
            f"{where} {order}",
            args,
        )
        rows, nav = pager.page(rows)
        return self.render("segments.html", segments=rows, nav=nav, path=BASE + "/segments")

    async def segment(self, request: Request) -> HTMLResponse:
        found = self.read(
            "SELECT seq, id, name, created_at FROM segments WHERE id = ?", [request.path_params["id"]]
        )
        if not found:
            return self.not_found("Segment")
        sseq = found[0][0]
        pager = _Pager(request)
        cond, args, order = pager.sql("m.contact_seq")
        rows = self.read(
            "SELECT c.seq, c.id, c.email, c.first_name, c.last_name, c.unsubscribed, c.created_at"
            " FROM memberships m JOIN contacts c ON c.seq = m.contact_seq WHERE m.segment_seq = ?"
            + (f" AND {cond}" if cond else "")
            + f" {order}",
            [sseq, *args],
        )
        rows, nav = pager.page(rows)
        total = self._count("SELECT count(*) FROM memberships WHERE segment_seq = ?", [sseq])
        return self.render(
            "segment.html",
            segment=found[0],
            members=self._contact_rows(rows),
            nav=nav,
            total=total,
            path=f"{BASE}/segments/{found[0][1]}",
        )

    async def topics(self, request: Request) -> HTMLResponse:
        rows = self.read(
            "SELECT t.seq, t.id, t.name, t.description, t.default_subscription, t.visibility,"
            " t.created_at,"
            " (SELECT count(*) FROM subscriptions x WHERE x.topic_seq = t.seq"
            "  AND x.subscription = 'opt_in'),"
            " (SELECT count(*) FROM subscriptions x WHERE x.topic_seq = t.seq"
            "  AND x.subscription = 'opt_out')"
            " FROM topics t ORDER BY t.seq DESC"
        )
        return self.render("topics.html", topics=rows)

    async def topic(self, request: Request) -> HTMLResponse:
        found = self.read(
            "SELECT seq, id, name, description, default_subscription, visibility,"
            " created_at FROM topics WHERE id = ?",
            [request.path_params["id"]],
        )
        if not found:
            return self.not_found("Topic")
        tseq = found[0][0]
        pager = _Pager(request)
        cond, args, order = pager.sql("x.contact_seq")
        rows = self.read(
            "SELECT c.seq, c.id, c.email, c.first_name, c.last_name, c.unsubscribed, c.created_at,"
            " x.subscription FROM subscriptions x JOIN contacts c ON c.seq = x.contact_seq"
            " WHERE x.topic_seq = ?" + (f" AND {cond}" if cond else "") + f" {order}",
            [tseq, *args],
        )
        rows, nav = pager.page(rows)
        return self.render(
            "topic.html",
            topic=found[0],
            subscribers=self._contact_rows(rows),
            nav=nav,
            path=f"{BASE}/topics/{found[0][1]}",
        )

    async def properties(self, request: Request) -> HTMLResponse:
        rows = self.read(
            "SELECT p.seq, p.id, p.key, p.type, p.fallback_value, p.created_at,"
            " (SELECT count(*) FROM contact_values v WHERE v.property_seq = p.seq)"
            " FROM properties p ORDER BY p.key"
        )
        props = [(r[1], r[2], r[3], None if r[4] is None else _value(r[4]), r[5], r[6]) for r in rows]
        return self.render("properties.html", properties=props)

    async def imports(self, request: Request) -> HTMLResponse:
        pager = _Pager(request)
        cond, args, order = pager.sql("seq")
        rows = self.read(
            "SELECT seq, id, status, created_at, completed_at, total, created,"
            " updated, skipped, failed FROM imports" + (f" WHERE {cond}" if cond else "") + f" {order}",
            args,
        )
        rows, nav = pager.page(rows)
        return self.render("imports.html", imports=rows, nav=nav, path=BASE + "/imports")

    async def broadcasts(self, request: Request) -> HTMLResponse:
        return self.render("broadcasts.html", broadcasts=self.store.broadcast_rows())

    async def broadcast(self, request: Request) -> HTMLResponse:
        found = self.store.broadcast_rows(request.path_params["id"])
        return self.render("broadcast.html", b=found[0]) if found else self.not_found("Broadcast")

    def _recent(self, limit: int | None = None) -> list[dict[str, Any]]:
        recent = list(getattr(self.app, "recent", ()))
        recent.reverse()
        if limit is not None:
            recent = recent[:limit]
        return [
            {"time": _time(t), "method": m, "status": s, "path": p + ("?" + q.decode("latin-1") if q else "")}
            for t, m, p, q, s in recent
        ]

    async def requests(self, request: Request) -> HTMLResponse:
        return self.render(
            "requests.html",
            recent=self._recent(),
            capacity=getattr(getattr(self.app, "recent", None), "maxlen", 0),
            stats=self.app.stats(),
        )
