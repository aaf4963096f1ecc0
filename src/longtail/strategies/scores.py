"""Informativeness scores: pure functions of predicted probabilities.

Every score maps probabilities to one float per sample; higher means more worth
labeling. All are O(n·C) time (committee ones O(m·n·C)) and O(n·C) memory.
"""

from __future__ import annotations

import numpy as np

from longtail.errors import InputError

_EPS = 1e-12
_CHUNK = 65536  # rows per block: temporaries stay O(chunk·C) whatever n is


def _as_probs(probs: np.ndarray) -> np.ndarray:
    p = np.asarray(probs)
    if not np.issubdtype(p.dtype, np.floating):
        p = p.astype(np.float64)
    if p.ndim == 1:
        p = p[:, None]
    if p.ndim != 2:
        raise InputError(f"probs must have shape (n, C), got {p.shape}")
    return p


def _blockwise(p: np.ndarray, fn) -> np.ndarray:
    """Apply a row-wise ``fn`` block by block; returns float64 (n,)."""
    out = np.empty(p.shape[0], dtype=np.float64)
    for start in range(0, p.shape[0], _CHUNK):
        out[start : start + _CHUNK] = fn(p[start : start + _CHUNK].astype(np.float64))
    return out


def _as_committee(committee_probs: np.ndarray) -> np.ndarray:
    p = np.asarray(committee_probs, dtype=np.float64)
    if p.ndim != 3:
        raise InputError(f"committee_probs must have shape (m, n, C), got {p.shape}")
    if p.shape[0] == 0:
        raise InputError("committee_probs has no members (m = 0)")
    return p


def confidence(probs: np.ndarray) -> np.ndarray:
    """Top class probability ``max_c p[i, c]``: (n, C) -> (n,). Lower = less sure.

    Not an informativeness score (higher is *less* worth labeling); used by filters
    such as ``confidence < 0.6``. O(n·C) time, O(n) memory.
    """
    p = _as_probs(probs)
    return p.max(axis=1).astype(np.float64)


def least_confidence(probs: np.ndarray) -> np.ndarray:
    """``1 - max_c p[i, c]``: (n, C) -> (n,), in [0, 1 - 1/C]. O(n·C) time, O(n) memory."""
    return 1.0 - confidence(probs)


def margin(probs: np.ndarray) -> np.ndarray:
    """``1 - (p_top1 - p_top2)``: (n, C) -> (n,), in [0, 1]; 1 = a tie between two classes.

    With one class the margin is undefined; every row scores 0 (nothing to disambiguate).
    O(n·C) time via ``np.partition``, O(n + 65536·C) memory (blockwise).
    """
    p = _as_probs(probs)
    if p.shape[1] < 2:
        return np.zeros(p.shape[0])

    def block(b: np.ndarray) -> np.ndarray:
        top2 = np.partition(b, b.shape[1] - 2, axis=1)[:, -2:]
        return 1.0 - (top2[:, 1] - top2[:, 0])

    return _blockwise(p, block)


def entropy(probs: np.ndarray) -> np.ndarray:
    """Shannon entropy ``-sum_c p log p`` (nats): (n, C) -> (n,). O(n·C) time,
    O(n + 65536·C) memory (blockwise)."""
    p = _as_probs(probs)
    return _blockwise(p, lambda b: -np.sum(b * np.log(np.clip(b, _EPS, 1.0)), axis=1))


def vote_entropy(committee_probs: np.ndarray) -> np.ndarray:
    """Entropy of the committee's hard votes: (m, n, C) -> (n,).

    Each member votes for its argmax class; the score is the entropy of the vote
    shares. O(m·n·C) time, O(n·C) memory.
    """
    p = _as_committee(committee_probs)
    m, n, c = p.shape
    votes = np.zeros((n, c))
    idx = np.arange(n)
    for member in p:
        np.add.at(votes, (idx, member.argmax(axis=1)), 1.0)
    return entropy(votes / m)


def mean_kl(committee_probs: np.ndarray) -> np.ndarray:
    """Mean KL divergence of each member from the consensus: (m, n, C) -> (n,).

    ``(1/m) sum_j KL(p_j || mean_j p_j)`` (McCallum & Nigam 1998). O(m·n·C) time,
    O(n·C) memory.
    """
    p = _as_committee(committee_probs)
    consensus = p.mean(axis=0)
    log_cons = np.log(np.clip(consensus, _EPS, 1.0))
    out = np.zeros(p.shape[1])
    for member in p:
        out += np.sum(member * (np.log(np.clip(member, _EPS, 1.0)) - log_cons), axis=1)
    return out / p.shape[0]


def bald(committee_probs: np.ndarray) -> np.ndarray:
    """BALD mutual information from m probability samples: (m, n, C) -> (n,).

    ``H(mean_j p_j) - mean_j H(p_j)`` (Houlsby et al. 2011); the samples can be MC-dropout
    passes or bootstrap members. O(m·n·C) time, O(n·C) memory.
    """
    p = _as_committee(committee_probs)
    expected = np.zeros(p.shape[1])
    for member in p:
        expected += entropy(member)
    return np.maximum(entropy(p.mean(axis=0)) - expected / p.shape[0], 0.0)


def epig(committee_probs: np.ndarray, rng: np.random.Generator,
         n_targets: int | None = None) -> np.ndarray:
    """EPIG, the expected predictive information gain (Smith et al. 2023): (m, n, C) -> (n,).

    ``mean_{x*} I(y; y* | x, x*)``, the information a label at x gives about the
    predictions at target inputs x*, here a seeded random subset of the candidates
    themselves (the pool is the distribution the model will be used on). Unlike BALD,
    uncertainty about parameters that no target depends on scores nothing, so outliers
    and noise rank low. With the joint ``p(y, y*) = mean_j p_j(y|x) p_j(y*|x*)`` over
    the m samples. ``n_targets`` defaults to min(n, 100), fewer (down to 16) when C is
    large, so the cost O(n·targets·C²·m) stays near O(n·10⁶); memory is bounded by
    working in chunks of candidates (about 8 million joint cells at a time).
    """
    p = _as_committee(committee_probs)
    m, n, c = p.shape
    if n_targets is None:
        n_targets = int(np.clip(1_000_000 // max(c * c * m, 1), 16, 100))
    k = int(min(n, max(1, n_targets)))
    targets = p[:, np.sort(rng.choice(n, size=k, replace=False))]  # (m, k, C)
    log_t = np.log(np.clip(targets.mean(axis=0), _EPS, 1.0))  # (k, C)
    out = np.empty(n)
    step = max(1, 8_000_000 // (k * c * c))
    for start in range(0, n, step):
        chunk = p[:, start:start + step]  # (m, b, C)
        joint = np.einsum("mbc,mkd->bkcd", chunk, targets, optimize=True) / m
        log_y = np.log(np.clip(chunk.mean(axis=0), _EPS, 1.0))  # (b, C)
        ratio = (np.log(np.clip(joint, _EPS, 1.0)) - log_y[:, None, :, None]
                 - log_t[None, :, None, :])
        out[start:start + step] = (joint * ratio).sum(axis=(2, 3)).mean(axis=1)
    return np.maximum(out, 0.0)
