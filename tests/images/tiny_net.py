"""A tiny network for the torch encoder's tests: fixed weights, no download."""

from __future__ import annotations


def build():
    import torch

    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(3 * 16 * 16, 8))


def not_a_network():
    return 42
