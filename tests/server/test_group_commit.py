"""Group commit: the service runs the requests that arrive together in one transaction.
A refused request leaves nothing written, the others still commit; a batch whose
commit fails acknowledges nobody; under concurrent load over HTTP leases stay
exclusive and every acknowledged label is in the catalog."""

from __future__ import annotations

import asyncio
from collections import Counter
from contextlib import contextmanager

import httpx
import pytest
from sqlalchemy import select

from longtail.engine import tasks, users
from longtail.server.app import create_app
from longtail.server.settings import ServerSettings
from longtail.store import schema as s
from tests.reads import read

from .conftest import LABELS, make_store

POLICY = tasks.TaskPolicy(lease_ttl=60)
NOW = 1_000_000.0


def _events(store) -> list[tuple]:
    a = s.annotations
    with store.engine.connect() as conn:
        return [tuple(x) for x in conn.execute(select(a.c.row, a.c.label, a.c.annotator)
                                               .order_by(a.c.id))]


def _held(store) -> dict[int, int]:
    t = s.task_leases
    with store.engine.connect() as conn:
        return {int(r): int(u) for r, u in conn.execute(
            select(t.c.row, t.c.user_id).where(t.c.state == "leased"))}


def test_a_refused_request_undoes_only_its_own_writes(store, people):
    ann, bob, cat = (people[n][0] for n in ("ann", "bob", "cat"))
    tasks.lease(store, ann, POLICY, now=NOW)  # ann holds task 0

    def writes_then_fails(uow):
        uow.labels.add([{"row": 5, "label": "card", "source": "human", "annotator": "x"}])
        raise tasks.TaskConflict("refused after writing")

    got = tasks.run_batch(store, [
        lambda uow: tasks.lease_in(uow, bob, POLICY, NOW),
        lambda uow: tasks.answer_in(uow, bob, 0, "label", "card", None, NOW),  # ann's task
        writes_then_fails,
        lambda uow: tasks.answer_in(uow, ann, 0, "label", "cardz", None, NOW),  # not allowed
        lambda uow: tasks.answer_in(uow, ann, 0, "label", "billing", 2.0, NOW),
        lambda uow: tasks.lease_in(uow, cat, POLICY, NOW),
    ])
    ok = [r[0] for r in got]
    assert ok == [True, False, False, False, True, True]
    assert isinstance(got[1][1], tasks.TaskConflict) and "another annotator" in str(got[1][1])
    assert isinstance(got[3][1], tasks.LabelNotAllowed) and got[3][1].allowed == LABELS
    assert (got[0][1].id, got[5][1].id) == (1, 2)
    assert got[4][1].label == "billing"
    # Only the accepted requests' writes: ann's label, bob's and cat's leases.
    assert _events(store) == [(0, "billing", "ann")]
    assert _held(store) == {1: bob.id, 2: cat.id}


def test_a_batch_commits_once(store, people):
    """The service's writer: one commit for a whole batch of requests, however many (a
    SQLAlchemy `commit` event counted on the store's engine)."""
    from sqlalchemy import event

    who = [people[n][0] for n in ("ann", "bob", "cat")]
    seen: list[int] = []

    def committed(_conn) -> None:  # noqa: ANN001
        seen.append(1)

    event.listen(store.engine, "commit", committed)
    try:
        got = tasks.run_batch(store, [lambda uow, u=u: tasks.lease_in(uow, u, POLICY, NOW)
                                      for u in who]
                              + [lambda uow: tasks.answer_in(uow, who[0], 0, "label", "card",
                                                              1.0, NOW)])
    finally:
        event.remove(store.engine, "commit", committed)
    assert [ok for ok, _ in got] == [True] * 4 and len(seen) == 1


def test_a_batch_whose_commit_fails_acknowledges_nobody(store, people, monkeypatch):
    ann, bob = people["ann"][0], people["bob"][0]
    real = store.unit_of_work

    @contextmanager
    def failing_commit():
        with real() as uow:
            yield uow
            raise OSError("disk I/O error")  # as the commit would: the block rolls back

    monkeypatch.setattr(store, "unit_of_work", failing_commit)
    got = tasks.run_batch(store, [lambda uow: tasks.lease_in(uow, ann, POLICY, NOW),
                                  lambda uow: tasks.lease_in(uow, bob, POLICY, NOW)])
    assert [ok for ok, _ in got] == [False, False]
    assert all("disk I/O error" in str(e) for _, e in got)
    monkeypatch.setattr(store, "unit_of_work", real)
    assert _held(store) == {}


def test_concurrent_annotators_over_http_with_overlap(tmp_path, db_url):
    """12 annotators at once, overlap 2, over the ASGI app (the group commit on the
    event loop for SQLite, on its thread for PostgreSQL): nobody labels a sample twice,
    no sample gets more than 2 labels, every acknowledged label is in the catalog
    and nothing else, and the round closes."""
    store = make_store(tmp_path / "p", n=30, round_sizes=(30,), db_url=db_url)
    tokens = {f"u{i}": users.add_user(store, f"u{i}")[1] for i in range(12)}
    app = create_app(store.root, ServerSettings(lease_ttl=60, overlap=2))
    acked: list[tuple[int, str]] = []
    closed: list[int] = []

    async def annotator(http, name, token):
        head = {"Authorization": f"Bearer {token}"}
        while True:
            task = (await http.post("/tasks/lease", headers=head)).json()["task"]
            if task is None:
                return
            r = await http.post(f"/tasks/{task['id']}/label", headers=head,
                                json={"label": LABELS[task["id"] % 3], "seconds": 1.0})
            assert r.status_code == 200, r.text
            acked.append((task["id"], name))
            if r.json()["round_closed"]:
                closed.append(r.json()["round_id"])

    async def main():
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as http:
            await asyncio.gather(*[annotator(http, n, t) for n, t in tokens.items()])

    asyncio.run(main())
    app.state.service.writer.close()
    ev = _events(store)
    assert sorted((r, who) for r, _, who in ev) == sorted(acked)
    assert len(acked) == 60 and len(set(acked)) == 60
    assert max(Counter(r for r, _ in acked).values()) == 2
    assert closed == [1]
    assert read(store, lambda u: u.rounds.list())[0]["status"] == "closed"
    store.close()


def test_an_expired_lease_comes_back_within_a_second_of_its_ttl(store, people):
    ann, bob = people["ann"][0], people["bob"][0]
    policy = tasks.TaskPolicy(lease_ttl=10)
    assert tasks.lease(store, ann, policy, now=NOW).id == 0
    assert tasks.lease(store, bob, policy, now=NOW + 5).id == 1
    # Past ann's TTL by more than the reclaim interval: task 0 is free again.
    assert tasks.lease(store, people["cat"][0], policy,
                       now=NOW + 10 + tasks.RECLAIM_EVERY).id == 0


def test_the_event_loop_is_not_blocked_while_another_writer_holds_the_catalog(store, people):
    """SQLite: a batch waits (without blocking the loop) while an admin import or a
    round being planned holds the writer lock in a worker thread, then runs."""
    if store.dialect != "sqlite":
        pytest.skip("PostgreSQL's batches run on their writer thread")
    import threading

    ann = people["ann"][0]
    gc = tasks.GroupCommit(store)
    release = threading.Event()
    held = threading.Event()

    def other_writer():
        with tasks.exclusive(store):
            held.set()
            release.wait(5)

    async def main():
        t = threading.Thread(target=other_writer)
        t.start()
        held.wait(5)
        leased = asyncio.ensure_future(gc.run(lambda uow: tasks.lease_in(uow, ann, POLICY, NOW)))
        ticks = 0
        for _ in range(10):  # the loop goes on running other work meanwhile
            await asyncio.sleep(0.01)
            ticks += 1
        assert not leased.done() and ticks == 10
        release.set()
        task = await asyncio.wait_for(leased, 5)
        t.join()
        return task

    assert asyncio.run(main()).id == 0


def _commits(store) -> list[int]:
    """A counter of the catalog's commits from now on."""
    from sqlalchemy import event

    seen = [0]
    event.listen(store.engine, "commit", lambda _conn: seen.__setitem__(0, seen[0] + 1))
    return seen


def test_concurrent_requests_share_commits_on_the_writer_pool(tmp_path, db_url):
    """40 annotators lease at once, then answer at once: far fewer commits than
    requests (the batches), on PostgreSQL spread over the pool's writers (a window of
    more than `max_batch` requests is); every lease distinct, every answer
    acknowledged, and the round that their answers finish is closed once, said by
    exactly one answer."""
    store = make_store(tmp_path / "p", n=40, round_sizes=(40,), db_url=db_url)
    people = [users.add_user(store, f"u{i}")[0] for i in range(40)]
    tasks.prepare(store, POLICY)
    gc = tasks.GroupCommit(store, writers=3, max_batch=8)
    threads: set[str] = set()
    commits = _commits(store)

    def leasing(user):
        def fn(uow):
            threads.add(__import__("threading").current_thread().name)
            return tasks.lease_in(uow, user, POLICY, NOW)
        return fn

    async def main():
        leased = await asyncio.gather(*[gc.run(leasing(u), u.id) for u in people])
        lease_commits = commits[0]
        answered = await asyncio.gather(*[
            gc.run(lambda uow, u=u, t=t: tasks.answer_in(uow, u, t.id, "label", "card", 1.0,
                                                         NOW), u.id)
            for u, t in zip(people, leased, strict=True)])
        return leased, lease_commits, answered

    try:
        leased, lease_commits, answered = asyncio.run(main())
    finally:
        gc.close()
    assert sorted(t.id for t in leased) == list(range(40))
    assert 1 <= lease_commits < 40 / 2 and commits[0] - lease_commits < 40 / 2
    if store.dialect == "postgresql":
        assert len(threads) >= 2 and all(n.startswith("longtail-writer-") for n in threads)
    assert sorted(r for r, _, _ in _events(store)) == list(range(40))
    assert [a.round_closed for a in answered].count(True) == 1
    assert read(store, lambda u: u.rounds.list())[0]["status"] == "closed"
    store.close()


def test_a_batch_rolled_back_by_a_deadlock_runs_again(store, people, monkeypatch):
    """PostgreSQL rolls one of two deadlocked transactions back (SQLSTATE 40P01): the
    batch runs again and its requests are acknowledged, each written once."""
    ann, bob = people["ann"][0], people["bob"][0]
    real = store.unit_of_work
    tries = [0]

    class Deadlock(Exception):
        orig = type("PgError", (), {"sqlstate": "40P01"})()

    @contextmanager
    def deadlocks_once():
        with real() as uow:
            yield uow
            tries[0] += 1
            if tries[0] == 1:
                raise Deadlock("deadlock detected")  # as the commit would: rolled back

    monkeypatch.setattr(store, "unit_of_work", deadlocks_once)
    got = tasks.run_batch(store, [lambda uow: tasks.lease_in(uow, ann, POLICY, NOW),
                                  lambda uow: tasks.lease_in(uow, bob, POLICY, NOW)])
    monkeypatch.setattr(store, "unit_of_work", real)
    assert [ok for ok, _ in got] == [True, True] and tries[0] == 2
    assert _held(store) == {0: ann.id, 1: bob.id}


def test_the_writers_thread_checkpoints_the_wal_not_the_batches(tmp_path, people, store):
    """SQLite: a batch's commit never checkpoints the write-ahead log (it would hold up
    every request waiting on the event loop); the writer's own thread copies it into
    the database file."""
    import shutil
    import sqlite3
    import threading
    import time

    if store.dialect != "sqlite":
        pytest.skip("the write-ahead log is SQLite's")
    ann = people["ann"][0]
    seen = []

    def autocheckpoint(uow):
        seen.append(uow.conn.exec_driver_sql("PRAGMA wal_autocheckpoint").scalar())

    async def work(writer):
        for _ in range(3):
            task = await writer.run(lambda uow: tasks.lease_in(uow, ann, POLICY, NOW))
            await writer.run(lambda uow, t=task.id: tasks.answer_in(
                uow, ann, t, "label", "card", 1.0, NOW))
        await writer.run(autocheckpoint)

    before = set(threading.enumerate())
    writer = tasks.GroupCommit(store, checkpoint_every=0.05)
    try:
        asyncio.run(work(writer))
        assert seen == [0]
        # Two checkpoints after the last commit (one may have begun before it).
        done, deadline = writer.checkpoints, time.time() + 20
        while writer.checkpoints < done + 2 and time.time() < deadline:
            time.sleep(0.05)
        # The database file alone (no WAL beside it) holds the answers: checkpointed.
        copy = tmp_path / "alone.db"
        shutil.copy(store.root / "catalog.db", copy)
        with sqlite3.connect(copy) as conn:
            assert conn.execute("SELECT count(*) FROM annotations").fetchone()[0] == 3
    finally:
        writer.close()
    assert not [t for t in threading.enumerate()
                if t.name == "longtail-checkpoint" and t not in before]  # closed: stopped


def test_a_direct_statements_error_is_sqlalchemys(store):
    """The service's statements run straight on the driver (`store.repo_base.Direct`);
    a database error still reaches callers as SQLAlchemy's, with the driver's error as
    `orig` (the batch's deadlock retry reads its SQLSTATE there), and rolls back."""
    from sqlalchemy.exc import IntegrityError

    with pytest.raises(IntegrityError) as got:
        with store.unit_of_work() as uow:  # one event: the direct path
            uow.labels.add([{"row": 10_000, "label": "card", "source": "human",
                             "annotator": "ann"}])  # no such sample
    assert got.value.orig is not None
    assert _events(store) == []


def test_a_failed_checkpoint_is_tried_again(store, people, monkeypatch):
    """A checkpoint that fails (the disk, say) does not end the writer's checkpoints:
    with none, the write-ahead log would grow for as long as the service runs."""
    import time

    if store.dialect != "sqlite":
        pytest.skip("the write-ahead log is SQLite's")
    real, calls = store.checkpoint_wal, []

    def flaky():
        calls.append(1)
        if len(calls) == 1:
            raise OSError("disk I/O error")
        real()

    monkeypatch.setattr(store, "checkpoint_wal", flaky)
    ann = people["ann"][0]
    writer = tasks.GroupCommit(store, checkpoint_every=0.05)
    try:
        asyncio.run(writer.run(lambda uow: tasks.lease_in(uow, ann, POLICY, NOW)))
        deadline = time.time() + 20
        while writer.checkpoints < 1 and time.time() < deadline:
            time.sleep(0.05)
        assert len(calls) >= 2 and writer.checkpoints >= 1
    finally:
        writer.close()


def _leasing(user):
    return lambda uow: tasks.lease_in(uow, user, POLICY, NOW)


def test_requests_arriving_within_the_window_wake_the_writer_once(store, people):
    """The writer thread (PostgreSQL's; `thread=True` runs it on any catalog) is handed
    requests at most once per `window`: requests arriving one by one within a window
    commit together in one transaction, so at a steady rate the thread wakes once per
    window, not once per request; the first request after a quiet spell goes at once
    (light load waits for nobody)."""
    who = [people[n][0] for n in ("ann", "bob", "cat", "root")]
    window = 0.5
    gc = tasks.GroupCommit(store, thread=True, window=window)
    commits = _commits(store)

    async def main():
        loop = asyncio.get_running_loop()
        t0, first_at = loop.time(), []
        first = asyncio.ensure_future(gc.run(_leasing(who[0]), who[0].id))
        first.add_done_callback(lambda _f: first_at.append(loop.time() - t0))
        rest = []
        for user in who[1:]:  # 30 ms apart: each alone in its own batch without the window
            await asyncio.sleep(0.03)
            rest.append(asyncio.ensure_future(gc.run(_leasing(user), user.id)))
        leased = [await first] + list(await asyncio.gather(*rest))
        return leased, first_at[0]

    try:
        leased, first_after = asyncio.run(main())
    finally:
        gc.close()
    assert sorted(t.id for t in leased) == [0, 1, 2, 3]
    assert commits[0] == 2  # the first request's batch, then the other three's
    assert first_after < window
    assert _held(store) == {t.id: u.id for t, u in zip(leased, who, strict=True)}


def test_closing_the_writer_commits_the_requests_waiting_for_their_window(store, people):
    """A shutdown with requests still waiting for their window: they are handed to the
    writer at once and committed before it stops, each answered; nothing is lost."""
    ann, bob, cat = (people[n][0] for n in ("ann", "bob", "cat"))
    gc = tasks.GroupCommit(store, thread=True, window=60.0)

    async def main():
        first = await gc.run(_leasing(ann), ann.id)  # goes at once: the window starts
        waiting = [asyncio.ensure_future(gc.run(_leasing(u), u.id)) for u in (bob, cat)]
        await asyncio.sleep(0.05)
        assert not any(f.done() for f in waiting)  # held for the window (60 s)
        gc.close()
        return [first] + list(await asyncio.wait_for(asyncio.gather(*waiting), 10))

    leased = asyncio.run(main())
    assert sorted(t.id for t in leased) == [0, 1, 2]
    assert _held(store) == {0: ann.id, 1: bob.id, 2: cat.id}


def test_service_statements_run_prepared_on_postgresql(store, people):
    """PostgreSQL: the service's per-request statements (`store.repo_base.Direct`) run as
    statements prepared once per connection, straight on libpq inside the transaction
    psycopg began; rows come back as SQLAlchemy reads them (NULLs, floats, text), a
    database error is SQLAlchemy's with the driver's error and SQLSTATE, and it rolls back
    the whole transaction."""
    from sqlalchemy.exc import IntegrityError

    from longtail.store import repos_service

    if store.dialect != "postgresql":
        pytest.skip("prepared statements on libpq are PostgreSQL's")
    ann = people["ann"][0]
    tasks.lease(store, ann, POLICY, now=NOW)
    with store.unit_of_work() as uow:
        uow.conn.exec_driver_sql("SELECT 1")  # the transaction is open
        params = {"u": ann.id, "at": NOW}
        got = repos_service._ME_PG.first(uow.conn, params)
        want = dict(uow.conn.execute(repos_service._ME_PG.stmt, params).mappings().first())
        assert got == want and got["done_at"] is None and got["expires_at"] == NOW + 60
        assert uow.settings.get("label_set") == LABELS
        prepared = [n for (n,) in uow.conn.exec_driver_sql(
            "SELECT name FROM pg_prepared_statements")]
        assert any(n.startswith("lt_direct_") for n in prepared)
    with pytest.raises(IntegrityError) as err:
        with store.unit_of_work() as uow:
            uow.labels.add([{"row": 3, "label": "card", "source": "human",
                             "annotator": "ann"}])
            uow.labels.add([{"row": 10_000, "label": "card", "source": "human",
                             "annotator": "ann"}])  # no such sample
    assert err.value.orig.sqlstate == "23503"
    assert _events(store) == []


def test_a_lease_is_two_statements_on_postgresql(tmp_path, db_url, monkeypatch):
    """PostgreSQL: a lease in a batch is two round trips, the user's row with the lease
    they hold and the claim, which returns where its sample's text is (every statement
    is a round trip on the writer's one thread). Counted as the batch's statements for
    four leases less those for two."""
    from sqlalchemy import event

    from longtail.store import repo_base

    if db_url is None:
        pytest.skip("round trips are PostgreSQL's (SQLite reads the sample on its own)")
    store = make_store(tmp_path / "p", n=20, round_sizes=(20,), db_url=db_url)
    who = [users.add_user(store, f"u{i}")[0] for i in range(7)]
    tasks.prepare(store, POLICY)
    seen = [0]
    real = repo_base.Direct.run

    def counted(self, conn, params=None):
        seen[0] += 1
        return real(self, conn, params)

    def core(*_a, **_k):
        seen[0] += 1

    monkeypatch.setattr(repo_base.Direct, "run", counted)
    event.listen(store.engine, "before_cursor_execute", core)
    try:
        tasks.run_batch(store, [_leasing(who[0])])  # the reclaim of this second, once
        counts = []
        for group in (who[1:3], who[3:7]):
            before = seen[0]
            got = tasks.run_batch(store, [_leasing(u) for u in group])
            assert all(ok for ok, _ in got)
            counts.append(seen[0] - before)
        tasks_ = [t for _, t in got]
    finally:
        event.remove(store.engine, "before_cursor_execute", core)
    assert counts[1] - counts[0] == 2 * 2
    assert [t.sample_id for t in tasks_] == [f"s{t.id}" for t in tasks_]
    assert all(t.text == f"text number {t.id}" for t in tasks_)
    store.close()


def test_a_slow_batch_holds_up_only_its_own_users(store, people):
    """With several writers, a window's batch goes to an idle writer while another
    writer's batch is still running (a loaded machine, a slow round trip): other users
    are not held up by it; a user with a request in that running batch has their next
    one follow it on the same writer, after it, never beside it."""
    import threading

    if store.dialect != "postgresql":
        pytest.skip("SQLite has one writer at a time (its lock)")
    ann, bob = people["ann"][0], people["bob"][0]
    gc = tasks.GroupCommit(store, window=0.0)  # the service's writers (WRITERS)
    release, order = threading.Event(), []

    def slow(uow):
        order.append(("ann", 1, threading.current_thread().name))
        assert release.wait(10)
        return tasks.lease_in(uow, ann, POLICY, NOW)

    def then(user, n):
        def fn(uow):
            order.append((user.name, n, threading.current_thread().name))
            return tasks.lease_in(uow, user, POLICY, NOW)
        return fn

    async def main():
        first = asyncio.ensure_future(gc.run(slow, ann.id))
        while not order:  # ann's first request is running (and waiting)
            await asyncio.sleep(0.01)
        second = asyncio.ensure_future(gc.run(then(ann, 2), ann.id))
        other = await asyncio.wait_for(gc.run(then(bob, 1), bob.id), 10)
        assert not first.done() and not second.done()  # bob was not held up
        release.set()
        return await first, await second, other

    try:
        a1, a2, b1 = asyncio.run(main())
    finally:
        release.set()
        gc.close()
    assert [(u, n) for u, n, _ in order] == [("ann", 1), ("bob", 1), ("ann", 2)]
    assert order[0][2] == order[2][2] != order[1][2]  # ann's two on one writer
    assert a1.id == a2.id  # the second asked again for the task the first leased
    assert b1.id != a1.id
