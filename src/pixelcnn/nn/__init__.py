"""Building blocks, each usable alone: masks, masked convolutions, gated layers, conditioning."""
from .conditioning import ConditionBias, ConditionEncoder
from .conv import MaskedConv2d, OutputLayers, VerticalStackConv2d, shift_down
from .gated import GatedLayer, gated_activation
from .masks import causal_mask, channel_groups

__all__ = [
    "ConditionBias", "ConditionEncoder", "GatedLayer", "MaskedConv2d", "OutputLayers", "VerticalStackConv2d",
    "causal_mask", "channel_groups", "gated_activation", "shift_down",
]
