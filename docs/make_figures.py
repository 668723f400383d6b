"""Regenerate the pictures in docs/: receptive fields, softmax bars, an NLL map and a sampling GIF.

    python docs/make_figures.py                 # trains a small model for --minutes on mnist5k first
    python docs/make_figures.py --fresh         # untrained models only (a minute)
    python docs/make_figures.py --run runs/docs # keep the run; run again to redraw without training

Every picture is computed from a real model with ``pixelcnn.analysis`` and
drawn with ``pixelcnn.viz`` (the code behind ``pixelcnn viz``):

- receptive_field.png: freshly built models (the map depends on the
  architecture only), PixelCNN's blind spot (van den Oord et al., 2016,
  "Conditional Image Generation with PixelCNN Decoders", section 2.2 and
  figure 1) beside the Gated PixelCNN's two stacks and the Row LSTM and
  Diagonal BiLSTM ("Pixel Recurrent Neural Networks", sections 3.1 and 3.2);
- softmax.png, nll_map.png, sampling.gif: a Gated PixelCNN trained briefly on
  the bundled mnist5k digits at 256 levels when ``pixelcnn.data`` and its
  extra packages are installed; otherwise a freshly built, untrained one (the
  figure titles say which).

``--n-layers``, ``--hidden``, ``--samples`` and ``--rf-size`` shrink the models
and pictures (for a check that the script runs: ``--minutes 0.01 --n-layers 1
--hidden 4 --samples 1 --rf-size 4 --out runs/figures``).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

import pixelcnn
from pixelcnn import analysis, viz

HERE = Path(__file__).resolve().parent
IMAGE_SHAPE = (1, 28, 28)


def receptive_fields(out: Path, image_size: int) -> None:
    names = [n for n in ("pixelcnn", "gated_pixelcnn", "row_lstm", "diagonal_bilstm") if n in pixelcnn.list_models()]
    sizes = dict(image_size=image_size, n_layers=4, hidden=8, input_kernel_size=3)
    pixel = analysis.default_pixel((1, image_size, image_size))
    panels = [(name, analysis.fresh_receptive_field(name, pixel=pixel, **sizes)) for name in names]
    title = f"Receptive field of pixel {pixel}: freshly built models, 4 layers of 3-wide kernels"
    viz.save(viz.receptive_field_figure(panels, title=title), out / "receptive_field.png")


def trained_model(minutes: float, run_dir: Path, model_options: dict):
    """A Gated PixelCNN trained ``minutes`` on mnist5k (or the one already in ``run_dir``), a test image,
    its name, and the model's long and short descriptions; None without the data."""
    try:
        from pixelcnn import data
        from pixelcnn.evaluate import evaluate
        from pixelcnn.train import TrainConfig, train

        test = data.load("mnist5k", "test")
    except (ImportError, ValueError, FileNotFoundError) as err:
        print(f"no bundled data ({err}): using a freshly built model", file=sys.stderr)
        return None
    if (run_dir / "model" / "config.json").exists():
        print(f"using the model already trained in {run_dir}")
    else:
        train(
            TrainConfig(
                model="gated_pixelcnn",
                model_options=model_options,
                data="mnist5k",
                batch_size=32,
                lr=2e-3,
                ema_decay=None,
                max_minutes=minutes,
                out=str(run_dir),
                eval_every=None,
                eval_images=200,
                sample_images=0,
                progress=False,
                tensorboard=False,
            )
        )
    model = pixelcnn.load(run_dir / "model")  # what pixelcnn.train saves at the end
    bpd = evaluate(model, test, max_images=200).bits_per_dim
    trained_minutes, steps = training_time(run_dir)
    description = (
        f"gated_pixelcnn trained {trained_minutes:.0f} min ({steps} steps, CPU) on mnist5k, test {bpd:.2f} bits/dim"
    )
    return (
        model,
        test.images[:1].long(),
        "mnist5k test image 0",
        description,
        f"gated_pixelcnn, {trained_minutes:.0f} min on mnist5k",
    )


def training_time(run_dir: Path) -> tuple[float, int]:
    """(minutes, steps) of the last line of the run's metrics.jsonl that has both."""
    minutes, steps = float("nan"), 0
    for line in (run_dir / "metrics.jsonl").read_text().splitlines():
        record = json.loads(line)
        if "train_minutes" in record and "step" in record:
            minutes, steps = record["train_minutes"], record["step"]
    return minutes, steps


def fresh_model(model_options: dict):
    """A freshly built Gated PixelCNN, a drawn image (a ring, like a zero), its name and the model's descriptions."""
    from PIL import Image, ImageDraw

    model = pixelcnn.build("gated_pixelcnn", image_shape=IMAGE_SHAPE, levels=256, **model_options).eval()
    ring = Image.new("L", (28, 28), 0)
    ImageDraw.Draw(ring).ellipse([7, 4, 20, 23], outline=255, width=3)
    image = torch.from_numpy(np.asarray(ring).copy()).view(1, 1, 28, 28).long()
    return model, image, "a drawn ring", "freshly built gated_pixelcnn (untrained)", "untrained gated_pixelcnn"


def pixels_across_a_stroke(image: torch.Tensor) -> list[tuple[int, int]]:
    """Four pixels along the middle row: background, the stroke's first pixel, inside it, just after it."""
    row = image.shape[-2] // 2
    values = image[0, 0, row].tolist()
    first = next(j for j, v in enumerate(values) if v >= 128)  # where the stroke starts
    inside = next((j for j in range(first + 1, len(values)) if values[j] >= 200), first + 1)
    after = next((j for j in range(inside, len(values)) if values[j] == 0), len(values) - 1)
    return [(row, max(first - 3, 0)), (row, first), (row, inside), (row, after)]


def anomalies(image: torch.Tensor, name: str) -> tuple[torch.Tensor, list[str]]:
    """The image, the image with a noise patch, and the image inverted: [3, 1, 28, 28], and captions."""
    patched = image.clone()
    noise = torch.randint(0, 256, (1, 1, 7, 7), generator=torch.Generator().manual_seed(0))
    patched[:, :, 3:10, 17:24] = noise
    inverted = 255 - image
    return torch.cat([image, patched, inverted]), [name, f"{name} with a 7x7 noise patch", f"{name} inverted"]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--minutes", type=float, default=6.0, help="training time (default %(default)s)")
    parser.add_argument("--fresh", action="store_true", help="skip training: untrained models only")
    parser.add_argument("--out", type=Path, default=HERE, help="where the pictures go (default: docs/)")
    parser.add_argument(
        "--run",
        type=Path,
        help="keep the training run here (default: a temporary folder); "
        "a run already there is used as it is, not trained again",
    )
    parser.add_argument("--n-layers", type=int, default=5, help="gated layers of the model (default %(default)s)")
    parser.add_argument("--hidden", type=int, default=32, help="feature maps per layer (default %(default)s)")
    parser.add_argument("--samples", type=int, default=16, help="images in sampling.gif (default %(default)s)")
    parser.add_argument(
        "--rf-size", type=int, default=16, help="image size of the receptive-field models (default %(default)s)"
    )
    args = parser.parse_args(argv)
    # 5 layers of 32 maps by default: small enough to learn something in minutes on a CPU.
    model_options = dict(n_layers=args.n_layers, hidden=args.hidden)
    args.out.mkdir(parents=True, exist_ok=True)
    start = time.time()

    receptive_fields(args.out, args.rf_size)
    print(f"receptive_field.png ({time.time() - start:.0f} s)")

    with tempfile.TemporaryDirectory() as tmp:
        trained = None if args.fresh else trained_model(args.minutes, args.run or Path(tmp) / "run", model_options)
        model, image, name, description, short = trained or fresh_model(model_options)
    print(f"model: {description} ({time.time() - start:.0f} s)")

    pixels = pixels_across_a_stroke(image)
    dists = analysis.pixel_distributions(model, image, pixels)
    viz.save(
        viz.softmax_figure(
            image,
            dists,
            levels=model.levels,
            title=f"p(pixel | all pixels before), along row {pixels[0][0]}: {description}",
        ),
        args.out / "softmax.png",
    )

    rows, captions = anomalies(image, name)
    bits = analysis.nll_bits(model, rows)
    viz.save(
        viz.nll_figure(rows, bits, levels=model.levels, captions=captions, title=f"-log2 p per pixel: {description}"),
        args.out / "nll_map.png",
    )

    frames = analysis.sampling_frames(model, args.samples, generator=torch.Generator().manual_seed(0))
    pictures = viz.sampling_animation(
        frames, levels=model.levels, scale=3, title=f"{short}\n{args.samples} samples, {frames.method} sampler"
    )
    viz.save_gif(pictures, args.out / "sampling.gif", frame_ms=80)
    print(f"softmax.png, nll_map.png, sampling.gif ({time.time() - start:.0f} s) in {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
