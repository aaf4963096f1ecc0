"""PostgreSQL's bulk path for the catalog's sample rows: one `COPY ... FROM STDIN` per
ingest batch, inside the caller's transaction.

Why: a multi-row INSERT costs the server a parse, a plan and a bind per statement and
the client a Python tuple per row; COPY streams rows to the table in one command. The
payload is COPY's text format built with Arrow kernels (no Python object per row), so
the catalog lane of the ingest keeps off the interpreter lock the main thread needs.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from sqlalchemy import Connection
from sqlalchemy.exc import DBAPIError

from longtail.errors import InputError

# COPY's text format: a backslash, tab, newline or carriage return inside a value must
# be escaped (the backslash first, so the escapes are not escaped again).
_ESCAPES = (("\\", "\\\\"), ("\t", "\\t"), ("\n", "\\n"), ("\r", "\\r"))
_NEEDS_ESCAPE = r"[\\\t\n\r]"
COLUMNS = ("row", "external_id", "content_hash", "batch_id", "split", "pos")


def _text(values: pa.Array) -> pa.Array:
    """A string array's values escaped for COPY's text format (most ids need nothing)."""
    if pc.any(pc.match_substring_regex(values, _NEEDS_ESCAPE)).as_py():
        for old, new in _ESCAPES:
            values = pc.replace_substring(values, old, new)
    return values


def sample_rows(batch_id: int, rows: Sequence[int], ids: Sequence[str] | pa.Array,
                hashes: Sequence[str], pos: Sequence[int] | None,
                eval_rows: Sequence[int] = ()) -> bytes:
    """COPY text of catalog sample rows (row, external_id, content_hash, batch_id, split,
    pos): the rows of `eval_rows` in the eval split, the others in the pool, `pos` NULL
    when None. An id holding a NUL character (which PostgreSQL text cannot store) is an
    InputError naming it."""
    id_arr = ids if isinstance(ids, pa.Array) else pa.array(ids, pa.string())
    if pc.any(pc.match_substring(id_arr, "\x00")).as_py():
        bad = next(e for e in id_arr.to_pylist() if "\x00" in e)
        raise InputError(f"sample id {bad!r} holds a NUL character (\\x00), which a "
                         "PostgreSQL catalog cannot store; remove it")
    row_np = np.asarray(rows, dtype=np.int64)
    split = (pc.if_else(pa.array(np.isin(row_np, np.asarray(eval_rows, dtype=np.int64))),
                        "eval", "pool") if len(eval_rows) else "pool")
    last = (pa.array(np.asarray(pos, dtype=np.int64)).cast(pa.string()) if pos is not None
            else pa.array(["\\N"] * len(row_np), pa.string()))
    line = pc.binary_join_element_wise(
        pa.array(row_np).cast(pa.string()), _text(id_arr),
        _text(pa.array(hashes, pa.string())), str(int(batch_id)), split,
        pc.binary_join_element_wise(last, "", "\n"), "\t")
    # The joined lines lie end to end in the array's data buffer: that is the payload.
    offsets = np.frombuffer(line.buffers()[1], dtype=np.int32)
    start, end = int(offsets[line.offset]), int(offsets[line.offset + len(line)])
    return line.buffers()[2].slice(start, end - start).to_pybytes()  # one copy, not two


def copy_in(conn: Connection, table: str, columns: Sequence[str], payload: bytes) -> None:
    """`COPY table (columns) FROM STDIN` of `payload` (COPY text) on `conn`'s driver
    connection, inside the transaction `conn` has open. A driver error comes back as
    SQLAlchemy's (an IntegrityError for a repeated key), as from any other statement."""
    import psycopg

    q = conn.dialect.identifier_preparer.quote
    sql = f"COPY {q(table)} ({', '.join(q(c) for c in columns)}) FROM STDIN"
    raw = conn.connection.driver_connection
    try:
        with raw.cursor() as cur, cur.copy(sql) as copy:
            copy.write(payload)
    except psycopg.Error as e:
        raise DBAPIError.instance(sql, None, e, psycopg.Error) from None
