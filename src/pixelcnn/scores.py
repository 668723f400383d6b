"""Anomaly / out-of-distribution scores from an exact likelihood; higher means more anomalous.

    s = scores.anomaly_scores(model, x, background=background_model)
    s["nll"], s["bits_per_dim"], s["likelihood_ratio"], s["complexity"]      # each float64 [B]
    scores.nll(model, x, "marginal")            # a class-conditional model, class unknown: -log (1/K) sum_k p(x|k)
    scores.auroc(s_in["complexity"], s_out["complexity"])                    # 1.0: perfectly separated

Three scores per image:

- ``nll``: -log p(x) in nats (and ``bits_per_dim``). Raw likelihoods of deep
  generative models can rank some out-of-distribution sets *higher* than the
  training data (Nalisnick et al., "Do Deep Generative Models Know What They
  Don't Know?", ICLR 2019), so this score alone can fail.
- ``likelihood_ratio``: -log p(x) + log p_0(x) with p_0 a *background* model
  trained on perturbed inputs (``perturb``), which captures the population-level
  statistics that dominate the likelihood; the difference isolates the
  semantic part (Ren et al., "Likelihood Ratios for Out-of-Distribution
  Detection", NeurIPS 2019, eq. 5, negated so that higher is more anomalous).
- ``complexity``: -log2 p(x) - L(x), with L(x) the bits of a lossless PNG of x
  (Serra et al., "Input Complexity and Out-of-Distribution Detection with
  Likelihood-Based Generative Models", ICLR 2020, eq. 2: S(x) = -l_M(x) - L(x)).
"""

from __future__ import annotations

import io
import math

import numpy as np
import torch

LN2 = math.log(2)


def perturb(x: torch.Tensor, rate: float, levels: int, *, generator: torch.Generator | None = None) -> torch.Tensor:
    """Replace each pixel-channel of x [B, C, H, W] by a uniform random value with probability ``rate``.

    The input perturbation of Ren et al. 2019 (§3.1) that trains the background model.
    """
    if not 0 <= rate <= 1:
        raise ValueError(f"rate must be in [0, 1], got {rate}")
    device = generator.device if generator is not None else x.device
    replace = torch.rand(x.shape, generator=generator, device=device) < rate  # [B, C, H, W]
    noise = torch.randint(0, levels, x.shape, generator=generator, device=device)
    return torch.where(replace.to(x.device), noise.to(x.device, x.dtype), x)


def to_pil(image: np.ndarray, levels: int, *, one_bit: bool = True):
    """One image [C, H, W] with values 0..levels-1 -> a PIL image, for a lossless codec.

    Binary images become one bit per pixel (mode "1") when ``one_bit``; others
    8-bit grey / RGB with the levels spread over 0..255 (an injective map: nothing is lost).
    """
    from PIL import Image

    image = np.asarray(image)
    if levels == 2 and one_bit:
        return Image.fromarray(image[0].astype(bool))
    scaled = np.rint(image.astype(np.float64) * (255 / (levels - 1))).astype(np.uint8)
    return Image.fromarray(scaled[0], "L") if image.shape[0] == 1 else Image.fromarray(scaled.transpose(1, 2, 0))


def png_bits(x: torch.Tensor, levels: int) -> torch.Tensor:
    """L(x): bits of each image of x [B, C, H, W] as a PNG (Pillow, optimize=True; see ``to_pil``): float64 [B]."""
    bits = []
    for image in x.detach().to("cpu", torch.int64).numpy():  # [C, H, W]
        buffer = io.BytesIO()
        to_pil(image, levels).save(buffer, "PNG", optimize=True)
        bits.append(8 * len(buffer.getvalue()))
    return torch.tensor(bits, dtype=torch.float64)


# The lossless codecs pixelcnn's files are measured against (benchmarks/compression.py, ``pixelcnn app``):
# name -> (Pillow format, save options, whether a binary image is stored at one bit per pixel).
LOSSLESS_CODECS = {
    "png": ("PNG", dict(optimize=True), True),
    "webp": ("WEBP", dict(lossless=True, quality=100, method=6), False),
    "jxl": ("JXL", dict(lossless=True, effort=9), False),
}
CODEC_NAMES = {"png": "PNG", "webp": "WebP", "jxl": "JPEG-XL"}


def codec_available(codec: str) -> bool:
    """Whether Pillow can write ``codec`` here (JPEG-XL needs the ``pillow-jxl-plugin`` package)."""
    if codec == "jxl":
        try:
            import pillow_jxl  # noqa: F401  (registers the JXL format with Pillow)
        except ImportError:
            return False
    return codec in LOSSLESS_CODECS


def codec_bytes(images: np.ndarray, levels: int, codec: str) -> list[int]:
    """Bytes of each image [N, C, H, W] (values 0..levels-1) in its own lossless file of ``codec``
    (``LOSSLESS_CODECS``), each checked to decode exactly (a RuntimeError if not)."""
    from PIL import Image

    fmt, options, one_bit = LOSSLESS_CODECS[codec]
    sizes = []
    for image in np.asarray(images):
        pil = to_pil(image, levels, one_bit=one_bit)
        buffer = io.BytesIO()
        pil.save(buffer, fmt, **options)
        back = np.array(Image.open(io.BytesIO(buffer.getvalue())).convert(pil.mode))
        if not np.array_equal(back, np.array(pil)):
            raise RuntimeError(f"{codec} did not decode an image exactly")
        sizes.append(len(buffer.getvalue()))
    return sizes


MARGINAL = "marginal"


@torch.no_grad()
def nll(model, x: torch.Tensor, cond=None, *, batch_size: int = 256) -> torch.Tensor:
    """-log p(x | cond) in nats of each image of x [B, C, H, W], float64 [B], in batches, in eval mode.

    ``cond="marginal"`` (class-conditional models): -log p(x) with p(x) = (1/K) sum_k p(x | k),
    the likelihood of an image whose class is not known (uniform prior over the K classes).
    """
    if isinstance(cond, str):
        if cond != MARGINAL or getattr(model.config, "num_classes", None) is None:
            raise ValueError(f"cond={cond!r}: only 'marginal', and only for a class-conditional model")
    was_training = model.training
    model.eval()
    try:
        parts = []
        for start in range(0, x.shape[0], batch_size):
            part = x[start : start + batch_size]
            if isinstance(cond, str):
                classes = model.config.num_classes
                per_class = torch.stack(
                    [
                        model.log_prob(part, torch.full((len(part),), k, dtype=torch.long, device=part.device))
                        .double()
                        .cpu()
                        for k in range(classes)
                    ],
                    dim=1,
                )  # [b, K]
                parts.append(math.log(classes) - torch.logsumexp(per_class, dim=1))
            else:
                part_cond = None if cond is None else cond[start : start + batch_size]
                parts.append(-model.log_prob(part, part_cond).double().cpu())
        return torch.cat(parts) if parts else torch.zeros(0, dtype=torch.float64)  # [B] nats
    finally:
        model.train(was_training)


def anomaly_scores(
    model, x: torch.Tensor, cond=None, *, background=None, complexity: bool = True, batch_size: int = 256
) -> dict[str, torch.Tensor]:
    """Per-image scores of x [B, C, H, W] under ``model`` (higher: more anomalous), float64 [B] each.

    ``nll`` (nats) and ``bits_per_dim`` always; ``likelihood_ratio`` (nats) when a
    ``background`` model of the same images is given (it is scored without ``cond``
    unless it takes one); ``complexity`` (bits: NLL minus PNG bits) unless
    ``complexity=False``. ``cond="marginal"``: see ``nll``.
    """
    nats = nll(model, x, cond, batch_size=batch_size)
    scores = {"nll": nats, "bits_per_dim": nats / (LN2 * math.prod(model.image_shape))}
    if background is not None:
        if tuple(background.image_shape) != tuple(model.image_shape) or background.levels != model.levels:
            raise ValueError(
                f"the background model models {background.image_shape} with {background.levels} "
                f"levels; the model {model.image_shape} with {model.levels}"
            )
        background_cond = (
            cond
            if getattr(background.config, "num_classes", None) is not None
            or getattr(background.config, "cond_dim", None) is not None
            else None
        )
        scores["likelihood_ratio"] = nats - nll(background, x, background_cond, batch_size=batch_size)
    if complexity:
        scores["png_bits"] = png_bits(x, model.levels)
        scores["complexity"] = nats / LN2 - scores["png_bits"]
    return scores


UNLABELLED = -1  # a label that says "class not known" (a folder image without a labels.csv row)


def score_images(
    model,
    x: torch.Tensor,
    labels: torch.Tensor | None = None,
    *,
    background=None,
    complexity: bool = False,
    batch_size: int = 256,
) -> dict[str, torch.Tensor]:
    """The one scoring rule of ``pixelcnn score``, ``pixelcnn viz nll-map --folder`` and the app: per-image
    ``anomaly_scores`` of x [B, C, H, W] (float64 [B] each), every image under its condition.

    A class-conditional model scores an image under its label where ``labels`` [B] gives one (>= 0),
    and an image whose label is ``UNLABELLED`` (-1) or unknown (``labels=None``) under the marginal,
    -log (1/K) sum_k p(x | k): the likelihood of the image when its class is not known (a uniform
    prior over the K classes), never under a class picked for it. Other models ignore ``labels``.
    """
    conditional = getattr(model.config, "num_classes", None) is not None
    if not conditional or (labels is not None and bool((labels >= 0).all())):
        cond = labels.to(x.device) if conditional else None
        return anomaly_scores(model, x, cond, background=background, complexity=complexity, batch_size=batch_size)
    known = labels >= 0 if labels is not None else torch.zeros(len(x), dtype=torch.bool)
    merged = {}
    for mask, part_cond in ((known, None if labels is None else labels[known]), (~known, MARGINAL)):
        if mask.any():
            cond = part_cond.to(x.device) if isinstance(part_cond, torch.Tensor) else part_cond
            part = anomaly_scores(
                model, x[mask.to(x.device)], cond, background=background, complexity=complexity, batch_size=batch_size
            )
            for key, values in part.items():
                merged.setdefault(key, torch.zeros(len(x), dtype=torch.float64))[mask] = values
    return merged


SCORE_COLUMNS = {
    "nll": "nll_nats",
    "bits_per_dim": "bits_per_dim",
    "likelihood_ratio": "likelihood_ratio",
    "png_bits": "png_bits",
    "complexity": "complexity",
}


def score_rows(names: list[str], scores: dict[str, torch.Tensor], labels: torch.Tensor | None = None) -> list[dict]:
    """One row per image for a table: its name, the label it was scored under ("marginal" for an unlabelled
    image of a class-conditional model; no column for other models) and each score."""
    rows = []
    for k, name in enumerate(names):
        row = {"image": name}
        if labels is not None:
            row["label"] = int(labels[k]) if labels[k] >= 0 else MARGINAL
        row.update({column: float(scores[key][k]) for key, column in SCORE_COLUMNS.items() if key in scores})
        rows.append(row)
    return rows


def auroc(in_scores: torch.Tensor, out_scores: torch.Tensor) -> float:
    """Area under the ROC curve for telling out-of-distribution (positive) from in-distribution images.

    The probability that a random out-of-distribution image scores higher than a
    random in-distribution one, ties counting one half (the Mann-Whitney U statistic).
    """
    inside = np.asarray(in_scores, dtype=np.float64).ravel()
    outside = np.asarray(out_scores, dtype=np.float64).ravel()
    if inside.size == 0 or outside.size == 0:
        raise ValueError("auroc needs at least one in-distribution and one out-of-distribution score")
    both = np.concatenate([inside, outside])
    order = both.argsort(kind="mergesort")
    ranks = np.empty(both.size)
    ranks[order] = np.arange(1, both.size + 1)
    values = both[order]  # average the ranks of tied values
    starts = np.flatnonzero(np.r_[True, values[1:] != values[:-1]])
    ends = np.r_[starts[1:], values.size]
    for start, end in zip(starts, ends):
        if end - start > 1:
            ranks[order[start:end]] = (start + 1 + end) / 2
    rank_sum = ranks[inside.size :].sum()
    return float((rank_sum - outside.size * (outside.size + 1) / 2) / (inside.size * outside.size))
