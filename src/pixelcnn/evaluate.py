"""A model's loss over a data split: the NLL in nats per image and bits per dimension, with standard errors.

    from pixelcnn import data, evaluate, load
    result = evaluate.evaluate(load("runs/demo/model"), data.load("mnist5k", "test", binarize="dynamic"))
    print(result.nll, "+-", result.nll_stderr, "nats;", result.bits_per_dim, "bits/dim")
    result.to_dict()     # {"data", "split", "images", "nll_nats", "nll_nats_stderr", "bits_per_dim", ...}

``precision`` ("fp32" by default; "auto", "bf16" or "fp16" as in
``pixelcnn.hardware``) is what the network runs in; the head's log-likelihood
is computed in float32 whatever it is, and the result says which
(``result.precision``: "network in bf16 (autocast), head in float32").
``compile`` ("auto" by default: on for an evaluation of at least
``hardware.COMPILE_AUTO_MIN_STEPS`` batches, which few are; "on"; "off") runs the loss through
``torch.compile``; a compile that fails warns once and the evaluation goes on
in eager mode, with the same numbers.

The standard error is that of a mean over images: std(NLL per image) / sqrt(N).
Images go through ``dataset.prepare_batch`` with a fixed generator, so a
binarized training split is scored on one reproducible draw (the test split of
a binarized set is a fixed draw already, see ``pixelcnn.data``).

Every model has ``loss(x, cond)`` (one value per image) and ``loss_name``:
``"nll"`` for a likelihood model, whose loss is -log p(x | cond) in nats.
For any other (``"mse"``: the MSE auto-encoder baseline) ``evaluate``
returns a ``LossResult``: the mean of that loss under its name.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass

import torch

from .hardware import choose_compile, choose_precision, first_line
from .metrics import bits_per_dim

EVAL_SEED = 0  # the generator of prepare_batch during evaluation: the same draw every time


@dataclass
class EvalResult:
    data: str  # data set name
    split: str  # "train" or "test"
    images: int  # images scored
    nll: float  # mean negative log-likelihood, nats per image
    nll_stderr: float  # its standard error, nats
    bits_per_dim: float  # the same mean in bits per dimension
    bits_per_dim_stderr: float  # its standard error
    precision: str = "network and head in float32"  # what the NLL was computed in

    def to_dict(self) -> dict:
        """As JSON: every key says its unit (``nll_nats``, ``nll_nats_stderr``, ``bits_per_dim``, ...)."""
        return {
            "data": self.data,
            "split": self.split,
            "images": self.images,
            "nll_nats": self.nll,
            "nll_nats_stderr": self.nll_stderr,
            "bits_per_dim": self.bits_per_dim,
            "bits_per_dim_stderr": self.bits_per_dim_stderr,
            "precision": self.precision,
        }

    def __str__(self) -> str:
        return (
            f"{self.data} {self.split} ({self.images} images): NLL {self.nll:.2f} +- {self.nll_stderr:.2f} "
            f"nats/image, {self.bits_per_dim:.4f} +- {self.bits_per_dim_stderr:.4f} bits/dim "
            f"({self.precision})"
        )


@dataclass
class LossResult:
    data: str  # data set name
    split: str  # "train" or "test"
    images: int  # images scored
    loss_name: str  # what the model's loss is, e.g. "mse"
    loss: float  # its mean per image
    loss_stderr: float  # the standard error of that mean

    def to_dict(self) -> dict:
        return {
            "data": self.data,
            "split": self.split,
            "images": self.images,
            self.loss_name: self.loss,
            f"{self.loss_name}_stderr": self.loss_stderr,
        }

    def __str__(self) -> str:
        return (
            f"{self.data} {self.split} ({self.images} images): {self.loss_name} {self.loss:.5f} "
            f"+- {self.loss_stderr:.5f}"
        )


@torch.no_grad()
def nll_per_image(
    model,
    dataset,
    *,
    batch_size: int = 256,
    max_images: int | None = None,
    progress: bool = False,
    precision: str = "fp32",
    compile: str = "auto",
) -> torch.Tensor:
    """``model.loss`` of the first ``max_images`` images of ``dataset``: float64 [N].

    For a likelihood model (``loss_name == "nll"``) that is -log p(x | label)
    in nats; the model is conditioned on the labels when it was built with
    ``num_classes``. ``precision``: what the network runs in (the head scores in float32);
    ``compile``: see the module's docstring.
    """
    if not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
    check_compatible(model, dataset)
    autocast = choose_precision(precision, next(model.parameters()).device).autocast
    total = len(dataset) if max_images is None else min(int(max_images), len(dataset))
    if total < 1:
        raise ValueError(
            f"nothing to evaluate: {dataset.name} {dataset.split} has {len(dataset)} images and max_images={max_images}"
        )
    conditional = getattr(model.config, "num_classes", None) is not None
    device = next(model.parameters()).device
    compile_on, _ = choose_compile(
        compile, device, planned_steps=math.ceil(total / batch_size), precision=choose_precision(precision, device).name
    )
    loss = torch.compile(model.loss, dynamic=False) if compile_on else model.loss
    generator = torch.Generator().manual_seed(EVAL_SEED)
    was_training = model.training
    model.eval()
    scores = []
    try:
        from tqdm.auto import tqdm

        for start in tqdm(
            range(0, total, batch_size),
            desc=f"eval {dataset.name} {dataset.split}",
            unit="batch",
            disable=not progress,
            leave=False,
        ):
            stop = min(start + batch_size, total)
            images = dataset.prepare_batch(dataset.images[start:stop], generator)  # uint8 [b, C, H, W]
            labels = dataset.labels[start:stop] if conditional else None
            with autocast():
                try:
                    batch_scores = loss(images, labels)
                except Exception as error:  # noqa: BLE001 - any compile failure: eager, as training does
                    if loss is model.loss:
                        raise
                    warnings.warn(
                        f"torch.compile failed ({first_line(error)}); evaluating without compiling",
                        RuntimeWarning,
                        stacklevel=2,
                    )
                    loss = model.loss
                    batch_scores = loss(images, labels)
            scores.append(batch_scores.double().cpu())
    finally:
        model.train(was_training)
    return torch.cat(scores)


def evaluate(
    model,
    dataset,
    *,
    batch_size: int = 256,
    max_images: int | None = None,
    progress: bool = False,
    precision: str = "fp32",
    compile: str = "auto",
) -> EvalResult | LossResult:
    """Mean NLL of ``model`` over ``dataset`` (nats per image and bits/dim) with standard errors.

    ``precision`` ("fp32", "auto", "bf16", "fp16"): what the network runs in; the head is float32.
    ``compile`` ("auto", "on", "off"): torch.compile the loss (see the module's docstring). A model
    whose loss is not an NLL (``loss_name != "nll"``) gets a ``LossResult``: its mean loss.
    """
    losses = nll_per_image(
        model,
        dataset,
        batch_size=batch_size,
        max_images=max_images,
        progress=progress,
        precision=precision,
        compile=compile,
    )
    mean = float(losses.mean())
    stderr = float(losses.std(unbiased=True)) / math.sqrt(len(losses)) if len(losses) > 1 else float("nan")
    if model.loss_name != "nll":
        return LossResult(
            data=dataset.name,
            split=dataset.split,
            images=len(losses),
            loss_name=model.loss_name,
            loss=mean,
            loss_stderr=stderr,
        )
    return EvalResult(
        data=dataset.name,
        split=dataset.split,
        images=len(losses),
        nll=mean,
        nll_stderr=stderr,
        bits_per_dim=float(bits_per_dim(mean, model.image_shape)),
        bits_per_dim_stderr=float(bits_per_dim(stderr, model.image_shape)),
        precision=choose_precision(precision, next(model.parameters()).device).nll_note,
    )


def check_compatible(model, dataset) -> None:
    """Raise ValueError when ``dataset``'s images cannot be scored by ``model``."""
    if tuple(dataset.image_shape) != tuple(model.image_shape) or int(dataset.levels) != model.levels:
        raise ValueError(
            f"the model expects images {tuple(model.image_shape)} with {model.levels} levels; "
            f"{dataset.name} gives {tuple(dataset.image_shape)} with {dataset.levels} levels"
            + (
                ' (binarize the data: binarize="dynamic", or --binarize dynamic on the command line)'
                if model.levels == 2 and dataset.levels != 2
                else ""
            )
        )
    if getattr(model.config, "num_classes", None) is not None:
        if dataset.num_classes is None:
            raise ValueError(f"the model is class-conditional but {dataset.name} has no labels")
        if dataset.num_classes > model.config.num_classes:
            raise ValueError(
                f"the model knows {model.config.num_classes} classes; {dataset.name} has {dataset.num_classes}"
            )
