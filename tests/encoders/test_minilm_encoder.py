import json
import time

import numpy as np
import pytest

from longtail.encoders import get_encoder
from longtail.errors import InputError


def test_missing_sentence_transformers_says_install_text_extra(monkeypatch):
    import longtail.encoders.minilm as minilm

    monkeypatch.setattr(minilm.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(InputError, match=r"pip install 'longtail\[text\]'"):
        get_encoder("minilm")


def test_config_round_trip_without_loading():
    pytest.importorskip("sentence_transformers")
    enc = get_encoder("minilm", batch_size=16)
    assert enc.needs == "text" and enc.dim == 384
    assert enc._model is None  # lazy: nothing loaded until the first encode
    again = get_encoder("minilm", **json.loads(json.dumps(enc.config())))
    assert again.config() == {"batch_size": 16, "model_path": None, "n_threads": None}


def test_embeds_offline_unit_norm_and_similar_texts_are_close():
    pytest.importorskip("sentence_transformers")
    enc = get_encoder("minilm", n_threads=1)
    texts = [
        "I lost my credit card, how do I block it?",
        "My card was stolen, please freeze it.",
        "What is the weather like in Paris tomorrow?",
    ]
    started = time.perf_counter()
    X = enc.encode({"text": texts, "metadata": [{}] * 3})
    assert time.perf_counter() - started < 120
    assert X.shape == (3, 384) and X.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(X, axis=1), 1.0, atol=1e-5)
    similarity = X @ X.T
    assert similarity[0, 1] > similarity[0, 2] + 0.2
    assert similarity[0, 1] > similarity[1, 2] + 0.2
    assert enc.encode({"text": [], "metadata": []}).shape == (0, 384)
    with pytest.raises(InputError, match="row 1"):
        enc.encode({"text": ["fine", None], "metadata": [{}, {}]})
