"""The README's product_path table from the result files: per set, auto@product's AULC
against the best peer's (the peer with the highest AULC in the matching
label_efficiency file, each given a free test set) and the budgets where auto@product
is measurably below the best peer at that budget (issue 28's rule: its mean under the
peer's mean minus the larger of the two seed sds).

    python bench/_product_path_table.py bench/results/product_path.json [more.json ...]
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import RESULTS  # noqa: E402


def peers_of(name: str) -> dict[str, dict]:
    """The peers' figures on `name` ({} when none were measured)."""
    f = RESULTS / ("label_efficiency.json" if name == "banking77"
                   else f"label_efficiency_{name}.json")
    if not f.exists():
        return {}
    methods = json.loads(f.read_text()).get("methods", {})
    return {m: v for m, v in methods.items() if not m.startswith("longtail:")
            and v.get("accuracy_mean") and None not in v["accuracy_mean"]}


def rows(path: Path) -> list[str]:
    out = []
    result = json.loads(path.read_text())
    for name, d in result["datasets"].items():
        auto = d["methods"].get("longtail:auto@product")
        if auto is None:
            continue
        budgets, mean, sd = d["budgets"], auto["accuracy_mean"], auto["accuracy_sd"]
        peers = peers_of(name)
        if not peers:
            out.append(f"| {name} | {len(auto['seeds'])} | {auto['aulc']:.4f} | not measured "
                       f"| – | {auto['eval_labels_mean'][-1]:.0f} |")
            continue
        m = max(peers, key=lambda k: np.mean(peers[k]["accuracy_mean"]))
        below = []
        for i, b in enumerate(budgets):
            p = max(peers.values(), key=lambda v: v["accuracy_mean"][i])
            if mean[i] < p["accuracy_mean"][i] - max(sd[i], p["accuracy_sd"][i]):
                below.append(f"{b} ({100 * (mean[i] - p['accuracy_mean'][i]):+.1f})")
        out.append(f"| {name} | {len(auto['seeds'])} | {auto['aulc']:.4f} | "
                   f"{np.mean(peers[m]['accuracy_mean']):.4f} ({m.split(':', 1)[1]}) | "
                   f"{', '.join(below) or 'nowhere'} | {auto['eval_labels_mean'][-1]:.0f} |")
    return out


def main(argv: list[str] | None = None) -> int:
    args = argv if argv is not None else sys.argv[1:]
    print("| set | seeds | auto@product AULC | best peer AULC (free test set) "
          "| auto@product below the best peer at | eval labels at the end |")
    print("|---|---|---|---|---|---|")
    for a in args:
        print("\n".join(rows(Path(a))))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
