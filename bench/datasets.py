"""The label-efficiency data sets: Banking77 (MiniLM), scikit-learn's digits, Fashion-MNIST.

Each loader returns ``(data, source)`` with ``data = (X, y, X_test, y_test, names)``
(float32 features, int64 labels) and ``source`` a sentence saying where the rows came
from (recorded in the result files). When the real files are absent, the smoke size
uses a small synthetic stand-in of the same shape (classes, imbalance, not unit norm),
so CI exercises every code path; the stand-in says so in ``source``.
"""

from __future__ import annotations

import gzip
import shutil
import subprocess
from pathlib import Path

import numpy as np

from _common import RESULTS, SHARED_DATA

FASHION_DIR = Path("/usr/share/datasets/fashion-mnist")
FASHION_PACKAGE = "dataset-fashion-mnist"
FASHION_POOL = 20_000
FASHION_PCA = 64
DIGITS_TEST_SHARE = 0.3
SPLIT_SEED = 0  # the pool/test split is the same for every method seed
EMBED_CACHE = RESULTS / ".cache" / "banking77-minilm.npz"

Data = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]


def standin(n_pool: int, n_test: int, n_classes: int, dim: int, seed: int = 0,
            imbalance: float = 10.0) -> Data:
    """Synthetic stand-in: Gaussian class blobs with sizes falling ``imbalance``-fold,
    scaled unevenly per dimension (so not unit norm); a balanced test set."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(n_classes, dim)) * 2.0
    scale = np.geomspace(3.0, 0.3, dim)  # PCA-like decaying variance
    w = np.geomspace(1.0, 1.0 / imbalance, n_classes)
    y = rng.choice(n_classes, size=n_pool, p=w / w.sum())
    yt = np.arange(n_test) % n_classes

    def draw(lab):
        return ((centres[lab] + rng.normal(size=(len(lab), dim))) * scale).astype(np.float32)

    names = np.array([f"class_{i}" for i in range(n_classes)])
    return draw(y), y.astype(np.int64), draw(yt), yt.astype(np.int64), names


# --------------------------------------------------------------------------- Banking77


def embed_banking77(cache: Path = EMBED_CACHE, encoder=None, shared: Path = SHARED_DATA
                    ) -> Path | None:
    """When the shared embeddings are absent (BENCHMARKS.md §1): embed train.csv and
    test.csv (the shared copies, else the ones bundled with longtail) with the project's
    own text encoder, once, into `cache`, in the shared file's layout. Returns None when
    no encoder can be loaded (the `text` extra is not installed)."""
    if cache.exists():
        return cache
    import csv

    from longtail.demo import bundled

    if encoder is None:
        try:
            from longtail.encoders import get_encoder

            encoder = get_encoder("minilm")
        except Exception as e:  # noqa: BLE001 - reported; the caller uses the stand-in
            print(f"[datasets] no shared embeddings and no text encoder ({e})")
            return None
    arrays = {}
    for split in ("train", "test"):
        csv_path = shared / "banking77" / f"{split}.csv"
        src = csv_path if csv_path.exists() else bundled(f"{split}.csv")
        with open(src, newline="") as f:
            rows = list(csv.DictReader(f))
        texts = [r["text"] for r in rows]
        print(f"[datasets] embedding {len(texts):,} {split} texts from {src}", flush=True)
        vecs = [encoder.encode({"text": texts[i:i + 512], "metadata": []})
                for i in range(0, len(texts), 512)]
        arrays[f"{split}_X"] = np.concatenate(vecs).astype(np.float32)
        arrays[f"{split}_y"] = np.array([r.get("category") or r.get("label") for r in rows])
    cache.parent.mkdir(parents=True, exist_ok=True)
    tmp = cache.with_suffix(".tmp.npz")
    np.savez(tmp, **arrays)
    tmp.replace(cache)
    return cache


def banking77_arrays(size: str, shared: Path | None = None, cache: Path = EMBED_CACHE,
                     encoder=None, embed: bool = True) -> tuple[dict | None, str]:
    """The Banking77 arrays (``train_X``, ``train_y``, ``test_X``, ``test_y``) and their
    source: the shared MiniLM file, else (``embed``) our own embedding of the CSVs, else
    (smoke size only) a 77-class synthetic stand-in. None (full size, nothing available)."""
    shared = SHARED_DATA if shared is None else shared
    path = shared / "banking77" / "minilm.npz"
    if not path.exists():
        path = embed_banking77(cache, encoder, shared) if embed else None
    if path is not None:
        d = np.load(path)
        return {k: d[k] for k in ("train_X", "train_y", "test_X", "test_y")}, str(path)
    if size != "smoke":
        return None, "banking77 embeddings (none shared, no text encoder)"
    X, y, Xt, yt, names = standin(2000, 770, 77, 32, seed=77)
    X /= np.linalg.norm(X, axis=1, keepdims=True)  # MiniLM vectors are unit norm
    Xt /= np.linalg.norm(Xt, axis=1, keepdims=True)
    return ({"train_X": X, "train_y": names[y], "test_X": Xt, "test_y": names[yt]},
            "synthetic stand-in for Banking77 (shared embeddings absent; smoke size only)")


def banking77(size: str, seed: int = 0, shared: Path | None = None, cache: Path = EMBED_CACHE,
              encoder=None) -> tuple[Data | None, str]:
    """Banking77: pool = the 10,003 training rows, test = the 3,080 test rows (smoke: a
    seeded 2,000-row pool)."""
    d, source = banking77_arrays(size, shared, cache, encoder)
    if d is None:
        return None, source
    X = np.ascontiguousarray(d["train_X"], dtype=np.float32)
    Xt = np.ascontiguousarray(d["test_X"], dtype=np.float32)
    names, y_all = np.unique(np.concatenate([d["train_y"], d["test_y"]]), return_inverse=True)
    y = y_all[: len(X)].astype(np.int64)
    yt = y_all[len(X):].astype(np.int64)
    if size == "smoke" and len(X) > 2000:
        keep = np.sort(np.random.default_rng(seed).choice(len(X), 2000, replace=False))
        X, y = X[keep], y[keep]
    return (X, y, Xt, yt, names), source


# --------------------------------------------------------------------------- digits


def digits(size: str) -> tuple[Data, str]:
    """scikit-learn's digits (1,797 8x8 images, pixels/16): a stratified 70/30 split
    with seed ``SPLIT_SEED``; smoke: the same split (it is small already)."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    d = load_digits()
    X = (d.data / 16.0).astype(np.float32)
    X, Xt, y, yt = train_test_split(X, d.target.astype(np.int64), test_size=DIGITS_TEST_SHARE,
                                    random_state=SPLIT_SEED, stratify=d.target)
    names = np.array([str(c) for c in range(10)])
    return (X, y, Xt, yt, names), (
        f"sklearn.datasets.load_digits, pixels/16, stratified 70/30 split "
        f"(seed {SPLIT_SEED}): {len(X)} pool, {len(Xt)} test")


# --------------------------------------------------------------------------- Fashion-MNIST


def _idx(path: Path) -> np.ndarray:
    """An IDX file (gzip) as a numpy array (MNIST's format: magic, dims, uint8 data)."""
    with gzip.open(path, "rb") as f:
        raw = f.read()
    ndim = raw[3]
    dims = [int.from_bytes(raw[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim)]
    return np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim).reshape(dims)


def install_fashion_mnist() -> str:
    """Install the Debian package when it is absent (the full run needs it); says what
    it did."""
    if (FASHION_DIR / "train-images-idx3-ubyte.gz").exists():
        return "present"
    if shutil.which("apt-get") is None:
        return "absent (no apt-get)"
    print(f"[datasets] Fashion-MNIST absent: apt-get install -y {FASHION_PACKAGE}", flush=True)
    r = subprocess.run(["apt-get", "install", "-y", FASHION_PACKAGE], capture_output=True,
                       text=True)
    ok = (FASHION_DIR / "train-images-idx3-ubyte.gz").exists()
    return (f"installed now (apt-get install -y {FASHION_PACKAGE})" if ok else
            f"install failed (rc {r.returncode}): {r.stderr.strip()[-200:]}")


def fashion_mnist(size: str, root: Path | None = None, cache_dir: Path = RESULTS / ".cache",
                  install: bool = True, pool: int = FASHION_POOL) -> tuple[Data, str]:
    """Fashion-MNIST: a seeded 20,000-image pool of the 60,000 training images, the 10,000
    test images; pixels/255, PCA to 64 dimensions fitted on the pool (no whitening).

    Full size installs the Debian package when absent. Smoke: a 2,000-image pool and
    2,000 test images, or a synthetic stand-in when the files are absent."""
    note = ""
    root = FASHION_DIR if root is None else root
    if size == "full" and install and root == FASHION_DIR:
        note = f"; package {install_fashion_mnist()}"
    files = [root / f"{p}-idx{n}-ubyte.gz" for p, n in
             (("train-images", 3), ("train-labels", 1), ("t10k-images", 3), ("t10k-labels", 1))]
    names = np.array(["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal",
                      "Shirt", "Sneaker", "Bag", "Ankle boot"])
    if not all(f.exists() for f in files):
        if size == "full":
            raise FileNotFoundError(f"Fashion-MNIST files absent under {root}{note}")
        X, y, Xt, yt, _ = standin(2000, 1000, 10, FASHION_PCA, seed=10, imbalance=3.0)
        return (X, y, Xt, yt, names), (
            f"synthetic stand-in for Fashion-MNIST ({root} absent; smoke size only)")
    n_pool, n_test = (pool, None) if size == "full" else (min(pool, 2000), 2000)
    key = f"fashion-mnist-pca{FASHION_PCA}-{n_pool}-{n_test}-seed{SPLIT_SEED}.npz"
    cache = cache_dir / key
    if cache.exists():
        d = np.load(cache)
        X, y, Xt, yt = d["X"], d["y"], d["Xt"], d["yt"]
    else:
        from sklearn.decomposition import PCA

        tr, trl, te, tel = (_idx(f) for f in files)
        rng = np.random.default_rng(SPLIT_SEED)
        pool = np.sort(rng.choice(len(tr), n_pool, replace=False))
        test = np.arange(len(te)) if n_test is None or n_test >= len(te) else np.sort(
            rng.choice(len(te), n_test, replace=False))
        P = tr[pool].reshape(len(pool), -1).astype(np.float32) / 255.0
        T = te[test].reshape(len(test), -1).astype(np.float32) / 255.0
        pca = PCA(n_components=FASHION_PCA, whiten=False, random_state=SPLIT_SEED).fit(P)
        X, Xt = pca.transform(P).astype(np.float32), pca.transform(T).astype(np.float32)
        y, yt = trl[pool].astype(np.int64), tel[test].astype(np.int64)
        cache.parent.mkdir(parents=True, exist_ok=True)
        tmp = cache.with_suffix(".tmp.npz")
        np.savez(tmp, X=X, y=y, Xt=Xt, yt=yt)
        tmp.replace(cache)
    return (X, y, Xt, yt, names), (
        f"Fashion-MNIST from {root}: seeded {len(X):,}-image pool (seed {SPLIT_SEED}), "
        f"{len(Xt):,} test images, pixels/255, PCA {FASHION_PCA} fitted on the pool, "
        f"no whitening{note}")


def fashion_mnist_whitened(size: str) -> tuple[Data, str]:
    """Fashion-MNIST PCA 64 *whitened* (each component scaled to unit variance on the
    pool): the geometry issue 18 reports the cold start failing on (not unit norm, the
    noise components as large as the signal ones). Used by the first-batch study."""
    (X, y, Xt, yt, names), source = fashion_mnist(size)
    sd = X.std(axis=0) + 1e-12
    return (X / sd, y, Xt / sd, yt, names), source + "; whitened (components / pool sd)"


# --------------------------------------------------------------------------- long-tailed variants

LT_SEED = 8  # BENCHMARKS.md §8 and issue 28: class order and row order both from default_rng(8)


def long_tail_sizes(counts: np.ndarray, top: float, ratio: float, seed: int = LT_SEED
                    ) -> np.ndarray:
    """Rows each class keeps: classes (in index order, i.e. sorted names) are shuffled with
    ``default_rng(seed).permutation``; the class at position r of C keeps
    ``round(top * ratio ** (-r / (C - 1)))`` rows, capped by ``counts`` (the rows it has).
    Returns an int64 array aligned with ``counts``."""
    counts = np.asarray(counts, dtype=np.int64)
    C = len(counts)
    order = np.random.default_rng(seed).permutation(C)
    want = np.array([round(top * ratio ** (-r / max(C - 1, 1))) for r in range(C)], dtype=np.int64)
    sizes = np.zeros(C, dtype=np.int64)
    sizes[order] = np.minimum(want, counts[order])
    return sizes


def long_tail_rows(y: np.ndarray, sizes: np.ndarray, seed: int = LT_SEED) -> np.ndarray:
    """The kept rows (sorted, so the pool keeps its file order): for each class, the first
    ``sizes[c]`` of its rows in a ``default_rng(seed)`` permutation of the rows' order."""
    perm = np.random.default_rng(seed).permutation(len(y))
    yp = y[perm]
    keep = []
    for c, n in enumerate(sizes):
        keep.append(perm[np.flatnonzero(yp == c)[:n]])
    return np.sort(np.concatenate(keep)).astype(np.int64)


def _long_tailed(data: Data, top: float, ratio: float) -> tuple[Data, str]:
    X, y, Xt, yt, names = data
    sizes = long_tail_sizes(np.bincount(y, minlength=len(names)), top, ratio)
    rows = long_tail_rows(y, sizes)
    note = (f"; long-tailed (class order and rows from default_rng({LT_SEED}), sizes "
            f"{sizes.max()} down to {sizes.min()}, {len(rows):,} pool rows; test set as it is)")
    return (X[rows], y[rows], Xt, yt, names), note


def banking77_lt(size: str, shared: Path | None = None, cache: Path = EMBED_CACHE,
                 encoder=None) -> tuple[Data | None, str]:
    """Banking77-LT (BENCHMARKS.md §8): the intent at position r of the default_rng(8)
    shuffle of the 77 sorted intents keeps ``round(150 * 40 ** (-r / 76))`` training rows,
    capped by its rows, the first ones in a default_rng(8) permutation of train.csv's
    order (2,995 rows); the test set as it is. Smoke: the same rule over the stand-in
    when the embeddings are absent (the real set is small enough to use as it is)."""
    d, source = banking77_arrays(size, shared, cache, encoder)
    if d is None:
        return None, source
    X = np.ascontiguousarray(d["train_X"], dtype=np.float32)
    Xt = np.ascontiguousarray(d["test_X"], dtype=np.float32)
    names, y_all = np.unique(np.concatenate([d["train_y"], d["test_y"]]), return_inverse=True)
    y = y_all[: len(X)].astype(np.int64)
    yt = y_all[len(X):].astype(np.int64)
    data, note = _long_tailed((X, y, Xt, yt, names), top=150, ratio=40)
    return data, source + note


def _exponential_lt(data: Data, source: str) -> tuple[Data, str]:
    """Issue 28's rule for digits-LT and Fashion-MNIST-LT: in a default_rng(8) class order,
    class sizes falling exponentially from all the rows of the first class down to 1/50 of
    that, each capped by the rows its class has."""
    counts = np.bincount(data[1], minlength=len(data[4]))
    first = np.random.default_rng(LT_SEED).permutation(len(counts))[0]
    out, note = _long_tailed(data, top=float(counts[first]), ratio=50)
    return out, source + note


def digits_lt(size: str) -> tuple[Data, str]:
    """digits-LT: :func:`digits` with sizes falling 50-fold (about 126 rows down to 3)."""
    return _exponential_lt(*digits(size))


def fashion_mnist_lt(size: str) -> tuple[Data, str]:
    """Fashion-MNIST-LT: :func:`fashion_mnist`'s pool with sizes falling 50-fold."""
    return _exponential_lt(*fashion_mnist(size))


LOADERS = {"banking77": banking77, "digits": digits, "fashion_mnist": fashion_mnist,
           "fashion_mnist_whitened": fashion_mnist_whitened, "banking77_lt": banking77_lt,
           "digits_lt": digits_lt, "fashion_mnist_lt": fashion_mnist_lt}


def load(name: str, size: str) -> tuple[Data | None, str]:
    """``(data, source)`` of the named data set (a key of :data:`LOADERS`)."""
    return LOADERS[name](size)
