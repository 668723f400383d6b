"""The one causal-mask builder. Every masked layer of every model uses it.

A pixel's colour channels are generated in order R, G, B ([1] §2.1, Equation 2,
and §3.4, Figure 2 right). Every feature map of a masked network is split into
``color_channels`` contiguous groups; a unit of group g may read, at the
*current* pixel, only units of earlier groups (mask A) or of earlier groups and
its own (mask B). Taps at earlier pixels in raster order are always open; taps
at later ones are shut.

A 5x5 kernel, one input group and one output group (C = 1)::

        mask A          mask B
      1 1 1 1 1       1 1 1 1 1
      1 1 1 1 1       1 1 1 1 1
      1 1 0 0 0       1 1 1 0 0
      0 0 0 0 0       0 0 0 0 0
      0 0 0 0 0       0 0 0 0 0

The centre tap for C = 3 (rows: output group, columns: input group)::

        mask A          mask B
          R G B           R G B
      R   0 0 0       R   1 0 0
      G   1 0 0       G   1 1 0
      B   1 1 0       B   1 1 1

The centre need not be the middle of the kernel: the horizontal stack of the
Gated PixelCNN is a 1 x (k//2 + 1) kernel whose centre is its right-most tap::

      1 1 [c]         c = the colour-group centre tap above

``group_repeats`` serves layers whose outputs are several stacked blocks of
the same hidden units, e.g. the tanh and sigmoid halves of a gated layer or
the four gates of an LSTM: each block is grouped on its own, so unit k of
every block belongs to the same colour group.

[1] A. van den Oord, N. Kalchbrenner, K. Kavukcuoglu. Pixel Recurrent Neural
    Networks. ICML 2016. arXiv:1601.06759.
"""

from __future__ import annotations

import torch

MASK_TYPES = ("A", "B")


def channel_groups(n_channels: int, color_channels: int) -> torch.Tensor:
    """Colour group of each of ``n_channels`` channels: [n_channels] int64.

    Groups are contiguous and as equal as possible (channel k is in group
    ``k * C // n``): with n = C each channel is its own group, and the C * L
    logits of an output layer, laid out channel by channel, fall in the group
    of the channel they predict.
    """
    if n_channels < color_channels:
        raise ValueError(
            f"a masked layer needs at least one unit per colour group: "
            f"got {n_channels} channels for {color_channels} colour channels"
        )
    return torch.arange(n_channels) * color_channels // n_channels


def group_slices(n_channels: int, color_channels: int) -> list[slice]:
    """The contiguous range of each colour group's channels (``channel_groups``): C slices of 0..n-1."""
    groups = channel_groups(n_channels, color_channels)
    return [
        slice(int(torch.nonzero(groups == g)[0]), int(torch.nonzero(groups == g)[-1]) + 1)
        for g in range(color_channels)
    ]


def causal_mask(
    kernel_size: tuple[int, int] | int,
    in_channels: int,
    out_channels: int,
    *,
    mask_type: str,
    color_channels: int = 1,
    center: tuple[int, int] | None = None,
    group_repeats: int = 1,
) -> torch.Tensor:
    """Build a causal mask of shape [out_channels, in_channels, k_h, k_w].

    Args:
        kernel_size: (k_h, k_w) or k for a square kernel.
        in_channels, out_channels: the convolution's channel counts.
        mask_type: "A" (the current pixel's own group is cut: first layer) or
            "B" (a group sees itself: every later layer).
        color_channels: C, the number of colour channels generated per pixel.
        center: the tap aligned with the output pixel; default the middle
            (k_h // 2, k_w // 2).
        group_repeats: the outputs are this many equal blocks, each grouped
            separately (2 for a gated layer's tanh / sigmoid halves).
    """
    if mask_type not in MASK_TYPES:
        raise ValueError(f"mask_type must be 'A' or 'B', got {mask_type!r}")
    k_h, k_w = (kernel_size, kernel_size) if isinstance(kernel_size, int) else kernel_size
    c_row, c_col = (k_h // 2, k_w // 2) if center is None else center
    if not (0 <= c_row < k_h and 0 <= c_col < k_w):
        raise ValueError(f"center {center} lies outside a {k_h}x{k_w} kernel")
    if out_channels % group_repeats:
        raise ValueError(f"{out_channels} outputs do not split into {group_repeats} equal blocks")

    mask = torch.zeros(out_channels, in_channels, k_h, k_w)
    # Rows above the centre and taps left of it in its row: strictly earlier pixels.
    mask[:, :, :c_row, :] = 1
    mask[:, :, c_row, :c_col] = 1

    in_group = channel_groups(in_channels, color_channels)  # [in]
    out_group = channel_groups(out_channels // group_repeats, color_channels)
    out_group = out_group.repeat(group_repeats)  # [out]
    if mask_type == "A":
        centre = out_group[:, None] > in_group[None, :]  # [out, in]
    else:
        centre = out_group[:, None] >= in_group[None, :]
    mask[:, :, c_row, c_col] = centre.float()
    return mask
