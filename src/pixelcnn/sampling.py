"""Generation: one pixel-channel at a time, in raster-then-R,G,B order.

``naive_generate`` is the reference: it runs the whole network once per
pixel-channel (H * W * C forward passes) and reads off the one conditional it
needs. It is exact for every model and is what faster samplers are tested
against. A sampler takes (model, x, start_row, h) where x [B, C, H, W] holds
the known rows above ``start_row`` and h is the encoded condition, and fills
every later row in place.
"""
from __future__ import annotations

import torch


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
                   progress: bool = False) -> torch.Tensor:
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
    bar.close()
    return x
