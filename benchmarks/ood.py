"""Out-of-distribution detection with an exact likelihood: AUROC of three scores, a data set against held-out sets.

    python benchmarks/ood.py                                   # train two models (minutes), score, print the table
    python benchmarks/ood.py --train-steps 3 --images 8 --n-layers 1 --hidden 4     # a smoke run: seconds

Two models are trained by ``pixelcnn.train`` on binarized ``mnist5k`` (dynamic
binarization; with ``--grey``, on its 256 grey levels): the in-distribution model, and a background model with the same
architecture and budget whose training batches have ``--perturb`` of their
values replaced at random (``TrainConfig.perturb``; Ren et al. 2019, §3.1).
Then every image of the in-distribution test digits (the fixed binarization)
and of each held-out set is scored (``pixelcnn.scores.anomaly_scores``):

- ``nll``: -log p(x) in nats (Nalisnick et al. 2019: this alone can fail);
- ``likelihood_ratio``: -log p(x) + log p_0(x) with p_0 the background model (Ren et al. 2019);
- ``complexity``: -log2 p(x) minus the bits of x as a PNG (1-bit, or 8-bit grey; Serra et al. 2020).

Held-out sets, all offline, each made grey 8-bit 28x28 and then binarized as the
in-distribution test digits are (one Bernoulli(x / 255) draw, seed 0), or with
``--grey`` left at 256 levels, where the raw likelihood is known to fail:

- ``digits``: scikit-learn's 8x8 digits (test split), scaled to 28x28 (bilinear);
- ``inverted``: the mnist5k test digits, 255 - x;
- ``noise``: uniform random 8-bit values (seeded);
- ``photo-patches``: the 32x32 colour patches (test split) in grey, scaled to 28x28 (Lanczos).

With ``--data photo-patches`` the models are of the colour photo patches
(3 x 32 x 32, 256 levels) instead, and the held-out sets are made 3 x 32 x 32:
``mnist`` (the mnist5k test digits, grey in all three channels, scaled up,
Lanczos), ``digits`` (the same from the 8x8 digits), ``noise``, and
``inverted`` photo patches (255 - x). A model of richer images scoring simpler
ones as more likely is the failure Nalisnick et al. (2019) report (CIFAR-10
against SVHN).

The table gives each set's mean NLL and each score's AUROC (1: every held-out
image scores higher than every test digit; 0.5: chance; below 0.5: the score
ranks the held-out set as *more* typical). JSON to ``--out`` (default runs/ood.json).
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

import pixelcnn
from machine import command_line, default_out, describe, print_cells, print_machine, write_json
from pixelcnn import data
from pixelcnn.scores import anomaly_scores, auroc
from pixelcnn.train import TrainConfig, train

SCORES = ("nll", "likelihood_ratio", "complexity")
HELD_OUT = {
    "mnist5k": ("digits", "inverted", "noise", "photo-patches"),
    "photo-patches": ("mnist", "digits", "noise", "inverted"),
}


# ------------------------------------------------------------------------------------ the image sets
def _resized(images: np.ndarray, size: int, method) -> torch.Tensor:
    """Grey uint8 images [N, H, W] -> uint8 [N, 1, size, size]."""
    out = [np.asarray(Image.fromarray(image, "L").resize((size, size), method)) for image in images]
    return torch.from_numpy(np.stack(out))[:, None]


def held_out_grey(name: str, count: int, seed: int) -> torch.Tensor:
    """The first ``count`` images of a held-out set, grey 8-bit [N, 1, 28, 28], before binarization."""
    if name == "digits":
        digits = data.load("digits", "test")
        grey = np.rint(digits.images[:count, 0].numpy() * (255 / (digits.levels - 1))).astype(np.uint8)
        return _resized(grey, 28, Image.Resampling.BILINEAR)
    if name == "inverted":
        return 255 - data.load("mnist5k", "test").images[:count]
    if name == "noise":
        return torch.randint(
            0, 256, (count, 1, 28, 28), generator=torch.Generator().manual_seed(seed), dtype=torch.uint8
        )
    if name == "photo-patches":
        photos = data.load("photo-patches", "test").images[:count].numpy()  # [N, 3, 32, 32]
        grey = np.stack([np.asarray(Image.fromarray(p.transpose(1, 2, 0), "RGB").convert("L")) for p in photos])
        return _resized(grey, 28, Image.Resampling.LANCZOS)
    raise ValueError(f"unknown held-out set {name!r}")


def held_out_colour(name: str, count: int, seed: int) -> torch.Tensor:
    """The first ``count`` images of a held-out set for a model of photo-patches: uint8 [N, 3, 32, 32]."""
    if name in ("mnist", "digits"):
        if name == "mnist":
            grey = data.load("mnist5k", "test").images[:count, 0].numpy()
        else:
            digits = data.load("digits", "test")
            grey = np.rint(digits.images[:count, 0].numpy() * (255 / (digits.levels - 1))).astype(np.uint8)
        return _resized(grey, 32, Image.Resampling.LANCZOS).expand(-1, 3, -1, -1).contiguous()
    if name == "noise":
        return torch.randint(
            0, 256, (count, 3, 32, 32), generator=torch.Generator().manual_seed(seed), dtype=torch.uint8
        )
    if name == "inverted":
        return 255 - data.load("photo-patches", "test").images[:count]
    raise ValueError(f"unknown held-out set {name!r}")


def held_out(args, name: str) -> torch.Tensor:
    """A held-out set as the model reads it: int64 [N, C, H, W]."""
    if args.data == "photo-patches":
        return held_out_colour(name, args.images, args.seed).long()
    outside = held_out_grey(name, args.images, args.seed)
    return (outside if args.grey else data.fixed_binary_draw(outside)).long()


# ------------------------------------------------------------------------------------ the models
def get_model(args, *, perturb: float):
    kind = f"perturb{perturb:g}" if perturb else "plain"
    data_kind = "mnist5k-grey" if args.grey and args.data == "mnist5k" else args.data
    folder = (
        Path(args.work) / f"{data_kind}-{kind}-{args.n_layers}x{args.hidden}-{args.train_steps}steps-seed{args.seed}"
    )
    if (folder / "model").is_dir():
        return pixelcnn.load(folder / "model"), f"{folder / 'model'} (reused)", None
    steps = args.train_steps
    config = TrainConfig(
        model="pixelcnn",
        model_options=dict(n_layers=args.n_layers, hidden=args.hidden, kernel_size=5),
        data=args.data,
        binarize=binarize(args),
        out=str(folder),
        perturb=perturb,
        max_steps=steps,
        batch_size=16,
        lr=4e-3,
        warmup_steps=min(50, steps // 5),
        lr_decay="cosine",
        ema_decay=0.998 if steps >= 500 else None,
        eval_every=None,
        eval_images=min(args.images, 1000),
        sample_images=0,
        checkpoint_every=10**9,
        progress=False,
        tensorboard=False,
        seed=args.seed,
        device="cpu",
        threads=args.threads,
    )
    start = time.perf_counter()
    result = train(config)
    if result.interrupted:  # stopped by a signal: the saved model is not the one asked for
        raise SystemExit(
            f"training of {folder} was interrupted: resume it (pixelcnn train --resume {folder}) or remove it"
        )
    final = result.final_eval
    return (
        pixelcnn.load(result.model_path),
        f"trained {steps} steps -> {result.model_path}",
        {"seconds": time.perf_counter() - start, "test_nll_nats": getattr(final, "nll", None)},
    )


# ------------------------------------------------------------------------------------ the table
def print_table(rows: list[dict], in_nll: float, name: str) -> None:
    header = ["held-out set", "N", "mean NLL (nats)", "AUROC: NLL", "likelihood ratio", "complexity"]
    cells = [header, [f"({name} test)", "", f"{in_nll:.1f}", "", "", ""]]
    for r in rows:
        cells.append([r["set"], str(r["images"]), f"{r['mean_nll']:.1f}", *(f"{r['auroc'][s]:.3f}" for s in SCORES)])
    print_cells(cells)
    print(
        f"AUROC: 1 = every held-out image scores higher than every {name} test image, 0.5 = chance, "
        "< 0.5 = the score calls the held-out set more typical than the test images."
    )


def binarize(args) -> str | None:
    """How the in-distribution images are read: binarized mnist5k unless --grey; photo-patches as they are."""
    return "dynamic" if args.data == "mnist5k" and not args.grey else None


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__
    )
    parser.add_argument("--train-steps", type=int, default=1000, help="training steps of each model (default: 1000)")
    parser.add_argument(
        "--perturb",
        type=float,
        default=0.2,
        help="the background model's rate of random value replacement (default: 0.2)",
    )
    parser.add_argument("--images", type=int, default=500, help="images of each set scored (default: 500)")
    parser.add_argument("--n-layers", type=int, default=4, help="PixelCNN layers (default: 4)")
    parser.add_argument("--hidden", type=int, default=32, help="feature maps per layer (default: 32)")
    parser.add_argument(
        "--data", choices=sorted(HELD_OUT), default="mnist5k", help="the in-distribution data set (default: mnist5k)"
    )
    parser.add_argument(
        "--sets",
        nargs="+",
        choices=sorted({s for sets in HELD_OUT.values() for s in sets}),
        help="held-out sets (default: all of those of --data: "
        + "; ".join(f"{k}: {', '.join(v)}" for k, v in HELD_OUT.items())
        + ")",
    )
    parser.add_argument(
        "--grey", action="store_true", help="model and score the 256 grey levels instead of binarized images"
    )
    parser.add_argument("--threads", type=int, default=None, help="CPU threads (default: torch's)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--work", default="runs/ood", help="folder of the trained runs (reused when there)")
    parser.add_argument("--out", default=str(default_out("ood.json")), help="JSON results (default: %(default)s)")
    args = parser.parse_args(argv)
    args.sets = args.sets or list(HELD_OUT[args.data])
    unknown = [name for name in args.sets if name not in HELD_OUT[args.data]]
    if unknown:
        parser.error(f"--sets {unknown[0]}: not a held-out set of {args.data} ({', '.join(HELD_OUT[args.data])})")
    if args.grey and args.data != "mnist5k":
        parser.error("--grey is for mnist5k (photo-patches is modelled at its 256 levels anyway)")
    for option in ("train_steps", "images", "n_layers", "hidden"):
        if getattr(args, option) < 1:
            parser.error(f"--{option.replace('_', '-')} must be a positive integer")
    if not 0 < args.perturb < 1:
        parser.error("--perturb must be in (0, 1)")
    if args.threads:
        torch.set_num_threads(args.threads)

    machine = describe()
    print_machine(machine)
    model, source, trained = get_model(args, perturb=0.0)
    background, background_source, background_trained = get_model(args, perturb=args.perturb)
    test = data.load(args.data, "test", binarize=binarize(args))
    inside = test.images[: args.images].long()
    scores_in = anomaly_scores(model, inside, background=background)
    rows = []
    for name in args.sets:
        print(f"== {name}", file=sys.stderr, flush=True)
        outside = held_out(args, name)
        scores_out = anomaly_scores(model, outside, background=background)
        rows.append(
            {
                "set": name,
                "images": len(outside),
                "mean_nll": float(scores_out["nll"].mean()),
                "mean_scores": {s: float(scores_out[s].mean()) for s in SCORES},
                "auroc": {s: auroc(scores_in[s], scores_out[s]) for s in SCORES},
            }
        )
    in_nll = float(scores_in["nll"].mean())
    print_table(rows, in_nll, args.data)
    print(f"models: {source}; background (perturb {args.perturb}): {background_source}")
    write_json(
        Path(args.out),
        {
            "machine": machine,
            "command": command_line(),
            "settings": vars(args),
            "model": source,
            "background": background_source,
            "training": {"model": trained, "background": background_trained},
            "in_distribution": {
                "set": f"{args.data} test" + (" (fixed binarization)" if binarize(args) else ""),
                "images": len(inside),
                "mean_nll": in_nll,
                "mean_scores": {s: float(scores_in[s].mean()) for s in SCORES},
                "bits_per_dim": in_nll / (math.log(2) * math.prod(test.image_shape)),
            },
            "rows": rows,
        },
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
