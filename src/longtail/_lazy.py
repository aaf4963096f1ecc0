"""Package attributes imported on first use (PEP 562), so importing a package does not
import scipy or scikit-learn until something needs them: the CLI starts faster."""

from __future__ import annotations

import importlib
from collections.abc import Callable


def lazy_exports(package: str, sources: dict[str, tuple[str, ...]]) -> tuple[Callable, Callable]:
    """``(__getattr__, __dir__)`` for `package` exporting each name of
    ``sources[submodule]`` from ``package.submodule`` when first asked for."""
    where = {name: sub for sub, names in sources.items() for name in names}

    def __getattr__(name: str) -> object:
        sub = where.get(name)
        if sub is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(f"{package}.{sub}"), name)
        globals_ = importlib.import_module(package).__dict__
        globals_[name] = value  # later lookups skip __getattr__
        return value

    def __dir__() -> list[str]:
        return sorted(set(where) | set(importlib.import_module(package).__dict__))

    return __getattr__, __dir__
