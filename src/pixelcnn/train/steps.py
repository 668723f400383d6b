"""The one optimizer step of pixelcnn, and the one learning-rate schedule.

Everything that trains goes through ``OptimizerStep.take``: the ``Trainer``
(a registry model on a data set, with checkpoints, resume and EMA) and the
stages of the identity experiment (``pixelcnn.identity``: the triplet
embedding, the decoder, the judge), through ``train_parameters``. One step is

    schedule (the lr given, from ``learning_rate``)
    -> forward under the run's precision (``hardware.choose_precision``: autocast)
    -> the one NaN rule (a non-finite loss: stop, or skip the step)
    -> backward (scaled under float16)
    -> unscale -> clip the global gradient norm (the NaN rule again, on the norm)
    -> optimizer step (GradScaler.step under float16) -> GradScaler.update

and a step's settings are ``TrainConfig`` fields: ``optimizer``, ``lr``,
``beta1``, ``beta2``, ``weight_decay``, the schedule's (``warmup_steps``,
``lr_decay``, ``decay_steps``, ``final_lr_ratio``, ``decay_rate``,
``decay_every``), ``grad_clip``, ``on_nan`` and ``precision``.
"""

from __future__ import annotations

import contextlib
import functools
import math
import sys
import time
from typing import Callable

import torch

from ..hardware import Precision, choose_precision
from .signals import RunPhase, StoppedBySignal
from .stage_state import StageState

MAX_SKIPPED_IN_A_ROW = 10  # on_nan="skip": this many non-finite steps in a row stop the run


def learning_rate(config, step: int, *, planned_steps: int | None, time_fraction: float | None) -> float:
    """The learning rate of optimizer step ``step + 1`` (``step`` steps done); ``config``: a TrainConfig.

    Linear warm-up over ``warmup_steps``, then the decay. Cosine and linear
    decay run over ``decay_steps`` if set, else over the run's budget: its
    planned steps and / or its minutes, whichever is further along.
    """
    warmup = config.warmup_steps
    factor = min(1.0, (step + 1) / warmup) if warmup else 1.0
    if config.lr_decay == "exponential":
        factor *= config.decay_rate ** (max(0, step - warmup) / config.decay_every)
    elif config.lr_decay in ("cosine", "linear"):
        fractions = []
        horizon = config.decay_steps or planned_steps
        if horizon:
            fractions.append((step - warmup) / max(1, horizon - warmup))
        if config.decay_steps is None and time_fraction is not None:
            fractions.append(time_fraction)
        t = min(1.0, max(0.0, max(fractions))) if fractions else 0.0
        shape = 0.5 * (1 + math.cos(math.pi * t)) if config.lr_decay == "cosine" else 1 - t
        factor *= config.final_lr_ratio + (1 - config.final_lr_ratio) * shape
    return config.lr * factor


def make_optimizer(parameters, config) -> torch.optim.Optimizer:
    """The optimizer ``config`` (a TrainConfig) names: AdamW (decoupled weight decay) or RMSProp."""
    if config.optimizer == "adam":
        return torch.optim.AdamW(
            parameters, lr=config.lr, betas=(config.beta1, config.beta2), weight_decay=config.weight_decay
        )
    return torch.optim.RMSprop(
        parameters, lr=config.lr, alpha=config.beta2, momentum=config.beta1, weight_decay=config.weight_decay
    )


class OptimizerStep:
    """One optimizer step on ``parameters``, under ``precision``, with the NaN rule and the gradient clip.

    ``on_nan``: "stop" (a FloatingPointError; the weights untouched) or
    "skip" (the step is dropped, ``on_skip(step, reason)`` is told; after
    MAX_SKIPPED_IN_A_ROW in a row, a FloatingPointError). ``kept`` and
    ``advice`` end that error's message: what the caller keeps, and what to
    try.
    """

    def __init__(
        self,
        parameters,
        optimizer: torch.optim.Optimizer,
        precision: Precision,
        *,
        grad_clip: float | None,
        on_nan: str = "stop",
        kept: str = "the weights are untouched",
        advice: str = "Try a lower learning rate",
        on_skip: Callable[[int, str], None] | None = None,
    ):
        self.parameters = list(parameters)
        self.optimizer = optimizer
        self.precision = precision
        self.grad_clip = grad_clip
        self.on_nan = on_nan
        self.kept, self.advice, self.on_skip = kept, advice, on_skip
        # float16 gradients need loss scaling; bfloat16 and float32 do not
        self.scaler = torch.amp.GradScaler("cuda") if precision.grad_scaling else None
        self.skipped_steps = 0
        self.skipped_in_a_row = 0

    def take(
        self,
        step: int,
        lr: float,
        batch_loss: Callable[[], torch.Tensor],
        *,
        mean: Callable[[torch.Tensor], torch.Tensor] | None = None,
        guard=None,
    ) -> tuple[float, float, float]:
        """Optimizer step ``step + 1`` at learning rate ``lr`` on the mean loss ``batch_loss()`` (a scalar).

        Returns (the loss, the gradient norm before clipping, lr); a skipped
        step returns (nan, nan, lr). ``mean``: the loss over every process
        (DDP), for the NaN rule and the value returned. ``guard(work, *args)``:
        runs the forward and the backward; when it returns None (a compiled
        step that failed and fell back to eager) the step starts again.
        """
        guard = guard or (lambda work, *args: work(*args))
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        while True:
            loss = guard(self._forward, batch_loss)
            if loss is None:
                continue
            value = float(mean(loss.detach()) if mean is not None else loss.detach())
            if not math.isfinite(value):
                return self._not_finite("loss", value, step, lr)
            self.optimizer.zero_grad(set_to_none=True)
            if guard(self._backward, loss) is not None:
                break
        if self.scaler is not None:
            self.scaler.unscale_(self.optimizer)  # clip the true gradients
        if self.grad_clip:
            grad_norm = float(torch.nn.utils.clip_grad_norm_(self.parameters, self.grad_clip))
        else:
            grad_norm = float(torch.norm(torch.stack([p.grad.norm() for p in self.parameters if p.grad is not None])))
        # (with float16 autocast the GradScaler skips non-finite steps itself and lowers its scale)
        if self.scaler is None and not math.isfinite(grad_norm):
            self.optimizer.zero_grad(set_to_none=True)
            return self._not_finite("gradient norm", grad_norm, step, lr)
        self.skipped_in_a_row = 0
        if self.scaler is not None:
            self.scaler.step(self.optimizer)
            self.scaler.update()
        else:
            self.optimizer.step()
        return value, grad_norm, lr

    def _forward(self, batch_loss: Callable[[], torch.Tensor]) -> torch.Tensor:
        with self.precision.autocast():
            return batch_loss()

    def _backward(self, loss: torch.Tensor) -> bool:
        (self.scaler.scale(loss) if self.scaler is not None else loss).backward()
        return True

    def _not_finite(self, what: str, value: float, step: int, lr: float) -> tuple[float, float, float]:
        """A NaN / inf loss or gradient: skip the step (on_nan="skip") or stop; the weights are untouched."""
        step += 1
        if self.on_nan == "skip":
            self.skipped_steps += 1
            self.skipped_in_a_row += 1
            if self.skipped_in_a_row < MAX_SKIPPED_IN_A_ROW:
                if self.on_skip is not None:
                    self.on_skip(step, f"{what} {value}")
                return float("nan"), float("nan"), lr
            raise FloatingPointError(
                f"the {what} was {value} at {MAX_SKIPPED_IN_A_ROW} steps in a row (up to step "
                f"{step}): training has diverged, stopped; {self.kept}. {self.advice}"
            )
        raise FloatingPointError(f"the {what} became {value} at step {step}: stopped; {self.kept}. {self.advice}")


def train_parameters(
    parameters,
    batch_loss: Callable[[int], torch.Tensor],
    config,
    *,
    log: Callable[[str], None] | None = None,
    what: str = "loss",
    log_every: int = 50,
    state: StageState | None = None,
) -> dict:
    """Minimize ``batch_loss(step)`` over the parameters that need a gradient, for ``config``'s budget.

    ``config``: a TrainConfig; its optimisation fields (see the module
    docstring) and its budget, ``max_steps`` and / or ``max_minutes``
    (wall-clock, batches included), whichever ends first; ``progress``: a
    tqdm bar on stderr in percent of the budget. For training one part of a
    model outside a run folder (no EMA, no evaluation): the identity
    experiment's stages. Returns {"steps", "minutes", "last_loss"}
    (last_loss: the mean of the last ``log_every`` steps).

    ``state`` (a ``StageState``): resumable. A saved state is restored first
    (a finished stage: its weights loaded and its stats returned, no step
    taken); the state is saved every few steps and minutes (``StageState.due``)
    and at the end with the stats. Ctrl-C or
    SIGTERM: the step under way ends, the state is saved, then
    ``StoppedBySignal``.
    """
    from tqdm.auto import tqdm

    if config.max_steps is None and config.max_minutes is None:
        raise ValueError("train_parameters needs a budget: max_steps, max_minutes or both")
    parameters = [p for p in parameters if p.requires_grad]
    precision = choose_precision(config.precision, parameters[0].device)
    if log is not None:
        log(f"  {precision}")
    optimizer = make_optimizer(parameters, config)
    optimizer_step = OptimizerStep(parameters, optimizer, precision, grad_clip=config.grad_clip, on_nan=config.on_nan)
    started, step, recent = time.perf_counter(), 0, []
    saved = state.restore(optimizer) if state is not None else None
    if saved is not None:
        if saved["stats"] is not None:
            if log is not None:
                log(f"  {state.title}: finished before ({saved['stats']['steps']:,} steps), loaded from {state.folder}")
            return saved["stats"]
        step, recent = saved["step"], saved["recent"]
        started -= saved["seconds"]  # the budget in minutes counts the training before the stop
        if log is not None:
            log(f"  resuming {state.title} at step {step:,}{_budget_done(config, saved['seconds'])}")
    bar = tqdm(
        total=100,
        desc=what,
        unit="%",
        disable=not config.progress,
        file=sys.stderr,
        dynamic_ncols=True,
        bar_format="{desc}: {percentage:3.0f}%|{bar}| {elapsed}<{remaining}{postfix}",
    )
    phase = RunPhase()  # with a state: a signal stops after the step under way, once the state is saved

    def save(stats=None):
        with phase.during("saving"):
            state.save(optimizer, step=step, seconds=time.perf_counter() - started, recent=recent, stats=stats)

    signals = phase.stop_on_signals() if state is not None else contextlib.nullcontext()
    try:
        with signals, phase.during("steps"):
            while True:
                elapsed = time.perf_counter() - started
                time_fraction = elapsed / (60 * config.max_minutes) if config.max_minutes else None
                done = max(step / config.max_steps if config.max_steps else 0.0, time_fraction or 0.0)
                bar.update(min(100, int(100 * done)) - bar.n)
                if done >= 1:
                    break
                lr = learning_rate(config, step, planned_steps=config.max_steps, time_fraction=time_fraction)
                loss, _, _ = optimizer_step.take(step, lr, functools.partial(batch_loss, step))
                step += 1
                recent = (recent + [loss] if math.isfinite(loss) else recent)[-log_every:]
                if step % log_every == 0 and recent:
                    bar.set_postfix_str(f"step {step}, {what} {sum(recent) / len(recent):.4f}", refresh=False)
                    if log is not None and not config.progress:
                        log(f"  step {step}: {what} {sum(recent) / len(recent):.4f} ({elapsed / 60:.1f} min)")
                if state is not None and (phase.stop_requested or state.due(step)):
                    save()
                if phase.stop_requested:  # (only with a state: without one, no handler asks)
                    if log is not None:
                        log(
                            f"  stopped {state.title} at step {step:,}; its state is saved in {state.folder}: "
                            f"run again with the same settings to resume"
                        )
                    raise StoppedBySignal(phase.stop_signal)
            stats = {
                "steps": step,
                "minutes": (time.perf_counter() - started) / 60,
                "last_loss": sum(recent) / len(recent) if recent else float("nan"),
            }
            if state is not None:
                save(stats)  # done: a later run loads it instead of training
                if phase.stop_requested:  # asked while saving
                    raise StoppedBySignal(phase.stop_signal)
    except KeyboardInterrupt as interrupt:  # a second signal, or one outside the steps: stopped at once
        if phase.stop_signal is None or isinstance(interrupt, StoppedBySignal):
            raise
        raise StoppedBySignal(phase.stop_signal) from None
    finally:
        bar.close()
    return stats


def _budget_done(config, seconds: float) -> str:
    """How far a resumed stage is: " of 4,500 (31.2 of 90 minutes)"."""
    steps = f" of {config.max_steps:,}" if config.max_steps else ""
    minutes = f" of {config.max_minutes:g}" if config.max_minutes else ""
    return f"{steps} ({seconds / 60:.1f}{minutes} minutes)"
