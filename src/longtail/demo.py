"""`longtail demo`: the whole loop on the bundled Banking77 data, end to end."""

from __future__ import annotations

import csv
import hashlib
import html
import os
import tempfile
from collections.abc import Callable
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

from longtail.errors import ProjectError

CACHE = Path(os.environ.get("LONGTAIL_CACHE", Path.home() / ".cache" / "longtail"))


def bundled(name: str) -> Path:
    """Path of a bundled Banking77 file (train.csv, test.csv, README.md)."""
    return Path(str(resources.files("longtail") / "data" / "banking77" / name))


class CachedEncoder:
    """Wraps an encoder with an on-disk cache keyed by a hash of the text, so the demo
    embeds Banking77 once per machine (about a minute on 2 cores) and reuses it."""

    def __init__(self, inner: Any, cache_file: Path):
        self.inner, self.cache_file = inner, cache_file
        self.name, self.needs = inner.name, inner.needs
        self._cache: dict[bytes, np.ndarray] = {}
        if cache_file.exists():
            with np.load(cache_file) as data:
                self._cache = dict(zip((bytes(k) for k in data["keys"]), data["vectors"],
                                       strict=True))
        self.misses = 0

    @property
    def dim(self) -> int:
        return self.inner.dim

    def config(self) -> dict:
        return self.inner.config()

    @staticmethod
    def _key(text: str) -> bytes:
        return hashlib.blake2b(text.encode(), digest_size=16).digest()

    def encode(self, batch: dict) -> np.ndarray:
        keys = [self._key(t) for t in batch["text"]]
        missing = [i for i, k in enumerate(keys) if k not in self._cache]
        if missing:
            vecs = self.inner.encode({"text": [batch["text"][i] for i in missing],
                                      "metadata": [{}] * len(missing)})
            for i, v in zip(missing, vecs, strict=True):
                self._cache[keys[i]] = v
            self.misses += len(missing)
        return np.stack([self._cache[k] for k in keys]).astype(np.float32)

    def save(self) -> None:
        if self.misses:
            self.cache_file.parent.mkdir(parents=True, exist_ok=True)
            keys = np.array([np.frombuffer(k, dtype=np.uint8) for k in self._cache])
            tmp = self.cache_file.with_suffix(".tmp.npz")
            np.savez(tmp, keys=keys, vectors=np.stack(list(self._cache.values())))
            tmp.replace(self.cache_file)


def _svg_curves(curves: dict[str, tuple[list[int], list[float]]], width: int = 560,
                height: int = 300) -> str:
    xs = [x for xv, _ in curves.values() for x in xv]
    ys = [y for _, yv in curves.values() for y in yv]
    x0, x1, y0, y1 = 0, max(xs), max(0.0, min(ys) - 0.05), min(1.0, max(ys) + 0.05)
    pad = 40

    def px(x: float) -> float:
        return pad + (x - x0) / (x1 - x0 or 1) * (width - 2 * pad)

    def py(y: float) -> float:
        return height - pad - (y - y0) / (y1 - y0 or 1) * (height - 2 * pad)

    colors = ["#d62728", "#1f77b4", "#2ca02c", "#9467bd"]
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}">',
             f'<rect width="{width}" height="{height}" fill="white"/>',
             f'<line x1="{pad}" y1="{height - pad}" x2="{width - pad}" y2="{height - pad}" '
             'stroke="black"/>',
             f'<line x1="{pad}" y1="{pad}" x2="{pad}" y2="{height - pad}" stroke="black"/>',
             f'<text x="{width / 2}" y="{height - 8}" text-anchor="middle">labels</text>']
    for t in np.linspace(y0, y1, 5):
        parts.append(f'<text x="{pad - 4}" y="{py(t) + 4}" text-anchor="end" '
                     f'font-size="10">{t:.2f}</text>')
    for t in np.linspace(0, x1, 6):
        parts.append(f'<text x="{px(t)}" y="{height - pad + 14}" text-anchor="middle" '
                     f'font-size="10">{t:.0f}</text>')
    for i, (name, (xv, yv)) in enumerate(curves.items()):
        pts = " ".join(f"{px(x):.1f},{py(y):.1f}" for x, y in zip(xv, yv, strict=True))
        c = colors[i % len(colors)]
        parts.append(f'<polyline fill="none" stroke="{c}" stroke-width="2" points="{pts}"/>')
        parts.append(f'<text x="{pad + 10}" y="{pad + 14 * (i + 1)}" fill="{c}">'
                     f'{html.escape(name)}</text>')
    parts.append("</svg>")
    return "\n".join(parts)


def write_summary(path: Path, results: dict, status: dict, seconds: dict,
                  facts: dict | None = None) -> None:
    """A short, offline HTML page: the learning curves, the table, and the data's credit.
    Every figure on it comes from what ran: `facts` holds the intents and test rows
    actually used (and the --limit, if any)."""
    facts = facts or {}
    curves, rows = {}, []
    for name, res in results.items():
        run = res["runs"][0]
        curves[name] = (run["n_labels"], run["test_accuracy"])
    budgets = results[next(iter(results))]["runs"][0]["n_labels"]
    for i, n in enumerate(budgets):
        cells = "".join(f"<td>{res['runs'][0]['test_accuracy'][i]:.3f}</td>"
                        for res in results.values())
        run0 = results[next(iter(results))]["runs"][0]
        ev, n_ev = run0["eval_accuracy"][i], run0["eval_labels"][i]
        ev_cell = "-" if ev is None else f"{ev:.3f} ({n_ev})"
        rows.append(f"<tr><td>{n}</td>{cells}<td>{ev_cell}</td></tr>")
    heads = "".join(f"<th>{html.escape(n)} (test)</th>" for n in results)
    first = next(iter(results))
    sampled = (f"A seeded sample of {facts['limit']:,} messages per file, stratified by "
               f"intent (--limit). " if facts.get("limit") else "")
    page = f"""<!doctype html><html><head><meta charset="utf-8"><title>longtail demo</title>
<style>body{{font-family:sans-serif;max-width:760px;margin:2em auto}}td,th{{padding:2px 10px;
text-align:right}}table{{border-collapse:collapse}}tr:nth-child(even){{background:#f4f4f4}}</style>
</head><body><h1>longtail demo: Banking77</h1>
<p>Pool: {status['pool']:,} messages ({status['eval']:,} held out as the managed eval set),
{facts.get('intents', '?')} intents, embedded with {html.escape(str(status['encoder']))}.
{sampled}Each strategy starts from 0 labels; rounds of {results[first]['batch']} labels
answered by an oracle, split as <code>query</code> splits them; accuracy on
{facts.get('test', '?'):,} test messages (logistic regression on the embeddings), each
figure with the labels it was trained on.</p>
{_svg_curves(curves)}
<table><tr><th>labels</th>{heads}<th>{html.escape(first)} (managed eval set, labeled so far)</th></tr>
{''.join(rows)}</table>
<p>Seconds: {', '.join(f'{k} {v:.1f}' for k, v in seconds.items())}.</p>
<p>Data: Banking77 (PolyAI), CC BY 4.0. Casanueva et al., "Efficient Intent Detection with
Dual Sentence Encoders", NLP4ConvAI 2020.</p></body></html>"""
    path.write_text(page)


def _plain_curves(title: str, results: dict) -> str:
    """The first run's test accuracy per budget, one line each."""
    runs = {name: res["runs"][0] for name, res in results.items()}
    first = next(iter(runs.values()))
    lines = [title] + [f"{n:>6} " + "  ".join(f"{name} {run['test_accuracy'][i]:.3f}"
                                              for name, run in runs.items())
                       for i, n in enumerate(first["n_labels"])]
    return "\n".join(lines)


def _sample(src: Path, dst: Path, limit: int | None, *, seed: int = 0,
            column: str = "category") -> Path:
    """`src`, or a seeded stratified sample of `limit` of its rows written to `dst` (a
    quick demo, and the tests): each value of `column` keeps its share of the rows
    (largest remainders; every class at least one row while `limit` allows), rows in
    file order. The files are sorted by class, so their head would hold a few classes."""
    if not limit:
        return src
    with open(src, newline="") as f:
        reader = csv.reader(f)
        header = next(reader)
        rows = list(reader)
    if limit >= len(rows):
        return src
    col = header.index(column)
    labels = np.array([r[col] for r in rows])
    classes, counts = np.unique(labels, return_counts=True)
    share = counts * limit / len(rows)
    take = np.floor(share).astype(int)
    if limit >= len(classes):
        take = np.maximum(take, 1)
    order = np.argsort(-(share - np.floor(share)), kind="stable")
    i = 0
    while take.sum() < limit:
        if take[order[i % len(order)]] < counts[order[i % len(order)]]:
            take[order[i % len(order)]] += 1
        i += 1
    while take.sum() > limit:  # the at-least-one floor overshot: trim the largest
        take[int(np.argmax(take))] -= 1
    rng = np.random.default_rng(seed)
    keep = np.sort(np.concatenate([
        rng.choice(np.flatnonzero(labels == c), k, replace=False)
        for c, k in zip(classes, take, strict=True) if k > 0]))
    with open(dst, "w", newline="") as out:
        writer = csv.writer(out)
        writer.writerow(header)
        writer.writerows(rows[i] for i in keep)
    return dst


def run_demo(directory: Path | None, *, rounds: int = 10, batch: int = 100, console: Any,
             progress: Callable[[str], Any], limit: int | None = None,
             curves_table: Callable[[str, dict], Any] | None = None) -> Path:
    """Create a project, ingest and embed Banking77, simulate auto against random, and
    write the HTML summary; returns its path. `limit` keeps a seeded stratified sample of
    that many rows of each file (the full demo uses all 10,003 + 3,080).

    The caller brings the user interface: `console` (has `.print`), `progress(label)`, a
    context manager yielding a (done, total) callback, and `curves_table(title, results)`,
    something `console.print` shows (default: one plain line per budget). So the demo
    needs nothing from the CLI, and the CLI imports the demo only when it runs."""
    import time

    from longtail.encoders import get_encoder
    from longtail.project import Project

    directory = Path(directory) if directory else Path(tempfile.mkdtemp(prefix="longtail-demo-"))
    if (directory / "catalog.db").exists():
        raise ProjectError(f"{directory} already holds a project; give a new --dir")
    seconds: dict[str, float] = {}
    console.print(f"[bold]longtail demo[/bold] in {directory}")
    t = time.perf_counter()
    p = Project.init(directory)
    with progress("ingest") as bar:
        rep = p.ingest(_sample(bundled("train.csv"), directory / "train-sample.csv", limit),
                       id="id", text="text", progress=bar)
    console.print(f"ingested {rep.new} messages ({rep.eval_rows} to the managed eval set)")
    seconds["ingest"] = time.perf_counter() - t
    t = time.perf_counter()
    enc = CachedEncoder(get_encoder("minilm"), CACHE / "banking77-minilm.npz")
    with progress("embed (MiniLM)") as bar:
        p.embed("minilm", encoder_impl=enc, progress=bar)
    with open(_sample(bundled("test.csv"), directory / "test-sample.csv", limit),
              newline="") as f:
        test_rows = list(csv.DictReader(f))
    X_test = enc.encode({"text": [r["text"] for r in test_rows], "metadata": []})
    y_test = np.array([r["category"] for r in test_rows])
    enc.save()
    seconds["embed"] = time.perf_counter() - t
    console.print(f"embedded with MiniLM ({enc.misses} new, the rest from the cache)")
    results = {}
    for name in ("auto", "random"):
        t = time.perf_counter()
        with progress(f"simulate {name}") as bar:
            results[name] = p.simulate("category", strategy=name, batch=batch,
                                       budget=rounds * batch, seeds=1, test=(X_test, y_test),
                                       on_round=lambda s, pt, bar=bar: bar(pt["n_labels"],
                                                                           rounds * batch)
                                       ).to_dict()
        seconds[f"simulate {name}"] = time.perf_counter() - t
    title = "test accuracy by labels: auto next to random"
    console.print(curves_table(title, results) if curves_table else _plain_curves(title, results))
    summary = directory / "demo-summary.html"
    with open(_sample(bundled("train.csv"), directory / "train-sample.csv", limit),
              newline="") as f:
        intents = len({r["category"] for r in csv.DictReader(f)})
    facts = {"intents": intents, "test": len(test_rows), "limit": limit,
             "intents_in_full_data": 77}
    write_summary(summary, results, p.status().to_dict(), seconds, facts)
    p.close()
    console.print(f"summary: {summary}")
    return summary
