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

from ..hardware import available_memory
from . import autoencoder, baseline, gated, multiscale, pixelcnn, pixelcnn_pp, pixelrnn
from .base import AutoregressiveModel, Preset

MODELS: dict[str, type[AutoregressiveModel]] = {
    model.name: model
    for model in (
        pixelcnn.PixelCNN,
        gated.GatedPixelCNN,
        autoencoder.PixelCNNAutoEncoder,
        pixelrnn.RowLSTM,
        pixelrnn.DiagonalBiLSTM,
        multiscale.MultiScalePixelRNN,
        pixelcnn_pp.PixelCNNPP,
    )
}

BASELINES: dict[str, type[nn.Module]] = {baseline.MSEAutoEncoder.name: baseline.MSEAutoEncoder}

presets: dict[str, Preset] = {
    name: preset
    for module in (pixelcnn, gated, pixelrnn, multiscale, autoencoder, baseline, pixelcnn_pp)
    for name, preset in module.PRESETS.items()
}

__all__ = [
    "BASELINES",
    "MODELS",
    "Preset",
    "build",
    "check_fits_in_memory",
    "config_for",
    "list_models",
    "model_class",
    "presets",
]


def list_models() -> list[str]:
    """Registry names of the autoregressive models this version builds (baselines: ``BASELINES``)."""
    return sorted(MODELS)


def model_class(name: str) -> type[nn.Module]:
    """The class of a model name, autoregressive or baseline; ValueError naming the known ones otherwise."""
    found = (MODELS.get(name) or BASELINES.get(name)) if isinstance(name, str) else None
    if found is None:
        raise ValueError(
            f"unknown model {name!r}; models: {', '.join(list_models())}; "
            f"baselines: {', '.join(sorted(BASELINES))}; presets: {', '.join(sorted(presets))}"
        )
    return found


# Config fields that repeat a block: the weights grow with each as a polynomial (linear here: a stack of
# identical layers), so a size check need not build them.
COUNT_FIELDS = ("n_layers", "small_n_layers")
PROBE_COUNTS = (2, 3, 4)  # the counts the probes are built with (on the meta device: nothing allocated)

# Building a module costs time and memory beyond its weights: 130-160 us and 1-6 KB of Python objects
# each (measured on an AMD EPYC for gated_pixelcnn, pixelcnn and row_lstm at 2,000 layers). A config of
# 10^6 tiny layers holds few weights yet would take minutes and ~17 GB to build, so the module count is
# bounded (50,000 modules: about 7 s; the largest preset, pixelcnnpp-cifar10, has 1,045) and the Python
# objects are counted with the weights.
MAX_MODULES = 50_000
BYTES_PER_MODULE = 8 * 1024


def check_fits_in_memory(model_name: str, config) -> None:
    """Refuse sizes whose weights would not fit in memory, or whose modules would take minutes to build,
    before allocating anything (ValueError).

    Arithmetic on the config, not a build: the model is built on PyTorch's "meta" device (shapes,
    no memory) with each count field (``n_layers``, ...) at 2, 3 and 4 only, and the bytes and
    modules for the real count follow from the quadratic through those three (exact for a stack of
    identical layers; the counts add up when a model has two). So ``n_layers=10**9`` is one line in
    milliseconds, not minutes of building layers (and ``hidden=10**6`` one line, not terabytes).
    Each config is checked once per process.
    """
    _check_size(model_name, json.dumps(config.to_dict(), sort_keys=True))


def _meta_size(cls, config) -> tuple[int, int, int]:
    """(parameters, bytes of parameters and buffers, modules) of ``cls(config)`` built on the meta device."""
    try:
        with torch.device("meta"):
            probe = cls(config)
    except (RuntimeError, OverflowError, MemoryError, TypeError) as err:  # sizes torch cannot even represent
        raise ValueError(f"cannot build {cls.name} with these sizes ({' '.join(str(err).split())[:200]})") from None
    count = sum(t.numel() for t in probe.parameters())
    nbytes = sum(t.numel() * t.element_size() for t in itertools.chain(probe.parameters(), probe.buffers()))
    return count, nbytes, sum(1 for _ in probe.modules())


def _size(model_name: str, config) -> tuple[int, int, int]:
    """(parameters, bytes of parameters and buffers, modules) of the model ``config`` describes, by
    extrapolation from small meta builds (see ``check_fits_in_memory``)."""
    cls = model_class(model_name)
    counts = {
        f: getattr(config, f)
        for f in COUNT_FIELDS
        if isinstance(getattr(config, f, None), int) and getattr(config, f) > max(PROBE_COUNTS)
    }
    if not counts:
        return _meta_size(cls, config)
    small = {f: PROBE_COUNTS[0] for f in counts}
    base = _meta_size(cls, dataclasses.replace(config, **small))
    total = list(base)
    for field, count in counts.items():
        y0, y1, y2 = (_meta_size(cls, dataclasses.replace(config, **{**small, field: n})) for n in PROBE_COUNTS)
        for k in range(len(total)):  # Newton's form of the quadratic through (2, y0), (3, y1), (4, y2), at count
            t = count - PROBE_COUNTS[0]
            value = y0[k] + t * (y1[k] - y0[k]) + t * (t - 1) // 2 * (y2[k] - 2 * y1[k] + y0[k])
            total[k] += value - base[k]
    return total[0], total[1], total[2]


def model_size(model_name: str, config) -> tuple[int, int]:
    """(parameters, bytes of parameters and buffers) of the model ``config`` describes, without building it."""
    count, nbytes, _ = _size(model_name, config)
    return count, nbytes


@functools.lru_cache(maxsize=256)
def _check_size(model_name: str, config_json: str) -> None:
    cls = model_class(model_name)
    config = cls.config_class(**json.loads(config_json))
    count, nbytes, modules = _size(model_name, config)
    nbytes += modules * BYTES_PER_MODULE
    available = available_memory()
    if nbytes > available:
        raise ValueError(
            f"{model_name} with these sizes is too large (needs {nbytes / 2**30:,.1f} GB for "
            f"{count:,} parameters, {available / 2**30:,.1f} available): choose smaller sizes "
            f"(n_layers, hidden, levels, image_shape, ...)"
        )
    if modules > MAX_MODULES:
        build_minutes = modules * 150e-6 / 60
        raise ValueError(
            f"{model_name} with these sizes is too large to build: {modules:,} modules, at most "
            f"{MAX_MODULES:,} (about {build_minutes:,.1f} minutes of building); choose fewer layers (n_layers, ...)"
        )


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
