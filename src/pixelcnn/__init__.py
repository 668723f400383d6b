"""pixelcnn: exact-likelihood autoregressive image models (PixelCNN, Gated / Conditional PixelCNN, ...).

import pixelcnn
model = pixelcnn.build("gated_pixelcnn", image_shape=(1, 28, 28), levels=256, num_classes=10)
nll = -model.log_prob(x, cond=y)                  # nats per image, [B]
bpd = pixelcnn.bits_per_dim(nll, model.image_shape)
imgs = model.sample(16, cond=y16)                 # int64 [16, C, H, W]
pixelcnn.save(model, "runs/mnist/model"); model = pixelcnn.load("runs/mnist/model")
model = pixelcnn.load("zoo:mnist5k")              # a trained model shipped with the package (pixelcnn.zoo)
"""

from . import zoo
from .coding import compress, decompress
from .metrics import bits_per_dim
from .models import build, list_models, presets
from .serialization import load, save
from .version import __version__

__all__ = [
    "__version__",
    "bits_per_dim",
    "build",
    "compress",
    "decompress",
    "list_models",
    "load",
    "presets",
    "save",
    "zoo",
]
