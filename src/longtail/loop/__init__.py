"""A round (plan a batch) and the simulated loop with an oracle."""

from longtail._lazy import lazy_exports

# The loop imports the strategies (faiss, scipy): loaded when first used.
__getattr__, __dir__ = lazy_exports(__name__, {"round": ("BatchPlan", "plan_batch"),
                                               "simulate": ("simulate_run",)})

__all__ = ["BatchPlan", "plan_batch", "simulate_run"]
