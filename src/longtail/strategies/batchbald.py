"""BatchBALD (Kirsch, van Amersfoort & Gal 2019): a batch whose labels, together, say
the most about the model, not the top-k BALD scores, which pile up on near-copies of
one uncertain sample.

Greedy: pick n adds the candidate x with the largest gain
``H(y_x | ŷ_1..ŷ_{n-1}) - mean_k H(y_x | w_k)`` (the joint mutual information's
increase), from K posterior samples ``p_k(y|x)`` (MC dropout passes or committee
members). The conditional entropy is taken over configurations of the labels already
picked, each carrying its posterior over the K samples: enumerated exactly while there
are at most ``configs`` of them, then ``configs`` configurations drawn from the joint
(ancestral sampling: a sample k, then each label from ``p_k``), so memory stays
O(configs·K) whatever the batch size. A candidate that duplicates a picked one gains
little: its label is all but known once the picked one's is. The first pick is the
BALD maximiser, so a batch of one is BALD's.

Only the top ``shortlist`` BALD candidates (``max(4·k, 64)`` by default) are
considered, never the whole pool jointly. Cost per pick O(configs·K·shortlist·C),
candidates in chunks of about 4 million cells.
"""

from __future__ import annotations

import numpy as np

from longtail.errors import InputError
from longtail.strategies import scores as S
from longtail.strategies._base import Context, Selection, topk_desc
from longtail.strategies.cold import fallback

CONFIGS = 512  # label configurations kept of the picked labels (exact up to this many)
CELLS = 1 << 22  # configs x candidates x classes held at once (32 MiB of float64)
_EPS = 1e-12


def _entropy_last(p: np.ndarray) -> np.ndarray:
    return -np.sum(p * np.log(np.clip(p, _EPS, 1.0)), axis=-1)


def batchbald_order(committee_probs: np.ndarray, k: int, rng: np.random.Generator, *,
                    configs: int = CONFIGS, costs: np.ndarray | None = None
                    ) -> tuple[np.ndarray, np.ndarray]:
    """(positions, gains): the greedy BatchBALD batch of ``k`` among the n columns of
    ``committee_probs`` (K, n, C), in pick order, with each pick's gain in nats (per unit
    cost when ``costs``). The caller shortlists; this looks at every column given."""
    p = np.asarray(committee_probs, dtype=np.float64)
    if p.ndim != 3 or p.shape[0] == 0:
        raise InputError(f"committee_probs must have shape (K>0, n, C), got {p.shape}")
    n_samples, n, c = p.shape
    if configs < 1:
        raise InputError(f"configs must be 1 or more, got {configs}")
    k = int(min(k, n))
    cond = np.zeros(n)  # mean_k H(y_x | w_k): fixed
    for member in p:
        cond += _entropy_last(member)
    cond /= n_samples
    flat = p.reshape(n_samples, n * c)
    # Configurations of the picked labels: weights (M,) summing to 1 and each one's
    # posterior over the K samples (M, K). Exact: the joint table; sampled: equal
    # weights and each a drawn sample index to continue the labels from.
    weight = np.ones(1)
    post = np.full((1, n_samples), 1.0 / n_samples)
    drawn: np.ndarray | None = None  # (M,) sample index per configuration once sampled
    taken = np.zeros(n, bool)
    picks, gains = [], []
    step = max(1, CELLS // (max(len(weight), configs) * c))
    for _ in range(k):
        joint_h = np.empty(n)
        for start in range(0, n, step):
            stop = min(n, start + step)
            mix = post @ flat[:, start * c:stop * c]  # (M, b·C): p(y_x | config)
            h = _entropy_last(mix.reshape(len(post), stop - start, c))  # (M, b)
            joint_h[start:stop] = weight @ h
        gain = np.maximum(joint_h - cond, 0.0)
        value = gain if costs is None else (gain + 1e-12) / costs
        value = np.where(taken, -1.0, value)  # gains are >= 0: a picked one never wins
        best = int(topk_desc(value, 1, rng)[0])
        picks.append(best)
        gains.append(float(value[best]))
        taken[best] = True
        like = p[:, best, :]  # (K, C): p_k(y | x_best)
        if drawn is None and len(weight) * c <= configs:
            # Exact: every configuration extended by every label of the pick.
            joint = (weight[:, None] * post)[:, None, :] * like.T[None, :, :]  # (M, C, K)
            joint = joint.reshape(-1, n_samples)
            weight = joint.sum(axis=1)
            keep = weight > 0
            joint, weight = joint[keep], weight[keep]
            post = joint / weight[:, None]
            weight = weight / weight.sum()
            continue
        if drawn is None:
            # Too many to enumerate: draw (configuration, sample) pairs from the joint.
            joint = (weight[:, None] * post).ravel()
            pick = rng.choice(len(joint), size=configs, p=joint / joint.sum())
            rows, drawn = np.divmod(pick, n_samples)
            post = post[rows]
            weight = np.full(configs, 1.0 / configs)
        # Each configuration's label of the pick, drawn from its own sample's p_k.
        u = rng.random(len(drawn))[:, None]
        cdf = np.cumsum(like[drawn], axis=1)
        y = np.minimum((u > cdf).sum(axis=1), c - 1)
        post = post * like[:, y].T
        post /= np.maximum(post.sum(axis=1, keepdims=True), 1e-300)
    return np.asarray(picks, np.int64), np.asarray(gains)


def select_batchbald(ctx: Context) -> Selection:
    """Greedy BatchBALD over the top BALD candidates of ``ctx.committee_probs``
    (``params``: ``shortlist``, ``configs``); cold start before a model."""
    if ctx.committee_probs is None:
        if ctx.probs is None:
            return fallback(ctx, "batchbald")
        raise InputError("strategy 'batchbald' needs committee_probs (m, len(candidates), C); "
                         "got None")
    params = ctx.params or {}
    shortlist = int(params.get("shortlist", max(4 * ctx.k, 64)))
    configs = int(params.get("configs", CONFIGS))
    if shortlist < 1:
        raise InputError(f"batchbald: shortlist must be 1 or more, got {shortlist}")
    bald = S.bald(ctx.committee_probs)
    top = np.sort(topk_desc(bald, max(shortlist, ctx.k), ctx.rng))
    costs = None if ctx.costs is None else ctx.costs[top]
    order, gains = batchbald_order(ctx.committee_probs[:, top], ctx.k, ctx.rng,
                                   configs=configs, costs=costs)
    pos = top[order]
    return Selection(
        rows=ctx.candidates[pos],
        log={"strategy": "batchbald",
             "reason": f"greedy BatchBALD over the top-{len(top)} BALD candidates"
                       + (" per unit cost" if ctx.costs is not None else ""),
             "shortlist": int(len(top)), "configs": configs,
             "gain_first": float(gains[0]) if len(gains) else None,
             "gain_last": float(gains[-1]) if len(gains) else None},
        scores=gains)
