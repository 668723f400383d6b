"""Model names, the papers' configurations (presets), and ``build``.

``MODELS`` holds the autoregressive models (exact likelihood, ``sample``,
``complete``); ``list_models()`` lists them. ``BASELINES`` holds the models
that are built, trained, evaluated and saved like them but are not
autoregressive (the MSE auto-encoder). ``model_class(name)`` resolves a name
from either table.

A preset is a model name plus the config fields that make it a given paper's
model (or one of ours, said so in its description). Each model file ends with
its family's ``PRESETS``; ``presets`` gathers them. ``build("gated-imagenet32")``
and ``build("gated_pixelcnn", n_layers=20, ...)`` are the same thing; keyword
arguments override a preset's fields.
"""
from __future__ import annotations

import dataclasses
import functools
import itertools
import json

import torch
from torch import nn

from . import autoencoder, baseline, gated, multiscale, pixelcnn, pixelcnn_pp, pixelrnn
from .base import AutoregressiveModel, Preset, memory_bytes

MODELS: dict[str, type[AutoregressiveModel]] = {
    model.name: model for model in (
        pixelcnn.PixelCNN, gated.GatedPixelCNN, autoencoder.PixelCNNAutoEncoder,
        pixelrnn.RowLSTM, pixelrnn.DiagonalBiLSTM, multiscale.MultiScalePixelRNN,
        pixelcnn_pp.PixelCNNPP,
    )
}

BASELINES: dict[str, type[nn.Module]] = {baseline.MSEAutoEncoder.name: baseline.MSEAutoEncoder}

presets: dict[str, Preset] = {
    name: preset
    for module in (pixelcnn, gated, pixelrnn, multiscale, autoencoder, baseline, pixelcnn_pp)
    for name, preset in module.PRESETS.items()
}

__all__ = ["BASELINES", "MODELS", "Preset", "build", "check_fits_in_memory", "config_for", "list_models",
           "model_class", "presets"]


def list_models() -> list[str]:
    """Registry names of the autoregressive models this version builds (baselines: ``BASELINES``)."""
    return sorted(MODELS)


def model_class(name: str) -> type[nn.Module]:
    """The class of a model name, autoregressive or baseline; ValueError naming the known ones otherwise."""
    found = (MODELS.get(name) or BASELINES.get(name)) if isinstance(name, str) else None
    if found is None:
        raise ValueError(f"unknown model {name!r}; models: {', '.join(list_models())}; "
                         f"baselines: {', '.join(sorted(BASELINES))}; presets: {', '.join(sorted(presets))}")
    return found


def check_fits_in_memory(model_name: str, config) -> None:
    """Refuse sizes whose weights would not fit in memory, before allocating them (ValueError).

    The model is first built on PyTorch's "meta" device, which records shapes and allocates
    nothing, so ``hidden=10**6`` is one clear line at once rather than an allocation of
    terabytes (or an out-of-memory kill of the whole process). The meta build costs tens of
    milliseconds even for a tiny model, so each config is checked once per process.
    """
    _check_size(model_name, json.dumps(config.to_dict(), sort_keys=True))


@functools.lru_cache(maxsize=256)
def _check_size(model_name: str, config_json: str) -> None:
    cls = model_class(model_name)
    config = cls.config_class(**json.loads(config_json))
    try:
        with torch.device("meta"):
            probe = cls(config)
    except (RuntimeError, OverflowError, MemoryError, TypeError) as err:    # sizes torch cannot even represent
        raise ValueError(f"cannot build {model_name} with these sizes ({' '.join(str(err).split())[:200]})") from None
    tensors = list(itertools.chain(probe.parameters(), probe.buffers()))
    count = sum(t.numel() for t in probe.parameters())
    nbytes = sum(t.numel() * t.element_size() for t in tensors)
    if nbytes > memory_bytes("cpu"):
        raise ValueError(f"{model_name} with these sizes has {count:,} parameters ({nbytes / 2 ** 30:,.1f} GiB), "
                         f"more than this machine's {memory_bytes('cpu') / 2 ** 30:,.1f} GiB of memory: "
                         f"choose smaller sizes (n_layers, hidden, levels, image_shape, ...)")


def config_for(name: str, **overrides):
    """(model name, its config dataclass) for a model or preset name, with ``overrides`` applied."""
    if name in presets:
        preset = presets[name]
        model_name, fields = preset.model, {**preset.config, **overrides}
    else:
        model_name, fields = name, overrides
    config_class = model_class(model_name).config_class
    known = {f.name for f in dataclasses.fields(config_class)}
    unknown = sorted(set(fields) - known)
    if unknown:
        raise ValueError(
            f"{model_name} has no option {', '.join(unknown)}; its options are: {', '.join(sorted(known))}"
        )
    config = config_class(**fields)
    check_fits_in_memory(model_name, config)
    return model_name, config


def build(name: str, **overrides) -> nn.Module:
    """Build a model by name (``pixelcnn.list_models()``, ``BASELINES``) or preset name (``pixelcnn.presets``).

    Keyword arguments set config fields (``image_shape``, ``levels``,
    ``n_layers``, ``hidden``, ``kernel_size``, ``num_classes``, ``cond_dim``,
    ``spatial_cond``, ...), overriding a preset's.
    """
    model_name, config = config_for(name, **overrides)
    return model_class(model_name)(config)
