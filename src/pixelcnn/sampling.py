"""Generation: one pixel-channel at a time, in the model's generation order.

Two exact loops, for every model. Each takes (model, x, start_row, h): x
[B, C, H, W] holds the known rows above ``start_row`` and h is the encoded
condition; it draws the pixels ``model.generation_order(start_row)`` lists
(raster order for every model but the Multi-Scale PixelRNN, which draws its
subsampled grid first), in that order and, inside a pixel, channel by channel
(R, G, B). It fills x in place, returns it, and calls ``callback(row, col, x)``
after each pixel when given one (for animations). What value a pixel-channel
takes is the one thing a caller may change: ``choose(params [B, P], row, col,
channel) -> values [B]`` defaults to a draw from the model's head; lossless
coding (``coding/codec.py``) passes its entropy coder instead, so encoder, decoder
and sampler share one loop.

``naive_generate`` is the reference: the whole network runs once per
pixel-channel (H * W * C passes) and one conditional is read off each pass.

``cached_generate`` is the fast one (Ramachandran et al. 2017, "Fast
Generation for Convolutional Autoregressive Models": cache what later steps
read, compute only what the new value changes). The model's ``fast_cache``
holds the state; each model builds its own from its layers' cached twins
(``nn.conv.PointConv``, ``nn.gated.GatedLayerCache``, ``nn.lstm.RowLSTMCache``
...), so this module knows no model.
"""

from __future__ import annotations

import torch


def _draw_from_head(model, temperature: float, generator: torch.Generator | None):
    """The default ``choose``: sample each pixel-channel from the model's output distribution."""

    def choose(params: torch.Tensor, row: int, col: int, channel: int) -> torch.Tensor:
        return model.head.sample(params, temperature=temperature, generator=generator)

    return choose


def progress_bar(total: int, enabled: bool | str, desc: str):
    """A tqdm bar over ``total`` pixels when asked for (``enabled`` true; a string is the bar's own
    description, e.g. the coder's), else a no-op with the same interface."""
    if enabled:
        from tqdm.auto import tqdm

        return tqdm(total=total, desc=enabled if isinstance(enabled, str) else desc, unit="px")

    class _NoBar:
        def update(self, n=1):
            pass

        def close(self):
            pass

    return _NoBar()


@torch.no_grad()
def naive_generate(
    model,
    x: torch.Tensor,
    start_row: int,
    h: torch.Tensor | None,
    *,
    temperature: float = 1.0,
    generator: torch.Generator | None = None,
    progress: bool = False,
    callback=None,
    order: list[tuple[int, int]] | None = None,
    choose=None,
) -> torch.Tensor:
    """Draw the pixels of ``order`` (default ``model.generation_order(start_row)``) into x [B, C, H, W],
    one full forward pass per pixel-channel.

    The model provides ``_params(x, h)`` -> [B, C, P, H, W], ``head.sample``
    and ``image_shape``. ``order`` is for tests: an order that is not the
    model's draws from the wrong conditionals.
    """
    order = model.generation_order(start_row) if order is None else order
    choose = choose or _draw_from_head(model, temperature, generator)
    bar = progress_bar(len(order), progress, f"sampling {model.name} (naive)")
    for row, col in order:
        for channel in range(model.image_shape[0]):
            params = model._params(x, h)[:, channel, :, row, col]  # [B, P]
            x[:, channel, row, col] = choose(params, row, col, channel)
        bar.update(1)
        if callback is not None:
            callback(row, col, x)
    bar.close()
    return x


@torch.inference_mode()
def cached_generate(
    model,
    x: torch.Tensor,
    start_row: int,
    h: torch.Tensor | None,
    *,
    temperature: float = 1.0,
    generator: torch.Generator | None = None,
    progress: bool = False,
    callback=None,
    choose=None,
) -> torch.Tensor:
    """Draw the pixels of ``model.generation_order(start_row)`` into x [B, C, H, W] from the model's cache.

    ``model.fast_cache(model.scale_input(x), h, start_row)`` is an object with
    ``step(row, col, channel) -> params [B, P]`` (the channel's conditional,
    the channels and pixels before it being final), ``write_value(row, col,
    channel, scaled_value [B])`` and ``finish_row(row)``, called when the order
    leaves row ``row`` (in raster order: the row is complete).

    A step is a few dozen small torch calls, so what surrounds them counts:
    the loop runs under ``torch.inference_mode``, scales each drawn value by
    looking it up in ``model.scale_input`` of every level (computed once, so
    the same numbers as scaling it) and writes it into x through views
    prepared once.
    """
    order = model.generation_order(start_row)
    choose = choose or _draw_from_head(model, temperature, generator)
    scaled_x = model.scale_input(x)
    scaled_levels = model.scale_input(torch.arange(model.levels, device=x.device), scaled_x.dtype)  # [levels]
    cache = model.fast_cache(scaled_x, h, start_row)
    step, write_value, channels = cache.step, cache.write_value, range(model.image_shape[0])
    pixels = [[x[:, channel, row, col] for channel in channels] for row, col in order]  # [B] views of x
    bar = progress_bar(len(order), progress, f"sampling {model.name} (fast)")
    rows = [row for row, _ in order] + [None]
    for index, (row, col) in enumerate(order):
        pixel = pixels[index]
        for channel in channels:
            params = step(row, col, channel)  # [B, P]
            value = choose(params, row, col, channel)  # [B]
            pixel[channel].copy_(value)
            write_value(row, col, channel, torch.index_select(scaled_levels, 0, value))
        bar.update(1)
        if callback is not None:
            callback(row, col, x)
        if rows[index + 1] != row:
            cache.finish_row(row)
    bar.close()
    return x
