"""Model families, one file each, and the registry."""
from .autoencoder import PixelCNNAutoEncoder, PixelCNNAutoEncoderConfig
from .base import AutoregressiveModel, ModelConfig
from .gated import GatedPixelCNN, GatedPixelCNNConfig
from .multiscale import MultiScaleConfig, MultiScalePixelRNN
from .pixelcnn import PixelCNN, PixelCNNConfig
from .pixelrnn import DiagonalBiLSTM, DiagonalBiLSTMConfig, PixelRNNConfig, RowLSTM, RowLSTMConfig
from .registry import MODELS, Preset, build, list_models, presets

__all__ = [
    "MODELS", "AutoregressiveModel", "PixelCNNAutoEncoder", "PixelCNNAutoEncoderConfig", "GatedPixelCNN", "GatedPixelCNNConfig", "ModelConfig", "PixelCNN",
    "PixelCNNConfig", "Preset", "build", "list_models", "presets",
    "DiagonalBiLSTM", "DiagonalBiLSTMConfig", "MultiScaleConfig", "MultiScalePixelRNN", "PixelRNNConfig", "RowLSTM",
    "RowLSTMConfig",
]
