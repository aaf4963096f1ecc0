"""state/<encoder>.npz: atomic writes, plain numpy files, clear errors."""

from __future__ import annotations

import numpy as np
import pytest

from longtail.errors import InputError, ProjectError
from longtail.store.state_files import load_state, save_state, state_path
from longtail.strategies import select
from longtail.strategies._pool import Graph
from longtail.strategies.state import from_arrays, set_pool, to_arrays


def _state() -> dict:
    X = np.random.default_rng(0).normal(size=(120, 6)).astype(np.float32)
    state: dict = {}
    set_pool(state, "enc", fingerprint=3)
    select("coverage", 5, np.arange(120), rng=np.random.default_rng(0), vectors=X,
           state=state)
    return state


def test_saved_state_loads_back_with_its_graph(tmp_path):
    state = _state()
    assert load_state(tmp_path, "enc", from_arrays) is None
    save_state(tmp_path, "enc", to_arrays(state))
    path = tmp_path / "state" / "enc.npz"
    with np.load(path, allow_pickle=False) as npz:  # a plain numpy file, no pickle
        assert "__state__" in npz.files
    back = load_state(tmp_path, "enc", from_arrays)
    g = back["longtail.strategies"]["graph"]
    assert isinstance(g, Graph) and g.load_seconds is not None
    assert np.array_equal(g.nbr, state["longtail.strategies"]["graph"].nbr)
    assert back["longtail.pool"] == {"name": "enc", "fingerprint": "3"}
    assert sorted(p.name for p in path.parent.iterdir()) == ["enc.npz"]  # no temp left


def test_a_refused_save_writes_nothing_and_keeps_the_old_file(tmp_path):
    save_state(tmp_path, "enc", {"x": np.arange(3)})
    before = (tmp_path / "state" / "enc.npz").read_bytes()
    with pytest.raises(InputError, match="'bad'"):
        save_state(tmp_path, "enc", {"x": np.arange(4), "bad": np.array([None], dtype=object)})
    assert (tmp_path / "state" / "enc.npz").read_bytes() == before
    assert sorted(p.name for p in (tmp_path / "state").iterdir()) == ["enc.npz"]


def test_unreadable_file_is_a_project_error_naming_it(tmp_path):
    path = state_path(tmp_path, "enc")
    path.parent.mkdir()
    path.write_bytes(b"PK\x03\x04 not really a zip")
    with pytest.raises(ProjectError, match="enc.npz"):
        load_state(tmp_path, "enc", from_arrays)
    save_state(tmp_path, "enc", {"x": np.arange(3)})  # npz, but not a strategy state
    with pytest.raises(ProjectError, match="delete the file"):
        load_state(tmp_path, "enc", from_arrays)


@pytest.mark.parametrize("name", ["../x", "a/b", "", ".."])
def test_encoder_names_cannot_leave_the_state_folder(tmp_path, name):
    with pytest.raises(InputError):
        save_state(tmp_path, name, {"x": np.arange(2)})
    assert not (tmp_path / "state").exists()
