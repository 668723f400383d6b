"""Units: nats per image and bits per dimension, as the papers report them.

NLL in nats per image for MNIST, bits per dimension = nats / (C * H * W * ln 2)
for CIFAR-10 and ImageNet (van den Oord et al., Pixel Recurrent Neural
Networks, ICML 2016, §5.1).
"""

from __future__ import annotations

import math

import torch


def bits_per_dim(nll_nats, image_shape) -> torch.Tensor | float:
    """NLL in nats per image -> bits per dimension: nll / (C * H * W * ln 2).

    Works on a float or a tensor of any shape (one value per image).
    """
    dims = math.prod(image_shape)
    if dims < 1:
        raise ValueError(f"image_shape must have positive sizes, got {image_shape}")
    return nll_nats / (dims * math.log(2))
