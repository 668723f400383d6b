"""``python -m pixelcnn`` (and ``torchrun -m pixelcnn train ...``) runs the ``pixelcnn`` command."""

import sys

from .cli import main

sys.exit(main())
