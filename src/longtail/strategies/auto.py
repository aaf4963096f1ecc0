"""``auto``: the default strategy. No parameters to tune.

How it decides, each round:

1. **Phase by evidence.** With no model (probs None) the only arm is ``coverage`` (the
   cold start: kernel-herding coverage, representative + diverse). From the first model
   on (the *transition*), representative arms (``coverage``) compete with the leading
   informative arm(s) (``margin_coverage``; on pools larger than the kNN-graph sample
   ``cluster_margin`` leads instead, since it sees the whole pool). Representative arms
   stay in the bandit while they pay: they leave (phase *informative*) only when each
   has been measured ``MIN_PLAYS`` times and its discounted mean reward is below the
   mean of the best informative arm measured as often, or at once where the model's
   predictions show the pool long-tailed (:func:`~longtail.strategies.tail.long_tailed`:
   there coverage of the pool's density labels the head classes again); with ``state`` that
   decision sticks until the pool grows by ``REGROW``. No labels-per-class threshold
   decides it (the earlier 1 and 4 labels per class were fitted on Banking77). Plain
   ``margin`` joins only from ``MARGIN_FROM`` labels per class: with fewer, uncertainty
   alone picks outliers and near-duplicates (the low-budget failure of uncertainty
   sampling), and one forced try of it cost accuracy on Banking77 (see
   ``THRESHOLDS_NOTE``). Each phase opens arm families (``PHASE_FAMILIES``); the arms
   themselves are registered in :mod:`longtail.strategies.arms` with a predicate saying
   when each is allowed and a rank (the preferred arm is the allowed one ranked first).
   Other modules add arms there with one ``register_arm`` call.
2. **A bandit among the allowed arms**, rewarded by measured gain per label. A round's
   reward is ``(metric_after - metric_before) / ln(n_after / n_before)``: accuracy
   gained per e-fold of labels, which stays comparable across rounds because learning
   curves are roughly linear in log(labels). Rewards are discounted (×0.7 per round of
   age) so old evidence fades as the curve bends. The arm with the highest upper
   confidence bound (mean + 0.5·spread·sqrt(2 ln N / n_arm)) wins; an allowed arm
   never tried gets one try; ties go to the phase's preferred arm.
3. **Proxy when metrics are None** (no evaluation labels yet): the share of candidates
   whose predicted class changed since the previous round (stored in ``state``), per
   e-fold of labels — a model-change signal: a batch that moves the model more is
   taken as more informative. Without ``state`` and metrics the bandit has no reward
   and the phase's preferred arm is used.

Everything (phase, allowed arms, each arm's reward statistics, the pick and why) is in
``Selection.log``; ``log["arm"]`` is the strategy used. Cost: that of the chosen arm
(≤ the cluster-margin / coverage costs) + O(h) for h history rounds.
"""

from __future__ import annotations

import math

import numpy as np

from longtail.strategies._base import Context, Selection
from longtail.strategies._pool import DEFAULT_GRAPH_ROWS, pool_clusters, pool_graph
from longtail.strategies.arms import (
    ARMS,
    Situation,
    allowed_arms,
    arm_reward,
    gain_per_efold,
    register_arm,
)
from longtail.strategies.cold import cold_start
from longtail.strategies.coverage import COVERAGE_KNN, select_coverage
from longtail.strategies.diverse import (
    pool_clustering_k,
    select_cluster_margin,
    select_margin_coverage,
)
from longtail.strategies.informative import select_margin
from longtail.strategies.tail import TAIL_IMBALANCE, class_imbalance, long_tailed

MIN_PLAYS = 2  # measured plays before an arm's rewards count as evidence to drop another
REGROW = 1.25  # the pool grows by this factor: representative arms may pay again
MARGIN_FROM = 8.0  # labels per class from which plain margin (no diversity) is an arm
DISCOUNT = 0.7
THRESHOLDS_NOTE = (
    "plain margin competes from 8 labels per class, chosen on Banking77/MiniLM (77 "
    "classes: 6, 8 and 10 all beat trying it at 4; 8 chosen); the representative phase "
    "ends by measured reward, not by a labels-per-class threshold"
)

# Which arm families each phase opens (arms say within that when they are allowed).
PHASE_FAMILIES = {
    "cold_start": ("representative",),
    "no_vectors": ("informative",),
    "representative": ("representative",),
    "transition": ("representative", "informative"),
    "informative": ("informative",),
}

register_arm("coverage", select_coverage, family="representative", rank=40,
             allowed=lambda s: s.has("vectors"),
             doc="kernel-herding coverage of the pool: representative and diverse")
register_arm("cluster_margin", select_cluster_margin, family="informative", rank=10,
             allowed=lambda s: s.has("vectors") and s.large,
             doc="lowest margin spread over pool clusters; leads on large pools")
register_arm("margin_coverage", select_margin_coverage, family="informative", rank=20,
             allowed=lambda s: s.has("vectors") and (not s.large or s.phase == "informative"),
             doc="kernel coverage weighted by margin; leads on pools under the graph sample")
register_arm("margin", select_margin, family="informative", rank=30,
             allowed=lambda s: s.phase == "no_vectors" or (
                 not s.large and s.phase in ("transition", "informative")
                 and s.labels_per_class >= MARGIN_FROM),
             doc="plain margin: from MARGIN_FROM labels per class, or without vectors")
EXPLORATION = 0.5  # UCB bonus scale, in units of the rewards' spread
_STATE_KEY = "longtail.auto"
_PRED_SAMPLE = 100_000


_round_reward = gain_per_efold  # kept for callers of the old name


def _proxy_reward(ctx: Context, mem: dict | None) -> float | None:
    """Share of candidates whose predicted class changed since the last round, per
    e-fold of labels (model-change proxy); None when not computable."""
    if mem is None or ctx.probs is None or "pred_rows" not in mem:
        return None
    rows, pred = mem["pred_rows"], mem["pred_class"]
    n0, n1 = int(mem.get("n_labeled", 0)), ctx.n_labeled
    if n0 <= 0 or n1 <= n0:
        return None
    pos = np.searchsorted(ctx.candidates, rows) if np.all(
        np.diff(ctx.candidates) > 0) else None
    if pos is None:
        order = np.argsort(ctx.candidates)
        sorted_c = ctx.candidates[order]
        p = np.minimum(np.searchsorted(sorted_c, rows), len(sorted_c) - 1)
        ok = sorted_c[p] == rows
        idx = order[p[ok]]
    else:
        p = np.minimum(pos, len(ctx.candidates) - 1)
        ok = ctx.candidates[p] == rows
        idx = p[ok]
    if ok.sum() == 0:
        return None
    now = np.asarray(ctx.classes)[ctx.probs[idx].argmax(axis=1)]
    changed = float(np.mean(now != pred[ok]))
    return changed / math.log(n1 / n0)


def _remember_predictions(ctx: Context, mem: dict) -> None:
    if ctx.probs is None:
        return
    take = np.arange(ctx.n)
    if ctx.n > _PRED_SAMPLE:
        take = np.sort(ctx.rng.choice(ctx.n, size=_PRED_SAMPLE, replace=False))
    mem["pred_rows"] = ctx.candidates[take].copy()
    mem["pred_class"] = np.asarray(ctx.classes)[ctx.probs[take].argmax(axis=1)]
    mem["n_labeled"] = ctx.n_labeled


def arm_statistics(rewards: list[tuple[str, float]], discount: float = DISCOUNT) -> dict:
    """Discounted mean reward and weight per arm from ``(arm, reward)`` oldest first.

    O(h) time and O(arms) memory for h rewards."""
    stats: dict[str, dict] = {}
    n = len(rewards)
    for i, (arm, r) in enumerate(rewards):
        w = discount ** (n - 1 - i)
        s = stats.setdefault(arm, {"weight": 0.0, "sum": 0.0, "plays": 0})
        s["weight"] += w
        s["sum"] += w * r
        s["plays"] += 1
    for s in stats.values():
        s["mean"] = s["sum"] / s["weight"] if s["weight"] > 0 else 0.0
    return stats


def select_auto(ctx: Context) -> Selection:
    """The default strategy: phase by evidence, then a discounted-UCB bandit over
    the allowed arms rewarded by measured gain per label (see the module doc).

    Time: the chosen arm's (coverage / margin_coverage: cached kNN graph + O(k·deg·log u);
    cluster_margin: cached clustering + O(n·C)) + O(h) for the history + O(n) for the
    proxy; memory: the arm's + O(min(n, 100k)) remembered predictions."""
    mem = None
    if ctx.state is not None:
        mem = ctx.state.setdefault(_STATE_KEY, {})
    n_classes = max(ctx.n_classes, 1)  # labels per class is the labels count with none known
    per_class = ctx.n_labeled / n_classes
    large = False
    if ctx.probs is None or ctx.vectors is None:
        phase = "cold_start" if ctx.probs is None else "no_vectors"
    else:
        # The coverage arms work on a kNN-graph sample of the pool when it is large; there
        # the full-pool cluster-margin leads the informative arms instead.
        large = pool_rows(ctx) > int(ctx.params.get("graph_rows", DEFAULT_GRAPH_ROWS))
        phase = "transition"

    # rewards: measured where the history has metrics, else the proxy for the last round
    rewards: list[tuple[str, float]] = []
    sources = {"measured": 0, "proxy": 0}
    for entry in ctx.history or []:
        r = arm_reward(entry)
        if r is not None:
            rewards.append((entry["arm"], r))
            sources["measured"] += 1
    if mem is not None:
        proxies = mem.setdefault("proxy_rewards", [])
        last = (ctx.history or [{}])[-1] if ctx.history else None
        if last is not None and arm_reward(last) is None and last.get("arm") in ARMS:
            pr = _proxy_reward(ctx, mem)
            if pr is not None:
                proxies.append((last["arm"], pr))
        if sources["measured"] == 0:
            rewards = [tuple(p) for p in proxies]
            sources["proxy"] = len(rewards)
    stats = arm_statistics(rewards)

    phase_reason = None
    imbalance = class_imbalance(ctx.probs)
    if phase == "transition" and not large and long_tailed(ctx):
        # On a long-tailed pool, coverage of the pool's density labels the head classes
        # again (the cold start covered them): the informative arms, `rare` included,
        # take over from the first model (README, long_tail: measured on Banking77-LT).
        phase = "informative"
        phase_reason = (f"the pool looks long-tailed (predicted class imbalance "
                        f"{imbalance:.1f}, from {TAIL_IMBALANCE:g}): representative arms "
                        f"would label the head classes again")
    elif phase == "transition":
        phase, phase_reason = _leave_representative(ctx, mem, stats, rewards, per_class, large)
    situation = Situation(phase=phase, labels_per_class=per_class, large=large, ctx=ctx)
    if phase == "cold_start":
        allowed: tuple[str, ...] = ("coverage",)
    else:
        allowed = allowed_arms(situation, PHASE_FAMILIES[phase]) or ("margin",)
    # the lowest-ranked allowed arm: e.g. margin-weighted coverage over plain coverage as
    # soon as there is a model (at least as good on Banking77); coverage stays an arm
    preferred = allowed[0]

    reason: str
    if len(allowed) == 1:
        arm = allowed[0]
        reason = f"phase {phase}: the only arm"
    else:
        untried = [a for a in allowed if a not in stats]
        if not rewards:
            arm = preferred
            reason = f"phase {phase}: no reward measured yet, the phase's preferred arm"
        elif untried:
            arm = preferred if preferred in untried else untried[0]
            reason = f"phase {phase}: trying {arm}, never measured"
        else:
            ucb = _ucb(stats, allowed, rewards)
            for a in ucb:
                stats[a]["ucb"] = ucb[a]
            best = max(ucb.values())
            winners = [a for a in allowed if ucb[a] >= best - 1e-12]
            arm = preferred if preferred in winners else winners[0]
            reason = f"phase {phase}: highest upper confidence bound on gain per e-fold"
    if ctx.state is not None:
        _build_indexes(ctx, allowed, large)
    # No model yet: the cold start, which chooses its geometry from the pool.
    sel = cold_start(ctx) if phase == "cold_start" else ARMS[arm].fn(ctx)
    if mem is not None:
        _remember_predictions(ctx, mem)
    sel.log = {
        "arm": arm,
        "reason": reason,
        "phase": phase,
        "labels_per_class": round(per_class, 3),
        # the evidence the `rare` arm's guard reads (tail.long_tailed)
        "class_imbalance": _rounded(imbalance),
        "phase_reason": phase_reason,
        "allowed_arms": list(allowed),
        "preferred_arm": preferred,
        "reward_source": "measured" if sources["measured"] else
        ("proxy: predicted-class change rate" if sources["proxy"] else "none"),
        "arm_stats": {a: {k: round(float(v), 6) for k, v in s.items()} for a, s in
                      stats.items()},
        "arm_log": sel.log,
    }
    return sel


def pool_rows(ctx: Context) -> int:
    """Rows in the pool: ``params["pool_rows"]`` when the candidates were narrowed from
    a larger pool (:mod:`longtail.strategies.candidates`), else candidates + labeled."""
    return int(ctx.params.get("pool_rows", ctx.n + ctx.n_labeled))


def _rounded(x: float | None) -> float | None:
    return None if x is None else round(float(x), 3)


def _ucb(stats: dict, arms: tuple[str, ...] | list[str], rewards: list) -> dict[str, float]:
    """Upper confidence bound of each measured arm of ``arms``: discounted mean +
    EXPLORATION·spread·sqrt(2 ln(1 + total weight) / weight)."""
    values = [r for _, r in rewards]
    spread = float(np.std(values)) if len(values) > 1 else abs(values[0]) + 1e-9
    measured = [a for a in arms if a in stats]
    total = sum(stats[a]["weight"] for a in measured)
    return {a: stats[a]["mean"] + EXPLORATION * spread
            * math.sqrt(2 * math.log(1 + total) / max(stats[a]["weight"], 1e-9))
            for a in measured}


def _leave_representative(ctx: Context, mem: dict | None, stats: dict, rewards: list,
                          per_class: float, large: bool) -> tuple[str, str]:
    """("transition" | "informative", why): representative arms stay while they pay.

    They leave when each has been measured MIN_PLAYS times and its discounted mean
    reward is below that of the best informative arm measured as often — evidence, not a
    labels-per-class threshold. (Comparing the upper confidence bound instead kept
    coverage longer and cost 0.3-0.6 points at 700-800 labels on Banking77; the mean
    was chosen there and checked on digits.) With ``state`` the decision sticks until
    the pool grows by REGROW (new data may need coverage again)."""
    pool = pool_rows(ctx)
    left = mem.get("representative_left") if mem is not None else None
    if left and pool <= REGROW * left["pool"]:
        return "informative", left["why"]
    view = Situation(phase="transition", labels_per_class=per_class, large=large, ctx=ctx)
    arms = allowed_arms(view, PHASE_FAMILIES["transition"])
    rep = [a for a in arms if ARMS[a].family == "representative"]
    inf = [a for a in arms if ARMS[a].family != "representative"
           and stats.get(a, {}).get("plays", 0) >= MIN_PLAYS]
    if not rep or not inf or not rewards:
        return "transition", "representative arms stay until measured against informative ones"
    best = max(inf, key=lambda a: stats[a]["mean"])
    paying = [a for a in rep if stats.get(a, {}).get("plays", 0) < MIN_PLAYS
              or stats[a]["mean"] >= stats[best]["mean"]]
    if paying:
        return "transition", f"{', '.join(paying)} still paying (or measured too few times)"
    why = (f"representative arms stopped paying at {ctx.n_labeled} labels: "
           + ", ".join(f"{a} mean {stats[a]['mean']:.4f}" for a in rep)
           + f" < {best} mean {stats[best]['mean']:.4f}")
    if mem is not None:
        mem["representative_left"] = {"pool": pool, "labels": ctx.n_labeled, "why": why}
    return "informative", why


def _build_indexes(ctx: Context, allowed: tuple[str, ...], large: bool) -> list[str]:
    """On a large pool, build (once, into ``state``) the index of every allowed arm, not
    only the chosen one, and join new rows to each every round, so that switching arms
    later never pays an index build (or several rounds' new rows) inside a round: the
    kNN graph of the coverage arms and the pool clustering of cluster-margin. Returns
    the names of the indexes built now (the call's
    :class:`~longtail.strategies._base.IndexLog` records them, with their seconds)."""
    if not large or ctx.vectors is None or ctx.probs is None:
        return []
    before = set(ctx.indexes.built())
    if any(a in ("coverage", "margin_coverage") for a in allowed):
        pool_graph(ctx, knn=int(ctx.params.get("knn", COVERAGE_KNN)))
    if "cluster_margin" in allowed:
        n_cl = pool_clustering_k(ctx)
        pool_clusters(ctx, n_cl, name=f"pool_{n_cl}")
    return [n for n in ctx.indexes.built() if n not in before]
