"""Embedding conditioning on a learned identity space ([1] Section 3.2: new portraits of an unseen person).

The paper conditions a PixelCNN on the embedding of a portrait by a face
network trained with a triplet loss on many identities, and then draws new
portraits of a person that no network saw in training (its Figure 4), and
decodes points on the line between two embeddings (its Figure 5). Here the
identities are fonts (``pixelcnn.data`` ``glyphs``: each font file an
identity, its 62 glyphs the views, whole font families held out), or the
classes of any labelled data set, e.g. a ``folder:PATH`` of faces with one
sub-folder per person:

1. an embedding network is trained with a triplet loss on the training
   identities only (``train_classes``; default: the identities of the train
   split, which for ``glyphs`` excludes the held-out fonts);
2. a conditional Gated PixelCNN is trained on (image, code) pairs of those
   identities, its code the embedding of the image's identity: the mean of
   the embeddings of ``identity_images`` *other* images of the same identity,
   back on the unit sphere (so the code says which font, not which
   character); ``identity_images=0`` conditions on the image's own
   embedding instead, an auto-encoder;
3. for each unseen identity, the code from a few of its images, then new
   images drawn from it (``identity_code``, ``draw_identities``);
4. a judge, an identity classifier trained on real images of *every*
   identity (held-out ones included; its own split of their images) that
   never sees a generated image, says how many of the new images belong to
   the unseen identity whose code drew them, against chance (1 / the number
   of unseen identities); a control draws from a *wrong* identity's code.

A PixelCNN conditioned on a frozen embedding is a PixelCNN auto-encoder
(``pixelcnn_ae``) whose encoder is the embedding network, frozen, with codes
on the unit sphere (``freeze_encoder=True``, ``normalize_code=True``). So the
pipeline builds that model, trains its encoder with the triplet loss, freezes
it, and trains the decoder on the exact NLL given the codes. The result is an
ordinary saved model: ``model.encode(x)`` is the embedding, and
``model.sample(n, cond=code)`` draws from a code.

    from pixelcnn.embedding import IdentityConfig, train_identity
    result = train_identity(IdentityConfig(data="glyphs", decoder_minutes=10), "runs/glyphs")
    model = pixelcnn.load("runs/glyphs/model")
    code = identity_code(model, four_glyphs_of_a_font)        # [D]
    new = model.sample(8, cond=code)                          # 8 new glyphs of that font

Triplet loss, "batch all" (Hermans et al. 2017 [2]): a batch holds K images
of each of P identities; every (anchor, positive, negative) in it with
positive of the anchor's identity and negative of another contributes
max(0, |a - p|^2 - |a - n|^2 + margin), averaged over the triplets that are
still active (loss > 0).

NOTE: unlike the paper (faces; a network trained on thousands of identities),
the fonts on one machine are about a hundred identities in thirty families,
28 x 28 and binarized. How much identity survives is measured, not assumed.

The stages use a plain loop (``fit``: Adam, cosine decay, gradient
clipping), not ``pixelcnn train``: the identity data is a subset of classes
and the decoder starts from a trained, frozen encoder, which the ordinary
loop does not do.

[1] A. van den Oord et al. Conditional Image Generation with PixelCNN Decoders.
    NIPS 2016. arXiv:1606.05328.
[2] A. Hermans, L. Beyer, B. Leibe. In Defense of the Triplet Loss for Person
    Re-Identification. arXiv:1703.07737.
"""
from __future__ import annotations

import contextlib
import json
import math
import re
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

import torch
import torch.nn.functional as F

from .hardware import PRECISIONS, Precision, choose_precision

IDENTITY_FILE = "identity.json"     # RUN/identity.json: the pipeline's config and measurements
MODEL_DIR = "model"                 # RUN/model: the pixelcnn_ae, loadable with pixelcnn.load


@dataclass
class IdentityConfig:
    # --- data
    data: str = "glyphs"                    # a labelled data set (pixelcnn.data.list_datasets())
    binarize: str | None = "threshold"      # binarization, as in pixelcnn.data.load
    train_classes: tuple | None = None      # the identities both networks see (None: those of the train split)
    image_size: int | None = None           # folder:PATH only: resize and centre-crop every image to N x N
    # --- the embedding network (the pixelcnn_ae's encoder)
    embedding_dim: int = 16                 # size of the embedding, a point on the unit sphere
    encoder_channels: int = 32              # e: the encoder's convolutions have e, 2e, 2e maps
    margin: float = 0.2                     # triplet margin on squared distances (which lie in 0..4)
    triplet_steps: int = 600                # optimizer steps of the triplet stage
    classes_per_batch: int = 16             # P: identities in a triplet batch (all of them when fewer)
    per_class: int = 8                      # K: images of each of those identities in a triplet batch
    triplet_lr: float = 1e-3                # Adam's learning rate, triplet stage
    # --- the conditional PixelCNN (the pixelcnn_ae's decoder)
    identity_images: int = 4                # its code: the mean embedding of this many other images of the
                                            # identity (0: the image's own embedding, an auto-encoder)
    n_layers: int = 5                       # gated layers
    hidden: int = 32                        # p: gated maps per layer
    kernel_size: int = 3                    # k: the PixelCNN's filter size after its first layer (5 sees
                                            # twice as many rows above per layer: a glyph's whole height)
    precision: str = "auto"                 # the PixelCNN stage's autocast (pixelcnn.hardware.choose_precision:
                                            # bf16 where the CPU or GPU has bf16 units, else float32)
    decoder_steps: int | None = None        # optimizer steps of the decoder stage (None: by minutes only)
    decoder_minutes: float | None = 5.0     # minutes of decoder training (None: by steps only)
    batch_size: int = 32                    # images per decoder step
    lr: float = 2e-3                        # Adam's peak learning rate, decoder stage (cosine decay to 0)
    # --- the judge (an identity classifier of real images, every identity) and what it judges
    judge_steps: int = 1500                 # its optimizer steps (0: no judge)
    judge_samples: int = 8                  # new images per unseen identity it judges (and as many for the control)
    seed: int = 0                           # initialisation, batches, binarization draws and samples

    def __post_init__(self):
        if self.train_classes is not None:
            self.train_classes = tuple(int(c) for c in self.train_classes)
            if len(self.train_classes) < 2 or len(set(self.train_classes)) != len(self.train_classes):
                raise ValueError(f"train_classes must be at least 2 distinct classes (a triplet needs a negative), "
                                 f"got {self.train_classes}")
        for name in ("embedding_dim", "encoder_channels", "triplet_steps", "classes_per_batch", "per_class",
                     "n_layers", "hidden", "kernel_size", "batch_size", "judge_samples"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"{name} must be a positive integer, got {getattr(self, name)}")
        for name in ("identity_images", "judge_steps"):
            if int(getattr(self, name)) < 0:
                raise ValueError(f"{name} must be an integer >= 0, got {getattr(self, name)}")
        if self.per_class < 2:
            raise ValueError(f"per_class must be >= 2 (an anchor needs a positive), got {self.per_class}")
        if self.classes_per_batch < 2:
            raise ValueError(f"classes_per_batch must be >= 2 (a triplet needs a negative), "
                             f"got {self.classes_per_batch}")
        if self.precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}, got {self.precision!r}")
        if self.decoder_steps is None and self.decoder_minutes is None:
            raise ValueError("say when the decoder stage stops: decoder_steps, decoder_minutes or both")
        for name in ("decoder_steps", "decoder_minutes"):
            value = getattr(self, name)
            if value is not None and not value > 0:
                raise ValueError(f"{name} must be positive or None, got {value}")
        for name in ("margin", "triplet_lr", "lr"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} must be positive, got {getattr(self, name)}")


# ------------------------------------------------------------------------------------ data
def parse_classes(text: str) -> tuple[int, ...]:
    """``"0-6"`` or ``"7,8,9"`` (or a mix, ``"0-3,5"``) -> (0, 1, ..., 6)."""
    classes = []
    for part in str(text).replace(" ", "").split(","):
        match = re.fullmatch(r"(\d+)(?:-(\d+))?", part)
        if match is None or (match.group(2) is not None and int(match.group(2)) < int(match.group(1))):
            raise ValueError(f"classes are written like 0-6 or 7,8,9 (non-negative, ranges low-high); got {text!r}")
        classes.extend(range(int(match.group(1)), int(match.group(2) or match.group(1)) + 1))
    return tuple(sorted(set(classes)))


def class_subset(dataset, classes):
    """The images of ``dataset`` whose label is in ``classes``: a new ImageDataset (same binarization)."""
    from .data import ImageDataset

    if dataset.num_classes is None:
        raise ValueError(f"{dataset.name} has no labels: it has no classes to choose from")
    unknown = sorted(set(classes) - set(range(dataset.num_classes)))
    if unknown:
        raise ValueError(f"{dataset.name} has classes 0..{dataset.num_classes - 1}; got {unknown}")
    keep = torch.isin(dataset.labels, torch.tensor(list(classes)))
    return ImageDataset(dataset.images[keep], dataset.labels[keep], name=dataset.name, split=dataset.split,
                        levels=dataset.levels, num_classes=dataset.num_classes, binarize=dataset.binarize,
                        class_names=dataset.class_names, description=dataset.description, extra=dataset.extra)


# ------------------------------------------------------------------------------------ training
def triplet_loss(embeddings: torch.Tensor, labels: torch.Tensor, margin: float) -> tuple[torch.Tensor, float]:
    """"Batch all" triplet loss of embeddings [N, D] with labels [N]: (mean over active triplets, active fraction)."""
    distances = torch.cdist(embeddings, embeddings).pow(2)                    # [N, N]
    same = labels[:, None] == labels[None, :]                                  # [N, N]
    positive = same & ~torch.eye(len(labels), dtype=torch.bool, device=labels.device)
    valid = positive[:, :, None] & ~same[:, None, :]                           # [anchor, positive, negative]
    hinge = F.relu(distances[:, :, None] - distances[:, None, :] + margin)[valid]
    active = hinge > 0
    loss = hinge[active].mean() if active.any() else hinge.sum()              # 0, still attached to the graph
    return loss, float(active.float().mean()) if hinge.numel() else 0.0


def fit(parameters, batch_loss: Callable[[int], torch.Tensor], *, lr: float, steps: int | None = None,
        max_minutes: float | None = None, log: Callable[[str], None] | None = None, what: str = "loss",
        log_every: int = 50, progress: bool = False, precision: Precision | None = None) -> dict:
    """Minimize ``batch_loss(step)`` with Adam, cosine decay to 0 over the budget, gradients clipped to norm 1.

    Stops after ``steps`` steps or ``max_minutes`` minutes, whichever comes
    first. Returns {"steps", "minutes", "last_loss"} (last_loss: the mean of
    the last ``log_every`` steps). ``progress``: a tqdm bar on stderr, in
    percent of the budget, with the time left. ``precision``: the autocast
    ``batch_loss`` runs under (float16 with gradient scaling); None: float32.
    """
    import sys

    from tqdm.auto import tqdm

    if steps is None and max_minutes is None:
        raise ValueError("fit needs a budget: steps, max_minutes or both")
    parameters = [p for p in parameters if p.requires_grad]
    optimizer = torch.optim.Adam(parameters, lr=lr)
    autocast = precision.autocast if precision is not None else contextlib.nullcontext
    scaler = torch.amp.GradScaler(enabled=precision is not None and precision.grad_scaling)
    bar = tqdm(total=100, desc=what, unit="%", disable=not progress, file=sys.stderr, dynamic_ncols=True,
               bar_format="{desc}: {percentage:3.0f}%|{bar}| {elapsed}<{remaining}{postfix}")
    started, step, recent = time.perf_counter(), 0, []
    while True:
        elapsed = time.perf_counter() - started
        done = [step / steps] if steps else []
        done += [elapsed / (60 * max_minutes)] if max_minutes else []
        bar.update(min(100, int(100 * max(done))) - bar.n)
        if max(done) >= 1:
            break
        for group in optimizer.param_groups:
            group["lr"] = lr * 0.5 * (1 + math.cos(math.pi * max(done)))
        with autocast():
            loss = batch_loss(step)
        if not torch.isfinite(loss):
            raise FloatingPointError(f"the {what} became {float(loss)} at step {step + 1}; try a lower learning rate")
        optimizer.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        scaler.unscale_(optimizer)                       # clip the true gradients (a no-op when not scaling)
        torch.nn.utils.clip_grad_norm_(parameters, 1.0)
        scaler.step(optimizer)
        scaler.update()
        step += 1
        recent = (recent + [float(loss.detach())])[-log_every:]
        if step % log_every == 0:
            bar.set_postfix_str(f"step {step}, {what} {sum(recent) / len(recent):.4f}", refresh=False)
            if log is not None and not progress:
                log(f"  step {step}: {what} {sum(recent) / len(recent):.4f} ({elapsed / 60:.1f} min)")
    bar.close()
    return {"steps": step, "minutes": (time.perf_counter() - started) / 60,
            "last_loss": sum(recent) / len(recent) if recent else float("nan")}


def train_triplet_encoder(model, train_set, config: IdentityConfig, *, classes=None, log=None,
                          progress: bool = False) -> dict:
    """Train ``model.encoder`` (a pixelcnn_ae's) with the triplet loss on ``train_set``, then freeze it.

    ``classes``: the identities to train on (default ``config.train_classes``).
    Each step draws ``config.classes_per_batch`` of them (all when fewer) and
    ``config.per_class`` images of each.
    """
    classes = tuple(config.train_classes if classes is None else classes)
    generator = torch.Generator().manual_seed(config.seed)
    by_class = [torch.nonzero(train_set.labels == c).flatten() for c in classes]
    for c, members in zip(classes, by_class):
        if len(members) < 2:
            raise ValueError(f"class {c} has {len(members)} training image(s) in {train_set.name}; "
                             f"a triplet needs at least 2")
    active_fraction = []

    def batch_loss(step: int) -> torch.Tensor:
        chosen = by_class
        if len(by_class) > config.classes_per_batch:
            chosen = [by_class[i] for i in torch.randperm(len(by_class), generator=generator)[:config.classes_per_batch]]
        index = torch.cat([members[torch.randint(len(members), (config.per_class,), generator=generator)]
                           for members in chosen])                                       # [P*K]
        images = train_set.prepare_batch(train_set.images[index], generator)
        loss, active = triplet_loss(model.encode(images), train_set.labels[index].to(model._device()),
                                    config.margin)
        active_fraction.append(active)
        return loss

    model.encoder.requires_grad_(True)
    model.train()
    try:
        stats = fit(model.encoder.parameters(), batch_loss, lr=config.triplet_lr, steps=config.triplet_steps,
                    log=log, what="triplet loss", progress=progress)
    finally:
        model.encoder.requires_grad_(False)
    tail = active_fraction[-50:]
    return {**stats, "active_triplets": sum(tail) / max(1, len(tail))}


def identity_codes(embeddings: torch.Tensor, labels: torch.Tensor, index: torch.Tensor, k: int,
                   generator: torch.Generator | None = None) -> torch.Tensor:
    """The code of each image ``index`` [B] from its identity: [B, D].

    The mean of the embeddings [N, D] of ``k`` other images of the same label
    (drawn with replacement; never the image itself), back on the unit
    sphere. An identity with one image gives that image's own embedding.
    """
    codes = []
    for i in index.tolist():
        others = torch.nonzero(labels == labels[i]).flatten()
        others = others[others != i]
        if len(others) == 0:
            others = torch.tensor([i])
        picked = others[torch.randint(len(others), (k,), generator=generator)]            # [k]
        codes.append(embeddings[picked].mean(0))
    return F.normalize(torch.stack(codes), dim=1)                                          # [B, D]


def train_decoder(model, train_set, config: IdentityConfig, *, log=None, progress: bool = False) -> dict:
    """Train the decoder of ``model`` (its encoder frozen) on -log p(x | code) over ``train_set``.

    The code is x's identity code (``identity_codes`` of ``config.identity_images``
    other images), or with ``identity_images=0`` x's own embedding, encode(x).
    """
    generator = torch.Generator().manual_seed(config.seed + 1)
    embeddings = embed(model, train_set).to(model._device()) if config.identity_images else None     # [N, D]

    def batch_loss(step: int) -> torch.Tensor:
        index = torch.randint(len(train_set), (config.batch_size,), generator=generator)
        images = train_set.prepare_batch(train_set.images[index], generator)
        if embeddings is None:
            return -model.log_prob(images).mean()
        codes = identity_codes(embeddings, train_set.labels, index, config.identity_images, generator)
        return -model.log_prob(images, codes).mean()

    precision = choose_precision(config.precision, model._device())
    if log is not None:
        log(f"  {precision}")
    model.train()
    return fit(model.parameters(), batch_loss, lr=config.lr, steps=config.decoder_steps,
               max_minutes=config.decoder_minutes, log=log, what="NLL (nats)", progress=progress,
               precision=precision)


# ------------------------------------------------------------------------------------ measuring
@torch.no_grad()
def embed(model, dataset, *, batch_size: int = 500) -> torch.Tensor:
    """Embeddings of every image of ``dataset`` (one fixed binarization draw): [N, D]."""
    generator = torch.Generator().manual_seed(0)
    chunks = [model.encode(dataset.prepare_batch(dataset.images[i:i + batch_size], generator)).cpu()
              for i in range(0, len(dataset), batch_size)]
    return torch.cat(chunks)


def nearest_neighbour_accuracy(embeddings: torch.Tensor, labels: torch.Tensor) -> float:
    """Leave-one-out 1-nearest-neighbour accuracy: how well the embedding separates the classes present."""
    distances = torch.cdist(embeddings, embeddings)
    distances.fill_diagonal_(float("inf"))
    return float((labels[distances.argmin(1)] == labels).float().mean())


def class_centroids(embeddings: torch.Tensor, labels: torch.Tensor, classes) -> torch.Tensor:
    """The mean embedding of each class, back on the unit sphere: [len(classes), D]."""
    return F.normalize(torch.stack([embeddings[labels == c].mean(0) for c in classes]), dim=1)


@torch.no_grad()
def identity_agreement(model, samples: torch.Tensor, source_labels: torch.Tensor, centroids: torch.Tensor,
                       classes) -> dict:
    """Which class the embedding network assigns generated images to (nearest class centroid).

    samples [B, n, C, H, W] drawn from the embeddings of images with labels
    ``source_labels`` [B]. Returns the fraction whose nearest centroid is the
    source's class, and the count of each assigned class. (The embedding
    network is not a fair judge of the samples its own codes drew: see
    ``IdentityJudge``.)
    """
    flat = samples.flatten(0, 1)                                                 # [B*n, C, H, W]
    assigned = torch.tensor(classes)[torch.cdist(model.encode(flat).cpu(), centroids).argmin(1)]
    expected = source_labels.repeat_interleave(samples.shape[1])
    counts = {int(c): int((assigned == c).sum()) for c in classes}
    return {"agreement": float((assigned == expected).float().mean()), "assigned": counts}


@torch.no_grad()
def identity_code(model, images: torch.Tensor) -> torch.Tensor:
    """The code of one identity from a few of its images [k, C, H, W]: their mean embedding on the sphere, [D]."""
    return F.normalize(model.encode(images).mean(0), dim=0)


def source_images(datasets, identity: int, k: int) -> torch.Tensor:
    """``k`` images of ``identity``, spread evenly over its images in the first of ``datasets`` that has it.

    ``datasets``: one ImageDataset or several (e.g. the test split, then the
    train split). One fixed binarization draw.
    """
    datasets = datasets if isinstance(datasets, (list, tuple)) else [datasets]
    for dataset in datasets:
        members = torch.nonzero(dataset.labels == identity).flatten()
        if len(members):
            index = members[torch.linspace(0, len(members) - 1, min(k, len(members))).round().long()]
            return dataset.prepare_batch(dataset.images[index], torch.Generator().manual_seed(0))
    raise ValueError(f"{datasets[0].name} has no image of class {identity} "
                     f"(classes 0..{(datasets[0].num_classes or 0) - 1})")


@torch.no_grad()
def draw_identities(model, datasets, identities, *, sources: int, samples: int, codes_from=None,
                    seed: int = 0, **sample_kwargs) -> tuple[torch.Tensor, torch.Tensor]:
    """For each identity, ``sources`` of its images and ``samples`` new images drawn from their code.

    Fewer sources when an identity has fewer images (as many as every one
    has). ``codes_from``: draw row i from the code of identity ``codes_from[i]``
    instead (the wrong-identity control). Returns (source images [R, sources,
    C, H, W], new images int64 [R, samples, C, H, W]).
    """
    shown = [source_images(datasets, c, sources) for c in identities]
    sources = min(len(s) for s in shown)                 # an identity with fewer images: as many as all have
    shown = [source_images(datasets, c, sources) for c in identities]
    coding = shown if codes_from is None else [source_images(datasets, c, sources) for c in codes_from]
    codes = torch.stack([identity_code(model, images) for images in coding])                   # [R, D]
    drawn = model.sample(len(codes) * samples, codes.repeat_interleave(samples, 0),
                         generator=torch.Generator().manual_seed(seed), **sample_kwargs)
    return torch.stack(shown), drawn.view(len(codes), samples, *model.image_shape)


@torch.no_grad()
def interpolate_identities(model, datasets, identity_from: int, identity_to: int, *, sources: int, steps: int = 8,
                           rows: int = 1, seed: int = 0, **sample_kwargs) -> torch.Tensor:
    """[1] Figure 5 between two identities: ``rows`` lines of ``steps`` decodings, int64 [rows, steps, C, H, W].

    The ends are the codes of ``sources`` images of each identity; row r uses
    seed + r at every step, so a row varies only through the code.
    """
    code_from, code_to = (identity_code(model, source_images(datasets, c, sources))[None]
                          for c in (identity_from, identity_to))
    return torch.stack([model.decode_line(code_from, code_to, steps, seed=seed + r, **sample_kwargs)
                        for r in range(rows)])


# ------------------------------------------------------------------------------------ the judge
class IdentityJudge(torch.nn.Module):
    """An identity classifier of real images: three convolutions and a linear layer, logits over every identity.

    Input: integer images [B, C, H, W] with values 0..levels-1, read as
    intensities in [0, 1]. Trained by ``train_judge`` only on real images,
    never on generated ones, so it judges the generator from outside.
    """

    def __init__(self, image_shape, levels: int, num_classes: int, channels: int = 32):
        super().__init__()
        self.levels = levels
        c, h, w = image_shape
        self.features = torch.nn.Sequential(
            torch.nn.Conv2d(c, channels, 3, padding=1), torch.nn.ReLU(), torch.nn.MaxPool2d(2),
            torch.nn.Conv2d(channels, 2 * channels, 3, padding=1), torch.nn.ReLU(), torch.nn.MaxPool2d(2),
            torch.nn.Conv2d(2 * channels, 2 * channels, 3, padding=1), torch.nn.ReLU(),
        )
        self.classify = torch.nn.Linear(2 * channels * (h // 4) * (w // 4), num_classes)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        x = images.float() / (self.levels - 1)                                      # [B, C, H, W] in [0, 1]
        return self.classify(self.features(x).flatten(1))                           # [B, num_classes]

    @torch.no_grad()
    def assign(self, images: torch.Tensor, among) -> torch.Tensor:
        """The identity among ``among`` (class labels) with the highest logit, for each image: int64 [B]."""
        among = torch.as_tensor(list(among))
        self.eval()
        logits = torch.cat([self(images[i:i + 500]) for i in range(0, len(images), 500)])
        return among[logits[:, among].argmax(1)]


JUDGE_TEST_ONE_IN = 4      # the judge's own split: of each identity's images (seeded order), one in 4 is its test


def train_judge(datasets, config: IdentityConfig, *, log=None, progress: bool = False):
    """An ``IdentityJudge`` trained on real images of every identity in ``datasets`` (both splits).

    Its own split: per identity, every JUDGE_TEST_ONE_IN-th image of a seeded
    permutation is held back as its test. Returns (judge, its test images,
    their labels).
    """
    generator = torch.Generator().manual_seed(config.seed + 3)
    images = torch.cat([d.prepare_batch(d.images, torch.Generator().manual_seed(0)) for d in datasets])
    labels = torch.cat([d.labels for d in datasets])
    order = torch.randperm(len(labels), generator=generator)
    rank = torch.empty_like(order)
    for c in labels.unique():                       # each image's position among its identity's, in that order
        members = order[labels[order] == c]
        rank[members] = torch.arange(len(members))
    is_test = rank % JUDGE_TEST_ONE_IN == 0
    train_x, train_y = images[~is_test], labels[~is_test]
    torch.manual_seed(config.seed + 3)
    judge = IdentityJudge(images.shape[1:], datasets[0].levels, datasets[0].num_classes)

    def batch_loss(step: int) -> torch.Tensor:
        index = torch.randint(len(train_y), (128,), generator=generator)
        return F.cross_entropy(judge(train_x[index]), train_y[index])

    judge.train()
    stats = fit(judge.parameters(), batch_loss, lr=1e-3, steps=config.judge_steps, log=log,
                what="judge cross-entropy", progress=progress)
    judge.eval()
    return judge, images[is_test], labels[is_test], stats


def judged_fraction(assigned: torch.Tensor, expected: torch.Tensor) -> dict:
    """Fraction of ``assigned`` [R, n] equal to ``expected`` [R], with its standard error over the R rows.

    The rows (identities) are the independent units: images drawn from one
    identity's code are not independent of each other.
    """
    per_row = (assigned == expected[:, None]).double().mean(1)                       # [R]
    error = float(per_row.std() / math.sqrt(len(per_row))) if len(per_row) > 1 else float("nan")
    return {"fraction": float(per_row.mean()), "standard_error": error, "identities": len(per_row),
            "images": assigned.numel()}


def judge_identities(model, judge, test_set, unseen, config: IdentityConfig, judge_test=None, *,
                     sample_kwargs=None) -> dict:
    """The judge's figures: its accuracy on real held-out images, and on new images from held-out codes.

    For each unseen identity: ``config.judge_samples`` images drawn from the
    code of ``max(1, config.identity_images)`` of its test images; the
    fraction the judge (deciding among the unseen identities) assigns to that
    identity. Control: the same from a wrong identity's code (identity i
    drawn from the code of unseen identity i + 1, cyclically), scored against
    identity i.
    """
    unseen = list(unseen)
    sources, kwargs = max(1, config.identity_images), dict(sample_kwargs or {})
    figures = {"chance": 1 / len(unseen), "unseen_identities": len(unseen), "source_images": sources}
    if judge_test is not None:
        images, labels = judge_test
        held = torch.isin(labels, torch.tensor(unseen))
        figures["real_held_out_accuracy"] = float((judge.assign(images[held], unseen) == labels[held])
                                                  .double().mean())
        figures["real_held_out_images"] = int(held.sum())
    expected = torch.tensor(unseen)
    _, drawn = draw_identities(model, test_set, unseen, sources=sources, samples=config.judge_samples,
                               seed=config.seed + 2, **kwargs)                                   # [R, n, C, H, W]
    assigned = judge.assign(drawn.flatten(0, 1), unseen).view(len(unseen), -1)
    figures["generated"] = judged_fraction(assigned, expected)
    wrong = unseen[1:] + unseen[:1]
    _, drawn = draw_identities(model, test_set, unseen, sources=sources, samples=config.judge_samples,
                               codes_from=wrong, seed=config.seed + 2, **kwargs)
    assigned = judge.assign(drawn.flatten(0, 1), unseen).view(len(unseen), -1)
    figures["wrong_identity_control"] = judged_fraction(assigned, expected)
    figures["wrong_identity_control_to_code"] = judged_fraction(assigned, torch.tensor(wrong))
    return figures


# ------------------------------------------------------------------------------------ the pipeline
@dataclass
class IdentityResult:
    run_dir: Path
    model_path: Path
    measurements: dict = field(default_factory=dict)


def build_identity_model(config: IdentityConfig, image_shape, levels: int):
    """A pixelcnn_ae whose encoder is the (to be triplet-trained, then frozen) embedding network."""
    from .models.registry import build

    torch.manual_seed(config.seed)
    return build("pixelcnn_ae", image_shape=image_shape, levels=levels, bottleneck=config.embedding_dim,
                 encoder_channels=config.encoder_channels, n_layers=config.n_layers, hidden=config.hidden,
                 kernel_size=config.kernel_size, normalize_code=True, freeze_encoder=True)


def load_identity_data(config: dict, splits=("train", "test")) -> list:
    """The splits of an identity run's data set, from its config (as saved in RUN/identity.json)."""
    from . import data

    return [data.load(config["data"], split, binarize=config["binarize"], image_size=config.get("image_size"))
            for split in splits]


def identity_split(train_all, test_all, train_classes=None) -> tuple[tuple, tuple]:
    """(training identities, unseen identities): ``train_classes`` or the train split's, and the rest of the test split's."""
    if train_all.num_classes is None:
        raise ValueError(f"{train_all.name} has no labels: an identity experiment needs one label per identity "
                         f"(for folder:PATH, one sub-folder per identity)")
    seen = tuple(train_classes) if train_classes is not None else tuple(sorted(set(train_all.labels.tolist())))
    unseen = tuple(sorted(set(test_all.labels.tolist()) - set(seen)))
    return seen, unseen


@torch.no_grad()
def _nll_given_codes(model, dataset, config: IdentityConfig, max_images: int = 1000) -> float:
    """Mean -log p(x | code) in nats over the first ``max_images`` images; the code as in training."""
    generator = torch.Generator().manual_seed(config.seed + 4)
    embeddings = embed(model, dataset)
    index = torch.linspace(0, len(dataset) - 1, min(max_images, len(dataset))).round().long()   # spread over it
    total = 0.0
    for chunk in index.split(250):
        images = dataset.prepare_batch(dataset.images[chunk], torch.Generator().manual_seed(0))
        codes = (embeddings[chunk] if not config.identity_images else
                 identity_codes(embeddings, dataset.labels, chunk, config.identity_images, generator))
        total += float(-model.log_prob(images, codes.to(model._device())).sum())
    return total / len(index)


def train_identity(config: IdentityConfig, out: str | Path, *, device: str | torch.device = "cpu",
                   log: Callable[[str], None] | None = print, progress: bool = False) -> IdentityResult:
    """The stages on the training identities, then the judge; writes RUN/model and RUN/identity.json.

    See the module docstring. ``progress``: a progress bar (with the time
    left) for each stage instead of log lines.
    """
    from .serialization import save

    say = log or (lambda message: None)
    out = Path(out)
    if (out / IDENTITY_FILE).exists():
        raise ValueError(f"{out} already holds an identity run; choose another output folder "
                         f"(finished_identity reuses a run of the same config)")
    train_all, test_all = load_identity_data(asdict(config))
    seen, unseen = identity_split(train_all, test_all, config.train_classes)
    if len(seen) < 2:
        raise ValueError(f"{config.data} has {len(seen)} training identity: a triplet needs at least 2")
    train_set = class_subset(train_all, seen)
    model = build_identity_model(config, train_set.image_shape, train_set.levels).to(device)

    say(f"identity: {config.data}, {len(seen)} training identities ({len(train_set)} images), "
        f"{len(unseen)} unseen\n1/3 triplet training of the embedding network ({config.triplet_steps} steps)")
    bars = {"progress": True} if progress else {}       # only when asked: a stage may be replaced by one without it
    started = time.perf_counter()
    triplet = train_triplet_encoder(model, train_set, config, classes=seen, log=say, **bars)
    say(f"2/3 conditional PixelCNN on (image, code of its identity) of the training identities "
        f"({config.decoder_minutes or '-'} min / {config.decoder_steps or '-'} steps)")
    decoder = train_decoder(model, train_set, config, log=say, **bars)
    model.eval()
    out.mkdir(parents=True, exist_ok=True)
    model_path = save(model, out / MODEL_DIR)

    measurements = {"triplet": triplet, "decoder": decoder, "training_classes": list(seen),
                    "unseen_classes": list(unseen)}
    # The seen identities' test images where the split has some (digits 0-6), else their training images (glyphs).
    seen_split = test_all if torch.isin(test_all.labels, torch.tensor(seen)).any() else train_all
    for name, split_set, classes in (("seen", seen_split, seen), ("unseen", test_all, unseen)):
        if not classes:
            continue
        subset = class_subset(split_set, classes)
        embeddings = embed(model, subset)
        measurements[name] = {
            "split": split_set.split, "classes": len(classes), "images": len(subset),
            "nearest_neighbour_accuracy": nearest_neighbour_accuracy(embeddings, subset.labels),
            "nll_given_code": _nll_given_codes(model, subset, config),
        }
    if unseen and config.judge_steps:
        say(f"3/3 the judge: an identity classifier of real images of all {train_all.num_classes} identities "
            f"({config.judge_steps} steps), then {config.judge_samples} new images per unseen identity")
        judge, judge_images, judge_labels, judge_stats = train_judge([train_all, test_all], config, log=say, **bars)
        measurements["judge"] = {"training": judge_stats, **judge_identities(
            model, judge, test_all, unseen, config, (judge_images, judge_labels))}
    measurements["minutes"] = (time.perf_counter() - started) / 60
    (out / IDENTITY_FILE).write_text(json.dumps({"config": asdict(config), "measurements": measurements},
                                                indent=2) + "\n")
    say(f"saved {model_path}; measurements in {out / IDENTITY_FILE}")
    return IdentityResult(run_dir=out, model_path=model_path, measurements=measurements)


def finished_identity(config: IdentityConfig, out: str | Path) -> IdentityResult | None:
    """The finished run of ``config`` in ``out``, to reuse; None when ``out`` holds no identity run.

    A run of another config there is a ValueError that names the settings that differ.
    """
    out = Path(out)
    if not (out / IDENTITY_FILE).exists():
        return None
    saved, wanted = read_identity(out), json.loads(json.dumps(asdict(config)))
    changed = sorted(k for k, v in wanted.items() if saved["config"].get(k) != v)
    if changed:
        raise ValueError(f"{out} already holds an identity run with other settings ({', '.join(changed)} differ); "
                         f"choose another output folder, or the same flags to reuse it")
    return IdentityResult(run_dir=out, model_path=out / MODEL_DIR, measurements=saved["measurements"])


def read_identity(run: str | Path) -> dict:
    """RUN/identity.json of a run written by ``train_identity``."""
    from .serialization import read_json

    path = Path(run) / IDENTITY_FILE
    try:
        return read_json(path)
    except FileNotFoundError:
        raise FileNotFoundError(f"no {IDENTITY_FILE} in {run}: not a run of pixelcnn identity") from None
