"""(An experiment script, not a benchmark: the leading underscore keeps `bench/run.py`
and the smoke test from running it; run it by hand.) Where longtail's cost trade-off
(the setting `cost_tradeoff`) was chosen: an array simulation of `auto` with a
cost-aware cut, fast enough for many seeds (issue 29).

Each round `auto` (`longtail.loop.round.plan_batch`) plans its share plus 2x more; a
rule keeps its share of them; eval rows (by need, as the product splits a batch: a
uniform draw here) cost money too. Money per answer: bench/cost_aware.py's simulated
seconds at its pools' rates; the cost model is the product's (`longtail.costs.model`)
fitted on every answer so far. Reports the money to reach 95% of full-data accuracy on
the test set per seed. Not the product path: bench/cost_aware.py is the check.

Rules (`rule:gamma:m`, m the shortlist factor, default 3): `blind` (auto alone),
`lc` ((1 - max prob) / cost^gamma), `rank` ((1 - rank/n) / cost^gamma), `pclass` (rank
over cost relative to its predicted class's median), `dropx` (the cheapest, in auto's
order), `arm` (`lc`, or blind, as `longtail.costs.select.choose_cost_aware` decides), `armg`
(the same with the greedy rule, z = 0: the higher mean reward wins).

    python bench/cost_tune.py digits 20 400 10 blind lc:1 lc:0.5 arm:0.5
"""
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import numpy as np  # noqa: E402

import cost_aware as ca  # noqa: E402
import datasets  # noqa: E402
from _common import first_reach  # noqa: E402
from longtail.costs.model import cost_features, fit_cost_model  # noqa: E402
from longtail.costs.select import Z_SWITCH, MoneyRound, choose_cost_aware  # noqa: E402
from longtail.evaluation.budget import eval_need, wilson_halfwidth  # noqa: E402
from longtail.evaluation.metrics import proportion_interval  # noqa: E402
from longtail.learners import make_learner  # noqa: E402
from longtail.loop.policy import PastBatch, split_batch  # noqa: E402
from longtail.loop.round import plan_batch  # noqa: E402
from longtail.loop.simulate import _accuracy, predict_rows  # noqa: E402
from longtail.strategies._base import ArrayVectors  # noqa: E402

NAME = ''
SECONDS: dict = {}  # per data set, the simulated seconds (for the `rate` rule's time model)


def load(name):
    data, _ = datasets.load(name, 'full')
    X, y, Xt, yt, names = data
    if name == 'banking77':
        sec, texts, expert = ca.banking77_costs(names[y])
    else:
        sec, texts, expert = ca.digits_costs(X, y, names)
    rate = np.where(np.isin(names[y].astype(str), expert), 80.0, 20.0)
    money = sec * rate / 3600
    SECONDS[name] = sec
    tl = np.array([len(t) for t in texts], float)
    return X, y, Xt, yt, money, tl



def keep_rule(rule, g, short_rows, k, P_short, costs_short, F, cm, Pall_pc=None):
    n = len(short_rows)
    if rule == 'blind' or n <= k:
        return np.arange(min(k, n))
    v_rank = 1 - np.arange(n) / n
    c = costs_short
    if rule in ('lc', 'lct', 'rate', 'mix'):  # lct: lc with the true costs (a diagnosis, not a rule)
        v = 1 - P_short.max(1)
    elif rule == 'rank':
        v = v_rank
    elif rule == 'dropx':   # drop the most expensive, keep auto's order
        keep = np.sort(np.argsort(c, kind='stable')[:k])
        return keep
    elif rule == 'pclass':  # cost relative to predicted-class median of the shortlist's class mates
        pc = P_short.argmax(1)
        med = np.array([np.median(c[pc == q]) for q in pc])
        c = c / med
        v = v_rank
    sc = v / c ** g
    return np.sort(np.argsort(-sc, kind='stable')[:k])

def run(D, rule, g, m, seed, batch, budget, target):
    X, y, Xt, yt, money, tl = D
    truth = np.array([str(v) for v in y], dtype=object)
    vectors = ArrayVectors(X)
    F = cost_features(X, tl)
    rng = np.random.default_rng(seed)
    pool_rows = np.arange(len(X))
    model = make_learner('linear')
    labeled, eval_labeled, past, state, history = [], [], [], {}, []
    trained, metric_prev, halfwidth, paid = False, None, None, 0
    spent = 0.0
    curve = []
    mh = []
    while paid < budget:
        k = min(batch, budget - paid)
        taken = np.asarray(labeled + eval_labeled, dtype=np.int64)
        candidates = np.setdiff1d(pool_rows, taken)
        eval_classes = {str(truth[r]) for r in eval_labeled}
        train_classes = {str(truth[r]) for r in labeled}
        need = eval_need(labeled=len(eval_labeled), pending=len(candidates), accuracy=metric_prev,
                         halfwidth=halfwidth, target=0.03, has_model=trained,
                         new_classes=sorted(train_classes - eval_classes) if eval_labeled else (),
                         pool=len(pool_rows))
        n_eval, n_control = split_batch(k, need, eval_share=0.2, control_share=0.0, past=past)
        # eval rows: a uniform draw (the product's eval split is random)
        ev_new = rng.choice(candidates, n_eval, replace=False) if n_eval else np.array([], np.int64)
        candidates = np.setdiff1d(candidates, ev_new)
        ks = k - n_eval
        extra = int(round((m - 1) * ks)) if (trained and rule != 'blind') else 0
        lab = np.asarray(labeled, np.int64)
        plan = plan_batch(ks + extra, candidates, rng=rng, strategy='auto', vectors=vectors,
                          probs_for=(lambda rows: predict_rows(model, vectors, rows)) if trained else None,
                          classes=np.asarray(model.classes_) if trained else None,
                          labeled_rows=lab, labeled_y=truth[lab] if len(lab) else None,
                          pending_eval=np.array([], np.int64), eval_share=0.0, control_share=0.0,
                          state=state, history=history, n_eval=0, n_control=0)
        sel = plan.rows_of('selected')
        use = rule
        if rule in ('arm', 'armg'):  # armg: the greedy rule (higher mean wins, z = 0)
            z = 0.0 if rule == 'armg' else Z_SWITCH
            use = 'lc' if choose_cost_aware(mh, z=z).cost_aware else 'blind'
        m0 = spent
        if extra and len(sel) > ks and use == 'blind':
            sel = sel[:ks]
        if extra and len(sel) > ks:
            cm = fit_cost_model(F[taken], money[taken])
            c = money[sel] if use == 'lct' else cm.predict(F[sel])
            if use in ('rate', 'mix'):  # rate: the predicted pool rate alone (money over
                # predicted time); mix: rate x sqrt(time)
                sec = SECONDS[NAME]
                t = fit_cost_model(F[taken], sec[taken]).predict(F[sel])
                c = c / t * (np.sqrt(t) if use == 'mix' else 1.0)
            P = predict_rows(model, vectors, sel)
            sel = sel[keep_rule(use, g, sel, ks, P, c, F, cm)]
        past.append(PastBatch(size=len(sel) + len(ev_new), eval=len(ev_new), control=0,
                              eval_requested=need.request > 0, control_on=False))
        paid += len(sel) + len(ev_new)
        spent += float(money[sel].sum() + money[ev_new].sum())
        before = len(labeled)
        labeled += [int(r) for r in sel]
        eval_labeled += [int(r) for r in ev_new]
        rows = np.asarray(labeled, dtype=np.int64)
        model.fit(X[rows], truth[rows])
        trained = True
        ev = np.asarray(eval_labeled, dtype=np.int64)
        metric = _accuracy(model, X[ev], truth[ev]) if len(ev) else None
        if metric is not None:
            lo, hi = proportion_interval(int(round(metric * len(ev))), len(ev))
            halfwidth = max(float(hi - lo) / 2, wilson_halfwidth(metric, len(ev)))
        arm = plan.log.get('selection', {}).get('arm', 'auto')
        history.append({'arm': arm, 'n_labels_before': before, 'n_labels_after': len(labeled),
                        'metric_before': metric_prev, 'metric_after': metric})
        if trained and before > 0:
            mh.append(MoneyRound(use != 'blind', metric_prev, metric, m0, spent))
        metric_prev = metric
        acc = _accuracy(model, Xt, np.array([str(v) for v in yt], dtype=object))
        curve.append((paid, spent, acc))
        if acc >= target + 0.01 and paid >= 3 * batch:
            break
    return curve

def main(argv: list[str]) -> int:
    global NAME
    name, batch, budget = argv[0], int(argv[1]), int(argv[2])
    NAME = name
    seeds = range(int(argv[3]))
    D = load(name)
    X, y, Xt, yt, money, tl = D
    ys = np.array([str(v) for v in y], dtype=object)
    full = make_learner("linear", warm_start=False).fit(X, ys)
    facc = _accuracy(full, Xt, np.array([str(v) for v in yt], dtype=object))
    target = 0.95 * facc
    print(name, 'full', facc, 'target', target, flush=True)
    for r in argv[4:]:
        parts = r.split(':')
        rule = parts[0]
        g = float(parts[1]) if len(parts) > 1 else 1.0
        m = float(parts[2]) if len(parts) > 2 else 3
        res = []
        t0 = time.time()
        for sd in seeds:
            cur = run(D, rule, g, int(m) if m == int(m) else m, sd, batch, budget, target)
            labs, mon, acc = zip(*cur, strict=True)
            res.append((first_reach(target, list(mon), list(acc)), labs[-1]))
        mons = [a for a, _ in res]
        med = float(np.median([a if a is not None else np.inf for a in mons]))
        print(r, 'money', [None if a is None else round(a, 2) for a in mons],
              'median', round(med, 2), f'{time.time() - t0:.0f}s', flush=True)
    return 0


if __name__ == '__main__':
    raise SystemExit(main(sys.argv[1:]))
