"""A round (plan a batch) and the simulated loop with an oracle."""

from longtail.loop.round import BatchPlan, plan_batch
from longtail.loop.simulate import simulate_run

__all__ = ["BatchPlan", "plan_batch", "simulate_run"]
