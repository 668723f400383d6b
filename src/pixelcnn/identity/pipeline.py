"""The identity pipeline end to end: the data of the training and unseen identities, the stages, the
measurements, and the run folder (RUN/model: the pixelcnn_ae; RUN/identity.json: config and measurements;
RUN/identity-config.json and RUN/stages: what a stopped run resumes from)."""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

import torch

from .config import IDENTITY_FILE, MODEL_DIR, STAGES_DIR, STARTED_FILE, IdentityConfig
from .embedding import embed, identity_codes, nearest_neighbour_accuracy, train_decoder, train_triplet_encoder
from .judge import judge_identities, train_judge


def class_subset(dataset, classes):
    """The images of ``dataset`` whose label is in ``classes``: a new ImageDataset (same binarization)."""
    from ..data import ImageDataset

    if dataset.num_classes is None:
        raise ValueError(f"{dataset.name} has no labels: it has no classes to choose from")
    unknown = sorted(set(classes) - set(range(dataset.num_classes)))
    if unknown:
        raise ValueError(f"{dataset.name} has classes 0..{dataset.num_classes - 1}; got {unknown}")
    keep = torch.isin(dataset.labels, torch.tensor(list(classes)))
    return ImageDataset(
        dataset.images[keep],
        dataset.labels[keep],
        name=dataset.name,
        split=dataset.split,
        levels=dataset.levels,
        num_classes=dataset.num_classes,
        binarize=dataset.binarize,
        class_names=dataset.class_names,
        description=dataset.description,
        extra=dataset.extra,
    )


@dataclass
class IdentityResult:
    run_dir: Path
    model_path: Path
    measurements: dict = field(default_factory=dict)


def build_identity_model(config: IdentityConfig, image_shape, levels: int):
    """A pixelcnn_ae whose encoder is the (to be triplet-trained, then frozen) embedding network."""
    from ..models.registry import build

    torch.manual_seed(config.seed)
    return build(
        "pixelcnn_ae",
        image_shape=image_shape,
        levels=levels,
        bottleneck=config.embedding_dim,
        encoder_channels=config.encoder_channels,
        n_layers=config.n_layers,
        hidden=config.hidden,
        kernel_size=config.kernel_size,
        normalize_code=True,
        freeze_encoder=True,
    )


def load_identity_data(config: dict, splits=("train", "test")) -> list:
    """The splits of an identity run's data set, from its config (as saved in RUN/identity.json)."""
    from .. import data

    return [
        data.load(config["data"], split, binarize=config["binarize"], image_size=config.get("image_size"))
        for split in splits
    ]


def identity_split(train_all, test_all, train_classes=None) -> tuple[tuple, tuple]:
    """(training identities, unseen identities): ``train_classes`` or the train split's, and the rest of the test
    split's."""
    if train_all.num_classes is None:
        raise ValueError(
            f"{train_all.name} has no labels: an identity experiment needs one label per identity "
            f"(for folder:PATH, one sub-folder per identity)"
        )
    seen = tuple(train_classes) if train_classes is not None else tuple(sorted(set(train_all.labels.tolist())))
    unseen = tuple(sorted(set(test_all.labels.tolist()) - set(seen)))
    return seen, unseen


@torch.no_grad()
def _nll_given_codes(model, dataset, config: IdentityConfig, max_images: int = 1000) -> float:
    """Mean -log p(x | code) in nats over the first ``max_images`` images; the code as in training."""
    generator = torch.Generator().manual_seed(config.seed + 4)
    embeddings = embed(model, dataset)
    index = torch.linspace(0, len(dataset) - 1, min(max_images, len(dataset))).round().long()  # spread over it
    total = 0.0
    for chunk in index.split(250):
        images = dataset.prepare_batch(dataset.images[chunk], torch.Generator().manual_seed(0))
        codes = (
            embeddings[chunk]
            if not config.identity_images
            else identity_codes(embeddings, dataset.labels, chunk, config.identity_images, generator)
        )
        total += float(-model.log_prob(images, codes.to(model._device())).sum())
    return total / len(index)


def train_identity(
    config: IdentityConfig,
    out: str | Path,
    *,
    device: str | torch.device = "cpu",
    log: Callable[[str], None] | None = print,
    progress: bool = False,
) -> IdentityResult:
    """The stages on the training identities, then the judge; writes RUN/model and RUN/identity.json.

    See ``pixelcnn.identity``'s docstring. ``progress``: a progress bar (with the time
    left) for each stage instead of log lines.

    Resumable: RUN/identity-config.json is written first, and each stage saves
    its state in RUN/stages (every few minutes, at its end, and on Ctrl-C or
    SIGTERM, which then raise ``StoppedBySignal``). Called again with the same
    config and ``out``, finished stages are loaded and the stopped one goes on
    from its last save; with the steps budgets, to the same weights bit for bit.
    """
    from ..serialization import _atomic_write, save

    say = log or (lambda message: None)
    out = Path(out)
    if (out / IDENTITY_FILE).exists():
        raise ValueError(
            f"{out} already holds an identity run; choose another output folder "
            f"(finished_identity reuses a run of the same config)"
        )
    train_all, test_all = load_identity_data(asdict(config))
    seen, unseen = identity_split(train_all, test_all, config.train_classes)
    if len(seen) < 2:
        raise ValueError(f"{config.data} has {len(seen)} training identity: a triplet needs at least 2")
    train_set = class_subset(train_all, seen)
    _start_or_resume(config, out, say)  # (after the checks of the data: a refused run leaves no folder)
    stages = out / STAGES_DIR
    model = build_identity_model(config, train_set.image_shape, train_set.levels).to(device)

    say(
        f"identity: {config.data}, {len(seen)} training identities ({len(train_set)} images), "
        f"{len(unseen)} unseen\n1/3 triplet training of the embedding network ({config.triplet_steps} steps)"
    )
    bars = {"progress": True} if progress else {}  # only when asked: a stage may be replaced by one without it
    started = time.perf_counter()
    earlier = _EarlierMinutes()  # a resumed run's total counts the stages' minutes before its stop
    triplet = earlier.of(train_triplet_encoder, model, train_set, config, classes=seen, log=say, stages=stages, **bars)
    say(
        f"2/3 conditional PixelCNN on (image, code of its identity) of the training identities "
        f"({config.decoder_minutes or '-'} min / {config.decoder_steps or '-'} steps)"
    )
    decoder = earlier.of(train_decoder, model, train_set, config, log=say, stages=stages, **bars)
    model.eval()
    model_path = save(model, out / MODEL_DIR)

    measurements = {
        "triplet": triplet,
        "decoder": decoder,
        "training_classes": list(seen),
        "unseen_classes": list(unseen),
    }
    # The seen identities' test images where the split has some (digits 0-6), else their training images (glyphs).
    seen_split = test_all if torch.isin(test_all.labels, torch.tensor(seen)).any() else train_all
    for name, split_set, classes in (("seen", seen_split, seen), ("unseen", test_all, unseen)):
        if not classes:
            continue
        subset = class_subset(split_set, classes)
        embeddings = embed(model, subset)
        measurements[name] = {
            "split": split_set.split,
            "classes": len(classes),
            "images": len(subset),
            "nearest_neighbour_accuracy": nearest_neighbour_accuracy(embeddings, subset.labels),
            "nll_given_code": _nll_given_codes(model, subset, config),
        }
    if unseen and config.judge_steps:
        say(
            f"3/3 the judge: an identity classifier of real images of all {train_all.num_classes} identities "
            f"({config.judge_steps} steps), then {config.judge_samples} new images per unseen identity"
        )
        judge, judge_images, judge_labels, judge_stats = earlier.of(
            train_judge, [train_all, test_all], config, log=say, stages=stages, **bars
        )
        measurements["judge"] = {
            "training": judge_stats,
            **judge_identities(model, judge, test_all, unseen, config, (judge_images, judge_labels)),
        }
    measurements["minutes"] = (time.perf_counter() - started) / 60 + earlier.minutes
    record = json.dumps({"config": asdict(config), "measurements": measurements}, indent=2) + "\n"
    _atomic_write(out / IDENTITY_FILE, lambda tmp: Path(tmp).write_text(record))
    say(f"saved {model_path}; measurements in {out / IDENTITY_FILE}")
    return IdentityResult(run_dir=out, model_path=model_path, measurements=measurements)


class _EarlierMinutes:
    """The training minutes a resumed run's stages spent before its stop: a stage's stats count them (its
    "minutes"), this process's clock does not."""

    def __init__(self):
        self.minutes = 0.0

    def of(self, stage, *args, **kwargs):
        """stage(*args, **kwargs), adding its minutes not spent in this call; its result returned."""
        started = time.perf_counter()
        result = stage(*args, **kwargs)
        stats = result[-1] if isinstance(result, tuple) else result  # (train_judge returns its stats last)
        self.minutes += max(0.0, stats["minutes"] - (time.perf_counter() - started) / 60)
        return result


def _start_or_resume(config: IdentityConfig, out: Path, say) -> None:
    """Write RUN/identity-config.json, or check that the stopped run there has ``config`` (a ValueError naming the
    settings that differ) and say what it resumes."""
    from ..serialization import _atomic_write, read_json

    started = out / STARTED_FILE
    if not started.exists():
        out.mkdir(parents=True, exist_ok=True)
        text = json.dumps(asdict(config), indent=2) + "\n"
        _atomic_write(started, lambda tmp: Path(tmp).write_text(text))
        return
    saved_config = read_json(started)
    if not isinstance(saved_config, dict):
        raise ValueError(f"{started} is corrupt (not a JSON object): choose another output folder")
    changed = _changed_settings(saved_config, config)
    if changed:
        raise ValueError(
            f"{out} holds a stopped identity run with other settings ({', '.join(changed)} differ); "
            f"choose another output folder, or the same flags to resume it"
        )
    saved = [stage for stage in ("triplet", "decoder", "judge") if (out / STAGES_DIR / stage).is_dir()]
    say(f"identity: resuming the run in {out} (saved stages: {', '.join(saved) or 'none'})")


def _changed_settings(saved: dict, config: IdentityConfig) -> list[str]:
    """The fields of ``config`` whose value differs from the saved config's (as JSON)."""
    wanted = json.loads(json.dumps(asdict(config)))
    return sorted(k for k, v in wanted.items() if saved.get(k) != v)


def finished_identity(config: IdentityConfig, out: str | Path) -> IdentityResult | None:
    """The finished run of ``config`` in ``out``, to reuse; None when ``out`` holds no identity run.

    A run of another config there is a ValueError that names the settings that differ.
    """
    out = Path(out)
    if not (out / IDENTITY_FILE).exists():
        return None
    saved = read_identity(out)
    changed = _changed_settings(saved["config"], config)
    if changed:
        raise ValueError(
            f"{out} already holds an identity run with other settings ({', '.join(changed)} differ); "
            f"choose another output folder, or the same flags to reuse it"
        )
    return IdentityResult(run_dir=out, model_path=out / MODEL_DIR, measurements=saved["measurements"])


def read_identity(run: str | Path) -> dict:
    """RUN/identity.json of a run written by ``train_identity``."""
    from ..serialization import read_json

    path = Path(run) / IDENTITY_FILE
    try:
        return read_json(path)
    except FileNotFoundError:
        raise FileNotFoundError(f"no {IDENTITY_FILE} in {run}: not a run of pixelcnn identity") from None
