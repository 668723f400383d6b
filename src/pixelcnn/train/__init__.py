"""Training: a config dataclass, the loop, checkpoints, and DDP under torchrun.

    from pixelcnn.train import DEMO_SCHEDULE, TrainConfig, train
    result = train(TrainConfig(model="gated-demo", data="mnist5k", binarize="dynamic", class_conditional=True,
                               max_minutes=5, out="runs/mnist", **DEMO_SCHEDULE))
    result.final_eval          # test NLL, nats and bits/dim
    result.model_path          # RUN/model, for pixelcnn.load

The command ``pixelcnn train`` sets every field of ``TrainConfig`` from flags.
"""

from .checkpoint import load_checkpoint, save_checkpoint
from .config import DEMO_SCHEDULE, TrainConfig
from .device import resolve_device
from .loop import Trainer, TrainResult, learning_rate, train

__all__ = [
    "DEMO_SCHEDULE",
    "TrainConfig",
    "TrainResult",
    "Trainer",
    "learning_rate",
    "load_checkpoint",
    "resolve_device",
    "save_checkpoint",
    "train",
]
