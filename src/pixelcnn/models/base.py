"""The shared base class: exact log_prob, sample and complete, all from forward().

A model subclass defines only ``network(x, h)``: the scaled image [B, C, H, W]
(floats in [-1, 1]) and the encoded condition in, the head's raw outputs
[B, head.out_channels, H, W] out, with output (c, i, j) depending only on
pixel-channels before (c, i, j) in raster-then-R,G,B order. Everything else
(input checks, scaling, conditioning, likelihood, sampling) lives here, once.
"""

from __future__ import annotations

import dataclasses
import math
import os
from dataclasses import dataclass
from typing import Callable, ClassVar

import torch
from torch import nn

from ..fields import at_least, check_types, must, option, positive_int, raise_problems
from ..hardware import available_memory, choose_precision
from ..heads import check_head, make_head
from ..nn.conditioning import ConditionEncoder


@dataclass
class ModelConfig:
    """Fields every model shares; each model's dataclass adds its own sizes."""

    image_shape: tuple = option((1, 28, 28), "(C, H, W) of the images modelled")
    levels: int = option(256, "values per channel: 256 for 8-bit, 2 for binary images")
    num_classes: int | None = option(None, "condition on class labels 0..num_classes-1")
    cond_dim: int | None = option(None, "or condition on any vector of this size (e.g. an embedding)")
    spatial_cond: bool = option(False, "map the condition to an H x W map by m(h) (Conditional PixelCNN paper, §2.3)")
    spatial_channels: int = option(32, "channels of that map")
    head: str = option(
        "auto",
        "output distribution: auto (bernoulli for 2 levels, else categorical), categorical, "
        "bernoulli or logistic_mixture (PixelCNN++)",
    )
    n_mixtures: int = option(10, "components per channel of the logistic_mixture head")

    def __post_init__(self):
        check_types(self)
        if len(self.image_shape) != 3 or any(positive_int("image_shape", size) for size in self.image_shape):
            raise ValueError(must("image_shape", "(C, H, W) with positive integer sizes", self.image_shape))
        self.image_shape = tuple(self.image_shape)
        raise_problems(
            [
                at_least("levels", self.levels, 2),
                positive_int("num_classes", self.num_classes, optional=True),
                positive_int("cond_dim", self.cond_dim, optional=True),
            ]
        )
        check_head(self.head, int(self.levels), self.n_mixtures)
        if self.head != "logistic_mixture" and self.n_mixtures != ModelConfig.n_mixtures:
            raise ValueError(
                f"n_mixtures must be left at {ModelConfig.n_mixtures} unless head='logistic_mixture' "
                f"(got n_mixtures={self.n_mixtures} with head={self.head!r})"
            )

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def memory_bytes(device: torch.device | str = "cpu") -> int:
    """The memory of ``device``: the GPU's, or the machine's physical memory for the CPU (and anything else)."""
    device = torch.device(device)
    if device.type == "cuda" and torch.cuda.is_available():
        return torch.cuda.get_device_properties(device).total_memory
    try:
        return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):  # pragma: no cover - not a POSIX system
        return 2**40


# Working memory of a batch, per image: the widest layer's float32 maps [C_max, H, W] times these factors,
# measured on a CPU (peak RSS of log_prob and of fast sampling, over 5 models, divided by that size:
# 2.4 to 9 for a full forward pass, 2.4 for the cached step).
FORWARD_WORK = 10
CACHED_WORK = 3


def working_bytes_per_image(model, *, cached: bool = False) -> int:
    """About the memory one more image of a batch costs: a full forward pass (``log_prob``, the naive
    sampler) or the cached step (fast sampling, coding)."""
    channels, height, width = model.image_shape
    # Maps over the image come from convolutions (weights of 3 or 4 dims: out_channels first). A linear
    # layer's outputs (a condition's projection, the MSE auto-encoder's decoder input) are per image, not
    # per pixel: counting them as maps overestimated the MSE auto-encoder's forward pass 50-fold.
    widest = max([p.shape[0] for p in model.parameters() if p.dim() >= 3] + [channels])
    dense = max([p.shape[0] for p in model.parameters() if p.dim() == 2] + [0])
    images = channels * 8 * height * width  # the int64 images themselves
    return (CACHED_WORK if cached else FORWARD_WORK) * 4 * (widest * height * width + dense) + images


def check_batch_fits(model, batch: int, what: str, *, cached: bool = False) -> None:
    """Refuse, before allocating anything, a batch whose working memory (``working_bytes_per_image``)
    exceeds what this process may still allocate on the model's device: a huge n fails at once with
    the largest batch that fits, not in the allocator after minutes of swapping."""
    per_image = working_bytes_per_image(model, cached=cached)
    device = next(model.parameters()).device
    memory = available_memory(device)
    if batch * per_image <= memory:
        return
    needs = f"needs about {batch * per_image / 2**30:,.2f} GB, {memory / 2**30:,.2f} available on {device.type}"
    if per_image > memory:
        raise ValueError(
            f"{what} is too large ({needs}): even one image of {model.image_shape} does not fit; "
            f"this model's images are too large for this machine"
        )
    raise ValueError(f"{what} is too large ({needs}); use batches of at most {memory // per_image:,} images")


# The schedule of ``pixelcnn demo`` (the "gated-demo" preset), of pixelcnn-12x32-k5 and of the training curves
# in benchmarks/train_curves.py: a small batch and a high peak rate with warm-up, cosine decay and EMA weights
# reach the lowest NLL in a few CPU minutes. (TrainConfig fields; ``pixelcnn.train.config`` re-exports it.)
DEMO_SCHEDULE = dict(batch_size=16, lr=4e-3, warmup_steps=50, lr_decay="cosine", ema_decay=0.998, grad_clip=1.0)


@dataclass(frozen=True)
class Preset:
    """A named configuration: a model name plus the config fields that make it a given paper's model.

    Each model file ends with its family's ``PRESETS``; ``registry.presets`` gathers them.
    """

    model: str  # the model's name (registry.model_class(model) builds it)
    config: dict = dataclasses.field(default_factory=dict)
    description: str = ""  # which paper and table, or "ours" and why
    any_data: bool = False  # sizes for any data set: training may change its levels too
    schedule: dict = dataclasses.field(default_factory=dict)  # TrainConfig fields: the defaults of a training run of it


@torch.compiler.disable
def _value_range(x: torch.Tensor) -> tuple[int, int]:
    """(min, max) of x as Python ints (a data-dependent check, not math: never inside a compiled graph)."""
    return int(x.min()), int(x.max())


def _describe(t) -> str:
    if isinstance(t, torch.Tensor):
        return f"a {t.dtype} tensor of shape {list(t.shape)}"
    return f"{type(t).__name__} {t!r}" if isinstance(t, (int, float)) else type(t).__name__


class AutoregressiveModel(nn.Module):
    """Base of every model: p(x | h) = prod over pixel-channels in raster-then-R,G,B order.

    Subclasses set ``name`` and ``config_class`` and implement ``network``.
    """

    name: ClassVar[str] = ""
    config_class: ClassVar[type] = ModelConfig
    loss_name: ClassVar[str] = "nll"  # what ``loss`` returns: the negative log-likelihood in nats per image

    def __init__(self, config: ModelConfig):
        super().__init__()
        self.config = config
        self.image_shape = tuple(config.image_shape)
        self.levels = int(config.levels)
        channels = self.image_shape[0]
        self.head = make_head(channels, self.levels, config.head, n_mixtures=config.n_mixtures)
        self.condition = self.build_condition_encoder(config)

    def build_condition_encoder(self, config: ModelConfig) -> ConditionEncoder:
        """What turns the user's ``cond`` into what the layers read (Conditional PixelCNN paper, §2.3)."""
        return ConditionEncoder(
            num_classes=config.num_classes,
            cond_dim=config.cond_dim,
            spatial=config.spatial_cond,
            image_size=tuple(config.image_shape[1:]),
            spatial_channels=config.spatial_channels,
        )

    # ----------------------------------------------------------------- network
    def network(self, x: torch.Tensor, h: torch.Tensor | None) -> torch.Tensor:
        """Scaled image [B, C, H, W] and encoded condition -> raw outputs [B, head.out_channels, H, W]."""
        raise NotImplementedError

    @property
    def cond_channels(self) -> int:
        """Channels of the encoded condition that layers read (0: unconditional)."""
        return self.condition.out_channels if self.condition.is_conditional else 0

    def scale_input(self, x: torch.Tensor, dtype: torch.dtype | None = None) -> torch.Tensor:
        """Integers 0..levels-1 -> floats in [-1, 1], in ``dtype`` (default: the parameters' dtype).

        The cached sampler passes the dtype it looked up once: finding the parameters' dtype costs
        more than the scaling itself when it is done once per pixel-channel."""
        dtype = dtype or next(self.parameters()).dtype
        return x.to(dtype) * (2.0 / (self.levels - 1)) - 1.0

    def encode_condition(self, cond: torch.Tensor | None) -> torch.Tensor | None:
        """A checked ``cond`` -> what the layers read ([B, D] or [B, S, H, W])."""
        return self.condition(cond, dtype=next(self.parameters()).dtype)

    def forward(self, x: torch.Tensor, cond: torch.Tensor | None = None) -> torch.Tensor:
        """The output distribution's parameters for every pixel-channel.

        Returns logits [B, C, levels, H, W] (categorical), [B, C, 1, H, W]
        (Bernoulli) or [B, C, 3K, H, W] (logistic mixture: K logits, means and
        log scales per channel; ``heads.LogisticMixtureHead``); entry (c, i, j)
        is computed from the pixel-channels before (c, i, j) only.
        """
        x = self.check_images(x)
        cond = self.check_cond(cond, x.shape[0])
        return self._params(x, self.condition_for(x, cond))

    def condition_for(self, x: torch.Tensor, cond: torch.Tensor | None) -> torch.Tensor | None:
        """The encoded condition for scoring images x under a checked ``cond``.

        The condition never depends on x here; the PixelCNN auto-encoder
        overrides this to encode x itself when no code is given.
        """
        return self.encode_condition(cond)

    def _params(self, x: torch.Tensor, h: torch.Tensor | None) -> torch.Tensor:
        return self.head.params(self.network(self.scale_input(x), h))

    # -------------------------------------------------------------- likelihood
    def log_prob(self, x: torch.Tensor, cond: torch.Tensor | None = None) -> torch.Tensor:
        """Exact log p(x | cond) in nats, one value per image: [B]."""
        x = self.check_images(x)
        cond = self.check_cond(cond, x.shape[0])
        params = self._params(x, self.condition_for(x, cond))
        with torch.autocast(params.device.type, enabled=False):  # the network may run in bf16; the head never
            return self.head.log_prob(params, x).flatten(1).sum(1)

    def loss(self, x: torch.Tensor, cond: torch.Tensor | None = None) -> torch.Tensor:
        """What training minimizes and evaluation reports, per image [B]: -log p(x | cond) in nats."""
        return -self.log_prob(x, cond)

    # ---------------------------------------------------------------- sampling
    def sampling_methods(self) -> dict[str, Callable]:
        """Exact samplers by name: ``"naive"`` always, ``"fast"`` where the model has a ``fast_cache``."""
        from ..sampling import cached_generate, naive_generate

        methods = {"naive": naive_generate}
        if type(self).fast_cache is not AutoregressiveModel.fast_cache:
            methods["fast"] = cached_generate
        return methods

    def fast_cache(self, x: torch.Tensor, h: torch.Tensor | None, start_row: int):
        """The state of cached generation (``sampling.cached_generate``); None: the model has none.

        x is the scaled image [B, C, H, W] whose rows above ``start_row`` are known.
        """
        return None

    def generation_order(self, start_row: int) -> list[tuple[int, int]]:
        """The pixels (row, col) that sampling draws, in order: rows ``start_row``.. in raster order."""
        height, width = self.image_shape[1:]
        return [(row, col) for row in range(start_row, height) for col in range(width)]

    @torch.no_grad()
    def sample(
        self,
        n: int,
        cond: torch.Tensor | int | None = None,
        *,
        temperature: float = 1.0,
        generator: torch.Generator | None = None,
        method: str = "auto",
        progress: bool = False,
        callback: Callable | None = None,
        precision: str = "fp32",
    ) -> torch.Tensor:
        """Draw ``n`` images, one pixel-channel at a time: int64 [n, C, H, W].

        Args:
            n: number of images.
            cond: class labels [n] (an int gives all n the same class), or
                vectors [n, cond_dim] ([cond_dim] is repeated), as the model was built.
            temperature: divides the logits; 1.0 samples the model exactly.
            generator: a ``torch.Generator`` for reproducible draws.
            method: "naive" (one forward pass per pixel-channel), "fast"
                (cached incremental generation, where the model has it) or
                "auto" (the fastest exact method available).
            progress: show a progress bar.
            callback: called as ``callback(row, col, x)`` after each pixel is
                drawn, x being the batch so far (for animations).
            precision: what the network runs in: "fp32", "bf16", "fp16" or
                "auto" (``pixelcnn.hardware``); the head draws in float64.
        """
        if not isinstance(n, int) or isinstance(n, bool) or n < 1:
            raise ValueError(f"n must be a positive integer, got {_describe(n)}")
        cached = method in ("auto", "fast") and "fast" in self.sampling_methods()
        check_batch_fits(self, n, what=f"n={n} images", cached=cached)
        cond = self.check_cond(self._broadcast_cond(cond, n), n)
        x = torch.zeros((n, *self.image_shape), dtype=torch.long, device=self._device())
        return self._generate(x, 0, cond, temperature, generator, method, progress, callback, precision)

    @torch.no_grad()
    def complete(
        self,
        x: torch.Tensor,
        known_rows: int,
        cond: torch.Tensor | int | None = None,
        *,
        temperature: float = 1.0,
        generator: torch.Generator | None = None,
        method: str = "auto",
        progress: bool = False,
        callback: Callable | None = None,
        precision: str = "fp32",
    ) -> torch.Tensor:
        """Keep the top ``known_rows`` rows of ``x`` and sample the rest: int64 [B, C, H, W]."""
        x = self.check_images(x)
        height = self.image_shape[1]
        if not isinstance(known_rows, int) or not 0 <= known_rows <= height:
            raise ValueError(f"known_rows must be an integer in 0..{height}, got {_describe(known_rows)}")
        cond = self.check_cond(self._broadcast_cond(cond, x.shape[0]), x.shape[0])
        x = x.clone().long()
        x[:, :, known_rows:] = 0  # never read before being sampled; zeroed so nothing depends on it
        return self._generate(x, known_rows, cond, temperature, generator, method, progress, callback, precision)

    def _generate(
        self, x, start_row, cond, temperature, generator, method, progress, callback=None, precision: str = "fp32"
    ):
        if not isinstance(temperature, (int, float)) or not temperature > 0 or math.isinf(temperature):
            raise ValueError(f"temperature must be a positive number, got {_describe(temperature)}")
        if generator is not None and not isinstance(generator, torch.Generator):
            raise ValueError(f"generator must be a torch.Generator, got {_describe(generator)}")
        methods = self.sampling_methods()
        if method == "auto":
            method = "fast" if "fast" in methods else "naive"
        if method not in methods:
            raise ValueError(
                f"unknown sampling method {method!r} for {self.name}; available: {', '.join(['auto', *methods])}"
            )
        autocast = choose_precision(precision, self._device(), cached_sampler=method == "fast").autocast
        was_training = self.training
        self.eval()
        try:
            with autocast():
                return methods[method](
                    self,
                    x,
                    start_row,
                    self.encode_condition(cond),
                    temperature=float(temperature),
                    generator=generator,
                    progress=progress,
                    callback=callback,
                )
        finally:
            self.train(was_training)

    # ------------------------------------------------------------ input checks
    def _device(self) -> torch.device:
        return next(self.parameters()).device

    def check_images(self, x) -> torch.Tensor:
        """Return ``x`` as a tensor on the model's device, or raise ValueError saying what is wrong."""
        channels, height, width = self.image_shape
        expected = (
            f"an integer tensor [B, {channels}, {height}, {width}] with values in 0..{self.levels - 1} (uint8 or int64)"
        )
        if not isinstance(x, torch.Tensor):
            try:
                import numpy as np

                if isinstance(x, np.ndarray):
                    x = torch.from_numpy(x)
            except ImportError:  # pragma: no cover - numpy is a dependency
                pass
        if not isinstance(x, torch.Tensor):
            raise ValueError(f"expected {expected}, got {_describe(x)}")
        if x.dtype.is_floating_point or x.dtype.is_complex:
            raise ValueError(
                f"expected {expected}, got {_describe(x)}; images are integers "
                f"(e.g. for floats in [0, 1]: (x * {self.levels - 1}).round().long())"
            )
        if x.dim() == 3 and tuple(x.shape) == self.image_shape:
            raise ValueError(f"expected {expected}, got {_describe(x)}; add the batch dimension: x.unsqueeze(0)")
        if x.dim() != 4 or tuple(x.shape[1:]) != self.image_shape or x.shape[0] == 0:
            raise ValueError(f"expected {expected}, got {_describe(x)}")
        if x.dtype == torch.bool:
            x = x.long()
        # Inside a torch.compile graph (the training loop's compiled loss) the data-dependent checks are
        # skipped: their Python ints would make the compiler specialise, and recompile, on every batch's
        # (min, max); the loop's images come from a data set already checked, and eager calls check.
        if not torch.compiler.is_compiling():
            check_batch_fits(self, x.shape[0], what=f"a batch of {x.shape[0]} images")
            low, high = _value_range(x)
            if low < 0 or high > self.levels - 1:
                raise ValueError(f"expected {expected}, got values in {low}..{high}")
        return x.to(self._device())

    def _broadcast_cond(self, cond, n: int):
        """Let one class index or one vector stand for the whole batch."""
        if cond is None:
            return None
        if self.config.num_classes is not None:
            if isinstance(cond, int) and not isinstance(cond, bool):
                if not 0 <= cond < self.config.num_classes:  # before torch.full, which overflows on 2**63
                    raise ValueError(f"expected cond = a class label in 0..{self.config.num_classes - 1}, got {cond}")
                return torch.full((n,), cond, dtype=torch.long)
            if isinstance(cond, torch.Tensor) and cond.dim() == 0:
                return cond.expand(n)
        elif self.config.cond_dim is not None and isinstance(cond, torch.Tensor) and cond.dim() == 1:
            return cond.unsqueeze(0).expand(n, -1)
        return cond

    def check_cond(self, cond, batch: int) -> torch.Tensor | None:
        """Return ``cond`` on the model's device, or raise ValueError saying what was expected."""
        num_classes, cond_dim = self.config.num_classes, self.config.cond_dim
        if num_classes is None and cond_dim is None:
            if cond is not None:
                raise ValueError(f"this {self.name} model is unconditional; got cond={_describe(cond)}, expected None")
            return None
        if num_classes is not None:
            expected = f"class labels: an integer tensor [{batch}] with values in 0..{num_classes - 1}"
            if cond is None:
                raise ValueError(f"this model was built with num_classes={num_classes}: pass cond=({expected})")
            if not isinstance(cond, torch.Tensor) or cond.dtype.is_floating_point or cond.dtype == torch.bool:
                raise ValueError(f"expected cond = {expected}, got {_describe(cond)}")
            if tuple(cond.shape) != (batch,):
                raise ValueError(f"expected cond = {expected}, got {_describe(cond)}")
            if not torch.compiler.is_compiling():  # data-dependent: see check_images
                low, high = _value_range(cond)
                if low < 0 or high >= num_classes:
                    raise ValueError(f"expected cond = {expected}, got class indices in {low}..{high}")
            return cond.long().to(self._device())
        expected = f"a float tensor [{batch}, {cond_dim}]"
        if cond is None:
            raise ValueError(f"this model was built with cond_dim={cond_dim}: pass cond=({expected})")
        if not isinstance(cond, torch.Tensor) or not cond.dtype.is_floating_point:
            raise ValueError(f"expected cond = {expected}, got {_describe(cond)}")
        if tuple(cond.shape) != (batch, cond_dim):
            raise ValueError(f"expected cond = {expected}, got {_describe(cond)}")
        if not torch.compiler.is_compiling() and not torch.isfinite(cond).all():
            raise ValueError("cond contains NaN or infinite values")
        return cond.to(self._device())

    def extra_repr(self) -> str:
        return f"image_shape={self.image_shape}, levels={self.levels}"
