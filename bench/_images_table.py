"""The README's images tables from bench/results/images.json (a tool, not a benchmark).

    python bench/_images_table.py [PATH]
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

ORDER = ("longtail:random-cnn", "longtail:auto-cnn", "longtail:bald-cnn",
         "longtail:auto-cnn+pseudo", "longtail:random-lr", "longtail:auto-lr")


def main(argv: list[str]) -> int:
    path = Path(argv[0]) if argv else Path(__file__).parent / "results" / "images.json"
    d = json.loads(path.read_text())
    budgets = d["budgets"]
    show = [i for i, b in enumerate(budgets) if b % 500 == 0 or b in (250, 750)]
    print("| method | seeds | " + " | ".join(f"{budgets[i]:,}" for i in show) + " |")
    print("|---|---|" + "---|" * len(show))
    for name in ORDER:
        m = d["methods"].get(name)
        if not m:
            continue
        cells = [f"{m['accuracy_mean'][i]:.3f} ± {m['accuracy_sd'][i]:.3f}"
                 if i < len(m["accuracy_mean"]) else "—" for i in show]
        print(f"| `{name}` | {len(m['seeds'])} | " + " | ".join(cells) + " |")
    print()
    print("| method | seed | " + " | ".join(f"{budgets[i]:,}" for i in show) + " |")
    print("|---|---|" + "---|" * len(show))
    for name in ORDER:
        m = d["methods"].get(name)
        for seed, run in zip(m["seeds"], m["runs"], strict=True) if m else ():
            print(f"| `{name}` | {seed} | "
                  + " | ".join(f"{run['accuracy'][i]:.3f}" if i < len(run["accuracy"])
                               else "—" for i in show) + " |")
    if d.get("transfer"):
        print()
        print("| selected with | trained with | labels | seeds | gain, points [95% CI] |")
        print("|---|---|---|---|---|")
        for t in d["transfer"]:
            print(f"| {t['selected_with']} | {t['trained_with']} | {t['labels']:,} | "
                  f"{len(t['seeds'])} | {100 * t['gain_mean']:+.1f} "
                  f"[{100 * t['gain_lo']:+.1f}, {100 * t['gain_hi']:+.1f}] |")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
