"""A run's budget: it stops at the first of ``epochs``, ``max_steps`` and ``max_minutes`` (of training, evaluation
not counted); resumed with ``more``, the budget given counts from where it stopped."""

from __future__ import annotations

import dataclasses
import math

from .config import BUDGET_FIELDS, TrainConfig


def planned_steps(config: TrainConfig, steps_per_epoch: int) -> int | None:
    """The steps the run does: the fewer of ``max_steps`` and ``epochs`` passes; None: a budget in minutes only."""
    limits = []
    if config.max_steps is not None:
        limits.append(int(config.max_steps))
    if config.epochs is not None:
        limits.append(math.ceil(config.epochs * steps_per_epoch))
    return min(limits) if limits else None


def time_fraction(config: TrainConfig, train_seconds: float) -> float | None:
    """The fraction of ``max_minutes`` spent training; None: no budget in minutes."""
    if config.max_minutes is None:
        return None
    return train_seconds / (60 * config.max_minutes)


def budget_text(config: TrainConfig) -> str:
    """The budget in words: "max_steps 500, max_minutes 5"."""
    return ", ".join(f"{name} {getattr(config, name):g}" for name in BUDGET_FIELDS if getattr(config, name) is not None)


def extended_budget(
    config: TrainConfig, step: int, train_seconds: float, steps_per_epoch: int
) -> tuple[TrainConfig, str]:
    """Resume with ``more``: (``config`` with its budget counted from here, what was given in words). max_steps N:
    N more steps; max_minutes M: M more minutes of training; epochs E: E more passes."""
    totals = {}
    if config.max_steps is not None:
        totals["max_steps"] = step + config.max_steps
    if config.max_minutes is not None:
        totals["max_minutes"] = round(train_seconds / 60 + config.max_minutes, 6)
    if config.epochs is not None:
        totals["epochs"] = round(step / steps_per_epoch + config.epochs, 6)
    given = ", ".join(f"{name} {getattr(config, name):g} more" for name in totals)
    return dataclasses.replace(config, **totals), given
