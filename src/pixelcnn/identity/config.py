"""The identity experiment's settings (``IdentityConfig``, saved in RUN/identity.json) and each stage's
training settings (``stage_config``)."""

from __future__ import annotations

import re
from dataclasses import dataclass

from ..fields import at_least, check_types, must, one_of, option, positive_int, positive_number, raise_problems
from ..hardware import PRECISIONS
from ..train.config import TrainConfig

IDENTITY_FILE = "identity.json"  # RUN/identity.json: the pipeline's config and measurements
MODEL_DIR = "model"  # RUN/model: the pixelcnn_ae, loadable with pixelcnn.load
STARTED_FILE = "identity-config.json"  # RUN/identity-config.json: the config, written at the start (to resume)
STAGES_DIR = "stages"  # RUN/stages/triplet, decoder, judge: each stage's saved state (pixelcnn.train.stage_state)


@dataclass
class IdentityConfig:
    # --- data
    data: str = option("glyphs", "a labelled data set (pixelcnn.data.list_datasets())")
    binarize: str | None = option("threshold", "binarization, as in pixelcnn.data.load")
    train_classes: tuple | None = option(None, "the identities both networks see (None: those of the train split)")
    image_size: int | None = option(None, "folder:PATH only: resize and centre-crop every image to N x N")
    # --- the embedding network (the pixelcnn_ae's encoder)
    embedding_dim: int = option(16, "size of the embedding, a point on the unit sphere")
    encoder_channels: int = option(32, "e: the encoder's convolutions have e, 2e, 2e maps")
    margin: float = option(0.2, "triplet margin on squared distances (which lie in 0..4)")
    triplet_steps: int = option(600, "optimizer steps of the triplet stage")
    classes_per_batch: int = option(16, "P: identities in a triplet batch (all of them when fewer)")
    per_class: int = option(8, "K: images of each of those identities in a triplet batch")
    triplet_lr: float = option(1e-3, "Adam's learning rate, triplet stage")
    # --- the conditional PixelCNN (the pixelcnn_ae's decoder)
    identity_images: int = option(
        4,
        "the decoder's code: the mean embedding of this many other images of the identity "
        "(0: the image's own embedding, an auto-encoder)",
    )
    n_layers: int = option(5, "the decoder's gated layers")
    hidden: int = option(32, "the decoder's gated maps per layer")
    kernel_size: int = option(
        3,
        "k: the PixelCNN's filter size after its first layer (5 sees twice as many "
        "rows above per layer: a glyph's whole height)",
    )
    precision: str = option(
        "auto",
        "the PixelCNN stage's autocast (pixelcnn.hardware.choose_precision: bf16 "
        "where the CPU or GPU has bf16 units, else float32)",
    )
    decoder_steps: int | None = option(
        None, "optimizer steps of the decoder stage; the first budget reached stops it (None: minutes only)"
    )
    decoder_minutes: float | None = option(
        5.0, "minutes of decoder training; the first budget reached stops it (None: steps only)"
    )
    batch_size: int = option(32, "images per decoder step")
    lr: float = option(2e-3, "Adam's peak learning rate, decoder stage (cosine decay to 0)")
    # --- the judge (an identity classifier of real images, every identity) and what it judges
    judge_steps: int = option(1500, "the judge's optimizer steps (0: no judge)")
    judge_samples: int = option(8, "new images per unseen identity the judge scores (and as many for the control)")
    seed: int = option(0, "initialisation, batches, binarization draws and samples")

    def __post_init__(self):
        if self.train_classes is not None:
            self.train_classes = tuple(int(c) for c in self.train_classes)
            if len(self.train_classes) < 2 or len(set(self.train_classes)) != len(self.train_classes):
                raise ValueError(
                    f"train_classes must be at least 2 distinct classes (a triplet needs a negative), "
                    f"got {self.train_classes}"
                )
        check_types(self)
        raise_problems(
            [
                *(
                    positive_int(name, getattr(self, name))
                    for name in (
                        "embedding_dim",
                        "encoder_channels",
                        "triplet_steps",
                        "classes_per_batch",
                        "per_class",
                        "n_layers",
                        "hidden",
                        "kernel_size",
                        "batch_size",
                        "judge_samples",
                    )
                ),
                *(at_least(name, getattr(self, name), 0) for name in ("identity_images", "judge_steps")),
                None if self.per_class >= 2 else must("per_class", ">= 2 (an anchor needs a positive)", self.per_class),
                None
                if self.classes_per_batch >= 2
                else must("classes_per_batch", ">= 2 (a triplet needs a negative)", self.classes_per_batch),
                one_of("precision", self.precision, PRECISIONS),
                positive_int("decoder_steps", self.decoder_steps, optional=True),
                positive_number("decoder_minutes", self.decoder_minutes, optional=True),
                *(positive_number(name, getattr(self, name)) for name in ("margin", "triplet_lr", "lr")),
            ]
        )
        if self.decoder_steps is None and self.decoder_minutes is None:
            raise ValueError("say when the decoder stage stops: decoder_steps, decoder_minutes or both")


def parse_classes(text: str) -> tuple[int, ...]:
    """``"0-6"`` or ``"7,8,9"`` (or a mix, ``"0-3,5"``) -> (0, 1, ..., 6)."""
    classes = []
    for part in str(text).replace(" ", "").split(","):
        match = re.fullmatch(r"(\d+)(?:-(\d+))?", part)
        if match is None or (match.group(2) is not None and int(match.group(2)) < int(match.group(1))):
            raise ValueError(f"classes are written like 0-6 or 7,8,9 (non-negative, ranges low-high); got {text!r}")
        classes.extend(range(int(match.group(1)), int(match.group(2) or match.group(1)) + 1))
    return tuple(sorted(set(classes)))


def stage_config(
    config: IdentityConfig,
    *,
    lr: float,
    steps: int | None = None,
    minutes: float | None = None,
    precision: str = "fp32",
    progress: bool = False,
) -> TrainConfig:
    """How one stage trains, as the fields of a TrainConfig that ``pixelcnn.train.steps.train_parameters`` reads.

    Adam at ``lr``, cosine decay to 0 over the budget (``steps`` and / or
    ``minutes``, whichever ends first), the gradient norm clipped to 1, a
    non-finite loss or gradient stops the stage; ``precision`` as in
    ``pixelcnn.hardware.choose_precision``.
    """
    return TrainConfig(
        model="pixelcnn_ae",
        data=config.data,
        optimizer="adam",
        lr=lr,
        lr_decay="cosine",
        grad_clip=1.0,
        on_nan="stop",
        ema_decay=None,
        max_steps=steps,
        max_minutes=minutes,
        precision=precision,
        seed=config.seed,
        progress=progress,
    )
