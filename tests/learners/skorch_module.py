"""A small torch module for the skorch learner's tests (imported by dotted path)."""

from __future__ import annotations

import torch


class SmallNet(torch.nn.Module):
    """Vectors -> `hidden` ReLU units -> class logits."""

    def __init__(self, n_features: int, n_classes: int, hidden: int = 16) -> None:
        super().__init__()
        self.body = torch.nn.Sequential(torch.nn.Linear(n_features, hidden), torch.nn.ReLU(),
                                        torch.nn.Linear(hidden, n_classes))

    def forward(self, X: torch.Tensor) -> torch.Tensor:
        return self.body(X)
