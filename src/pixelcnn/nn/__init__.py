"""Building blocks, each usable alone: masks, masked convolutions, gated and LSTM layers, conditioning."""

from .conditioning import ConditionBias, ConditionEncoder
from .conv import MaskedConv2d, OutputLayers, PointConv, PointOutputLayers, VerticalStackConv2d, shift_down
from .gated import GatedLayer, GatedLayerCache, gated_activation
from .lstm import DiagonalBiLSTMCache, DiagonalBiLSTMLayer, RowLSTMCache, RowLSTMLayer, lstm_cell, skew, unskew
from .masks import causal_mask, channel_groups, group_slices
from .shifted import (
    DownRightShiftedConv2d,
    DownRightShiftedConvTranspose2d,
    DownShiftedConv2d,
    DownShiftedConvTranspose2d,
    GatedResNet,
    concat_elu,
    down_shift,
    right_shift,
)

__all__ = [
    "ConditionBias",
    "ConditionEncoder",
    "GatedLayer",
    "MaskedConv2d",
    "OutputLayers",
    "VerticalStackConv2d",
    "causal_mask",
    "channel_groups",
    "gated_activation",
    "shift_down",
    "DiagonalBiLSTMLayer",
    "RowLSTMLayer",
    "lstm_cell",
    "skew",
    "unskew",
    # PixelCNN++
    "DownShiftedConv2d",
    "DownRightShiftedConv2d",
    "DownShiftedConvTranspose2d",
    "DownRightShiftedConvTranspose2d",
    "GatedResNet",
    "concat_elu",
    "down_shift",
    "right_shift",
    # cached twins, for generation one pixel and colour group at a time
    "PointConv",
    "PointOutputLayers",
    "GatedLayerCache",
    "RowLSTMCache",
    "DiagonalBiLSTMCache",
    "group_slices",
]
