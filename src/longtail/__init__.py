"""longtail: an active learning data engine.

`longtail.Project` is the workflow facade; `longtail.strategies` holds the selection
strategies as pure functions on arrays.
"""

from typing import Any

__version__ = "0.1.0"
__all__ = ["Project", "__version__"]


def __getattr__(name: str) -> Any:
    # Lazy, so `import longtail.strategies` does not pull in the store and pyarrow.
    if name == "Project":
        from longtail.project import Project

        return Project
    raise AttributeError(f"module 'longtail' has no attribute {name!r}")
