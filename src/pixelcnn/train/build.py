"""The model a TrainConfig names, built for the images of its data set (their shape, levels and classes)."""

from __future__ import annotations

import torch
from torch import nn

from .config import TrainConfig


def build_model(config: TrainConfig, train_set) -> nn.Module:
    """The model ``config`` names (a registry model or preset), sized for ``train_set``: seeded by ``config.seed``."""
    from ..models.registry import config_for, model_class, presets

    options = dict(config.model_options)
    for name in ("image_shape", "levels", "num_classes"):
        if name in options:
            raise ValueError(
                f"{name} comes from the data set (and --class-conditional); remove it from the model options"
            )
    preset = presets.get(config.model)
    if preset is not None and not preset.any_data and preset.config.get("levels", train_set.levels) != train_set.levels:
        hint = " (add --binarize dynamic)" if preset.config["levels"] == 2 else ""
        raise ValueError(
            f"preset {config.model!r} models images with {preset.config['levels']} levels; "
            f"{config.data} gives {train_set.levels}{hint}"
        )
    num_classes = None
    if config.class_conditional:
        if not train_set.num_classes:
            raise ValueError(f"{config.data} has no labels: it cannot train a class-conditional model")
        num_classes = train_set.num_classes
    model_name, model_config = config_for(
        config.model, image_shape=train_set.image_shape, levels=train_set.levels, num_classes=num_classes, **options
    )
    torch.manual_seed(config.seed)
    return model_class(model_name)(model_config)


def preset_note(config: TrainConfig, train_set) -> str | None:
    """A line saying so when the data set gives other images than a preset's (its sizes still apply)."""
    from ..models.registry import presets

    preset, data = presets.get(config.model), train_set
    if preset is None or (
        tuple(preset.config.get("image_shape", data.image_shape)),
        preset.config.get("levels", data.levels),
    ) == (tuple(data.image_shape), data.levels):
        return None
    return (
        f"note: preset {config.model} was configured for images {preset.config.get('image_shape')} "
        f"with {preset.config.get('levels')} levels; its sizes are used for the images of {config.data}: "
        f"{tuple(data.image_shape)} with {data.levels} levels"
    )
