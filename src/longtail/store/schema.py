"""The catalog's tables, declared once, with the schema version beside them.

SQLAlchemy Core only, so the same code runs on SQLite (the embedded default) and
PostgreSQL. Row numbers (`samples.row`) are dense, 0-based and never reused: they are
the address of a sample's vector in every vector set.

Version 2 (issue 19's label schema): `annotations.kind` ('label' | 'skip' | 'unsure'),
`models.meta` (optional JSON about a saved learner), `rounds.status` wide enough for
'cancelled'. The upgrade of a version-1 catalog is `catalog.MIGRATIONS[2]`.

Version 3 (issue 21's service): `users` (bearer tokens kept as SHA-256 hashes) and
`task_leases` (who holds which task of an open round); `catalog.MIGRATIONS[3]` adds
both to an older catalog.
"""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import (
    Column,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    text,
)
from sqlalchemy.types import TypeDecorator

SCHEMA_VERSION = 8  # 3: dataset_versions (issue 20); 4: users, task_leases (the service);
# 5: compute_runs (issue 29's compute ledger); 6: audit_log (the service's admin actions);
# 7: samples' text and metadata move to column files, `samples.pos` (issue 31);
# 8: PostgreSQL: no foreign key from samples.batch_id, ix_samples_split partial

# Kinds of annotation event: only a 'label' event gives a row a class; 'skip' and
# 'unsure' are recorded in the same append-only history but never become a class.
EVENT_KINDS = ("label", "skip", "unsure")
ROUND_STATUSES = ("open", "closed", "cancelled")


class JSONText(TypeDecorator):
    """JSON kept as text with Python's json module on every dialect.

    PostgreSQL's own `json` type rejects NaN and Infinity, which round logs and metrics
    can hold, while SQLite keeps them: text read and written by one serialiser gives
    both dialects the same values back (and keeps key order)."""

    impl = Text
    cache_ok = True

    def process_bind_param(self, value: Any, dialect: Any) -> str:  # noqa: ARG002
        return json.dumps(value)

    def process_result_value(self, value: str | None, dialect: Any) -> Any:  # noqa: ARG002
        # Catalogs made before this type declared the columns JSON, which SQLite gives
        # numeric affinity: a JSON number was stored, and comes back, as a number.
        if value is None or isinstance(value, (int, float)):
            return value
        return json.loads(value)


metadata = MetaData()

settings = Table(
    "settings",
    metadata,
    Column("key", String(64), primary_key=True),
    Column("value", JSONText, nullable=False),
)

ingest_batches = Table(
    "ingest_batches",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("source_file", Text, nullable=False),
    # SHA-256 over the file's rows in order (each row's id hash and content hash), not
    # over its bytes: the same rows give the same checksum whatever the batch size.
    Column("file_sha256", String(64), nullable=False),
    Column("created_at", String(32), nullable=False),
    Column("n_new", Integer, nullable=False),
    Column("n_updated", Integer, nullable=False),
    Column("n_unchanged", Integer, nullable=False),
    Column("mapping", JSONText, nullable=False),
)

samples = Table(
    "samples",
    metadata,
    Column("row", Integer, primary_key=True, autoincrement=False),
    Column("external_id", Text, nullable=False, unique=True),
    Column("content_hash", String(32), nullable=False),
    # The ingest batch that wrote the row. No foreign key (version 8): PostgreSQL checks
    # one per inserted row with a query of its own, most of the server's work in a bulk
    # ingest (~5 of ~9 CPU seconds a million rows), while the only writer, the ingest,
    # takes the id from the batch row it inserts in the same transaction, and batches
    # are never deleted. SQLite catalogs made before keep theirs (dropping it rebuilds
    # the table); it costs SQLite an index probe a row.
    Column("batch_id", Integer, nullable=False),
    # "pool" samples may be selected and trained on; "eval" samples never are.
    Column("split", String(8), nullable=False),
    # Text and metadata (JSON text) live beside the catalog, in the batch's column files
    # (store/columns.py): `pos` is the sample's position there; NULL when the batch
    # stored neither (version 7; before, `text` and `meta` columns held them here).
    Column("pos", Integer),
)
# The rows outside the pool (eval: a few thousand) are what the catalog looks up by
# split; the pool is read as their complement. PostgreSQL indexes only those (version
# 8): a full index costs a btree insert per ingested row (~1.2 of ~4 server CPU seconds
# a million rows) for a key it can never select by (`split != 'pool'`).
Index("ix_samples_split", samples.c.split, postgresql_where=samples.c.split != "pool")

vector_sets = Table(
    "vector_sets",
    metadata,
    Column("name", String(64), primary_key=True),
    Column("dim", Integer, nullable=False),
    Column("dtype", String(16), nullable=False),
    # Vectors of rows [0, n_rows) are valid; the files may hold more (an interrupted
    # write), which is invisible until a transaction moves n_rows past them.
    Column("n_rows", Integer, nullable=False),
    Column("config", JSONText, nullable=False),
)

rounds = Table(
    "rounds",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("created_at", String(32), nullable=False),
    Column("strategy", String(64), nullable=False),
    Column("params", JSONText, nullable=False),
    Column("model_id", Integer, ForeignKey("models.id")),
    Column("status", String(16), nullable=False),  # open | closed | cancelled
    Column("n_labels", Integer, nullable=False),
    Column("log", JSONText, nullable=False),
)

round_items = Table(
    "round_items",
    metadata,
    Column("round_id", Integer, ForeignKey("rounds.id"), primary_key=True),
    Column("row", Integer, ForeignKey("samples.row"), primary_key=True),
    Column("position", Integer, nullable=False),
    Column("kind", String(8), nullable=False),  # selected | control | eval
)
Index("ix_round_items_row", round_items.c.row)

annotations = Table(
    "annotations",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("row", Integer, ForeignKey("samples.row"), nullable=False),
    Column("label", Text, nullable=False),
    Column("annotator", Text),
    Column("seconds", Float),
    Column("created_at", String(32), nullable=False),
    Column("source", String(8), nullable=False),  # human | import | oracle
    Column("round_id", Integer, ForeignKey("rounds.id")),
    Column("kind", String(8), nullable=False, server_default=text("'label'")),  # EVENT_KINDS
)
Index("ix_annotations_row", annotations.c.row, annotations.c.id)

models = Table(
    "models",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("created_at", String(32), nullable=False),
    Column("learner", String(128), nullable=False),
    Column("encoder", String(64), nullable=False),
    Column("n_labels", Integer, nullable=False),
    Column("classes", JSONText, nullable=False),
    Column("path", Text, nullable=False),
    Column("fit_seconds", Float, nullable=False),
    Column("meta", JSONText),  # optional: how the learner was saved, its parameters, ...
)

metrics = Table(
    "metrics",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("model_id", Integer, ForeignKey("models.id")),
    Column("created_at", String(32), nullable=False),
    Column("eval_set", String(128), nullable=False),  # "managed:v3" or "file:<sha>"
    Column("n_labels", Integer, nullable=False),
    Column("name", String(64), nullable=False),
    Column("value", Float, nullable=False),
    Column("lo", Float),
    Column("hi", Float),
)

# Each change of the managed eval set's labeled content (growth, relabel, rebuild) is a
# new version; metrics name the version they were measured on ("managed:v3").
eval_versions = Table(
    "eval_versions",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("created_at", String(32), nullable=False),
    Column("n_labeled", Integer, nullable=False),
    Column("fingerprint", String(64), nullable=False, unique=True),
)


# -- issue 20: dataset versions (schema version 3; repository: store/repos_versions.py) --
# A version names a state of the dataset without copying it: the samples as the ingest
# batches left them (count and a fingerprint over the batches' checksums), the labels
# as the events up to `max_event_id` resolve under `policy`, and the eval version.
# Every round commits one; so does a change of the consensus policy.
dataset_versions = Table(
    "dataset_versions",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("created_at", String(32), nullable=False),
    Column("reason", String(16), nullable=False),  # round | policy | manual | export
    Column("round_id", Integer, ForeignKey("rounds.id")),
    Column("max_event_id", Integer, nullable=False),
    Column("n_samples", Integer, nullable=False),
    Column("max_batch_id", Integer, nullable=False),
    Column("samples_fingerprint", String(64), nullable=False),
    Column("policy", JSONText, nullable=False),
    Column("eval_version_id", Integer, ForeignKey("eval_versions.id")),
    Column("n_labeled", Integer, nullable=False),
    Column("labels_fingerprint", String(64), nullable=False),
)
# -- the annotation service (version 4) ---------------------------------------------------

USER_ROLES = ("admin", "annotator")
LEASE_STATES = ("open", "leased", "done")

users = Table(
    "users",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("name", String(128), nullable=False, unique=True),
    Column("role", String(16), nullable=False),  # USER_ROLES
    # SHA-256 of a random 32-byte token: a slow hash buys nothing for a secret with
    # 256 bits of entropy, and a lookup by hash costs one index probe per request.
    Column("token_sha256", String(64), nullable=False, unique=True),
    Column("created_at", String(32), nullable=False),
)

# One row per (task, slot): a round's item needs `overlap` answers, one per slot. A slot
# is 'open' (in the queue), 'leased' (held by user_id until expires_at) or 'done'.
task_leases = Table(
    "task_leases",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("round_id", Integer, ForeignKey("rounds.id"), nullable=False),
    Column("row", Integer, ForeignKey("samples.row"), nullable=False),
    Column("slot", Integer, nullable=False),
    Column("position", Integer, nullable=False),  # the item's position in its round
    Column("state", String(8), nullable=False),  # LEASE_STATES
    Column("user_id", Integer, ForeignKey("users.id")),
    Column("leased_at", Float),  # epoch seconds
    Column("expires_at", Float),
    Column("done_at", Float),
)
# The queue: open slots of one round in priority order (an index range scan per claim).
Index("ix_task_leases_queue", task_leases.c.state, task_leases.c.round_id,
      task_leases.c.position, task_leases.c.slot)
Index("ix_task_leases_row", task_leases.c.row, task_leases.c.user_id)
Index("ix_task_leases_slot", task_leases.c.round_id, task_leases.c.row, task_leases.c.slot,
      unique=True)
Index("ix_task_leases_user", task_leases.c.user_id, task_leases.c.state)

# -- the compute ledger (version 5, issue 29; repository: store/repos_costs.py) ----------
# One row per metered command: its totals and, in `phases`, each phase's CPU, wall and
# GPU seconds and peak memory (longtail.costs.ledger). Money is not stored: it is
# derived at the rates in force when the ledger is read, so a rate change re-prices all.
compute_runs = Table(
    "compute_runs",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("created_at", String(32), nullable=False),
    Column("command", String(32), nullable=False),
    Column("round_id", Integer),  # the round the command made, when it made one
    Column("cpu_seconds", Float, nullable=False),
    Column("wall_seconds", Float, nullable=False),
    Column("gpu_seconds", Float, nullable=False),
    Column("peak_rss_mb", Float, nullable=False),
    Column("phases", JSONText, nullable=False),
)


# -- the audit log (version 6, issue 27; repository: store/repos_service.py AuditRepo) ---
# One row per admin action: users added, removed or given a new token, label files and
# webhooks imported, rounds planned. Who (a user name, or `cli` for a command run on the
# machine), what, and its details (never a token).
audit_log = Table(
    "audit_log",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("created_at", String(32), nullable=False),
    Column("actor", String(200), nullable=False),
    Column("action", String(64), nullable=False),
    Column("detail", JSONText, nullable=False),
)
