"""The training loop: set up, ``for step ...``, log, evaluate, checkpoint.

    from pixelcnn.train import TrainConfig, train
    result = train(TrainConfig(model="gated_pixelcnn", model_options=dict(n_layers=5, hidden=32),
                               data="mnist5k", binarize="dynamic", class_conditional=True,
                               max_minutes=5, out="runs/demo"))
    print(result.final_eval)                     # test NLL in nats and bits/dim

What lands in the run folder ``out``: ``config.json`` (this run's TrainConfig),
``checkpoint.safetensors`` (everything needed to resume, see
``checkpoint.py``), ``model/`` (the weights used for evaluation, EMA if on,
loadable with ``pixelcnn.load``), ``metrics.jsonl`` (one JSON object per log
line and per evaluation), ``samples/step-NNNNNNN.png`` (a grid at each
evaluation) and TensorBoard event files when ``tensorboard`` is installed.

Reproducibility without hidden state: the batches of epoch e are a
permutation drawn from a generator seeded by (seed, e), and the binarization
draw (and the ``perturb`` replacement) of step s from one seeded by (seed, s, rank). Nothing about the data
order needs saving, and ``resume`` continues with exactly the batches, and on
the CPU exactly the losses, of an uninterrupted run.

Its parts, each in its own module: ``steps`` (the one optimizer step and the
learning-rate schedule), ``run_folder`` (the folder's lock, files and start
checks), ``build`` (the model a config names), ``ema``, ``metrics_log``,
``samples`` (the sample grid), ``signals`` (Ctrl-C / SIGTERM), ``device``,
``checkpoint`` and ``distributed``.
"""

from __future__ import annotations

import hashlib
import math
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from ..evaluate import check_compatible
from ..hardware import choose_compile, choose_precision, first_line
from ..scores import perturb
from . import distributed
from .budget import budget_text, extended_budget, planned_steps, time_fraction
from .build import build_model, preset_note
from .checkpoint import CHECKPOINT_FILE, save_checkpoint
from .config import TrainConfig
from .device import resolve_device
from .ema import EMA
from .metrics_log import MetricsLog
from .run_folder import CONFIG_FILE, MODEL_DIR, SAMPLES_DIR, RunFolder
from .samples import write_samples
from .signals import EvaluationStopped, RunPhase
from .steps import MAX_SKIPPED_IN_A_ROW, OptimizerStep, learning_rate, make_optimizer  # noqa: F401 (re-exported)

CHECKPOINT_VERSION = 1


# ---------------------------------------------------------------------------------------- helpers
def seeded_generator(*parts) -> torch.Generator:
    """A CPU generator seeded by a hash of ``parts`` (e.g. (seed, "epoch", 3)): no state to save."""
    digest = hashlib.sha256("/".join(map(str, parts)).encode()).digest()
    return torch.Generator().manual_seed(int.from_bytes(digest[:8], "little") & (2**63 - 1))


class TrainingLoss(nn.Module):
    """What training minimizes per image [B]: ``model.loss`` (-log p(x | cond) in nats for a likelihood model).

    A module, so that DDP and torch.compile can wrap it.
    """

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, images: torch.Tensor, cond: torch.Tensor | None = None) -> torch.Tensor:
        return self.model.loss(images, cond)


@dataclass
class TrainResult:
    run_dir: Path  # the run folder
    step: int  # optimizer steps done
    epoch: float  # passes over the training split
    train_minutes: float  # minutes spent in training steps (evaluation not counted)
    images_per_second: float  # training images per second over the whole run
    interrupted: bool  # stopped by Ctrl-C / SIGTERM (a checkpoint was saved)
    final_eval: object | None  # the last evaluate.EvalResult (LossResult: loss_name != "nll"); None: interrupted
    model_path: Path  # RUN/model: load with pixelcnn.load
    checkpoint_path: Path  # RUN/checkpoint.safetensors: resume with --resume
    sample_grid: Path | None  # the last sample grid written


# ---------------------------------------------------------------------------------------- trainer
class Trainer:
    """Holds the state of one run; ``run()`` is the loop. ``request_stop()`` ends it after the current step."""

    def __init__(self, config: TrainConfig, *, resume: bool = False, force: bool = False, more: bool = False, log=None):
        """``resume``: continue the run in ``config.out`` (one that never reached a checkpoint starts again
        from step 0). ``force``: start a new run in a folder that is not empty, replacing the files of a run
        it holds (without it only a new or empty folder is used). ``more``: on resume, ``config``'s budget
        (epochs, max_steps, max_minutes) counts from where the run stopped (more training), not from step 0."""
        if not isinstance(config, TrainConfig):
            raise ValueError(f"config must be a TrainConfig, got {type(config).__name__}")
        if not config.has_budget:
            raise ValueError(
                "say when to stop: give epochs, max_steps or max_minutes (--epochs, --max-steps, --max-minutes)"
            )
        self.config = config
        self.resume = resume
        self.force = force
        self.more = more
        self.phase = RunPhase()  # what the run is doing: a signal's effect depends on it
        self.run_dir = Path(config.out)
        self.folder = RunFolder(self.run_dir, self.say)
        self._log = log
        self._bar = None
        self._last_checkpoint_time = time.monotonic()

    # ---- messages
    def say(self, message: str) -> None:
        if not getattr(self, "dist", distributed.Distributed()).is_main:
            return
        if self._log is not None:
            self._log(message)
        elif self._bar is not None:
            self._bar.write(message)
        else:
            print(message, flush=True)

    def request_stop(self) -> None:
        """Finish the current step, save a checkpoint and return (what Ctrl-C and SIGTERM do)."""
        self.phase.stop_requested = True

    @property
    def stop_signal(self):
        """The signal (SIGINT / SIGTERM) that stopped the run, if any."""
        return self.phase.stop_signal

    # ---- set-up
    def _build_model(self, train_set) -> nn.Module:
        return build_model(self.config, train_set)

    def _setup(self) -> None:
        from .. import data

        c = self.config
        device = resolve_device(c.device)
        self.dist, self.device = distributed.setup(device)
        if c.threads:
            torch.set_num_threads(c.threads)
        checkpoint = None
        if self.dist.is_main:  # (lock it, creating it if needed; remove temporary files a killed job left)
            self.folder.take()
        if self.resume:
            checkpoint = self.folder.resume_state(self.config, self.force)
        elif self.dist.is_main:
            self.folder.check_fresh(self.force)

        self.phase.name = "data loading"
        self.train_set = data.load(c.data, "train", root=c.data_root, binarize=c.binarize)
        self.test_set = data.load(c.data, "test", root=c.data_root, binarize=c.binarize)
        self.steps_per_epoch = len(self.train_set) // (c.batch_size * self.dist.world_size)
        if self.steps_per_epoch < 1:
            raise ValueError(
                f"batch_size {c.batch_size} x {self.dist.world_size} process(es) is more than the "
                f"{len(self.train_set)} training images of {c.data}"
            )

        self.phase.name = "model build"
        if checkpoint is not None:
            from ..serialization import model_from_config

            saved = checkpoint.get("model") if isinstance(checkpoint.get("model"), dict) else {}
            self.model = model_from_config(saved.get("name"), saved.get("config"), self.run_dir / CHECKPOINT_FILE)
        else:
            self.model = self._build_model(self.train_set)
        check_compatible(self.model, self.train_set)
        self.model.to(self.device)
        # Nothing is written before the data and the model are known to work.
        if self.dist.is_main:
            self.run_dir.mkdir(parents=True, exist_ok=True)
            if self.folder.replacing:
                self.folder.replace_run_files()
            c.save(self.run_dir / CONFIG_FILE)
        self.say("pixelcnn train: " + ("resuming " if self.resume else "") + f"run {self.run_dir}\n" + c.describe())
        self.conditional = getattr(self.model.config, "num_classes", None) is not None
        self.loss_name = self.model.loss_name  # "nll": nats per image; else the model's own loss

        self.optimizer = make_optimizer(self.model.parameters(), c)
        self.ema = EMA(self.model, c.ema_decay) if c.ema_decay is not None else None

        cuda = self.device.type == "cuda"
        self.precision = choose_precision(c.precision, self.device)
        advice = "Try a lower --lr, more --warmup-steps or --grad-clip" + (
            ", or --on-nan skip" if c.on_nan == "stop" else ""
        )
        self.optimizer_step = OptimizerStep(
            self.model.parameters(),
            self.optimizer,
            self.precision,
            grad_clip=c.grad_clip,
            on_nan=c.on_nan,
            kept=f"the last checkpoint and {self.run_dir / MODEL_DIR} are kept",
            advice=advice,
            on_skip=self._log_skipped,
        )
        self.scaler = self.optimizer_step.scaler  # (float16 only: saved in the checkpoint)
        loss_module = TrainingLoss(self.model)
        if self.dist.enabled:
            from torch.nn.parallel import DistributedDataParallel

            # Some parameters may get no gradient (e.g. the last gated layer's vertical-stack condition,
            # whose output nothing reads), so DDP must look for them each step.
            loss_module = DistributedDataParallel(
                loss_module, device_ids=[self.device.index] if cuda else None, find_unused_parameters=True
            )
        self.eager_loss_module = self.loss_module = loss_module
        self.compiled = False

        self.step, self.train_seconds, self.sample_grid = 0, 0.0, None
        self.last_eval_step, self.last_eval_seconds = -1, 0.0
        self.final_eval = None
        if checkpoint is not None:
            try:
                self._restore(checkpoint)
            except (KeyError, TypeError, AttributeError, IndexError, RuntimeError) as err:  # a hand-edited file
                raise ValueError(
                    f"{self.run_dir / CHECKPOINT_FILE} is corrupt or not a pixelcnn checkpoint "
                    f"({type(err).__name__}: {' '.join(str(err).split())[:200]})"
                ) from None
        if self.resume and self.more:
            self._extend_budget()
        elif self.resume and self._budget_spent():
            raise ValueError(
                f"the run in {self.run_dir} has done its budget ({budget_text(self.config)}; at step "
                f"{self.step}, {self.train_seconds / 60:.2f} minutes of training): give --max-steps N, "
                f"--max-minutes M or --epochs E for that much more training"
            )
        self._choose_compile()
        # (a fresh start drops the lines of an earlier start of this run that never reached a checkpoint)
        self.metrics = (
            MetricsLog(self.run_dir, tensorboard=c.tensorboard, resume_step=self.step) if self.dist.is_main else None
        )
        count = sum(p.numel() for p in self.model.parameters())
        self.say(
            f"model: {self.model.name}, {count:,d} parameters; "
            f"{', '.join(f'{k}={v}' for k, v in self.model.config.to_dict().items())}"
        )
        self.say(f"data: {self.train_set!r}; {self.test_set!r}")
        note = preset_note(self.config, self.train_set)
        if not self.resume and note:
            self.say(note)
        threads = f", {torch.get_num_threads()} threads" if self.device.type == "cpu" else ""
        extras = [f"{self.dist.world_size} processes" if self.dist.enabled else ""]
        self.say(
            f"device: {self.device}{threads}"
            + "".join(f", {e}" for e in extras if e)
            + (f"; resuming at step {self.step}" if self.resume else "")
        )
        self.say(f"{self.precision}; {self.compile_reason}")

    def _extend_budget(self) -> None:
        """Resume with ``more``: the budget given counts from here, and the run says so (the new totals are saved)."""
        self.config, given = extended_budget(self.config, self.step, self.train_seconds, self.steps_per_epoch)
        if self.dist.is_main:
            self.config.save(self.run_dir / CONFIG_FILE)
        self.say(
            f"resuming at step {self.step} ({self.train_seconds / 60:.2f} minutes of training): {given}; "
            f"stops at {budget_text(self.config)} in all"
        )

    def _choose_compile(self) -> None:
        """torch.compile the loss module when --compile says so (auto: for a long enough rest of the run)."""
        c = self.config
        planned = self.planned_steps
        minutes = c.max_minutes - self.train_seconds / 60 if c.max_minutes is not None else None
        compile_on, self.compile_reason = choose_compile(
            c.compile,
            self.device,
            planned_steps=planned - self.step if planned is not None else None,
            planned_minutes=minutes,
            precision=self.precision.name,
        )
        if compile_on:
            self.loss_module, self.compiled = torch.compile(self.eager_loss_module, dynamic=False), True

    def _compile_failed(self, error: Exception) -> None:
        """A compile (or a compiled step) that fails: one warning, and the run goes on in eager mode."""
        self.loss_module, self.compiled = self.eager_loss_module, False
        self.compile_reason = "compile failed, eager"
        self.say(
            f"warning: torch.compile failed ({first_line(error)}); training continues without compiling "
            f"(--compile off skips the attempt)"
        )

    def _release_folder(self) -> None:
        self.folder.release()

    # ---- checkpoints
    def _state(self) -> dict:
        rng = {"torch": torch.get_rng_state()}
        if torch.cuda.is_available():
            rng["cuda"] = torch.cuda.get_rng_state_all()
        return {
            "version": CHECKPOINT_VERSION,
            "model": {"name": self.model.name, "config": self.model.config.to_dict()},
            "weights": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "ema": self.ema.state_dict() if self.ema is not None else None,
            "scaler": self.scaler.state_dict() if self.scaler is not None else None,
            "step": self.step,
            "train_seconds": self.train_seconds,
            "last_eval_step": self.last_eval_step,
            "last_eval_seconds": self.last_eval_seconds,
            "schedule": {"lr": self._lr(self.step), "lr_decay": self.config.lr_decay},
            "rng": rng,
            "config": self.config.to_dict(),
        }

    def _restore(self, state: dict) -> None:
        if state.get("version") != CHECKPOINT_VERSION:
            raise ValueError(f"checkpoint version {state.get('version')} is not {CHECKPOINT_VERSION}")
        self.model.load_state_dict(state["weights"])
        self.optimizer.load_state_dict(state["optimizer"])
        if self.ema is not None:
            self.ema.load_state_dict(state["ema"])
        if self.scaler is not None and state.get("scaler"):
            self.scaler.load_state_dict(state["scaler"])
        self.step = int(state["step"])
        self.train_seconds = float(state["train_seconds"])
        self.last_eval_step = int(state["last_eval_step"])
        self.last_eval_seconds = float(state["last_eval_seconds"])
        torch.set_rng_state(state["rng"]["torch"])
        if "cuda" in state["rng"] and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(state["rng"]["cuda"])

    def _save(self) -> None:
        """Checkpoint (atomic) and the evaluation model as RUN/model; process 0 only.

        Non-finite weights are never written: the last good checkpoint and model stay. A write that
        fails (disk full, read-only folder) leaves the previous files whole and stops the run."""
        if self.dist.is_main:
            with self.phase.during("saving"):
                self._save_files()
        self._last_checkpoint_time = time.monotonic()
        distributed.barrier(self.dist)

    def _save_files(self) -> None:
        from ..serialization import save

        for name, module in (("model", self.model), ("EMA model", self.eval_model)):
            if not all(torch.isfinite(p).all() for p in module.state_dict().values() if p.is_floating_point()):
                raise FloatingPointError(
                    f"the {name}'s weights are not finite at step {self.step}: nothing was saved; the last "
                    f"checkpoint and {self.run_dir / MODEL_DIR} are kept. Try a lower --lr or --grad-clip"
                )
        try:
            save(self.eval_model, self.run_dir / MODEL_DIR)
            save_checkpoint(self._state(), self.run_dir)
        except OSError as err:
            raise OSError(
                f"step {self.step} not saved: {err}; the previous checkpoint and saved model "
                f"in {self.run_dir} are intact"
            ) from None

    @property
    def eval_model(self) -> nn.Module:
        return self.ema.model if self.ema is not None else self.model

    # ---- the budget
    @property
    def planned_steps(self) -> int | None:
        return planned_steps(self.config, self.steps_per_epoch)

    def _time_fraction(self) -> float | None:
        return time_fraction(self.config, self.train_seconds)

    def _budget_spent(self) -> bool:
        planned = self.planned_steps
        return (planned is not None and self.step >= planned) or (self._time_fraction() or 0) >= 1

    def _timed_checkpoint_due(self) -> bool:
        """True when checkpoint_every_minutes of wall-clock time have passed since this job's last checkpoint
        (or its start), so that a slow model loses at most that much work to a crash."""
        every = self.config.checkpoint_every_minutes
        return bool(every) and time.monotonic() - self._last_checkpoint_time >= 60 * every

    def _timed_eval_due(self) -> bool:
        """True when a multiple of eval_every_minutes of training has passed since the last evaluation."""
        every = self.config.eval_every_minutes
        if not every:
            return False
        return int(self.train_seconds / (60 * every)) > int(self.last_eval_seconds / (60 * every))

    def _lr(self, step: int) -> float:
        return learning_rate(self.config, step, planned_steps=self.planned_steps, time_fraction=self._time_fraction())

    # ---- one step
    def _batch(self, step: int) -> tuple[torch.Tensor, torch.Tensor | None]:
        """The images (model input, uint8) and labels of optimizer step ``step + 1`` for this process."""
        c, rank, world = self.config, self.dist.rank, self.dist.world_size
        epoch, position = divmod(step, self.steps_per_epoch)
        if getattr(self, "_order_epoch", None) != epoch:
            self._order = torch.randperm(len(self.train_set), generator=seeded_generator(c.seed, "epoch", epoch))
            self._order_epoch = epoch
        start = (position * world + rank) * c.batch_size
        index = self._order[start : start + c.batch_size]
        images = self.train_set.prepare_batch(
            self.train_set.images[index], seeded_generator(c.seed, "binarize", step, rank)
        )
        if c.perturb > 0:  # a background model's inputs (Ren et al. 2019): values replaced at random
            images = perturb(
                images, c.perturb, self.train_set.levels, generator=seeded_generator(c.seed, "perturb", step, rank)
            )
        labels = self.train_set.labels[index] if self.conditional else None
        return images, labels

    def _train_step(self, images: torch.Tensor, labels: torch.Tensor | None) -> tuple[float, float, float]:
        """One optimizer step (``OptimizerStep.take``: the only one); returns (mean loss per image (NLL, nats),
        gradient norm, learning rate)."""
        images = images.to(self.device, non_blocking=True)
        labels = labels.to(self.device, non_blocking=True) if labels is not None else None
        self.model.train()
        # (self.loss_module is read at each try: a compile that fails switches it to eager, then the step again)
        loss, grad_norm, lr = self.optimizer_step.take(
            self.step,
            self._lr(self.step),
            lambda: self.loss_module(images, labels).mean(),
            mean=lambda loss: distributed.mean_over_processes(loss, self.dist),  # the global batch's mean
            guard=self._eager_on_failure,
        )
        if self.ema is not None and math.isfinite(loss):  # (not a skipped step)
            self.ema.update(self.model)
        return loss, grad_norm, lr

    def _eager_on_failure(self, work, *args):
        """``work(*args)``; when a compiled step raises (compiling happens in the first forward and backward),
        warn once, switch to eager and return None for the caller to redo the step."""
        try:
            return work(*args)
        except Exception as error:  # (torch raises many kinds while compiling: any of them means eager)
            if not self.compiled:
                raise
            self._compile_failed(error)
            self.optimizer.zero_grad(set_to_none=True)
            return None

    def _log_skipped(self, step: int, reason: str) -> None:
        """on_nan="skip": a step dropped for a non-finite loss or gradient, in metrics.jsonl."""
        if self.metrics is not None:
            self.metrics.write({"kind": "skipped", "step": step, "reason": reason})

    @property
    def skipped_steps(self) -> int:
        """Steps dropped by on_nan="skip" in this job."""
        return self.optimizer_step.skipped_steps if hasattr(self, "optimizer_step") else 0

    # ---- evaluation
    def _evaluate(self) -> None:
        """Test NLL of the evaluation model (and a sample grid); process 0 only."""
        self.last_eval_step, self.last_eval_seconds = self.step, self.train_seconds
        if self.dist.is_main:
            try:
                with self.phase.during("evaluation"):
                    self._evaluate_and_log()
            except EvaluationStopped:  # a signal: no evaluation this time; the loop saves and stops
                pass
        distributed.barrier(self.dist)

    def _evaluate_and_log(self) -> None:
        from ..evaluate import evaluate

        c = self.config
        started = time.perf_counter()
        # (in float32 whatever the training precision: the NLL in the log is the model's exact one)
        result = evaluate(self.eval_model, self.test_set, max_images=c.eval_images, batch_size=max(64, c.batch_size))
        self.final_eval = result
        record = {
            "kind": "eval",
            "step": self.step,
            "epoch": round(self.step / self.steps_per_epoch, 4),
            "train_minutes": round(self.train_seconds / 60, 4),
            **result.to_dict(),
        }
        if c.sample_images:
            self.sample_grid = write_samples(
                self.eval_model,
                self.run_dir / SAMPLES_DIR / f"step-{self.step:07d}.png",
                count=c.sample_images,
                generator=seeded_generator(c.seed, "samples"),
                test_set=self.test_set,
                conditional=self.conditional,
                class_names=getattr(self.train_set, "class_names", None),
            )
            record["sample_grid"] = str(self.sample_grid)
        record["eval_seconds"] = round(time.perf_counter() - started, 2)
        self.metrics.write(record)
        self.say(f"step {self.step}: {result}" + (f"; samples: {self.sample_grid}" if c.sample_images else ""))

    # ---- the loop
    def run(self) -> TrainResult:
        try:
            return self._run()
        finally:
            self._release_folder()

    def _run(self) -> TrainResult:
        from tqdm.auto import tqdm

        with self.phase.stop_on_signals():
            self._setup()
            self.phase.name = "steps"
            self._last_checkpoint_time = time.monotonic()
            c = self.config
            start_step, start_seconds = self.step, self.train_seconds
            self._bar = self._progress_bar(tqdm)
            window_loss, window_steps, window_seconds = 0.0, 0, 0.0
            interrupted = False
            try:
                while True:
                    if distributed.any_process(
                        self.phase.stop_requested or self._budget_spent(), self.dist, self.device
                    ):
                        interrupted = self.phase.stop_requested
                        break
                    started = time.perf_counter()
                    images, labels = self._batch(self.step)
                    # (the first compiled step compiles for tens of seconds: a signal then stops at once)
                    with self.phase.during("compiling" if self.compiled and self.step == start_step else "steps"):
                        loss, grad_norm, lr = self._train_step(images, labels)
                    seconds = time.perf_counter() - started
                    self.step += 1
                    self.train_seconds += seconds
                    if math.isfinite(loss):  # (not a step skipped by on_nan="skip")
                        window_loss, window_steps, window_seconds = (
                            window_loss + loss,
                            window_steps + 1,
                            window_seconds + seconds,
                        )
                    if window_steps and (self.step % c.log_every == 0 or self.step == self.planned_steps):
                        self._log_train(
                            window_loss / window_steps,
                            grad_norm,
                            lr,
                            window_steps * c.batch_size * self.dist.world_size / window_seconds,
                        )
                        window_loss, window_steps, window_seconds = 0.0, 0, 0.0
                    if (c.eval_every and self.step % c.eval_every == 0) or self._timed_eval_due():
                        self._evaluate()
                    if self.step % c.checkpoint_every == 0 or (  # (every process agrees on a timed one)
                        c.checkpoint_every_minutes
                        and distributed.any_process(self._timed_checkpoint_due(), self.dist, self.device)
                    ):
                        self._save()
                if not interrupted and self.last_eval_step != self.step:
                    self._evaluate()
                self._save()
                interrupted = self.phase.stop_requested
            finally:
                self._bar.close()
                self._bar = None
                if self.metrics is not None:
                    self.metrics.close()
        images_done = (self.step - start_step) * c.batch_size * self.dist.world_size
        seconds = self.train_seconds - start_seconds
        result = TrainResult(
            run_dir=self.run_dir,
            step=self.step,
            epoch=self.step / self.steps_per_epoch,
            train_minutes=self.train_seconds / 60,
            images_per_second=images_done / seconds if seconds else 0.0,
            interrupted=interrupted,
            final_eval=None if interrupted else self.final_eval,
            model_path=self.run_dir / MODEL_DIR,
            checkpoint_path=self.run_dir / CHECKPOINT_FILE,
            sample_grid=self.sample_grid,
        )
        if interrupted:
            self.say(
                f"stopped at step {self.step}; checkpoint saved: {result.checkpoint_path}\n"
                f"continue with: pixelcnn train --resume {self.run_dir}"
            )
        else:
            self.say(
                f"done: {self.step} steps, {result.epoch:.2f} epochs, {result.train_minutes:.2f} minutes "
                f"of training, {result.images_per_second:.0f} images/s; model: {result.model_path}"
            )
        distributed.teardown(self.dist)
        return result

    def _log_train(self, loss: float, grad_norm: float, lr: float, images_per_second: float) -> None:
        record = {"kind": "train", "step": self.step, "epoch": round(self.step / self.steps_per_epoch, 4)}
        if self.loss_name == "nll":
            bpd = loss / (math.prod(self.model.image_shape) * math.log(2))
            record.update(loss_nats=loss, bits_per_dim=bpd)
            postfix = dict(nats=f"{loss:.2f}", bpd=f"{bpd:.4f}")
        else:
            record[f"loss_{self.loss_name}"] = loss
            postfix = {self.loss_name: f"{loss:.5f}"}
        record.update(
            lr=lr,
            grad_norm=grad_norm,
            images_per_second=round(images_per_second, 2),
            train_minutes=round(self.train_seconds / 60, 4),
        )
        if self.metrics is not None:
            self.metrics.write(record)
        if self.planned_steps is None:
            postfix["step"] = self.step
        self._bar.set_postfix(**postfix, img_s=f"{images_per_second:.0f}", refresh=False)
        self._bar.update(self._bar_position() - self._bar.n)

    def _progress_bar(self, tqdm):
        """Steps of the planned steps; for a run budgeted in minutes only, seconds of training of the budget.

        Either way the bar has a total, so tqdm shows the time left (evaluation pauses are not counted
        as training, so near an evaluation the estimate runs a little early).
        """
        options = dict(
            initial=self._bar_position(),
            dynamic_ncols=True,
            file=sys.stderr,
            disable=not (self.config.progress and self.dist.is_main),
        )
        if self.planned_steps is not None:
            return tqdm(total=self.planned_steps, unit="step", **options)
        return tqdm(
            total=round(60 * self.config.max_minutes),
            unit="s",
            bar_format="{l_bar}{bar}| {n:.0f}/{total} s of training [{elapsed}<{remaining}{postfix}]",
            **options,
        )

    def _bar_position(self) -> float:
        if self.planned_steps is not None:
            return self.step
        return min(self.train_seconds, round(60 * self.config.max_minutes))  # the last step ends past the budget


def train(config: TrainConfig, *, resume: bool = False, force: bool = False, more: bool = False) -> TrainResult:
    """Train as ``config`` says (``resume=True``: continue the run in ``config.out``; ``force``, ``more``: see
    ``Trainer``); see the module docstring."""
    return Trainer(config, resume=resume, force=force, more=more).run()
