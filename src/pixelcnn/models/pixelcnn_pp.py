"""PixelCNN++ (Salimans, Karpathy, Chen, Kingma, ICLR 2017 [1]).

What differs from the PixelCNN ([1] §2):
- shifted convolutions instead of masks (``nn/shifted.py``): a *down-shifted*
  stream u (the rows above) and a *down-right-shifted* stream ul (the rows
  above and the pixels to the left), combined like the Gated PixelCNN's two
  stacks, so there is no blind spot;
- gated ResNet blocks with concatenated ELU and dropout;
- three resolutions: two stride-2 downsamplings and two transposed-convolution
  upsamplings, with a short-cut from every block of the down pass to its mirror
  in the up pass (a U-net, [1] Figure 2);
- the discretized logistic mixture likelihood (``heads.py``).

Architecture, F = ``hidden``, n = ``n_layers`` (the reference code's ``nr_resnet``)::

    x [B, C, H, W], with a channel of ones (tells zero padding from black) -> [B, C+1, H, W]
    u  = down_shift(2x3 down-shifted conv)                           [B, F, H, W]
    ul = down_shift(1x3 down-shifted conv) + right_shift(2x1 down-right-shifted conv)
    down pass, stages H, H/2, H/4: (stride-2 convs between stages) n gated ResNet blocks each,
        u = block(u); ul = block(ul, aux=u); every u and ul kept for the up pass (3n + 3 of each)
    up pass, stages H/4, H/2, H: (stride-2 transposed convs between) n, n + 1, n + 1 blocks,
        u = block(u, aux=kept u); ul = block(ul, aux=[u, kept ul])
    -> ELU -> 1x1 conv -> head parameters                            [B, P, H, W]

Causality: u at (i, j) depends on rows < i only, ul on pixels before (i, j)
in raster order only, at every layer and resolution (see ``nn/shifted.py``).
There are no colour masks: the output at (i, j) sees no channel of pixel
(i, j). The logistic mixture head couples a pixel's channels itself (G's mean
linear in R, B's in R and G, [1] §2.2), which ``_params`` applies; with a
categorical or Bernoulli head the channels of a pixel are independent given
the earlier pixels.

Any H and W work: a stride-2 stage has ceil(H/2) x ceil(W/2) positions, and
each transposed convolution crops its output to the size of the stage it
returns to.

NOTE: unlike the paper, weight normalization ([2], ``weight_norm=True``) is
initialized from the default initialization, not data-dependently, and the
per-step learning-rate decay and Polyak averaging are the training schedule's
(``Preset.schedule``), not the model's.

[1] T. Salimans, A. Karpathy, X. Chen, D. P. Kingma. PixelCNN++: Improving
    the PixelCNN with Discretized Logistic Mixture Likelihood and Other
    Modifications. ICLR 2017. arXiv:1701.05517.
[2] T. Salimans, D. P. Kingma. Weight Normalization. NIPS 2016. arXiv:1602.07868.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from ..fields import fraction, option, positive_int, raise_problems
from ..heads import LogisticMixtureHead, couple_channels
from ..nn.shifted import (
    ConvTransposeWindow,
    DownRightShiftedConv2d,
    DownRightShiftedConvTranspose2d,
    DownShiftedConv2d,
    DownShiftedConvTranspose2d,
    GatedResNet,
    GatedResNetCache,
    PaddedMap,
    ShiftedConvWindow,
    down_shift,
    right_shift,
)
from .base import AutoregressiveModel, ModelConfig, Preset

STAGES = 3  # resolutions: H, H/2, H/4 ([1] Figure 2)


@dataclass
class PixelCNNPPConfig(ModelConfig):
    n_layers: int = option(5, "gated ResNet blocks per down-pass stage (nr_resnet); up: n, n+1, n+1")
    hidden: int = option(160, "F: maps of both streams at every resolution (nr_filters)")
    dropout: float = option(0.0, "in every block; the paper's CIFAR-10 model: 0.5 (its preset)")
    weight_norm: bool = option(False, "weight-normalize every convolution (Salimans & Kingma, 2016), as the paper")
    head: str = option("logistic_mixture", "the paper's logistic mixture, a pixel's channels coupled (§2.2)")

    def __post_init__(self):
        super().__post_init__()
        raise_problems(
            [
                positive_int("n_layers", self.n_layers),
                positive_int("hidden", self.hidden),
                fraction("dropout", self.dropout),
            ]
        )


@dataclass(frozen=True, slots=True, eq=False)
class CachedLayerRun:
    """One cached layer of a PixelCNN++ stream and the maps it reads and writes, in ``network``'s order.

    Named, not positional: a program whose maps were swapped would still run, and sample wrong.
    """

    stage: int  # the resolution it runs at, H / 2^stage (a transposed layer: its input's)
    layer: ShiftedConvWindow | ConvTransposeWindow | GatedResNetCache
    source: PaddedMap  # its input map [B, F, H_s, W_s]
    target: PaddedMap  # its output map
    aux: tuple[PaddedMap, ...] = ()  # the auxiliary maps it concatenates (a ul block: the u map, kept maps)

    def run(self, row: int, start: int, stop: int) -> None:
        """The layer's outputs at (row, start .. stop - 1) of its own grid, into ``target``."""
        self.layer.run(self.source, self.aux, self.target, row, start, stop)


class PixelCNNPPCache:
    """Cached generation state of a ``PixelCNNPP`` (the protocol of ``sampling.cached_generate``).

    Every layer of ``network`` keeps its output map (``nn.shifted.PaddedMap``); ``u_program`` and
    ``ul_program`` list the layers in ``network``'s order as (stage, cached layer, input map,
    auxiliary maps, output map: ``CachedLayerRun``). When image row r - 1 is complete (``finish_row``), the u stream's
    row r is computable at every stage where it exists (stage s: rows r / 2^s for r a multiple of
    2^s); before pixel (r, c) is drawn (``step`` of its first channel), the ul stream's position
    (r, c) likewise, then the output layer at (r, c). A transposed layer is listed at its coarse
    input's stage and writes the fine positions that input gives. x is the scaled image [B, C, H, W]
    whose rows above ``start_row`` are known; those rows are replayed through the layers.
    """

    def __init__(self, model: PixelCNNPP, x: torch.Tensor, h: torch.Tensor | None, start_row: int):
        self.model = model
        batch, channels, height, width = x.shape
        features = model.config.hidden
        sizes = [(height, width)]
        for _ in range(STAGES - 1):
            sizes.append((-(-sizes[-1][0] // 2), -(-sizes[-1][1] // 2)))  # ceil halves: the strided grids
        self.widths = [w for _, w in sizes]
        conds = model.stage_conditions(h)

        def new_map(s, maps=features):
            return PaddedMap(batch, maps, *sizes[s], like=x)

        def block(module, s):
            return GatedResNetCache(module, conds[s], batch=batch, height=sizes[s][0], width=sizes[s][1], like=x)

        self.image = new_map(0, channels + 1)  # [B, C+1, H, W]: x and the ones
        self.image.view[:, :channels] = x
        self.image.view[:, channels] = 1
        self.u_input = ShiftedConvWindow(model.u_input)
        self.ul_input_above, self.ul_input_left = (
            ShiftedConvWindow(model.ul_input_above),
            ShiftedConvWindow(model.ul_input_left),
        )
        # The programs, built in the order of ``network``.
        u, ul = new_map(0), new_map(0)
        self.u_first, self.ul_first = u, ul
        kept_u, kept_ul, self.u_program, self.ul_program = [u], [ul], [], []
        for s in range(STAGES):
            if s > 0:
                next_u, next_ul = new_map(s), new_map(s)
                self.u_program.append(
                    CachedLayerRun(stage=s, layer=ShiftedConvWindow(model.downsample_u[s - 1]), source=u, target=next_u)
                )
                self.ul_program.append(
                    CachedLayerRun(
                        stage=s, layer=ShiftedConvWindow(model.downsample_ul[s - 1]), source=ul, target=next_ul
                    )
                )
                u, ul = next_u, next_ul
                kept_u.append(u)
                kept_ul.append(ul)
            for u_block, ul_block in zip(model.down_u[s], model.down_ul[s]):
                next_u, next_ul = new_map(s), new_map(s)
                self.u_program.append(CachedLayerRun(stage=s, layer=block(u_block, s), source=u, target=next_u))
                self.ul_program.append(
                    CachedLayerRun(stage=s, layer=block(ul_block, s), source=ul, aux=(next_u,), target=next_ul)
                )
                u, ul = next_u, next_ul
                kept_u.append(u)
                kept_ul.append(ul)
        u, ul = kept_u.pop(), kept_ul.pop()
        for up, s in enumerate(reversed(range(STAGES))):
            if up > 0:
                next_u, next_ul = new_map(s), new_map(s)
                self.u_program.append(
                    CachedLayerRun(
                        stage=s + 1, layer=ConvTransposeWindow(model.upsample_u[up - 1]), source=u, target=next_u
                    )
                )
                self.ul_program.append(
                    CachedLayerRun(
                        stage=s + 1, layer=ConvTransposeWindow(model.upsample_ul[up - 1]), source=ul, target=next_ul
                    )
                )
                u, ul = next_u, next_ul
            for u_block, ul_block in zip(model.up_u[up], model.up_ul[up]):
                next_u, next_ul = new_map(s), new_map(s)
                self.u_program.append(
                    CachedLayerRun(stage=s, layer=block(u_block, s), source=u, aux=(kept_u.pop(),), target=next_u)
                )
                self.ul_program.append(
                    CachedLayerRun(
                        stage=s, layer=block(ul_block, s), source=ul, aux=(next_u, kept_ul.pop()), target=next_ul
                    )
                )
                u, ul = next_u, next_ul
        self.ul_last = ul
        output = model.output
        self.output_weight_t = output.weight.detach().flatten(1).t()  # [F, P]
        self.output_bias = output.bias.detach()  # [P]
        self.raw = None  # this pixel's network output
        self.rows(0)
        for row in range(start_row):
            for col in range(width):
                self.positions(row, col)
            self.finish_row(row)

    def rows(self, r: int) -> None:
        """The u stream's row r at every stage that has it (image rows < r are complete)."""
        if r > 0:  # row 0: the shift's zeros
            self.u_first.view[:, :, r : r + 1] = self.u_input(self.image, r - 1, 0, self.widths[0])
        for entry in self.u_program:
            s = entry.stage
            if r % 2**s == 0:
                entry.run(r >> s, 0, self.widths[s])

    def positions(self, r: int, c: int) -> None:
        """The ul stream at (r, c) at every stage that has it (pixels before (r, c) are complete)."""
        first = 0.0
        if r > 0:
            first = first + self.ul_input_above(self.image, r - 1, c, c + 1)
        if c > 0:
            first = first + self.ul_input_left(self.image, r, c - 1, c)
        self.ul_first.view[:, :, r : r + 1, c : c + 1] = first
        for entry in self.ul_program:
            s = entry.stage
            step = 2**s
            if r % step == 0 and c % step == 0:
                entry.run(r >> s, c >> s, (c >> s) + 1)

    def finish_row(self, row: int) -> None:
        if row + 1 < self.ul_last.height:
            self.rows(row + 1)

    def step(self, row: int, col: int, channel: int) -> torch.Tensor:
        """Channel ``channel``'s head parameters at (row, col) [B, P]; the network runs at the first channel."""
        if channel == 0:
            self.positions(row, col)
            features = F.elu(self.ul_last.view[:, :, row, col])  # [B, F]
            self.raw = torch.addmm(self.output_bias, features, self.output_weight_t)[:, :, None, None]  # [B, P, 1, 1]
        channels = self.image.view.shape[1] - 1
        pixel = self.image.view[:, :channels, row : row + 1, col : col + 1]  # [B, C, 1, 1], earlier channels drawn
        return self.model.head_params(self.raw, pixel)[:, channel, :, 0, 0]

    def write_value(self, row: int, col: int, channel: int, value: torch.Tensor) -> None:
        self.image.view[:, channel, row, col] = value


class PixelCNNPP(AutoregressiveModel):
    """PixelCNN++ of [1], conditional when built with num_classes or cond_dim (a bias in every block)."""

    name = "pixelcnn_pp"
    config_class = PixelCNNPPConfig

    def __init__(self, config: PixelCNNPPConfig):
        super().__init__(config)
        channels, features, blocks = self.image_shape[0], config.hidden, config.n_layers
        norm = dict(weight_norm=config.weight_norm)
        block = functools.partial(
            GatedResNet,
            features,
            dropout=config.dropout,
            cond_channels=self.cond_channels,
            spatial_cond=config.spatial_cond,
            **norm,
        )

        def stage(conv, aux_channels, count):
            return nn.ModuleList([block(conv, aux_channels=aux_channels) for _ in range(count)])

        self.u_input = DownShiftedConv2d(channels + 1, features, (2, 3), **norm)
        self.ul_input_above = DownShiftedConv2d(channels + 1, features, (1, 3), **norm)
        self.ul_input_left = DownRightShiftedConv2d(channels + 1, features, (2, 1), **norm)
        # Down pass: ul reads u at the same position (rows above); up pass: u reads its kept twin,
        # ul reads [u, its kept twin].
        self.down_u = nn.ModuleList([stage(DownShiftedConv2d, 0, blocks) for _ in range(STAGES)])
        self.down_ul = nn.ModuleList([stage(DownRightShiftedConv2d, features, blocks) for _ in range(STAGES)])
        self.downsample_u = nn.ModuleList(
            [DownShiftedConv2d(features, features, stride=2, **norm) for _ in range(STAGES - 1)]
        )
        self.downsample_ul = nn.ModuleList(
            [DownRightShiftedConv2d(features, features, stride=2, **norm) for _ in range(STAGES - 1)]
        )
        up_blocks = [blocks] + [blocks + 1] * (STAGES - 1)  # coarsest first
        self.up_u = nn.ModuleList([stage(DownShiftedConv2d, features, n) for n in up_blocks])
        self.up_ul = nn.ModuleList([stage(DownRightShiftedConv2d, 2 * features, n) for n in up_blocks])
        self.upsample_u = nn.ModuleList(
            [DownShiftedConvTranspose2d(features, features, **norm) for _ in range(STAGES - 1)]
        )
        self.upsample_ul = nn.ModuleList(
            [DownRightShiftedConvTranspose2d(features, features, **norm) for _ in range(STAGES - 1)]
        )
        self.output = nn.Conv2d(features, self.network_channels, 1)
        if config.weight_norm:
            self.output = nn.utils.parametrizations.weight_norm(self.output)

    @property
    def coupled(self) -> bool:
        """Whether the head is the logistic mixture, whose K components a pixel's channels share ([1] §2.2)."""
        return isinstance(self.head, LogisticMixtureHead)

    @property
    def network_channels(self) -> int:
        """Maps of the network's output: the joint mixture's K (1 + 2C + C(C-1)/2), else the head's parameters."""
        channels = self.image_shape[0]
        if self.coupled:
            return self.config.n_mixtures * (1 + 2 * channels + channels * (channels - 1) // 2)
        return self.head.out_channels

    def head_params(self, raw: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """The network's output [B, P, H, W] and the scaled image [B, C, H, W] -> head parameters [B, C, P', H, W].

        The network's output at (i, j) sees no channel of pixel (i, j); with the mixture head,
        ``couple_channels`` brings in the pixel's earlier channels (G's means linear in R, B's in R
        and G), making each channel's exact conditional. Other heads: channels independent.
        """
        if self.coupled:
            return couple_channels(raw, x, self.levels)
        return self.head.params(raw)

    def _params(self, x: torch.Tensor, h: torch.Tensor | None) -> torch.Tensor:
        scaled = self.scale_input(x)
        return self.head_params(self.network(scaled, h), scaled)

    def fast_cache(self, x: torch.Tensor, h: torch.Tensor | None, start_row: int) -> PixelCNNPPCache:
        """Cached generation: each layer's value at each position computed once (``sampling.py``)."""
        return PixelCNNPPCache(self, x, h, start_row)

    def stage_conditions(self, h: torch.Tensor | None) -> list:
        """The condition each resolution reads: a vector as is, a map [B, S, H, W] subsampled to the stage's size."""
        if h is None or h.dim() == 2:
            return [h] * STAGES
        return [h[:, :, :: 2**s, :: 2**s] for s in range(STAGES)]  # [B, S, ceil(H / 2^s), ceil(W / 2^s)]

    def network(self, x: torch.Tensor, h: torch.Tensor | None) -> torch.Tensor:
        conds = self.stage_conditions(h)
        x = torch.cat([x, torch.ones_like(x[:, :1])], dim=1)  # [B, C+1, H, W]
        u = down_shift(self.u_input(x))  # [B, F, H, W]: rows < i
        ul = down_shift(self.ul_input_above(x)) + right_shift(self.ul_input_left(x))  # pixels before (i, j)
        kept_u, kept_ul = [u], [ul]
        for s in range(STAGES):
            if s > 0:
                u, ul = self.downsample_u[s - 1](u), self.downsample_ul[s - 1](ul)  # [B, F, ceil(./2), ceil(./2)]
                kept_u.append(u)
                kept_ul.append(ul)
            for u_block, ul_block in zip(self.down_u[s], self.down_ul[s]):
                u = u_block(u, h=conds[s])
                ul = ul_block(ul, u, h=conds[s])
                kept_u.append(u)
                kept_ul.append(ul)
        u, ul = kept_u.pop(), kept_ul.pop()
        for up, s in enumerate(reversed(range(STAGES))):  # s: 2, 1, 0 (coarsest first)
            if up > 0:
                size = kept_u[-1].shape[-2:]  # the finer stage's H, W
                u, ul = self.upsample_u[up - 1](u, size), self.upsample_ul[up - 1](ul, size)
            for u_block, ul_block in zip(self.up_u[up], self.up_ul[up]):
                u = u_block(u, kept_u.pop(), h=conds[s])
                ul = ul_block(ul, torch.cat([u, kept_ul.pop()], dim=1), h=conds[s])
        return self.output(F.elu(ul))  # [B, P, H, W]


# ------------------------------------------------------------------------------------------- presets
# The reference code's recipe ([1] §3): Adam with beta1 0.95, beta2 0.9995, lr 1e-3 multiplied by
# 0.999995 every step, Polyak averaging of the weights with 0.9995 for evaluation, no clipping or
# warm-up. Batch 16 per GPU on 8 GPUs there: 16 here (one device).
PAPER_SCHEDULE = dict(
    optimizer="adam",
    lr=1e-3,
    beta1=0.95,
    beta2=0.9995,
    lr_decay="exponential",
    decay_rate=0.999995,
    decay_every=1,
    warmup_steps=0,
    ema_decay=0.9995,
    grad_clip=None,
    batch_size=16,
)

PRESETS = {
    "pixelcnnpp-cifar10": Preset(
        PixelCNNPP.name,
        dict(image_shape=(3, 32, 32), levels=256, n_layers=5, hidden=160, dropout=0.5, weight_norm=True, n_mixtures=10),
        "PixelCNN++ paper, CIFAR-10: 5 blocks per stage, 160 maps, dropout 0.5 "
        "(2.92 bits/dim); its Adam / decay / Polyak recipe as the training defaults",
        schedule=PAPER_SCHEDULE,
    ),
    "pixelcnnpp-photo": Preset(
        PixelCNNPP.name,
        dict(image_shape=(3, 32, 32), levels=256, n_layers=1, hidden=32),
        "ours: a small PixelCNN++ (1 block per stage, 32 maps, 10 mixtures) that trains on "
        "photo-patches on a CPU (benchmarks/train_curves.py)",
    ),
    "tiny-pixelcnnpp": Preset(
        PixelCNNPP.name,
        dict(image_shape=(1, 8, 8), levels=2, n_layers=1, hidden=4),
        "9 thousand parameters, for tests and smoke runs",
    ),
}
