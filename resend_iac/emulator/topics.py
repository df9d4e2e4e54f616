"""Topics and per-contact subscriptions: the routes ``/topics`` and ``/contacts/{id}/topics``."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from starlette.requests import Request

from resend_iac.emulator.contacts import parse_topic_refs
from resend_iac.emulator.db import StoreCore
from resend_iac.emulator.errors import (
    SUBSCRIPTIONS,
    VISIBILITIES,
    invalid,
    missing,
    new_id,
    not_found,
    now_text,
)
from resend_iac.emulator.wire import (
    Response,
    RouteTable,
    json_body,
    json_response,
    list_body,
    newer_page,
    opt_str,
    req_str,
)

if TYPE_CHECKING:
    from resend_iac.emulator.app import EmulatorApp


class TopicsData(StoreCore):
    """The topics and each contact's recorded subscriptions."""

    SCHEMA = """
CREATE TABLE IF NOT EXISTS topics (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    name TEXT NOT NULL,
    description TEXT,
    default_subscription TEXT NOT NULL,
    visibility TEXT NOT NULL,
    created_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS subscriptions (
    contact_seq INTEGER NOT NULL,
    topic_seq INTEGER NOT NULL,
    subscription TEXT NOT NULL,
    created_at TEXT NOT NULL,
    PRIMARY KEY (contact_seq, topic_seq)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS subscriptions_topic ON subscriptions (topic_seq);
"""
    TABLES = ("topics", "subscriptions")
    TOPIC_COLS = "id, name, description, default_subscription, visibility, created_at"

    def create_topic(self, name: str, default: str, description: str | None, visibility: str) -> str:
        with self.write() as c:
            tid = new_id()
            c.execute(
                "INSERT INTO topics (id, name, description, default_subscription, visibility,"
                " created_at) VALUES (?, ?, ?, ?, ?, ?)",
                (tid, name, description, default, visibility, now_text()),
            )
            return tid

    @staticmethod
    def _topic_dict(r: tuple) -> dict[str, Any]:
        return {
            "id": r[0],
            "name": r[1],
            "description": r[2],
            "default_subscription": r[3],
            "visibility": r[4],
            "created_at": r[5],
        }

    def get_topic(self, tid: str) -> dict[str, Any]:
        row = self.read_one(f"SELECT {self.TOPIC_COLS} FROM topics WHERE id = ?", (tid,))
        if row is None:
            raise not_found("Topic")
        return {"object": "topic", **self._topic_dict(row)}

    def list_topics(self, page: dict) -> tuple[list[dict], bool]:
        rows, more = self._page("topics", self.TOPIC_COLS, "", [], page)
        return [self._topic_dict(r) for r in rows], more

    def update_topic(self, tid: str, changes: dict[str, Any]) -> None:
        with self.write() as c:
            row = c.execute("SELECT default_subscription FROM topics WHERE id = ?", (tid,)).fetchone()
            if row is None:
                raise not_found("Topic")
            if "default_subscription" in changes:
                if changes.pop("default_subscription") != row[0]:
                    raise invalid("The `default_subscription` of a topic cannot be changed after creation.")
            if changes:
                cols = ", ".join(f"{k} = ?" for k in changes)
                c.execute(f"UPDATE topics SET {cols} WHERE id = ?", (*changes.values(), tid))

    def delete_topic(self, tid: str) -> None:
        """Drops the topic's subscriptions. Unknown id: 404."""
        with self.write() as c:
            seq = self._seq(c, "topics", tid, "Topic")
            c.execute("DELETE FROM subscriptions WHERE topic_seq = ?", (seq,))
            c.execute("DELETE FROM topics WHERE seq = ?", (seq,))

    def list_contact_topics(self, ref: str, page: dict) -> tuple[list[dict], bool]:
        """Only topics with a recorded subscription (unset ones follow the topic's default)."""
        cseq = self.contact_row(ref)[0]
        rows, more = self._page(
            "subscriptions x JOIN topics t ON t.seq = x.topic_seq",
            "t.id, t.name, t.description, x.subscription, x.created_at",
            "x.contact_seq = ?",
            [cseq],
            page,
            seq_col="x.topic_seq",
            cursor_table="topics",
        )
        return [
            {"id": r[0], "name": r[1], "description": r[2], "subscription": r[3], "created_at": r[4]}
            for r in rows
        ], more

    def update_contact_topics(self, ref: str, topics: list[tuple[str, str]]) -> str:
        with self.write() as c:
            row = self._contact_row(c, ref)
            if row is None:
                raise not_found("Contact")
            resolved = self._topic_seqs(c, topics)
            ts = now_text()
            for tseq, sub in resolved:
                c.execute(
                    "INSERT INTO subscriptions VALUES (?, ?, ?, ?) ON CONFLICT"
                    " (contact_seq, topic_seq) DO UPDATE SET subscription = excluded.subscription",
                    (row[0], tseq, sub, ts),
                )
            self.touch((row[0],))
            return row[1]


# -- routes ------------------------------------------------------------------------------


async def create_topic(app: EmulatorApp, request: Request) -> Response:
    body = await json_body(request)
    name = req_str(body, "name", max_len=50)
    if body.get("default_subscription") is None:
        raise missing("default_subscription")
    default = body["default_subscription"]
    if default not in SUBSCRIPTIONS:
        raise invalid("The `default_subscription` must be `opt_in` or `opt_out`.")
    description = opt_str(body, "description", max_len=200) if "description" in body else None
    visibility = body.get("visibility", "private")  # given, it must be one of the two (OAS enum)
    if not isinstance(visibility, str) or visibility not in VISIBILITIES:
        raise invalid("The `visibility` must be `public` or `private`.")
    tid = app.store.create_topic(name, default, description, visibility)
    return json_response({"object": "topic", "id": tid}, 201)


async def list_topics(app: EmulatorApp, request: Request) -> Response:
    data, more = app.store.list_topics(newer_page(app, request))
    return json_response(list_body(data, more))


async def get_topic(app: EmulatorApp, request: Request) -> Response:
    return json_response(app.store.get_topic(request.path_params["id"]))


async def update_topic(app: EmulatorApp, request: Request) -> Response:
    tid = request.path_params["id"]
    body = await json_body(request)
    changes: dict[str, Any] = {}
    if "name" in body:
        changes["name"] = req_str(body, "name", max_len=50)
    if "description" in body:
        changes["description"] = opt_str(body, "description", max_len=200)
    if "visibility" in body:
        if body["visibility"] not in VISIBILITIES:
            raise invalid("The `visibility` must be `public` or `private`.")
        changes["visibility"] = body["visibility"]
    if "default_subscription" in body:
        changes["default_subscription"] = body["default_subscription"]
    app.store.update_topic(tid, changes)
    return json_response({"object": "topic", "id": tid})


async def delete_topic(app: EmulatorApp, request: Request) -> Response:
    tid = request.path_params["id"]
    app.store.delete_topic(tid)
    return json_response({"object": "topic", "id": tid, "deleted": True})


async def list_contact_topics(app: EmulatorApp, request: Request) -> Response:
    data, more = app.store.list_contact_topics(request.path_params["id"], newer_page(app, request))
    return json_response(list_body(data, more))


async def update_contact_topics(app: EmulatorApp, request: Request) -> Response:
    body = await json_body(request, allow_list=True)
    if isinstance(body, dict):  # the OAS form {"topics": [...]}
        if body.get("topics") is None:
            raise missing("topics")
        body = body["topics"]
    topics = parse_topic_refs(body)
    cid = app.store.update_contact_topics(request.path_params["id"], topics)
    return json_response(
        {
            "object": "contact_topics",
            "id": cid,
            "contact_id": cid,
            "topics": [{"id": t, "subscription": s} for t, s in topics],
        }
    )


ROUTES: RouteTable = [
    ("/topics", {"POST": create_topic, "GET": list_topics}),
    ("/topics/{id}", {"GET": get_topic, "PATCH": update_topic, "DELETE": delete_topic}),
    ("/contacts/{id}/topics", {"GET": list_contact_topics, "PATCH": update_contact_topics}),
]
