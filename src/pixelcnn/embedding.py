"""Embedding conditioning on a learned identity space ([1] §3.2, the portraits; here on digits).

The paper conditions a PixelCNN on the embedding of a portrait by a face
network trained with a triplet loss, and then draws new portraits of a person
that no network saw in training. We do the same with digit classes as the
"identities": an embedding network is trained with a triplet loss on the
digits of some classes only (e.g. 0-6); a PixelCNN is trained on (image,
embedding) pairs of those classes; given one image of a held-out class (7, 8,
9), it draws new images from that image's embedding.

A PixelCNN conditioned on a frozen embedding of the image itself is a
PixelCNN auto-encoder (``pixelcnn_ae``) whose encoder is the embedding
network, frozen, with codes on the unit sphere (``freeze_encoder=True``,
``normalize_code=True``). So the pipeline builds that model, trains its
encoder with the triplet loss, freezes it, and trains the decoder on the exact
NLL. The result is an ordinary saved model: ``model.encode(x)`` is the
embedding, ``model.reconstruct(x, n)`` draws n images of x's identity, and the
``interpolate`` / ``reconstruct`` commands work on it.

    from pixelcnn.embedding import IdentityConfig, train_identity
    result = train_identity(IdentityConfig(train_classes=(0, 1, 2, 3, 4, 5, 6), decoder_minutes=5), "runs/identity")
    model = pixelcnn.load("runs/identity/model")
    samples = model.reconstruct(sevens, n=8)                 # 8 new images of each given 7

Triplet loss, "batch all" (Hermans et al. 2017 [2]): a batch holds K images
of each training class; every (anchor, positive, negative) in it with
positive of the anchor's class and negative of another class contributes
max(0, |a - p|^2 - |a - n|^2 + margin), averaged over the triplets that are
still active (loss > 0).

NOTE: unlike the paper (a face network trained on many identities, then
frozen), the "identities" here are 7 digit classes, so an unseen class is far
from every seen one; how much of its identity survives is measured, not
assumed (``identity_agreement``).

The two stages use a plain loop (``fit``: Adam, cosine decay, gradient
clipping), not ``pixelcnn train``: the identity data is a subset of classes
and the decoder starts from a trained, frozen encoder, which the ordinary
loop does not do.

[1] A. van den Oord et al. Conditional Image Generation with PixelCNN Decoders.
    NIPS 2016. arXiv:1606.05328.
[2] A. Hermans, L. Beyer, B. Leibe. In Defense of the Triplet Loss for Person
    Re-Identification. arXiv:1703.07737.
"""
from __future__ import annotations

import json
import math
import re
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

import torch
import torch.nn.functional as F

IDENTITY_FILE = "identity.json"     # RUN/identity.json: the pipeline's config and measurements
MODEL_DIR = "model"                 # RUN/model: the pixelcnn_ae, loadable with pixelcnn.load


@dataclass
class IdentityConfig:
    # --- data
    data: str = "mnist5k"                   # a labelled data set (pixelcnn.data.list_datasets())
    binarize: str | None = "dynamic"        # binarization, as in pixelcnn.data.load
    train_classes: tuple = (0, 1, 2, 3, 4, 5, 6)    # the "identities" both networks see; the others are unseen
    # --- the embedding network (the pixelcnn_ae's encoder)
    embedding_dim: int = 16                 # size of the embedding, a point on the unit sphere
    encoder_channels: int = 32              # e: the encoder's convolutions have e, 2e, 2e maps
    margin: float = 0.2                     # triplet margin on squared distances (which lie in 0..4)
    triplet_steps: int = 600                # optimizer steps of the triplet stage
    per_class: int = 16                     # images of each training class in a triplet batch
    triplet_lr: float = 1e-3                # Adam's learning rate, triplet stage
    # --- the conditional PixelCNN (the pixelcnn_ae's decoder)
    n_layers: int = 5                       # gated layers
    hidden: int = 32                        # p: gated maps per layer
    decoder_steps: int | None = None        # optimizer steps of the decoder stage (None: by minutes only)
    decoder_minutes: float | None = 5.0     # minutes of decoder training (None: by steps only)
    batch_size: int = 32                    # images per decoder step
    lr: float = 2e-3                        # Adam's peak learning rate, decoder stage (cosine decay to 0)
    seed: int = 0                           # initialisation, batches and binarization draws

    def __post_init__(self):
        self.train_classes = tuple(int(c) for c in self.train_classes)
        if len(self.train_classes) < 2 or len(set(self.train_classes)) != len(self.train_classes):
            raise ValueError(f"train_classes must be at least 2 distinct classes (a triplet needs a negative), "
                             f"got {self.train_classes}")
        for name in ("embedding_dim", "encoder_channels", "triplet_steps", "per_class", "n_layers", "hidden",
                     "batch_size"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"{name} must be a positive integer, got {getattr(self, name)}")
        if self.per_class < 2:
            raise ValueError(f"per_class must be >= 2 (an anchor needs a positive), got {self.per_class}")
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
        log_every: int = 50, progress: bool = False) -> dict:
    """Minimize ``batch_loss(step)`` with Adam, cosine decay to 0 over the budget, gradients clipped to norm 1.

    Stops after ``steps`` steps or ``max_minutes`` minutes, whichever comes
    first. Returns {"steps", "minutes", "last_loss"} (last_loss: the mean of
    the last ``log_every`` steps). ``progress``: a tqdm bar on stderr, in
    percent of the budget, with the time left.
    """
    import sys

    from tqdm.auto import tqdm

    if steps is None and max_minutes is None:
        raise ValueError("fit needs a budget: steps, max_minutes or both")
    parameters = [p for p in parameters if p.requires_grad]
    optimizer = torch.optim.Adam(parameters, lr=lr)
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
        loss = batch_loss(step)
        if not torch.isfinite(loss):
            raise FloatingPointError(f"the {what} became {float(loss)} at step {step + 1}; try a lower learning rate")
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(parameters, 1.0)
        optimizer.step()
        step += 1
        recent = (recent + [float(loss.detach())])[-log_every:]
        if step % log_every == 0:
            bar.set_postfix_str(f"step {step}, {what} {sum(recent) / len(recent):.4f}", refresh=False)
            if log is not None and not progress:
                log(f"  step {step}: {what} {sum(recent) / len(recent):.4f} ({elapsed / 60:.1f} min)")
    bar.close()
    return {"steps": step, "minutes": (time.perf_counter() - started) / 60,
            "last_loss": sum(recent) / len(recent) if recent else float("nan")}


def train_triplet_encoder(model, train_set, config: IdentityConfig, *, log=None, progress: bool = False) -> dict:
    """Train ``model.encoder`` (a pixelcnn_ae's) with the triplet loss on ``train_set``, then freeze it."""
    generator = torch.Generator().manual_seed(config.seed)
    by_class = [torch.nonzero(train_set.labels == c).flatten() for c in config.train_classes]
    for c, members in zip(config.train_classes, by_class):
        if len(members) < 2:
            raise ValueError(f"class {c} has {len(members)} training image(s) in {train_set.name}; "
                             f"a triplet needs at least 2")
    active_fraction = []

    def batch_loss(step: int) -> torch.Tensor:
        index = torch.cat([members[torch.randint(len(members), (config.per_class,), generator=generator)]
                           for members in by_class])                                     # [P*K]
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


def train_decoder(model, train_set, config: IdentityConfig, *, log=None, progress: bool = False) -> dict:
    """Train the decoder of ``model`` (its encoder frozen) on -log p(x | encode(x)) over ``train_set``."""
    generator = torch.Generator().manual_seed(config.seed + 1)

    def batch_loss(step: int) -> torch.Tensor:
        index = torch.randint(len(train_set), (config.batch_size,), generator=generator)
        images = train_set.prepare_batch(train_set.images[index], generator)
        return -model.log_prob(images).mean()

    model.train()
    return fit(model.parameters(), batch_loss, lr=config.lr, steps=config.decoder_steps,
               max_minutes=config.decoder_minutes, log=log, what="NLL (nats)", progress=progress)


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
    source's class, and the count of each assigned class.
    """
    flat = samples.flatten(0, 1)                                                 # [B*n, C, H, W]
    assigned = torch.tensor(classes)[torch.cdist(model.encode(flat).cpu(), centroids).argmin(1)]
    expected = source_labels.repeat_interleave(samples.shape[1])
    counts = {int(c): int((assigned == c).sum()) for c in classes}
    return {"agreement": float((assigned == expected).float().mean()), "assigned": counts}


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
                 normalize_code=True, freeze_encoder=True)


def train_identity(config: IdentityConfig, out: str | Path, *, device: str | torch.device = "cpu",
                   log: Callable[[str], None] | None = print, progress: bool = False) -> IdentityResult:
    """Both stages on ``config.train_classes``; writes RUN/model and RUN/identity.json; see the module docstring.

    ``progress``: a progress bar (with the time left) for each stage instead of log lines.
    """
    from . import data
    from .evaluate import nll_per_image
    from .serialization import save

    say = log or (lambda message: None)
    out = Path(out)
    if (out / IDENTITY_FILE).exists():
        raise ValueError(f"{out} already holds an identity run; choose another output folder "
                         f"(finished_identity reuses a run of the same config)")
    train_all = data.load(config.data, "train", binarize=config.binarize)
    test_all = data.load(config.data, "test", binarize=config.binarize)
    train_set = class_subset(train_all, config.train_classes)
    unseen = tuple(c for c in range(train_all.num_classes) if c not in config.train_classes)
    model = build_identity_model(config, train_set.image_shape, train_set.levels).to(device)

    say(f"identity: {config.data}, training classes {list(config.train_classes)} ({len(train_set)} images), "
        f"unseen {list(unseen)}\n1/2 triplet training of the embedding network ({config.triplet_steps} steps)")
    bars = {"progress": True} if progress else {}       # only when asked: a stage may be replaced by one without it
    triplet = train_triplet_encoder(model, train_set, config, log=say, **bars)
    say(f"2/2 conditional PixelCNN on (image, embedding) of the training classes "
        f"({config.decoder_minutes or '-'} min / {config.decoder_steps or '-'} steps)")
    decoder = train_decoder(model, train_set, config, log=say, **bars)
    model.eval()
    out.mkdir(parents=True, exist_ok=True)
    model_path = save(model, out / MODEL_DIR)

    test_embeddings, test_labels = embed(model, test_all), test_all.labels
    measurements = {"triplet": triplet, "decoder": decoder, "unseen_classes": list(unseen)}
    for name, classes in (("seen", config.train_classes), ("unseen", unseen)):
        if not classes:
            continue
        members = torch.isin(test_labels, torch.tensor(classes))
        nll = nll_per_image(model, class_subset(test_all, classes))
        measurements[f"test_{name}"] = {
            "classes": list(classes), "images": int(members.sum()),
            "nearest_neighbour_accuracy": nearest_neighbour_accuracy(test_embeddings[members], test_labels[members]),
            "nll_given_embedding": float(nll.mean()),
        }
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
