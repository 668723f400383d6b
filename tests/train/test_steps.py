"""The one optimizer step (``pixelcnn.train.steps``) outside a run: ``train_parameters``, as the identity
stages use it."""

import pytest
import torch

from pixelcnn.train import TrainConfig
from pixelcnn.train.steps import train_parameters


def _config(**changes) -> TrainConfig:
    settings = dict(lr=0.1, lr_decay="cosine", max_steps=200, ema_decay=None, progress=False, precision="fp32")
    return TrainConfig(**{**settings, **changes})


def test_train_parameters_minimizes_with_the_schedule_and_the_clip():
    weight = torch.nn.Parameter(torch.zeros(3))
    frozen = torch.nn.Parameter(torch.zeros(3), requires_grad=False)  # left out: no gradient wanted
    target = torch.tensor([3.0, -2.0, 0.5])
    messages = []
    stats = train_parameters(
        [weight, frozen],
        lambda step: (weight - target).pow(2).sum() + frozen.sum(),
        _config(),
        log=messages.append,
        what="distance",
        log_every=50,
    )
    assert stats["steps"] == 200 and stats["last_loss"] < 1e-3
    assert torch.allclose(weight.detach(), target, atol=0.05) and not frozen.any()
    assert messages[0].strip().startswith("precision fp32")
    assert [m.split(":")[0].strip() for m in messages[1:]] == ["step 50", "step 100", "step 150", "step 200"]


@pytest.mark.parametrize("on_nan", ["stop", "skip"])
def test_the_one_nan_rule(on_nan):
    weight = torch.nn.Parameter(torch.zeros(2))

    def batch_loss(step):  # step 3 (index 2) is not finite
        loss = (weight - 1).pow(2).sum()
        return loss * float("nan") if step == 2 else loss

    if on_nan == "stop":
        with pytest.raises(FloatingPointError, match="the loss became nan at step 3: stopped"):
            train_parameters([weight], batch_loss, _config(max_steps=5, on_nan="stop"))
    else:
        stats = train_parameters([weight], batch_loss, _config(max_steps=5, on_nan="skip"))
        assert stats["steps"] == 5 and torch.isfinite(weight).all()


def test_a_budget_is_needed():
    weight = torch.nn.Parameter(torch.zeros(2))
    config = _config()
    config.max_steps = None
    with pytest.raises(ValueError, match="needs a budget"):
        train_parameters([weight], lambda step: weight.sum(), config)
