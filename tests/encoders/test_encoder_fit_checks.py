"""Encoders say what they need: a pool the encoder cannot use is refused up front."""

import pytest

from longtail.encoders import check_encoder_fits, get_encoder, preview_samples, suggest_embed
from longtail.errors import InputError


def _samples(n=30, text=None, numeric=True):
    return [(r, f"s{r}", text(r) if text else None,
             {"f0": float(r), "f1": float(r % 3), "digit": r % 10} if numeric else {"tag": "x"})
            for r in range(n)]


def test_minilm_on_a_pool_without_text_names_the_text_column_and_suggests_tabular():
    preview = preview_samples(_samples())
    with pytest.raises(InputError) as err:
        check_encoder_fits("minilm", preview)
    message = str(err.value)
    assert "--text" in message and "--encoder tabular" in message and "f0, f1" in message
    assert "digit" in message  # not label-like by name: listed as numeric metadata


def test_minilm_on_vectors_only_says_there_is_nothing_to_embed():
    preview = preview_samples(_samples(numeric=False), has_vectors=True)
    with pytest.raises(InputError, match="precomputed"):
        check_encoder_fits("minilm", preview)
    empty_text = preview_samples(_samples(text=lambda r: "  ", numeric=False))
    with pytest.raises(InputError, match="--text") as err:
        check_encoder_fits("minilm", empty_text)
    assert "tabular" not in str(err.value)  # no numeric metadata to suggest it for


def test_minilm_accepts_a_pool_with_text_and_others_accept_anything():
    check_encoder_fits("minilm", preview_samples(_samples(text=lambda r: f"t{r}")))
    check_encoder_fits("tabular", preview_samples(_samples()))
    with pytest.raises(InputError, match="unknown encoder"):
        check_encoder_fits("bert", preview_samples(_samples()))


def test_suggest_embed_fits_the_data():
    assert suggest_embed(preview_samples(_samples(text=lambda r: "hi"))) == \
        "longtail embed --encoder minilm"
    assert suggest_embed(preview_samples(_samples())) == "longtail embed --encoder tabular"
    assert suggest_embed(preview_samples(_samples(), has_vectors=True)) == ""
    assert "--text" in suggest_embed(preview_samples(_samples(numeric=False)))
    # A label column alone is not numeric metadata worth embedding.
    labels_only = [(r, f"s{r}", None, {"label": r % 2}) for r in range(5)]
    assert "tabular" not in suggest_embed(preview_samples(labels_only))


def test_minilm_announces_loading_the_model_before_it_loads(monkeypatch):
    st = pytest.importorskip("sentence_transformers")
    events = []

    class FakeModel:
        def __init__(self, path, device):
            events.append("constructed")

        def get_embedding_dimension(self):
            return 4

    monkeypatch.setattr(st, "SentenceTransformer", FakeModel)
    enc = get_encoder("minilm", model_path="/nowhere")
    enc.on_phase = events.append
    assert enc.dim == 4
    assert events == ["loading model", "constructed"]


def test_tabular_fit_announces_its_pass():
    events = []
    enc = get_encoder("tabular")
    enc.on_phase = events.append
    enc.fit([{"metadata": [{"a": 1.0}, {"a": 2.0}]}])
    assert len(events) == 1 and "tabular" in events[0]


def test_tabular_on_a_text_pool_without_numbers_suggests_minilm():
    preview = preview_samples(_samples(text=lambda r: f"t{r}", numeric=False))
    with pytest.raises(InputError, match="needs numeric metadata.*tag.*--encoder minilm"):
        check_encoder_fits("tabular", preview)
    labels_only = preview_samples([(r, f"s{r}", None, {"label": 1}) for r in range(3)],
                                  has_vectors=True)
    with pytest.raises(InputError, match="precomputed"):
        check_encoder_fits("tabular", labels_only)
