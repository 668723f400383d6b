"""Model families, one file each, and the registry."""
from .base import AutoregressiveModel, ModelConfig
from .gated import GatedPixelCNN, GatedPixelCNNConfig
from .pixelcnn import PixelCNN, PixelCNNConfig
from .registry import MODELS, Preset, build, list_models, presets

__all__ = [
    "MODELS", "AutoregressiveModel", "GatedPixelCNN", "GatedPixelCNNConfig", "ModelConfig", "PixelCNN",
    "PixelCNNConfig", "Preset", "build", "list_models", "presets",
]
