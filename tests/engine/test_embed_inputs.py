"""`embed` never gives a sample the vector of a placeholder: rows a text encoder cannot
read (no text) are refused by name and nothing is written."""

from __future__ import annotations

import numpy as np
import pytest

from longtail.errors import InputError
from tests.reads import read


class _TextEncoder:
    """A stand-in text encoder that records every text it was asked to encode."""

    name, needs, dim = "minilm", "text", 4

    def __init__(self) -> None:
        self.seen: list[str] = []

    def encode(self, batch: dict) -> np.ndarray:
        self.seen += list(batch["text"])
        return np.ones((len(batch["text"]), self.dim), dtype=np.float32)

    def config(self) -> dict:
        return {}


def test_embed_refuses_rows_ingested_without_text_and_names_them(project, tmp_path):
    (tmp_path / "a.csv").write_text("id,text\na1,my card is lost\na2,top up failed\n")
    (tmp_path / "b.csv").write_text("id,text\nb1,where is my money\nb2,   \n")
    project.ingest(tmp_path / "a.csv", id="id", text="text")
    project.ingest(tmp_path / "b.csv", id="id")  # no --text: the column is metadata
    enc = _TextEncoder()
    with pytest.raises(InputError) as e:
        project.embed("minilm", encoder_impl=enc)
    assert "2 sample(s) have no text" in str(e.value)
    assert "'b1'" in str(e.value) and "'b2'" in str(e.value)
    assert enc.seen == [] and read(project.store, lambda u: u.vectors.info("minilm")) is None

    # Given their text, every row is embedded from its own text, none from "".
    project.ingest(tmp_path / "b.csv", id="id", text="text", update=True)
    with pytest.raises(InputError, match=r"row 4 \(id 'b2'\)"):  # blank text is no text
        project.embed("minilm", encoder_impl=enc)
    (tmp_path / "b.csv").write_text("id,text\nb1,where is my money\nb2,card declined\n")
    project.ingest(tmp_path / "b.csv", id="id", text="text", update=True)
    out = project.embed("minilm", encoder_impl=enc)
    assert out.embedded == 4 and "" not in enc.seen
