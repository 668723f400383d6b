"""Shared helpers of the tests: each registry model's tiny configuration, dependency maps,
enumeration, the CLI runner and the tiny training run.

The proofs (causality, normalization, fast == naive, save / load, compression) are parametrized
over ``pixelcnn.list_models()``: a model added to the registry runs through all of them, and
fails them until ``TINY_MODELS`` below says how to build it small.
"""

from __future__ import annotations

import copy
import dataclasses
import itertools

import pytest
import torch

import pixelcnn

# The conditioning variants every model is tested under.
CONDITIONS = {
    "none": dict(),
    "class": dict(num_classes=3),
    "vector": dict(cond_dim=4),
    "spatial": dict(cond_dim=4, spatial_cond=True),
}


@dataclasses.dataclass(frozen=True)
class TinyModel:
    """How the proofs build one registry model small: the one place that knows each model's sizes."""

    options: dict  # config fields; a test's own sizes override them
    conditions: dict = dataclasses.field(default_factory=lambda: dict(CONDITIONS))  # condition -> config fields
    preset: str = ""  # its ``tiny-*`` preset (compression, save / load, CLI)


# Registry name -> its tiny configuration. The auto-encoder is always conditioned, on its own code:
# its "vector" and "spatial" conditions are that code (``make_cond`` draws one), no class labels.
TINY_MODELS = {
    "pixelcnn": TinyModel(dict(hidden=6, n_layers=2), preset="tiny-pixelcnn"),
    "gated_pixelcnn": TinyModel(dict(hidden=6, n_layers=2), preset="tiny-gated"),
    "pixelcnn_pp": TinyModel(dict(hidden=6, n_layers=2), preset="tiny-pixelcnnpp"),
    "row_lstm": TinyModel(dict(hidden=6, n_layers=2), preset="tiny-rowlstm"),
    "diagonal_bilstm": TinyModel(dict(hidden=6, n_layers=2), preset="tiny-diagbilstm"),
    "multiscale_pixelrnn": TinyModel(
        dict(hidden=6, n_layers=2, context_channels=3, input_kernel_size=3), preset="tiny-multiscale"
    ),
    "pixelcnn_ae": TinyModel(
        dict(hidden=6, n_layers=2, bottleneck=3),
        conditions=dict(vector=dict(), spatial=dict(spatial_cond=True)),
        preset="tiny-ae",
    ),
}


def tiny_train_flags(*extra: str, n_layers: int = 1) -> list[str]:
    """``pixelcnn train`` flags of a tiny run for the command-line tests: a Gated PixelCNN of ``n_layers``
    layers of 4 maps, no progress bar, no TensorBoard, no sample grid; then ``extra`` (data, budget, ...)."""
    return [
        "--model",
        "gated_pixelcnn",
        "--n-layers",
        str(n_layers),
        "--hidden",
        "4",
        "--no-progress",
        "--no-tensorboard",
        "--sample-images",
        "0",
        *extra,
    ]


def tiny_model_config(name: str) -> TinyModel:
    """The tiny configuration of registry model ``name``; a clear failure for a model without one."""
    if name not in TINY_MODELS:
        raise LookupError(
            f"registry model {name!r} has no tiny configuration: add it to TINY_MODELS in "
            f"tests/conftest.py, so that the causality, normalization, fast == naive, save / load "
            f"and compression proofs run for it"
        )
    return TINY_MODELS[name]


def model_cases(conditions=tuple(CONDITIONS)) -> list[tuple[str, str]]:
    """(registry name, condition) for every registry model and each of ``conditions`` it accepts.

    A model without a tiny configuration gets one case per condition anyway, which fails in ``tiny``."""
    cases = []
    for name in pixelcnn.list_models():
        accepted = TINY_MODELS[name].conditions if name in TINY_MODELS else CONDITIONS
        cases += [(name, condition) for condition in conditions if condition in accepted]
    return cases


# The family every proof keeps in the quick tier (``pytest -m "not slow"``); the sweep over the other
# registry models is marked slow and runs in the full suite (.ci/run), so a new model is still proven there.
QUICK_FAMILY = "gated_pixelcnn"


def proof_cases(conditions=tuple(CONDITIONS)) -> list:
    """``model_cases`` as pytest parameters: the quick family's in the quick tier, every other model's slow."""
    return [
        pytest.param(name, condition, marks=() if name == QUICK_FAMILY else pytest.mark.slow)
        for name, condition in model_cases(conditions)
    ]


def proof_names(conditions=tuple(CONDITIONS)) -> list:
    """The registry names of ``model_cases(conditions)`` once each, as pytest parameters marked as above."""
    names = dict.fromkeys(name for name, _ in model_cases(conditions))
    return [pytest.param(name, marks=() if name == QUICK_FAMILY else pytest.mark.slow) for name in names]


def make_cond(model, batch: int, generator: torch.Generator | None = None):
    """A valid random condition for ``model`` (None when it is unconditional; the auto-encoder: a code)."""
    config = model.config
    if config.num_classes is not None:
        return torch.randint(0, config.num_classes, (batch,), generator=generator)
    if config.cond_dim is not None:
        return torch.randn(batch, config.cond_dim, generator=generator, dtype=torch.float64)
    if getattr(config, "bottleneck", None) is not None:  # pixelcnn_ae: decoded given a code
        return torch.randn(batch, config.bottleneck, generator=generator, dtype=torch.float64)
    return None


def dependency_map(model, cond=None, trials: int = 2, seed: int = 0) -> torch.Tensor:
    """Which inputs each output reads: bool [C, H, W (output), C, H, W (input)].

    The structural Jacobian: a copy of the model gets small positive weights
    and positive inputs, so no ReLU is dead and no two paths cancel; then a
    gradient is non-zero exactly where a path through open mask taps exists.
    (With random signed weights a ReLU can close every path of a colour group
    at an image corner and hide a real dependency.)

    One backward pass gives the whole Jacobian: the input is repeated once per
    output pixel-channel, and copy n back-propagates only output n's
    parameters, with random positive weights.
    """
    channels, height, width = model.image_shape
    n = channels * height * width
    model = copy.deepcopy(model)
    with torch.no_grad():
        for param in model.parameters():
            # Small enough that no tanh saturates to a gradient of exactly 0.
            param.abs_().mul_(0.1).add_(1e-3)
    dtype = next(model.parameters()).dtype
    generator = torch.Generator().manual_seed(seed)
    seen = torch.zeros(n, n, dtype=torch.bool)
    for _ in range(trials):
        x = (0.1 + 0.9 * torch.rand(1, channels, height, width, generator=generator, dtype=dtype)).repeat(n, 1, 1, 1)
        x.requires_grad_(True)
        h = model.encode_condition(None if cond is None else cond.expand(n, *cond.shape[1:]))
        out = model.network(x, h)
        # PixelCNN++'s mixture couples a pixel's channels after the network, reading x itself.
        params = (
            model.head_params(out, x) if hasattr(model, "head_params") else model.head.params(out)
        )  # [n, C, P, H, W]
        weights = torch.rand(params.shape, generator=generator, dtype=dtype) + 0.5
        select = torch.zeros(n, channels, 1, height, width, dtype=dtype)
        select.view(n, -1)[torch.arange(n), torch.arange(n)] = 1  # copy k reads output k
        (params * weights * select).sum().backward()
        seen |= x.grad.reshape(n, n) != 0
    return seen.view(channels, height, width, channels, height, width)


def causal_allowed(image_shape, pixel_order=None) -> torch.Tensor:
    """bool [C, H, W, C, H, W]: input (c', i', j') precedes output (c, i, j) in pixel-then-R,G,B order.

    ``pixel_order``: the pixels (row, col) in the order the model draws them (``generation_order``);
    None: raster order."""
    channels, height, width = image_shape
    order = torch.arange(height * width).view(height, width)
    if pixel_order is not None:
        order = torch.empty(height, width, dtype=torch.long)
        for rank, (i, j) in enumerate(pixel_order):
            order[i, j] = rank
    pixel_out = order[None, :, :, None, None, None]
    pixel_in = order[None, None, None, None, :, :]
    chan_out = torch.arange(channels)[:, None, None, None, None, None]
    chan_in = torch.arange(channels)[None, None, None, :, None, None]
    return (pixel_in < pixel_out) | ((pixel_in == pixel_out) & (chan_in < chan_out))


def all_images(image_shape, levels: int) -> torch.Tensor:
    """Every image of a tiny shape: int64 [levels ** (C*H*W), C, H, W]."""
    values = list(itertools.product(range(levels), repeat=int(torch.tensor(image_shape).prod())))
    return torch.tensor(values, dtype=torch.long).view(-1, *image_shape)


def model_allowed(model) -> torch.Tensor:
    """``causal_allowed`` in ``model``'s own generation order (raster; the multi-scale model: grid first)."""
    return causal_allowed(model.image_shape, model.generation_order(0))


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


def tiny(name: str, condition: str | None = None, **overrides):
    """A tiny float64 model of ``name`` for exactness tests.

    A registry model name takes its ``TINY_MODELS`` sizes (``overrides`` win) and, with ``condition``,
    that condition's config fields; a preset name is built as it is, with ``overrides``."""
    if name in pixelcnn.presets:
        return pixelcnn.build(name, **overrides).double()
    tiny_config_of = tiny_model_config(name)
    fields = dict(tiny_config_of.options)
    if condition is not None:
        fields.update(tiny_config_of.conditions[condition])
    return pixelcnn.build(name, **{**fields, **overrides}).double()


# ------------------------------------------------------------------------------- CLI and training runs
def run(capsys, *argv):
    """``pixelcnn.cli.main(argv)`` -> (exit status, stdout, stderr); arguments may be paths or numbers."""
    from pixelcnn import cli

    try:
        status = cli.main([str(a) for a in argv])
    except SystemExit as exit_:
        status = exit_.code
    out, err = capsys.readouterr()
    return status, out, err


def tiny_config(tmp_path, name="run", **changes):
    """A ``TrainConfig`` of a few steps of a tiny class-conditional Gated PixelCNN on binarized mnist5k,
    into ``tmp_path / name``; ``changes`` override any field."""
    from pixelcnn.train import TrainConfig

    values = dict(
        model="gated_pixelcnn",
        model_options=dict(n_layers=2, hidden=4),
        data="mnist5k",
        binarize="dynamic",
        class_conditional=True,
        batch_size=8,
        max_steps=6,
        log_every=1,
        eval_every=None,
        eval_images=16,
        sample_images=0,
        checkpoint_every=100,
        progress=False,
        tensorboard=False,
        out=str(tmp_path / name),
    )
    values.update(changes)
    return TrainConfig(**values)


def quiet_train(config, **kwargs):
    """Train ``config`` to its end without printing; the run's result."""
    from pixelcnn.train import Trainer

    return Trainer(config, log=lambda message: None, **kwargs).run()
