"""Model families, one file each, and the registry (``MODELS``: autoregressive; ``BASELINES``: the others)."""

from .autoencoder import PixelCNNAutoEncoder, PixelCNNAutoEncoderConfig
from .base import AutoregressiveModel, ModelConfig, Preset
from .baseline import MSEAutoEncoder, MSEAutoEncoderConfig
from .gated import GatedPixelCNN, GatedPixelCNNConfig
from .multiscale import MultiScaleConfig, MultiScalePixelRNN
from .pixelcnn import PixelCNN, PixelCNNConfig
from .pixelcnn_pp import PixelCNNPP, PixelCNNPPConfig
from .pixelrnn import DiagonalBiLSTM, DiagonalBiLSTMConfig, PixelRNNConfig, RowLSTM, RowLSTMConfig
from .registry import BASELINES, MODELS, build, config_for, list_models, model_class, presets

__all__ = [
    "BASELINES",
    "MODELS",
    "AutoregressiveModel",
    "DiagonalBiLSTM",
    "DiagonalBiLSTMConfig",
    "GatedPixelCNN",
    "GatedPixelCNNConfig",
    "ModelConfig",
    "MSEAutoEncoder",
    "MSEAutoEncoderConfig",
    "MultiScaleConfig",
    "MultiScalePixelRNN",
    "PixelCNN",
    "PixelCNNAutoEncoder",
    "PixelCNNAutoEncoderConfig",
    "PixelCNNConfig",
    "PixelCNNPP",
    "PixelCNNPPConfig",
    "PixelRNNConfig",
    "Preset",
    "RowLSTM",
    "RowLSTMConfig",
    "build",
    "config_for",
    "list_models",
    "model_class",
    "presets",
]
