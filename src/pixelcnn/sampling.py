"""Generation: one pixel-channel at a time, in raster-then-R,G,B order.

A sampler takes (model, x, start_row, h): x [B, C, H, W] holds the known rows
above ``start_row``, h is the encoded condition; it fills every later row in
place and returns x, calling ``callback(row, col, x)`` after each pixel when
given one (for animations). Both samplers here are exact.

``naive_generate`` is the reference: the whole network runs once per
pixel-channel (H * W * C passes) and one conditional is read off each pass.

``cached_generate`` is the fast one (Ramachandran et al. 2017: cache what later
steps read, compute only what the new value changes). For each layer it keeps
the layer's input maps; at step (row, col, channel g) it computes, for every
layer, only the units of colour group g at the one position (row, col), from
the cached window its kernel reads. Units of group g at a pixel depend on that
pixel's channels < g only (the masks' colour groups), so when channel g is
being sampled everything they read is final, and the C steps of a pixel
together compute each unit of the pixel exactly once. The Gated PixelCNN's
vertical stack reads its own row, so it is computed a whole row at a time, once
the row is complete, as the paper's one-row shift implies. In total each
activation is computed once, like one full forward pass; what remains on top
is the per-step overhead of many small matrix products.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from .nn.conv import MaskedConv2d
from .nn.gated import gated_activation
from .nn.masks import channel_groups


def progress_bar(total: int, enabled: bool, desc: str):
    """A tqdm bar when asked for, else a no-op with the same interface."""
    if enabled:
        from tqdm.auto import tqdm

        return tqdm(total=total, desc=desc, unit="px")

    class _NoBar:
        def update(self, n=1):
            pass

        def close(self):
            pass

    return _NoBar()


@torch.no_grad()
def naive_generate(model, x: torch.Tensor, start_row: int, h: torch.Tensor | None, *,
                   temperature: float = 1.0, generator: torch.Generator | None = None,
                   progress: bool = False, callback=None) -> torch.Tensor:
    """Fill rows ``start_row``.. of x [B, C, H, W] by one full forward pass per pixel-channel."""
    channels, height, width = model.image_shape
    bar = progress_bar((height - start_row) * width, progress, f"sampling {model.name} (naive)")
    for row in range(start_row, height):
        for col in range(width):
            for channel in range(channels):
                params = model._params(x, h)                           # [B, C, P, H, W]
                x[:, channel, row, col] = model.head.sample(
                    params[:, channel, :, row, col], temperature=temperature, generator=generator)
            bar.update(1)
            if callback is not None:
                callback(row, col, x)
    bar.close()
    return x


# --------------------------------------------------------------------------- cached generation
def group_slices(n_channels: int, color_channels: int) -> list[slice]:
    """The contiguous channel range of each colour group (see ``nn.masks.channel_groups``)."""
    groups = channel_groups(n_channels, color_channels)
    return [slice(int(torch.nonzero(groups == g)[0]), int(torch.nonzero(groups == g)[-1]) + 1)
            for g in range(color_channels)]


class PointConv:
    """A (masked) convolution evaluated at one position, for the output units of one colour group.

    The kernel's rows below its centre are all masked, so only ``k_h // 2 + 1``
    rows are kept; a call takes the flattened input window those rows and all
    columns cover: [B, in * rows * k_w] -> [B, n_group].
    """

    def __init__(self, conv, color_channels: int, *, group_repeats: int = 1, rows: int | None = None):
        weight = conv.weight * conv.mask if isinstance(conv, MaskedConv2d) else conv.weight
        weight = weight.detach()
        if rows is not None:
            weight = weight[:, :, :rows]
        out_channels = weight.shape[0]
        block = out_channels // group_repeats
        self.slices = group_slices(block, color_channels)
        # Per group: its rows in every block (tanh and sigmoid halves), contiguous for one matmul.
        index = [torch.cat([torch.arange(out_channels)[r * block:(r + 1) * block][s] for r in range(group_repeats)])
                 for s in self.slices]
        self.index = index
        flat = weight.reshape(out_channels, -1)
        self.weight = [flat[i].contiguous() for i in index]
        self.bias = [None if conv.bias is None else conv.bias.detach()[i].contiguous() for i in index]

    def __call__(self, window: torch.Tensor, group: int) -> torch.Tensor:
        return F.linear(window, self.weight[group], self.bias[group])


def _per_group(value: torch.Tensor | None, index: list[torch.Tensor]) -> list:
    """Split a condition bias [B, out, H|1, W|1] into per-group channel blocks."""
    if value is None:
        return [None] * len(index)
    return [value[:, i] for i in index]


def _at(value: torch.Tensor | None, row: int, col: int):
    """A per-group condition bias at (row, col): [B, n] (vector conditions broadcast)."""
    if value is None:
        return 0.0
    if value.shape[-2] == 1 and value.shape[-1] == 1:           # a vector condition: the same everywhere
        return value[:, :, 0, 0]
    return value[:, :, row, col]


class _PixelOutput:
    """The two 1x1 mask-B output layers at one pixel, one colour group per call."""

    def __init__(self, output, color_channels: int, like: torch.Tensor, batch: int):
        self.hidden = PointConv(output.hidden, color_channels)
        self.out = PointConv(output.out, color_channels)
        self.hidden_slices = self.hidden.slices
        self.hidden_vec = like.new_zeros(batch, output.hidden.out_channels)

    def __call__(self, features: torch.Tensor, group: int) -> torch.Tensor:
        """features [B, in], final for groups <= group -> the group's head parameters [B, P]."""
        self.hidden_vec[:, self.hidden_slices[group]] = torch.relu(self.hidden(torch.relu(features), group))
        return self.out(self.hidden_vec, group)


class GatedPixelCNNCache:
    """Cached generation state for ``GatedPixelCNN`` (see the module docstring).

    Buffers per layer, padded as the layer's convolutions pad (with zeros):
    vertical input [B, in, H + k//2, W + 2 (k//2)], horizontal input
    [B, in, H, W + k//2]; and the vertical stack's contribution to the
    horizontal stack of the current row, per colour group [B, 2 n_g, W].
    """

    def __init__(self, model, x_scaled: torch.Tensor, h, start_row: int):
        channels, height, width = model.image_shape
        self.layers, self.channels = model.layers, channels
        batch = x_scaled.shape[0]
        self.half = [layer.vertical_conv.half for layer in self.layers]
        self.vertical_in = [x_scaled.new_zeros(batch, layer.vertical_conv.in_channels, height + half,
                                               width + 2 * half) for layer, half in zip(self.layers, self.half)]
        self.horizontal_in = [x_scaled.new_zeros(batch, layer.vertical_conv.in_channels, height, width + half)
                              for layer, half in zip(self.layers, self.half)]
        self.horizontal_conv = [PointConv(layer.horizontal_conv, channels, group_repeats=2) for layer in self.layers]
        self.skip_out = [PointConv(layer.skip_out, channels) for layer in self.layers]
        self.horizontal_out = [None if layer.first else PointConv(layer.horizontal_out, channels)
                               for layer in self.layers]
        gate_index = self.horizontal_conv[0].index
        self.horizontal_cond = [_per_group(layer.horizontal_cond(h) if layer.horizontal_cond is not None and h is not None
                                           else None, gate_index) for layer in self.layers]
        self.vertical_cond = [layer.vertical_cond(h) if layer.vertical_cond is not None and h is not None else None
                              for layer in self.layers]
        self.output = _PixelOutput(model.output, channels, x_scaled, batch)
        hidden = self.layers[0].skip_out.in_channels
        self.hidden_slices = group_slices(hidden, channels)
        self.skip_slices = self.skip_out[0].slices
        self.gated_vec = [x_scaled.new_zeros(batch, hidden) for _ in self.layers]
        self.skip_vec = x_scaled.new_zeros(batch, self.layers[0].skip_out.out_channels)

        half = self.half[0]
        self.vertical_in[0][:, :, half: half + start_row, half: half + width] = x_scaled[:, :, :start_row]
        self.horizontal_in[0][:, :, :start_row, half:] = x_scaled[:, :, :start_row]
        self.vertical_link = [None] * len(self.layers)
        if start_row == 0:
            # Above the first row the shifted vertical stack is zeros: only the link's bias is left.
            for index, layer in enumerate(self.layers):
                bias = layer.vertical_to_horizontal.bias[None, :, None].expand(batch, -1, width)
                self.vertical_link[index] = [bias[:, i].contiguous() for i in gate_index]
        for row in range(start_row):                 # the known rows' vertical stack, a row at a time
            self.finish_row(row)

    def finish_row(self, row: int) -> None:
        """Row ``row`` of the image is complete: run every layer's vertical stack on it."""
        for index, layer in enumerate(self.layers):
            half = self.half[index]
            window = self.vertical_in[index][:, :, row: row + half + 1]              # [B, in, k//2+1, W + 2 half]
            conv = layer.vertical_conv
            vertical_pre = F.conv2d(window, conv.weight, conv.bias)                  # [B, 2p, 1, W]
            # This row of the vertical stack feeds the horizontal stack of the next row (the shift).
            link = layer.vertical_to_horizontal(vertical_pre)[:, :, 0]               # [B, 2p, W]
            self.vertical_link[index] = [link[:, i].contiguous() for i in self.horizontal_conv[index].index]
            if index + 1 < len(self.layers):
                cond = self.vertical_cond[index]
                if cond is not None:
                    vertical_pre = vertical_pre + (cond if cond.shape[-2] == 1 else cond[:, :, row: row + 1])
                nxt = self.half[index + 1]
                self.vertical_in[index + 1][:, :, row + nxt, nxt: nxt + vertical_pre.shape[-1]] = \
                    gated_activation(vertical_pre)[:, :, 0]

    def step(self, row: int, col: int, group: int) -> torch.Tensor:
        """Group ``group``'s units at (row, col) through every layer -> its head parameters [B, P]."""
        hidden_rows = self.hidden_slices[group]
        skip = 0.0
        for index, layer in enumerate(self.layers):
            k_w = self.half[index] + 1
            window = self.horizontal_in[index][:, :, row, col: col + k_w].flatten(1)  # [B, in * k_w]
            pre = (self.horizontal_conv[index](window, group) + self.vertical_link[index][group][:, :, col]
                   + _at(self.horizontal_cond[index][group], row, col))              # [B, 2 n_g]
            gated = gated_activation(pre)                                             # [B, n_g]
            gated_vec = self.gated_vec[index]
            gated_vec[:, hidden_rows] = gated
            skip = skip + self.skip_out[index](gated_vec, group)
            if index + 1 < len(self.layers):
                if not layer.first:                                                   # the residual
                    gated = self.horizontal_in[index][:, hidden_rows, row, col + k_w - 1] + \
                        self.horizontal_out[index](gated_vec, group)
                self.horizontal_in[index + 1][:, hidden_rows, row, col + self.half[index + 1]] = gated
        self.skip_vec[:, self.skip_slices[group]] = skip
        return self.output(self.skip_vec, group)

    def write_value(self, row: int, col: int, channel: int, value: torch.Tensor) -> None:
        """The sampled (scaled) value of ``channel`` at (row, col) enters the first layer's inputs."""
        half = self.half[0]
        self.horizontal_in[0][:, channel, row, col + half] = value
        self.vertical_in[0][:, channel, row + half, col + half] = value


class PixelCNNCache:
    """Cached generation state for ``PixelCNN``.

    Buffers: the image and each block's k x k convolution input, padded as
    the convolution pads them but with only the rows it reads (the rows above
    and the current one): [B, ch, H + k//2, W + 2 (k//2)]. Per pixel: the
    residual stream of every block and the block's inner vectors, filled one
    colour group at a time.
    """

    def __init__(self, model, x_scaled: torch.Tensor, h, start_row: int):
        channels, height, width = model.image_shape
        self.channels, self.blocks = channels, model.blocks
        batch = x_scaled.shape[0]
        k_in = model.input_conv.kernel_size[0]
        self.input_half = k_in // 2
        self.input_conv = PointConv(model.input_conv, channels, rows=self.input_half + 1)
        self.image = x_scaled.new_zeros(batch, channels, height + self.input_half, width + 2 * self.input_half)
        self.image[:, :, self.input_half: self.input_half + start_row,
                   self.input_half: self.input_half + width] = x_scaled[:, :, :start_row]
        self.block_half = [block.masked.kernel_size[0] // 2 for block in self.blocks]
        self.block_in = [x_scaled.new_zeros(batch, block.masked.in_channels, height + half, width + 2 * half)
                         for block, half in zip(self.blocks, self.block_half)]
        self.reduce = [PointConv(block.reduce, channels) for block in self.blocks]
        self.masked = [PointConv(block.masked, channels, rows=half + 1)
                       for block, half in zip(self.blocks, self.block_half)]
        self.expand = [PointConv(block.expand, channels) for block in self.blocks]
        index = self.input_conv.index
        self.input_cond = _per_group(model.input_cond(h) if model.input_cond is not None and h is not None else None,
                                     index)
        self.block_cond = [_per_group(block.cond(h) if block.cond is not None and h is not None else None,
                                      self.masked[i].index) for i, block in enumerate(self.blocks)]
        self.output = _PixelOutput(model.output, channels, x_scaled, batch)
        width_2h = model.input_conv.out_channels
        self.stream_slices = group_slices(width_2h, channels)
        self.inner_slices = group_slices(self.blocks[0].masked.out_channels, channels) if self.blocks else []
        self.stream = [x_scaled.new_zeros(batch, width_2h) for _ in range(len(self.blocks) + 1)]
        self.inner = [x_scaled.new_zeros(batch, block.masked.out_channels) for block in self.blocks]
        if start_row > 0 and self.blocks:
            self._prefill(model, x_scaled, h, start_row)

    def _prefill(self, model, x_scaled, h, start_row):
        """Known rows: one full forward pass records every block's k x k input."""
        captured = []
        hooks = [block.masked.register_forward_hook(lambda module, inputs, output: captured.append(inputs[0]))
                 for block in self.blocks]
        try:
            model.network(x_scaled, h)
        finally:
            for hook in hooks:
                hook.remove()
        for buffer, half, value in zip(self.block_in, self.block_half, captured):
            buffer[:, :, half: half + start_row, half: half + value.shape[-1]] = value[:, :, :start_row]

    def finish_row(self, row: int) -> None:
        pass                                        # every buffer is written pixel by pixel

    def step(self, row: int, col: int, group: int) -> torch.Tensor:
        """Group ``group``'s units at (row, col) through every layer -> its head parameters [B, P]."""
        k = 2 * self.input_half + 1
        window = self.image[:, :, row: row + self.input_half + 1, col: col + k].flatten(1)
        stream_rows = self.stream_slices[group]
        self.stream[0][:, stream_rows] = self.input_conv(window, group) + _at(self.input_cond[group], row, col)
        for index in range(len(self.blocks)):
            half = self.block_half[index]
            inner_rows = self.inner_slices[group]
            reduced = torch.relu(self.reduce[index](torch.relu(self.stream[index]), group))  # [B, n_g]
            self.block_in[index][:, inner_rows, row + half, col + half] = reduced
            window = self.block_in[index][:, :, row: row + half + 1, col: col + 2 * half + 1].flatten(1)
            masked = self.masked[index](window, group) + _at(self.block_cond[index][group], row, col)
            self.inner[index][:, inner_rows] = torch.relu(masked)
            self.stream[index + 1][:, stream_rows] = (self.stream[index][:, stream_rows]
                                                      + self.expand[index](self.inner[index], group))
        return self.output(self.stream[-1], group)

    def write_value(self, row: int, col: int, channel: int, value: torch.Tensor) -> None:
        self.image[:, channel, row + self.input_half, col + self.input_half] = value


@torch.no_grad()
def cached_generate(model, x: torch.Tensor, start_row: int, h: torch.Tensor | None, *,
                    temperature: float = 1.0, generator: torch.Generator | None = None,
                    progress: bool = False, callback=None) -> torch.Tensor:
    """Fill rows ``start_row``.. of x [B, C, H, W], computing each activation once (see module doc).

    ``model.fast_cache(x_scaled, h, start_row)`` gives the model's cache, an
    object with ``step(row, col, channel) -> params [B, P]``,
    ``write_value(row, col, channel, scaled_value)`` and ``finish_row(row)``.
    """
    channels, height, width = model.image_shape
    cache = model.fast_cache(model.scale_input(x), h, start_row)
    scale = 2.0 / (model.levels - 1)
    bar = progress_bar((height - start_row) * width, progress, f"sampling {model.name} (fast)")
    for row in range(start_row, height):
        for col in range(width):
            for channel in range(channels):
                params = cache.step(row, col, channel)                            # [B, P]
                value = model.head.sample(params, temperature=temperature, generator=generator)
                x[:, channel, row, col] = value
                cache.write_value(row, col, channel, value.to(params.dtype) * scale - 1.0)
            bar.update(1)
            if callback is not None:
                callback(row, col, x)
        cache.finish_row(row)
    bar.close()
    return x
