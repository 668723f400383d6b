"""Model names, the papers' configurations (presets), and ``build``.

A preset is a model name plus the config fields that make it a given paper's
model (or one of ours, for data the papers did not use, said so in its
description). ``build("gated-imagenet32")`` and ``build("gated_pixelcnn",
n_layers=20, ...)`` are the same thing; keyword arguments override a preset.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

from .autoencoder import MSEAutoEncoder, PixelCNNAutoEncoder
from .base import AutoregressiveModel
from .gated import GatedPixelCNN
from .multiscale import MultiScalePixelRNN
from .pixelcnn import PixelCNN
from .pixelrnn import DiagonalBiLSTM, RowLSTM

MODELS: dict[str, type[AutoregressiveModel]] = {
    PixelCNN.name: PixelCNN,
    GatedPixelCNN.name: GatedPixelCNN,
    PixelCNNAutoEncoder.name: PixelCNNAutoEncoder,
    MSEAutoEncoder.name: MSEAutoEncoder,      # the auto-encoder baseline: not autoregressive, trained on model.loss
    RowLSTM.name: RowLSTM,
    DiagonalBiLSTM.name: DiagonalBiLSTM,
    MultiScalePixelRNN.name: MultiScalePixelRNN,
}


@dataclass(frozen=True)
class Preset:
    model: str                          # registry name
    config: dict = field(default_factory=dict)
    description: str = ""


BINARY_MNIST = dict(image_shape=(1, 28, 28), levels=2)
CIFAR10 = dict(image_shape=(3, 32, 32), levels=256)

presets: dict[str, Preset] = {
    "pixelcnn-cifar10": Preset("pixelcnn", dict(**CIFAR10, n_layers=15, hidden=128),
                               "PixelRNN paper, CIFAR-10: 15-layer PixelCNN, h = 128 (3.14 bits/dim)"),
    "pixelcnn-mnist": Preset("pixelcnn", dict(**BINARY_MNIST, n_layers=7, hidden=32),
                             "binarized MNIST, Bernoulli output; size ours (the paper does not give it)"),
    "gated-mnist": Preset("gated_pixelcnn", dict(**BINARY_MNIST, n_layers=10, hidden=128, kernel_size=3),
                          "binarized MNIST, Bernoulli output; size ours: 10 gated layers of 128 maps, 3x3"),
    "gated-cifar10": Preset("gated_pixelcnn", dict(**CIFAR10, n_layers=15, hidden=128, kernel_size=5),
                            "Gated PixelCNN, CIFAR-10 (3.03 bits/dim in the paper); the paper does not "
                            "state this model's size: depth and width of the PixelRNN paper's CIFAR-10 "
                            "PixelCNN, 5x5 filters of its ImageNet model"),
    "gated-imagenet32": Preset("gated_pixelcnn", dict(image_shape=(3, 32, 32), levels=256, n_layers=20,
                                                      hidden=384, kernel_size=5),
                               "Gated PixelCNN paper, ImageNet 32x32: 20 layers, 384 units, 5x5 (3.83 bits/dim)"),
    "gated-imagenet64": Preset("gated_pixelcnn", dict(image_shape=(3, 64, 64), levels=256, n_layers=20,
                                                      hidden=384, kernel_size=5),
                               "Gated PixelCNN paper, ImageNet 64x64: 20 layers, 384 units, 5x5 (3.57 bits/dim)"),
    "conditional-imagenet32": Preset("gated_pixelcnn", dict(image_shape=(3, 32, 32), levels=256, n_layers=20,
                                                            hidden=384, kernel_size=5, num_classes=1000),
                                     "Conditional PixelCNN paper, ImageNet 32x32 class-conditional"),
    "diagbilstm-mnist": Preset("diagonal_bilstm", dict(**BINARY_MNIST, n_layers=7, hidden=16),
                               "PixelRNN paper, binarized MNIST: 7-layer Diagonal BiLSTM, h = 16 (79.20 nats)"),
    "rowlstm-mnist": Preset("row_lstm", dict(**BINARY_MNIST, n_layers=7, hidden=16),
                            "binarized MNIST Row LSTM (80.54 nats in the paper); the paper does not give its "
                            "size: that of its MNIST Diagonal BiLSTM"),
    "rowlstm-cifar10": Preset("row_lstm", dict(**CIFAR10, n_layers=12, hidden=128),
                              "PixelRNN paper, CIFAR-10: 12-layer Row LSTM, h = 128 (3.07 bits/dim)"),
    "diagbilstm-cifar10": Preset("diagonal_bilstm", dict(**CIFAR10, n_layers=12, hidden=128),
                                 "PixelRNN paper, CIFAR-10: 12-layer Diagonal BiLSTM, h = 128 (3.00 bits/dim)"),
    "rowlstm-imagenet32": Preset("row_lstm", dict(image_shape=(3, 32, 32), levels=256, n_layers=12, hidden=384),
                                 "PixelRNN paper, ImageNet 32x32: 12-layer Row LSTM, h = 384 (3.86 bits/dim)"),
    "rowlstm-imagenet64": Preset("row_lstm", dict(image_shape=(3, 64, 64), levels=256, n_layers=4, hidden=512,
                                                  residual=False),
                                 "PixelRNN paper, ImageNet 64x64: 4-layer Row LSTM, h = 512, no residual "
                                 "connections (3.63 bits/dim)"),
    "ae-mnist": Preset("pixelcnn_ae", dict(**BINARY_MNIST, bottleneck=10, n_layers=8, hidden=64),
                       "PixelCNN auto-encoder, binarized MNIST, 10-dimensional code; size ours"),
    "ae-photo-patches": Preset("pixelcnn_ae", dict(image_shape=(3, 32, 32), levels=256, bottleneck=100,
                                                   n_layers=10, hidden=96, encoder_channels=64),
                               "PixelCNN auto-encoder on 32x32 colour patches, 100-dimensional code "
                               "(the paper: m = 10 or 100 on 32x32 ImageNet patches); size ours"),
    "mse-mnist": Preset("mse_ae", dict(**BINARY_MNIST, bottleneck=10),
                        "the paper's baseline: ae-mnist's encoder, a deconvolutional decoder, trained on the MSE"),
    "mse-photo-patches": Preset("mse_ae", dict(image_shape=(3, 32, 32), levels=256, bottleneck=100,
                                               encoder_channels=64, decoder_channels=96),
                                "the paper's baseline: ae-photo-patches' encoder, a deconvolutional decoder, "
                                "trained on the MSE"),
    "tiny-mse": Preset("mse_ae", dict(image_shape=(1, 8, 8), levels=2, bottleneck=4, encoder_channels=4,
                                      decoder_channels=8),
                       "a few thousand parameters, for tests and smoke runs"),
    "tiny-ae": Preset("pixelcnn_ae", dict(image_shape=(1, 8, 8), levels=2, bottleneck=4, n_layers=2, hidden=8,
                                          encoder_channels=4),
                      "a few thousand parameters, for tests and smoke runs"),
    "multiscale-mnist": Preset("multiscale_pixelrnn", dict(**BINARY_MNIST, layer="diagonal_bilstm", factor=2,
                                                           n_layers=7, hidden=16, context_channels=16),
                               "Multi-Scale PixelRNN on binarized MNIST: a 14x14 model, then the 28x28 one "
                               "given it; both 7-layer Diagonal BiLSTMs, h = 16 (our choice: the paper gives "
                               "no multi-scale MNIST model)"),
    "tiny-pixelcnn": Preset("pixelcnn", dict(image_shape=(1, 8, 8), levels=2, n_layers=2, hidden=8,
                                             input_kernel_size=3),
                            "a few thousand parameters, for tests and smoke runs"),
    "tiny-gated": Preset("gated_pixelcnn", dict(image_shape=(1, 8, 8), levels=2, n_layers=3, hidden=8),
                         "a few thousand parameters, for tests and smoke runs"),
    "tiny-rowlstm": Preset("row_lstm", dict(image_shape=(1, 8, 8), levels=2, n_layers=2, hidden=4,
                                            input_kernel_size=3),
                           "a few thousand parameters, for tests and smoke runs"),
    "tiny-multiscale": Preset("multiscale_pixelrnn", dict(image_shape=(1, 8, 8), levels=2, n_layers=2, hidden=4,
                                                          input_kernel_size=3, context_channels=4),
                              "a few thousand parameters, for tests and smoke runs"),
    "tiny-diagbilstm": Preset("diagonal_bilstm", dict(image_shape=(1, 8, 8), levels=2, n_layers=2, hidden=4,
                                                      input_kernel_size=3),
                              "a few thousand parameters, for tests and smoke runs"),
}


def list_models() -> list[str]:
    """Registry names of the models this version builds."""
    return sorted(MODELS)


def config_for(name: str, **overrides):
    """The config dataclass for a model or preset name, with ``overrides`` applied."""
    if name in presets:
        preset = presets[name]
        model_name, fields = preset.model, {**preset.config, **overrides}
    elif name in MODELS:
        model_name, fields = name, overrides
    else:
        raise ValueError(
            f"unknown model {name!r}; models: {', '.join(list_models())}; presets: {', '.join(sorted(presets))}"
        )
    config_class = MODELS[model_name].config_class
    known = {f.name for f in dataclasses.fields(config_class)}
    unknown = sorted(set(fields) - known)
    if unknown:
        raise ValueError(
            f"{model_name} has no option {', '.join(unknown)}; its options are: {', '.join(sorted(known))}"
        )
    return model_name, config_class(**fields)


def build(name: str, **overrides) -> AutoregressiveModel:
    """Build a model by registry name (``pixelcnn.list_models()``) or preset name (``pixelcnn.presets``).

    Keyword arguments set config fields (``image_shape``, ``levels``,
    ``n_layers``, ``hidden``, ``kernel_size``, ``num_classes``, ``cond_dim``,
    ``spatial_cond``, ...), overriding a preset's.
    """
    model_name, config = config_for(name, **overrides)
    return MODELS[model_name](config)
