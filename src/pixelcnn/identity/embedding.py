"""The embedding network's training and use: the "batch all" triplet loss, identity codes, the two stages of
the pixelcnn_ae (its encoder by the triplet loss, then its decoder given the codes), and the measures of the
embedding (nearest neighbours, centroids, codes of a few images, new images drawn from them)."""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F

from ..train.stage_state import StageState
from ..train.steps import train_parameters
from .config import IdentityConfig, stage_config


def triplet_loss(embeddings: torch.Tensor, labels: torch.Tensor, margin: float) -> tuple[torch.Tensor, float]:
    """ "Batch all" triplet loss of embeddings [N, D] with labels [N]: (mean over active triplets, active fraction)."""
    distances = torch.cdist(embeddings, embeddings).pow(2)  # [N, N]
    same = labels[:, None] == labels[None, :]  # [N, N]
    positive = same & ~torch.eye(len(labels), dtype=torch.bool, device=labels.device)
    valid = positive[:, :, None] & ~same[:, None, :]  # [anchor, positive, negative]
    hinge = F.relu(distances[:, :, None] - distances[:, None, :] + margin)[valid]
    active = hinge > 0
    loss = hinge[active].mean() if active.any() else hinge.sum()  # 0, still attached to the graph
    return loss, float(active.float().mean()) if hinge.numel() else 0.0


def train_triplet_encoder(
    model, train_set, config: IdentityConfig, *, classes=None, log=None, progress: bool = False, stages=None
) -> dict:
    """Train ``model.encoder`` (a pixelcnn_ae's) with the triplet loss on ``train_set``, then freeze it.

    ``classes``: the identities to train on (default ``config.train_classes``).
    Each step draws ``config.classes_per_batch`` of them (all when fewer) and
    ``config.per_class`` images of each. ``stages``: a folder; the stage saves
    its state in STAGES/triplet and resumes from it (``StageState``).
    """
    classes = tuple(config.train_classes if classes is None else classes)
    generator = torch.Generator().manual_seed(config.seed)
    by_class = [torch.nonzero(train_set.labels == c).flatten() for c in classes]
    for c, members in zip(classes, by_class):
        if len(members) < 2:
            raise ValueError(
                f"class {c} has {len(members)} training image(s) in {train_set.name}; a triplet needs at least 2"
            )
    active_fraction = []

    def batch_loss(step: int) -> torch.Tensor:
        chosen = by_class
        if len(by_class) > config.classes_per_batch:
            chosen = [
                by_class[i] for i in torch.randperm(len(by_class), generator=generator)[: config.classes_per_batch]
            ]
        index = torch.cat(
            [members[torch.randint(len(members), (config.per_class,), generator=generator)] for members in chosen]
        )  # [P*K]
        images = train_set.prepare_batch(train_set.images[index], generator)
        loss, active = triplet_loss(model.encode(images), train_set.labels[index].to(model._device()), config.margin)
        active_fraction.append(active)
        del active_fraction[:-50]  # the stats read the last 50
        return loss

    state = None
    if stages is not None:
        state = StageState(
            Path(stages) / "triplet",
            "the embedding network",
            model.encoder,
            (generator,),
            {"active_fraction": active_fraction},
        )
    model.encoder.requires_grad_(True)
    model.train()
    try:
        stats = train_parameters(
            model.encoder.parameters(),
            batch_loss,
            stage_config(config, lr=config.triplet_lr, steps=config.triplet_steps, progress=progress),
            log=log,
            what="triplet loss",
            state=state,
        )
    finally:
        model.encoder.requires_grad_(False)
    return {**stats, "active_triplets": sum(active_fraction) / max(1, len(active_fraction))}


def identity_codes(
    embeddings: torch.Tensor,
    labels: torch.Tensor,
    index: torch.Tensor,
    k: int,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
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
        picked = others[torch.randint(len(others), (k,), generator=generator)]  # [k]
        codes.append(embeddings[picked].mean(0))
    return F.normalize(torch.stack(codes), dim=1)  # [B, D]


def train_decoder(model, train_set, config: IdentityConfig, *, log=None, progress: bool = False, stages=None) -> dict:
    """Train the decoder of ``model`` (its encoder frozen) on -log p(x | code) over ``train_set``.

    The code is x's identity code (``identity_codes`` of ``config.identity_images``
    other images), or with ``identity_images=0`` x's own embedding, encode(x).
    ``stages``: a folder; the stage saves its state in STAGES/decoder and
    resumes from it (``StageState``).
    """
    generator = torch.Generator().manual_seed(config.seed + 1)
    embeddings = embed(model, train_set).to(model._device()) if config.identity_images else None  # [N, D]

    def batch_loss(step: int) -> torch.Tensor:
        index = torch.randint(len(train_set), (config.batch_size,), generator=generator)
        images = train_set.prepare_batch(train_set.images[index], generator)
        if embeddings is None:
            return -model.log_prob(images).mean()
        codes = identity_codes(embeddings, train_set.labels, index, config.identity_images, generator)
        return -model.log_prob(images, codes).mean()

    model.train()
    return train_parameters(
        model.parameters(),
        batch_loss,
        stage_config(
            config,
            lr=config.lr,
            steps=config.decoder_steps,
            minutes=config.decoder_minutes,
            precision=config.precision,
            progress=progress,
        ),
        log=log,
        what="NLL (nats)",
        state=None if stages is None else StageState(Path(stages) / "decoder", "the decoder", model, (generator,)),
    )


# ------------------------------------------------------------------------------------ measuring
@torch.no_grad()
def embed(model, dataset, *, batch_size: int = 500) -> torch.Tensor:
    """Embeddings of every image of ``dataset`` (one fixed binarization draw): [N, D]."""
    generator = torch.Generator().manual_seed(0)
    chunks = [
        model.encode(dataset.prepare_batch(dataset.images[i : i + batch_size], generator)).cpu()
        for i in range(0, len(dataset), batch_size)
    ]
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
def identity_agreement(
    model, samples: torch.Tensor, source_labels: torch.Tensor, centroids: torch.Tensor, classes
) -> dict:
    """Which class the embedding network assigns generated images to (nearest class centroid).

    samples [B, n, C, H, W] drawn from the embeddings of images with labels
    ``source_labels`` [B]. Returns the fraction whose nearest centroid is the
    source's class, and the count of each assigned class. (The embedding
    network is not a fair judge of the samples its own codes drew: see
    ``IdentityJudge``.)
    """
    flat = samples.flatten(0, 1)  # [B*n, C, H, W]
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
    raise ValueError(
        f"{datasets[0].name} has no image of class {identity} (classes 0..{(datasets[0].num_classes or 0) - 1})"
    )


@torch.no_grad()
def draw_identities(
    model, datasets, identities, *, sources: int, samples: int, codes_from=None, seed: int = 0, **sample_kwargs
) -> tuple[torch.Tensor, torch.Tensor]:
    """For each identity, ``sources`` of its images and ``samples`` new images drawn from their code.

    Fewer sources when an identity has fewer images (as many as every one
    has). ``codes_from``: draw row i from the code of identity ``codes_from[i]``
    instead (the wrong-identity control). Returns (source images [R, sources,
    C, H, W], new images int64 [R, samples, C, H, W]).
    """
    shown = [source_images(datasets, c, sources) for c in identities]
    sources = min(len(s) for s in shown)  # an identity with fewer images: as many as all have
    shown = [source_images(datasets, c, sources) for c in identities]
    coding = shown if codes_from is None else [source_images(datasets, c, sources) for c in codes_from]
    codes = torch.stack([identity_code(model, images) for images in coding])  # [R, D]
    drawn = model.sample(
        len(codes) * samples,
        codes.repeat_interleave(samples, 0),
        generator=torch.Generator().manual_seed(seed),
        **sample_kwargs,
    )
    return torch.stack(shown), drawn.view(len(codes), samples, *model.image_shape)


@torch.no_grad()
def interpolate_identities(
    model,
    datasets,
    identity_from: int,
    identity_to: int,
    *,
    sources: int,
    steps: int = 8,
    rows: int = 1,
    seed: int = 0,
    **sample_kwargs,
) -> torch.Tensor:
    """[1] Figure 5 between two identities: ``rows`` lines of ``steps`` decodings, int64 [rows, steps, C, H, W].

    The ends are the codes of ``sources`` images of each identity; row r uses
    seed + r at every step, so a row varies only through the code.
    """
    code_from, code_to = (
        identity_code(model, source_images(datasets, c, sources))[None] for c in (identity_from, identity_to)
    )
    return torch.stack(
        [model.decode_line(code_from, code_to, steps, seed=seed + r, **sample_kwargs) for r in range(rows)]
    )
