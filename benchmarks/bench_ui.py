"""Time to render the emulator's web view (/_emulator/ui) pages for a large team.

    .venv/bin/python benchmarks/bench_ui.py [--contacts 1000000]

Fills an in-memory emulator directly through SQL (N contacts, all in one segment, half with
a topic subscription, a third with a property value), then times one GET of each page
in-process (Starlette's TestClient, no network). The first page also pays the templates'
compilation. Prints figures; asserts nothing about time.
"""

from __future__ import annotations

import argparse
import time
import warnings

from resend_iac.emulator import create_app
from resend_iac.emulator.store import new_id, now_text


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--contacts", type=int, default=100_000)
    n = ap.parse_args().contacts
    app = create_app(":memory:", rate_limit=0)
    st = app.store
    seg = st.create_segment("everyone")
    top = st.create_topic("news", "opt_in", None, "public")
    st.create_property("plan", "string", None)
    ts = now_text()
    start = time.perf_counter()
    with st.write() as c:
        c.executemany(
            "INSERT INTO contacts (id, email, email_key, first_name, last_name, unsubscribed,"
            " created_at) VALUES (?, ?, ?, 'First', 'Last', 0, ?)",
            ((new_id(), f"p{i}@example.com", f"p{i}@example.com", ts) for i in range(n)),
        )
        c.execute("INSERT INTO memberships SELECT 1, seq, ? FROM contacts", (ts,))
        c.execute(
            "INSERT INTO subscriptions SELECT seq, 1, 'opt_in', ? FROM contacts WHERE seq % 2 = 0", (ts,)
        )
        c.execute("INSERT INTO contact_values SELECT seq, 1, '\"pro\"' FROM contacts WHERE seq % 3 = 0")
    print(f"{n:,} contacts filled in {time.perf_counter() - start:.1f} s")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from starlette.testclient import TestClient

        client = TestClient(app)
    for path in (
        "",
        "/contacts",
        "/contacts?after=500",
        "/contacts?q=p9999",
        "/segments",
        f"/segments/{seg}",
        f"/segments/{seg}?after=1000",
        "/topics",
        f"/topics/{top}",
        "/properties",
        "/imports",
        "/requests",
    ):
        start = time.perf_counter()
        r = client.get("/_emulator/ui" + path)
        ms = (time.perf_counter() - start) * 1000
        assert r.status_code == 200, (path, r.status_code)
        print(f"GET /_emulator/ui{path:<55} {ms:8.1f} ms")


if __name__ == "__main__":
    main()
