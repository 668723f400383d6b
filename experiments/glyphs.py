"""New glyphs of an unseen font: the Conditional PixelCNN paper's identity experiment on fonts, with a fair judge.

van den Oord et al., 2016, "Conditional Image Generation with PixelCNN
Decoders", Section 3.2: a PixelCNN conditioned on a triplet-loss embedding
(Schroff et al., 2015, "FaceNet") of portraits draws new portraits of a person
it never saw (Figure 4) and decodes the line between two embeddings
(Figure 5). Here each font is an identity and its glyphs the views
(``pixelcnn.data`` ``glyphs``: A-Z, a-z, 0-9 of every text font on the
machine, 28 x 28, binarized at 128; a quarter of the font families held out).

Runs ``pixelcnn identity`` (the triplet embedding of the training fonts, the
conditional Gated PixelCNN on (glyph, code of its font from 4 other glyphs),
and the judge: a font classifier trained on real glyphs of every font, held-out
ones included, that never sees a generated glyph), then draws the pictures:

    identity.png               each row: 4 glyphs of a held-out font | 8 new glyphs from their code (Figure 4)
    identity-interpolation.png from one held-out font's code to another's, 3 seeds (Figure 5)
    glyphs.json                the fonts, the measurements, the judge's figures, the budget and the machine

into ``--docs`` (default: the repository's docs/). A finished run in --out is
reused. One torch thread (--threads). The budget: --triplet-steps, --steps
(the PixelCNN's, capped by --minutes), --judge-steps.

    python experiments/glyphs.py --steps 20 --triplet-steps 50 --judge-steps 50 --out runs/glyphs-quick
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import torch

from pixelcnn import data
from pixelcnn.cli import main as pixelcnn_command
from pixelcnn.identity import read_identity

REPO = Path(__file__).resolve().parent.parent
DOCS = REPO / "docs"
sys.path.insert(0, str(REPO / "benchmarks"))
from machine import describe, print_machine  # noqa: E402  (benchmarks/machine.py: the machine a number came from)


def fonts_report() -> dict:
    """How many fonts and images each split gives on this machine, and which files were dropped and why."""
    train, test = data.load("glyphs", "train"), data.load("glyphs", "test")
    fonts = train.extra["fonts"]
    return {
        "fonts": len(fonts),
        "families": len({f["family"] for f in fonts}),
        "held_out_fonts": [f["name"] for f in fonts if f["held_out"]],
        "held_out_families": sorted({f["family"] for f in fonts if f["held_out"]}),
        "train_images": len(train),
        "test_images": len(test),
        "dropped": [{"file": Path(d["file"]).name, "reason": d["reason"]} for d in train.extra["dropped"]],
    }


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--steps", type=int, default=4500, help="steps of PixelCNN training, the budget (default: 4500; batch 32)"
    )
    parser.add_argument(
        "--minutes",
        type=float,
        default=90.0,
        help="a cap on the PixelCNN's training minutes, whichever of it and --steps comes first (default: 90)",
    )
    parser.add_argument("--triplet-steps", type=int, default=1500, help="steps of the triplet stage (default: 1500)")
    parser.add_argument("--judge-steps", type=int, default=1500, help="steps of the judge's training (default: 1500)")
    parser.add_argument(
        "--judge-samples", type=int, default=8, help="new glyphs per held-out font that the judge scores (default: 8)"
    )
    parser.add_argument("--n-layers", type=int, default=8, help="the PixelCNN's gated layers (default: 8)")
    parser.add_argument("--hidden", type=int, default=32, help="the PixelCNN's maps per layer (default: 32)")
    parser.add_argument(
        "--kernel-size", type=int, default=5, help="the PixelCNN's filter size after its first layer (default: 5)"
    )
    parser.add_argument(
        "--precision",
        choices=["auto", "fp32", "bf16", "fp16"],
        default="auto",
        help="the PixelCNN's training precision (default: auto: bf16 where the CPU has bf16 units)",
    )
    parser.add_argument("--rows", type=int, default=8, help="held-out fonts in identity.png (default: 8)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (default: 1)")
    parser.add_argument("--out", default="runs/glyphs", help="the run folder (reused when finished)")
    parser.add_argument(
        "--docs",
        type=Path,
        default=DOCS,
        help="where the pictures and glyphs.json go (default: the repository's docs/)",
    )
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    args.docs.mkdir(parents=True, exist_ok=True)
    machine = describe()
    print_machine(machine)
    load_before = os.getloadavg()
    started = time.perf_counter()
    common = ["--scale", "2", "--device", "cpu"]
    identity = [
        "identity",
        "--data",
        "glyphs",
        "--binarize",
        "threshold",
        "--steps",
        str(args.steps),
        "--minutes",
        str(args.minutes),
        "--triplet-steps",
        str(args.triplet_steps),
        "--judge-steps",
        str(args.judge_steps),
        "--judge-samples",
        str(args.judge_samples),
        "--n-layers",
        str(args.n_layers),
        "--hidden",
        str(args.hidden),
        "--kernel-size",
        str(args.kernel_size),
        "--precision",
        args.precision,
        "--identities",
        str(args.rows),
        "--no-progress",
        *common,
        "--out",
        args.out,
    ]
    pictures = {
        "identity.png": [
            "identity-sample",
            args.out,
            "--identities",
            str(args.rows),
            "--samples",
            "8",
            *common,
            "--force",
            "--out",
            str(args.docs / "identity.png"),
        ],
        "identity-interpolation.png": [
            "identity-sample",
            args.out,
            "--identities",
            str(args.rows),
            "--interpolate",
            "--steps",
            "8",
            "--rows",
            "3",
            *common,
            "--force",
            "--out",
            str(args.docs / "identity-interpolation.png"),
        ],
    }
    for command in (identity, *pictures.values()):
        print("pixelcnn " + " ".join(command), flush=True)
        if pixelcnn_command(command) != 0:
            raise SystemExit(f"pixelcnn {command[0]} failed")
    saved = read_identity(args.out)

    def here(command: list[str]) -> str:  # as typed in the repository root
        return "pixelcnn " + " ".join(command).replace(f"{REPO}/", "")

    report = {
        "machine": {
            **machine,
            "load_average_1_5_15_min_before": load_before,
            "load_average_1_5_15_min_after": os.getloadavg(),
        },
        "threads": args.threads,
        "fonts": fonts_report(),
        **saved,
        "commands": {"run": here(identity), **{name: here(command) for name, command in pictures.items()}},
        "total_minutes_this_call": (time.perf_counter() - started) / 60,
    }
    (args.docs / "glyphs.json").write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {args.docs / 'glyphs.json'}")


if __name__ == "__main__":
    main()
