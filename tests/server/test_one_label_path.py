"""One label path: an answer through the service and a row of `longtail import-labels`
go through the same use case, so they accept and refuse the same labels with the same
message, and leave the same events (agreeing answers of other annotators included)."""

from __future__ import annotations

from fastapi.testclient import TestClient
from sqlalchemy import select
from typer.testing import CliRunner

from longtail.cli import app as cli
from longtail.engine import users
from longtail.server.app import create_app
from longtail.server.settings import ServerSettings
from longtail.store import schema as s

from .conftest import make_store

runner = CliRunner()
# (kind, label) answers in order; each by ann unless a third element names someone.
CASES = [("label", "card"), ("label", "Card"), ("label", "cardz"), ("label", "transfer"),
         ("unsure", None), ("skip", None), ("label", "billing"), ("label", "card", "bob"),
         ("label", "bill ing", "bob")]


def _events(store) -> list[tuple]:
    a = s.annotations
    with store.engine.connect() as conn:
        got = conn.execute(select(a.c.row, a.c.label, a.c.kind, a.c.annotator, a.c.source)
                           .order_by(a.c.id)).all()
    return [tuple(x) for x in got]


def _cell(kind: str, label: str | None) -> str:
    return {"label": label, "skip": "__skip__", "unsure": "__unsure__"}[kind]


def test_service_and_cli_import_accept_and_refuse_the_same(tmp_path):
    served = make_store(tmp_path / "served", round_sizes=(10,))
    imported = make_store(tmp_path / "imported", round_sizes=(10,))
    tokens = {n: users.add_user(served, n)[1] for n in ("ann", "bob")}
    c = TestClient(create_app(served.root, ServerSettings(lease_ttl=60, overlap=2)))
    outcomes = []
    for i, case in enumerate(CASES):
        kind, label, who = (*case, "ann")[:3]
        head = {"Authorization": f"Bearer {tokens[who]}"}
        task = c.post("/tasks/lease", headers=head).json()["task"]
        r = c.post(f"/tasks/{task['id']}/label", headers=head,
                   json={"kind": kind, "label": label, "seconds": 1.0})
        f = tmp_path / f"case{i}.csv"
        f.write_text(f"id,label,annotator,seconds\n{task['sample_id']},{_cell(kind, label)},"
                     f"{who},1.0\n")
        out = runner.invoke(cli, ["import-labels", str(f), "-p", str(imported.root),
                                  "--annotator", "annotator", "--seconds", "seconds"])
        outcomes.append((case, r.status_code, out.exit_code))
        if r.status_code != 200:
            # Refused by both, with the same reason: the allowed labels listed.
            assert r.status_code == 422 and out.exit_code == 2, (case, r.text, out.output)
            assert r.json()["allowed"] == ["billing", "card", "transfer"]
            for said in (r.json()["detail"], " ".join(out.output.split())):
                assert "outside the project's label set" in said
                assert "allowed: billing, card, transfer" in said
            assert repr(label) in r.json()["detail"]
    accepted = [case for case, http, code in outcomes if http == 200 and code == 0]
    refused = [case for case, http, code in outcomes if http == 422 and code == 2]
    assert len(accepted) + len(refused) == len(CASES), outcomes
    assert refused == [("label", "Card"), ("label", "cardz"), ("label", "bill ing", "bob")]
    # The same events, in the same order: bob's "card" agreeing with ann's on sample 0
    # (overlap 2: the service hands him task 0 next) is kept by both paths.
    assert _events(served) == _events(imported)
    ev = _events(served)
    assert [(r, lab, who) for r, lab, k, who, _ in ev if r == 0] == [(0, "card", "ann"),
                                                                     (0, "card", "bob")]
    assert [k for _, _, k, _, _ in ev] == ["label", "label", "unsure", "skip", "label", "label"]
    served.close()
    imported.close()


def test_an_annotator_repeating_their_label_is_not_recorded_twice(tmp_path):
    """A file importing ann's label again changes nothing, through the same path the
    service's answers take."""
    store = make_store(tmp_path / "p")
    token = users.add_user(store, "ann")[1]
    c = TestClient(create_app(store.root, ServerSettings(lease_ttl=60)))
    head = {"Authorization": f"Bearer {token}"}
    task = c.post("/tasks/lease", headers=head).json()["task"]
    assert c.post(f"/tasks/{task['id']}/label", headers=head, json={"label": "card"}).status_code == 200
    f = tmp_path / "again.csv"
    f.write_text(f"id,label,annotator\n{task['sample_id']},card,ann\n")
    out = runner.invoke(cli, ["import-labels", str(f), "-p", str(store.root),
                              "--annotator", "annotator", "--json"])
    assert out.exit_code == 0, out.output
    assert '"unchanged": 1' in out.output and len(_events(store)) == 1
    store.close()
