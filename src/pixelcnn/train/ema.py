"""Exponential moving average of a model's weights (Polyak averaging): the weights a run evaluates and saves."""

from __future__ import annotations

import copy

import torch
from torch import nn


class EMA:
    """Exponential moving average of a model's weights (Polyak averaging), used for evaluation.

    The decay starts low and rises to ``decay`` ((1 + n) / (10 + n) after n
    updates), so that the average is useful early in short runs too.
    """

    def __init__(self, model: nn.Module, decay: float):
        self.decay = decay
        self.updates = 0
        self.model = copy.deepcopy(model).eval()
        for param in self.model.parameters():
            param.requires_grad_(False)

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        decay = min(self.decay, (1 + self.updates) / (10 + self.updates))
        for average, param in zip(self.model.parameters(), model.parameters()):
            average.lerp_(param.detach(), 1 - decay)
        for average, buffer in zip(self.model.buffers(), model.buffers()):
            average.copy_(buffer)
        self.updates += 1

    def state_dict(self) -> dict:
        return {"updates": self.updates, "weights": self.model.state_dict()}

    def load_state_dict(self, state: dict) -> None:
        self.updates = int(state["updates"])
        self.model.load_state_dict(state["weights"])
