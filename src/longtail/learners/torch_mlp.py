"""A torch learner: an MLP on vectors with dropout, warm-started between rounds, early
stopping on a held-out labeled split, and MC-dropout posteriors for BALD-style scores.

Optional (`pip install 'longtail[torch]'`, the CPU wheel pinned as the Makefile does);
nothing imports torch until an MLP is built. Saved without pickle: each parameter as an
array beside the architecture spec (`state_dict` / `from_state_dict`, used by
`learners.persist`).
"""

from __future__ import annotations

import hashlib
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin

from longtail.errors import InputError

FORMAT = "longtail.torch-mlp/1"
CHUNK = 4096  # rows per forward pass when predicting
FEATURE_CACHE_CELLS = 1 << 24  # body outputs kept for reuse (64 MiB of float32)


def load_torch() -> Any:
    try:
        import torch
    except ImportError:  # pragma: no cover - the extra is installed by `make test`
        raise InputError("the mlp learner needs torch: pip install 'longtail[torch]'") from None
    return torch


class TorchMLP(ClassifierMixin, BaseEstimator):
    """Vectors → ``hidden`` ReLU units (dropout ``dropout``) → class logits, trained with
    AdamW on cross-entropy for at most ``epochs`` passes, stopping after ``patience``
    epochs without improvement on a ``holdout`` share of the labels, picked by a hash of each row (when
    every class has at least 2 labels and there are 30 or more; else the last epoch is
    kept). With ``warm_start`` a refit on the same classes starts from the learned
    weights. ``max_samples`` (None: no bound) caps the training rows seen per fit, so
    ``epochs`` shrink as labels grow. ``posterior_samples(X, m)`` gives m dropout-on
    passes: (m, n, C), reusing the body's output of ``predict_proba`` on the same rows.

    O(epochs·n·d·hidden) to fit; predict in batches of 4,096 rows.
    """

    FORMAT = FORMAT

    def __init__(self, hidden: int = 256, dropout: float = 0.3, epochs: int = 200,
                 lr: float = 1e-3, weight_decay: float = 1e-4, batch_size: int = 64,
                 patience: int = 15, holdout: float = 0.15, mc_samples: int = 20,
                 warm_start: bool = True, seed: int = 0, max_samples: int | None = None):
        self.hidden = hidden
        self.dropout = dropout
        self.epochs = epochs
        self.lr = lr
        self.weight_decay = weight_decay
        self.batch_size = batch_size
        self.patience = patience
        self.holdout = holdout
        self.mc_samples = mc_samples
        self.warm_start = warm_start
        self.seed = seed
        self.max_samples = max_samples

    # -- the network ----------------------------------------------------------------

    def _build(self, d: int, c: int) -> Any:
        torch = load_torch()
        torch.manual_seed(self.seed)
        return torch.nn.Sequential(
            torch.nn.Linear(d, self.hidden), torch.nn.ReLU(), torch.nn.Dropout(self.dropout),
            torch.nn.Linear(self.hidden, c))

    def _split(self, X: np.ndarray, y_idx: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(train, validation) positions. A row is held out by a hash of its values, not
        by position: the same labeled sample stays on the same side in every round, so a
        warm-started network is never validated on rows it trained on last round. Each
        class keeps at least one training row."""
        n = len(y_idx)
        counts = np.bincount(y_idx)
        if n < 30 or counts.min() < 2 or self.holdout <= 0:
            return np.arange(n), np.arange(0)
        salt = str(self.seed).encode()
        u = np.array([int.from_bytes(hashlib.blake2b(row.tobytes(), digest_size=8,
                                                     salt=salt[:16]).digest(), "little")
                      for row in X], dtype=np.float64) / 2.0 ** 64
        val = u < self.holdout
        for k in np.flatnonzero(np.bincount(y_idx[~val], minlength=len(counts)) == 0):
            rows = np.flatnonzero(y_idx == k)
            val[rows[np.argmin(u[rows])]] = False  # its one training row
        return np.flatnonzero(~val), np.flatnonzero(val)

    def _epochs(self, n_train: int) -> int:
        """At most ``epochs`` passes, and at most ``max_samples`` training rows seen in
        all (at least one pass): a bound on the fit's cost that large label sets reach
        first, where each pass already holds many steps."""
        if not self.max_samples:
            return int(self.epochs)
        return int(max(1, min(self.epochs, -(-int(self.max_samples) // max(n_train, 1)))))

    def fit(self, X: Any, y: Any, sample_weight: Any = None) -> TorchMLP:
        """Train on X (n, d) float and labels y (n,). ``sample_weight`` (n,), optional:
        each row's weight in the loss; rows weighted below 1 (pseudo-labels) are never
        held out for early stopping, which judges the human labels alone."""
        torch = load_torch()
        X = np.asarray(X, dtype=np.float32)
        y = np.asarray(y)
        if X.ndim != 2 or len(X) != len(y) or len(X) == 0:
            raise InputError(f"mlp: X must be (n, d) with n = len(y) > 0, got {X.shape} "
                             f"and {len(y)} labels")
        classes, y_idx = np.unique(y, return_inverse=True)
        same = (self.warm_start and getattr(self, "net_", None) is not None
                and np.array_equal(getattr(self, "classes_", np.array([])), classes)
                and self.n_features_in_ == X.shape[1])
        if not same:
            self.net_ = self._build(X.shape[1], len(classes))
        self.classes_ = classes
        self.n_features_in_ = X.shape[1]
        if len(classes) == 1:
            self.n_epochs_ = 0
            return self
        self._features_cache = None  # the weights change: cached features are stale
        w = None if sample_weight is None else np.asarray(sample_weight, dtype=np.float32)
        if w is not None and w.shape != (len(X),):
            raise InputError(f"mlp: sample_weight must be ({len(X)},), got {w.shape}")
        if w is None or np.all(w >= 1.0):
            tr, va = self._split(X, y_idx)
        else:  # validate on the full-weight rows only; the others always train
            full = np.flatnonzero(w >= 1.0)
            tr_f, va_f = self._split(X[full], y_idx[full])
            tr = np.sort(np.concatenate([full[tr_f], np.flatnonzero(w < 1.0)]))
            va = full[va_f]
        Xt, yt = torch.from_numpy(X), torch.from_numpy(y_idx.astype(np.int64))
        wt = None if w is None else torch.from_numpy(w)
        opt = torch.optim.AdamW(self.net_.parameters(), lr=self.lr,
                                weight_decay=self.weight_decay)
        loss_fn = torch.nn.CrossEntropyLoss()
        gen = torch.Generator().manual_seed(self.seed)
        best, best_state, since = np.inf, None, 0
        epochs_run = 0
        for epoch in range(1, self._epochs(len(tr)) + 1):
            epochs_run = epoch
            self.net_.train()
            order = torch.from_numpy(tr)[torch.randperm(len(tr), generator=gen)]
            for start in range(0, len(order), self.batch_size):
                idx = order[start : start + self.batch_size]
                opt.zero_grad()
                out = self.net_(self._augment(Xt[idx], gen))
                if wt is None:
                    loss_fn(out, yt[idx]).backward()
                else:
                    per_row = torch.nn.functional.cross_entropy(out, yt[idx], reduction="none")
                    (per_row * wt[idx]).sum().div(wt[idx].sum().clamp_min(1e-12)).backward()
                opt.step()
            if len(va):
                self.net_.eval()
                with torch.inference_mode():
                    val = float(loss_fn(self.net_(Xt[va]), yt[va]))
                if val < best - 1e-4:
                    best, since = val, 0
                    best_state = {k: v.clone() for k, v in self.net_.state_dict().items()}
                else:
                    since += 1
                    if since >= self.patience:
                        break
        if best_state is not None:
            self.net_.load_state_dict(best_state)
        self.n_epochs_ = epochs_run
        return self

    def _augment(self, xb: Any, gen: Any) -> Any:
        """A training batch as the network sees it; the MLP uses it as is (the CNN
        shifts images)."""
        return xb

    def _features(self, X: np.ndarray) -> Any:
        """The body's output (the layers before the first dropout) for X, in eval mode,
        computed once per chunk of rows: `query` asks for the probabilities and then for
        the MC-dropout samples of the same rows, and the body (the convolutions, for the
        CNN) is nearly all the cost. Cached by a digest of the rows' bytes, up to
        FEATURE_CACHE_CELLS values; cleared by `fit`."""
        torch = load_torch()
        key = hashlib.blake2b(X.tobytes(), digest_size=16).hexdigest() + str(X.shape)
        cache = getattr(self, "_features_cache", None)
        if cache is None:
            cache = self._features_cache = {}
        if key in cache:
            return cache[key]
        body, _ = self._split_at_dropout()
        body.eval()
        with torch.inference_mode():
            h = torch.cat([body(torch.from_numpy(X[s : s + CHUNK]))
                           for s in range(0, len(X), CHUNK)]) if len(X) else None
        if h is not None:
            used = sum(v.numel() for v in cache.values())
            if used + h.numel() > FEATURE_CACHE_CELLS:
                cache.clear()
            if h.numel() <= FEATURE_CACHE_CELLS:
                cache[key] = h
        return h

    def _head_probs(self, h: Any, train_mode: bool) -> np.ndarray:
        torch = load_torch()
        _, head = self._split_at_dropout()
        head.train(train_mode)
        with torch.inference_mode():
            z = head(h).numpy().astype(np.float64)
        head.eval()
        z = z - z.max(axis=1, keepdims=True)
        p = np.exp(z)
        return p / p.sum(axis=1, keepdims=True)

    def predict_proba(self, X: Any) -> np.ndarray:
        """Class probabilities (n, C), dropout off; columns follow ``classes_``."""
        if len(self.classes_) == 1:
            return np.ones((len(X), 1))
        X = np.ascontiguousarray(X, dtype=np.float32)
        if len(X) == 0:
            return np.zeros((0, len(self.classes_)))
        return self._head_probs(self._features(X), False)

    def predict(self, X: Any) -> np.ndarray:
        return self.classes_[np.argmax(self.predict_proba(X), axis=1)]

    def _split_at_dropout(self) -> tuple[Any, Any]:
        """(body, head): the layers before the first dropout and the rest, so MC dropout
        computes the body once and samples only the head."""
        torch = load_torch()
        layers = list(self.net_)
        cut = next((i for i, layer in enumerate(layers)
                    if isinstance(layer, torch.nn.Dropout)), len(layers))
        return torch.nn.Sequential(*layers[:cut]), torch.nn.Sequential(*layers[cut:])

    def posterior_samples(self, X: Any, m: int | None = None) -> np.ndarray:
        """MC dropout: m passes with dropout on, each a (n, C) probability matrix;
        (m, n, C), seeded, so BALD and mean-KL scores are repeatable. Only the layers
        from the first dropout on are sampled; the body runs once (and not at all when
        `predict_proba` just ran on the same rows)."""
        torch = load_torch()
        m = m or self.mc_samples
        if len(self.classes_) == 1:
            return np.ones((m, len(X), 1))
        X = np.ascontiguousarray(X, dtype=np.float32)
        out = np.empty((m, len(X), len(self.classes_)))
        if len(X) == 0:
            return out
        h = self._features(X)
        torch.manual_seed(self.seed + 1)
        for i in range(m):
            out[i] = self._head_probs(h, True)
        self.net_.eval()
        return out

    # -- saving without pickle ---------------------------------------------------------

    def state_dict(self) -> dict[str, Any]:
        """``{"meta": JSON-able, "arrays": {name: ndarray}}``: the architecture and the
        weights, loadable by `from_state_dict` with no pickle."""
        arrays = {f"w:{k}": v.detach().numpy().copy() for k, v in self.net_.state_dict().items()}
        classes = np.asarray(self.classes_)
        meta = {"format": self.FORMAT, "params": self.get_params(),
                "classes": classes.tolist(),
                "classes_dtype": "object" if classes.dtype == object else classes.dtype.str,
                "n_features_in": int(self.n_features_in_)}
        return {"meta": meta, "arrays": arrays}

    @classmethod
    def from_state_dict(cls, state: dict[str, Any]) -> TorchMLP:
        torch = load_torch()
        meta = state["meta"]
        model = cls(**meta["params"])
        dtype = object if meta.get("classes_dtype") == "object" else meta.get("classes_dtype")
        model.classes_ = np.asarray(meta["classes"], dtype=dtype)
        model.n_features_in_ = int(meta["n_features_in"])
        model.net_ = model._build(model.n_features_in_, len(model.classes_))
        weights = {k[2:]: torch.from_numpy(np.asarray(v)) for k, v in state["arrays"].items()
                   if k.startswith("w:")}
        try:
            model.net_.load_state_dict(weights)
        except RuntimeError as exc:
            raise InputError(f"saved mlp does not match its architecture: {exc}") from None
        model.net_.eval()
        return model
