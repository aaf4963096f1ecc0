"""`init --dtype float16` (issue 31): the project's vectors are stored as float16 (half
the disk), scores are computed in float32 blocks, and a round picks what float32 picks."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from longtail.cli import app
from longtail.store import Store
from tests.conftest import make_pool, write_pool_csv

runner = CliRunner()


def ok(args: list[str]):
    r = runner.invoke(app, args, terminal_width=200)
    assert r.exit_code == 0, (args, r.output)
    return r


def _round(tmp_path: Path, name: str, init: list[str]) -> tuple[set[str], str, int]:
    proj = str(tmp_path / name)
    X, y = make_pool(400, seed=5)
    y[80:] = ""  # 80 labeled rows, the rest to select from
    ok(["init", proj, "--eval-rate", "0.1", *init])
    ok(["ingest", str(write_pool_csv(tmp_path / f"{name}.csv", X, y)), "-p", proj,
        "--vector-prefix", "v", "--label", "truth"])
    ok(["train", "-p", proj])
    r = ok(["query", "-p", proj, "-n", "40", "--strategy", "margin", "--json"])
    out = json.loads(r.stdout)
    picked = {i for i, k in zip(out["ids"], out["kinds"], strict=True) if k == "selected"}
    store = Store.open(proj)
    try:
        with store.reading() as uow:
            info = uow.vectors.info("precomputed")
        nbytes = sum(p.stat().st_size for p in (Path(proj) / "vectors").rglob("*.npy"))
    finally:
        store.close()
    return picked, info["dtype"], nbytes


def test_init_dtype_float16_stores_half_and_selects_the_same(tmp_path: Path):
    picked32, dtype32, bytes32 = _round(tmp_path, "f32", [])
    picked16, dtype16, bytes16 = _round(tmp_path, "f16", ["--dtype", "float16"])
    assert (dtype32, dtype16) == ("float32", "float16")
    assert bytes16 < 0.6 * bytes32
    assert len(picked16 & picked32) >= 0.9 * len(picked32)
