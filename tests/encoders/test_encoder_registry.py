import json

import pytest

from longtail.encoders import ENCODERS, get_encoder
from longtail.errors import InputError


def test_registry_names():
    assert set(ENCODERS) == {"precomputed", "minilm", "tabular", "pixels", "pixels-raw", "torch"}


def test_unknown_encoder_lists_valid_names():
    with pytest.raises(InputError) as err:
        get_encoder("bert")
    message = str(err.value)
    assert "'bert'" in message
    for name in ("precomputed", "minilm", "tabular"):
        assert name in message


def test_bad_parameter_is_input_error():
    with pytest.raises(InputError, match="tabular"):
        get_encoder("tabular", colums=["a"])


def test_precomputed_encode_says_vectors_come_at_ingest():
    enc = get_encoder("precomputed")
    assert enc.needs == "none"
    with pytest.raises(InputError, match="--vector-prefix"):
        enc.encode({"text": ["a"], "metadata": [{}]})


def test_precomputed_dim_and_config_round_trip():
    enc = get_encoder("precomputed", dim=384)
    assert enc.dim == 384
    again = get_encoder(enc.name, **json.loads(json.dumps(enc.config())))
    assert again.dim == 384
    with pytest.raises(InputError):
        get_encoder("precomputed").dim  # noqa: B018


def test_every_encoder_config_is_json():
    for name in ("precomputed", "tabular"):
        enc = get_encoder(name)
        json.dumps(enc.config())
        assert get_encoder(name, **enc.config()).config() == enc.config()
