"""PixelCNN auto-encoder experiment: numbers and pictures, on a small CPU budget.

The PixelCNN auto-encoder is van den Oord et al., 2016, "Conditional Image
Generation with PixelCNN Decoders", section 2.4 (experiments in section 3.4):
a convolutional encoder maps the image to a code, and a conditional Gated
PixelCNN, the decoder, models the image given that code. (The paper's
identity experiment, new images of an unseen identity, is experiments/glyphs.py.)

Trains, each for a fixed number of minutes with ``pixelcnn.train``:

- on binarized mnist5k (test NLL in nats) and on photo-patches (bits/dim):
  the unconditional Gated PixelCNN, the PixelCNN auto-encoder with a
  10- and a 100-dimensional code (the same Gated PixelCNN as decoder), and
  the MSE auto-encoder (same encoder, deconvolutional decoder; its MSE);

then draws the pictures with the ``pixelcnn`` commands and writes every
number to autoencoder.json in ``--docs`` (default: the repository's docs/):

    recon.png        pixelcnn reconstruct (mnist5k): test digit | MSE AE | 4 PixelCNN AE samples (long run)
    recon-photo.png  the same on photo-patches (code size 100, 5-minute runs)
    interp.png       pixelcnn interpolate (mnist5k, code size 10, long run): 3 rows, one seed each

Budget: --minutes-mnist (default 5) per MNIST model, --minutes-photo
(default 5) per photo-patches model, and --minutes-long (default 20) for a
second MNIST auto-encoder (code size 10), which draws recon.png and
interp.png (the 5-minute decoders barely use their codes yet). About
1 h 20 min in all on 2 CPU cores. These are short
runs (2-3 epochs of mnist5k in 5 minutes, one of photo-patches): the numbers
compare models at equal, small budgets, far from convergence. One torch
thread (--threads): on 2 cores that other processes keep busy, two threads
made a training step 6x slower (2.6 s against 15.6 s for the MNIST Gated
PixelCNN here). Finished runs in --out are reused.

    python experiments/autoencoder.py --minutes-mnist 1 --minutes-photo 1 --minutes-long 1 --out runs/ae-quick
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

import torch

from pixelcnn import data, load
from pixelcnn.cli import main as pixelcnn_command
from pixelcnn.train import TrainConfig, train

DOCS = Path(__file__).resolve().parent.parent / "docs"
MNIST = dict(data="mnist5k", binarize="dynamic")
PHOTO = dict(data="photo-patches", binarize=None)
DECODER = dict(n_layers=5, hidden=32)  # every PixelCNN here: 5 gated layers of 32 maps (the demo's size)
ENCODER = dict(encoder_channels=32)  # the auto-encoders' ConvEncoder: 32, 64, 64 maps

# name -> (model, data, model options, which --minutes-* budget)
RUNS = {
    "mnist-gated": ("gated_pixelcnn", MNIST, DECODER, "mnist"),
    "mnist-ae10": ("pixelcnn_ae", MNIST, {**DECODER, **ENCODER, "bottleneck": 10}, "mnist"),
    "mnist-ae100": ("pixelcnn_ae", MNIST, {**DECODER, **ENCODER, "bottleneck": 100}, "mnist"),
    "mnist-mse10": ("mse_ae", MNIST, {**ENCODER, "bottleneck": 10, "decoder_channels": 64}, "mnist"),
    "photo-gated": ("gated_pixelcnn", PHOTO, DECODER, "photo"),
    "photo-ae10": ("pixelcnn_ae", PHOTO, {**DECODER, **ENCODER, "bottleneck": 10}, "photo"),
    "photo-ae100": ("pixelcnn_ae", PHOTO, {**DECODER, **ENCODER, "bottleneck": 100}, "photo"),
    "photo-mse100": ("mse_ae", PHOTO, {**ENCODER, "bottleneck": 100, "decoder_channels": 64}, "photo"),
    "mnist-ae10-long": ("pixelcnn_ae", MNIST, {**DECODER, **ENCODER, "bottleneck": 10}, "long"),
}


def train_run(name: str, out: Path, minutes: float, threads: int, eval_images: int | None) -> dict:
    """Train one model (or reuse a finished run in ``out/name``); its final test evaluation and speed."""
    model_name, data_set, options, _ = RUNS[name]
    folder = out / name
    if not (folder / "model" / "config.json").exists():
        config = TrainConfig(
            model=model_name,
            model_options=dict(options),
            **data_set,
            out=str(folder),
            max_minutes=minutes,
            batch_size=32,
            lr=2e-3,
            warmup_steps=20,
            lr_decay="cosine",
            eval_every=None,
            sample_images=0,
            checkpoint_every=10**6,
            progress=False,
            tensorboard=False,
            seed=0,
            threads=threads,
            eval_images=eval_images,
        )
        started = time.perf_counter()
        result = train(config)
        print(
            f"{name}: {result.final_eval} ({(time.perf_counter() - started) / 60:.1f} min with evaluation)", flush=True
        )
    records = [json.loads(line) for line in (folder / "metrics.jsonl").read_text().splitlines()]
    final = [r for r in records if r["kind"] == "eval"][-1]
    model = load(folder / "model")
    result = {
        "model": model_name,
        "options": options,
        **data_set,
        "parameters": sum(p.numel() for p in model.parameters()),
        "steps": final["step"],
        "epochs": final["epoch"],
        "train_minutes": final["train_minutes"],
        "test": {k: v for k, v in final.items() if k not in ("kind", "step", "epoch", "train_minutes")},
    }
    if model_name == "pixelcnn_ae":
        test = data.load(data_set["data"], "test", binarize=data_set["binarize"])
        result["code_nats"] = code_nats(model, test, images=min(200, eval_images or 200))
    return result


@torch.no_grad()
def code_nats(model, test_set, images: int = 200) -> float:
    """How much the decoder uses the code: mean NLL given another test image's code minus given its own (nats)."""
    index = torch.randperm(len(test_set), generator=torch.Generator().manual_seed(0))[:images]
    x = test_set.images[index]
    codes = model.encode(x)
    return float((model.log_prob(x, codes) - model.log_prob(x, codes.roll(1, 0))).mean())


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes-mnist", type=float, default=5.0, help="training minutes per MNIST model")
    parser.add_argument("--minutes-photo", type=float, default=5.0, help="training minutes per photo-patches model")
    parser.add_argument(
        "--minutes-long", type=float, default=20.0, help="training minutes of the longer MNIST auto-encoder (pictures)"
    )
    parser.add_argument("--threads", type=int, default=1, help="torch threads (see the docstring)")
    parser.add_argument("--n-layers", type=int, default=5, help="gated layers of every PixelCNN (default: 5)")
    parser.add_argument("--hidden", type=int, default=32, help="maps per gated layer (default: 32)")
    parser.add_argument("--eval-images", type=int, help="test images per evaluation (default: the whole split)")
    parser.add_argument(
        "--picture-images",
        type=int,
        default=8,
        help="size of the pictures: images per row of recon.png and interp.png (default: 8)",
    )
    parser.add_argument("--out", default="runs/ae-experiment", help="run folders (reused when finished)")
    parser.add_argument(
        "--docs",
        type=Path,
        default=DOCS,
        help="where the pictures and autoencoder.json go (default: the repository's docs/)",
    )
    args = parser.parse_args(argv)
    DECODER.update(n_layers=args.n_layers, hidden=args.hidden)  # the RUNS share this dict
    out, docs = Path(args.out), args.docs
    torch.set_num_threads(args.threads)
    docs.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    minutes = {"mnist": args.minutes_mnist, "photo": args.minutes_photo, "long": args.minutes_long}
    from tqdm.auto import tqdm

    results = {
        name: train_run(name, out, minutes[RUNS[name][3]], args.threads, args.eval_images)
        for name in tqdm(RUNS, desc="training runs", unit="run")
    }

    k = max(2, args.picture_images)  # the default 8 draws the committed pictures
    half = str(max(1, k // 2))
    pictures = {
        "recon.png": [
            "reconstruct",
            str(out / "mnist-ae10-long"),
            "--mse-run",
            str(out / "mnist-mse10"),
            "--n",
            str(k),
            "--samples",
            half,
            "--scale",
            "2",
            "--device",
            "cpu",
            "--out",
            str(docs / "recon.png"),
        ],
        "recon-photo.png": [
            "reconstruct",
            str(out / "photo-ae100"),
            "--mse-run",
            str(out / "photo-mse100"),
            "--n",
            half,
            "--samples",
            half,
            "--scale",
            "2",
            "--device",
            "cpu",
            "--out",
            str(docs / "recon-photo.png"),
        ],
        "interp.png": [
            "interpolate",
            str(out / "mnist-ae10-long"),
            "--from",
            "20",
            "--to",
            "750",
            "--steps",
            str(k),
            "--rows",
            str(max(1, k * 3 // 8)),
            "--scale",
            "2",
            "--device",
            "cpu",
            "--out",
            str(docs / "interp.png"),
        ],
    }
    for name, command in pictures.items():
        print("pixelcnn " + " ".join(command), flush=True)
        if pixelcnn_command(command) != 0:
            raise SystemExit(f"drawing {name} failed")

    report = {
        "machine": {
            "cpu_count": os.cpu_count(),
            "torch_threads": torch.get_num_threads(),
            "torch": torch.__version__,
            "python": platform.python_version(),
            "note": "2 CPU cores shared with other jobs while this ran: timings are "
            "pessimistic and steps per minute vary between runs",
        },
        "threads": args.threads,
        "decoder": dict(DECODER),
        "eval_images": args.eval_images,
        "budget_minutes": {"mnist": args.minutes_mnist, "photo": args.minutes_photo, "long": args.minutes_long},
        "runs": results,
        "pictures": {name: "pixelcnn " + " ".join(command) for name, command in pictures.items()},
        "total_minutes": (time.perf_counter() - started) / 60,
    }
    (docs / "autoencoder.json").write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {docs / 'autoencoder.json'} ({report['total_minutes']:.1f} min)")


if __name__ == "__main__":
    main()
