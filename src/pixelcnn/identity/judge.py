"""The judge: an identity classifier trained on real images of every identity, never on generated ones, and
its measures of the images drawn from held-out identities' codes."""

from __future__ import annotations

import math
from pathlib import Path

import torch
import torch.nn.functional as F

from ..train.stage_state import StageState
from ..train.steps import train_parameters
from .config import IdentityConfig, stage_config
from .embedding import draw_identities


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
            torch.nn.Conv2d(c, channels, 3, padding=1),
            torch.nn.ReLU(),
            torch.nn.MaxPool2d(2),
            torch.nn.Conv2d(channels, 2 * channels, 3, padding=1),
            torch.nn.ReLU(),
            torch.nn.MaxPool2d(2),
            torch.nn.Conv2d(2 * channels, 2 * channels, 3, padding=1),
            torch.nn.ReLU(),
        )
        self.classify = torch.nn.Linear(2 * channels * (h // 4) * (w // 4), num_classes)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        x = images.float() / (self.levels - 1)  # [B, C, H, W] in [0, 1]
        return self.classify(self.features(x).flatten(1))  # [B, num_classes]

    @torch.no_grad()
    def assign(self, images: torch.Tensor, among) -> torch.Tensor:
        """The identity among ``among`` (class labels) with the highest logit, for each image: int64 [B]."""
        among = torch.as_tensor(list(among))
        self.eval()
        logits = torch.cat([self(images[i : i + 500]) for i in range(0, len(images), 500)])
        return among[logits[:, among].argmax(1)]


JUDGE_TEST_ONE_IN = 4  # the judge's own split: of each identity's images (seeded order), one in 4 is its test


def train_judge(datasets, config: IdentityConfig, *, log=None, progress: bool = False, stages=None):
    """An ``IdentityJudge`` trained on real images of every identity in ``datasets`` (both splits).

    Its own split: per identity, every JUDGE_TEST_ONE_IN-th image of a seeded
    permutation is held back as its test. Returns (judge, its test images,
    their labels, the training's stats). ``stages``: a folder; the stage saves
    its state in STAGES/judge and resumes from it (``StageState``).
    """
    generator = torch.Generator().manual_seed(config.seed + 3)
    images = torch.cat([d.prepare_batch(d.images, torch.Generator().manual_seed(0)) for d in datasets])
    labels = torch.cat([d.labels for d in datasets])
    order = torch.randperm(len(labels), generator=generator)
    rank = torch.empty_like(order)
    for c in labels.unique():  # each image's position among its identity's, in that order
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
    stats = train_parameters(
        judge.parameters(),
        batch_loss,
        stage_config(config, lr=1e-3, steps=config.judge_steps, progress=progress),
        log=log,
        what="judge cross-entropy",
        state=None if stages is None else StageState(Path(stages) / "judge", "the judge", judge, (generator,)),
    )
    judge.eval()
    return judge, images[is_test], labels[is_test], stats


def judged_fraction(assigned: torch.Tensor, expected: torch.Tensor) -> dict:
    """Fraction of ``assigned`` [R, n] equal to ``expected`` [R], with its standard error over the R rows.

    The rows (identities) are the independent units: images drawn from one
    identity's code are not independent of each other.
    """
    per_row = (assigned == expected[:, None]).double().mean(1)  # [R]
    error = float(per_row.std() / math.sqrt(len(per_row))) if len(per_row) > 1 else float("nan")
    return {
        "fraction": float(per_row.mean()),
        "standard_error": error,
        "identities": len(per_row),
        "images": assigned.numel(),
    }


def judge_identities(
    model, judge, test_set, unseen, config: IdentityConfig, judge_test=None, *, sample_kwargs=None
) -> dict:
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
        figures["real_held_out_accuracy"] = float((judge.assign(images[held], unseen) == labels[held]).double().mean())
        figures["real_held_out_images"] = int(held.sum())
    expected = torch.tensor(unseen)
    _, drawn = draw_identities(
        model, test_set, unseen, sources=sources, samples=config.judge_samples, seed=config.seed + 2, **kwargs
    )  # [R, n, C, H, W]
    assigned = judge.assign(drawn.flatten(0, 1), unseen).view(len(unseen), -1)
    figures["generated"] = judged_fraction(assigned, expected)
    wrong = unseen[1:] + unseen[:1]
    _, drawn = draw_identities(
        model,
        test_set,
        unseen,
        sources=sources,
        samples=config.judge_samples,
        codes_from=wrong,
        seed=config.seed + 2,
        **kwargs,
    )
    assigned = judge.assign(drawn.flatten(0, 1), unseen).view(len(unseen), -1)
    figures["wrong_identity_control"] = judged_fraction(assigned, expected)
    figures["wrong_identity_control_to_code"] = judged_fraction(assigned, torch.tensor(wrong))
    return figures
