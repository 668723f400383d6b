"""Every model family on mnist5k at one budget: the papers' comparison tables at small scale.

    python benchmarks/families.py --minutes 6 --threads 1 --out benchmarks/results/families.json
    python benchmarks/families.py --only pixelcnn gated --minutes 2

Each family trains class-conditional on the 4,000 mnist5k training digits
(binarized afresh at each batch, the demo's schedule: batch 16, cosine decay,
EMA), for the same budget: ``--minutes`` of one process's CPU time. On a
machine shared with other jobs, wall-clock minutes measure the other jobs;
CPU time does not (much). So the script first times the family's training
step in CPU seconds (a 13-step run less a 3-step run, same set-up), then
trains for minutes x 60 / that many steps, the schedule planned over them.
With ``--threads 1`` CPU time is the time a quiet core would take.

Then, for each trained model:

- test NLL on the 1,000 test digits (the one fixed binarization of the zoo
  and the demo), nats per image with its standard error, float32;
- the samples' class accuracy: ``--per-class`` samples of each digit class,
  classified by the CNN of ``benchmarks/sample_quality.py`` (trained once,
  its own accuracy on the real test digits printed beside it). The
  auto-encoders take no class: theirs is the accuracy of their
  reconstructions of test digits (a sample given the digit's code for the
  PixelCNN auto-encoder, the decoding for the MSE one);
- training images/s (CPU time, from the timed steps) and sampling seconds
  per image (10 images in one batch, the cached sampler, CPU time).

The MSE auto-encoder has no likelihood: its row gives the mean squared error
per pixel instead of an NLL. Finished runs are kept under ``--runs``
(default runs/families/NAME) and reused by a later call unless
``--retrain``. Prints a table and writes JSON (the rows of an earlier call at the
same budget in that file are kept); ``docs/results.md`` reads the committed JSON
against the papers' tables.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

import torch

import pixelcnn
from machine import command_line, default_out, describe, print_cells, print_machine, write_json
from pixelcnn import data
from pixelcnn.evaluate import evaluate
from pixelcnn.train import TrainConfig, Trainer
from pixelcnn.train.config import DEMO_SCHEDULE
from sample_quality import CLASSIFIER_EPOCHS, accuracy_of, sample_accuracy, train_classifier

# family -> (model or preset, options over it, class-conditional). Sizes: each family's mnist
# preset where there is one (the PixelRNN paper's 7 layers of 16 for its MNIST models), a
# PixelCNN and a Gated PixelCNN of the zoo's depth, and the smallest PixelCNN++ (one block of
# 32 maps per resolution; binary values through its logistic mixture head).
FAMILIES = {
    "pixelcnn": ("pixelcnn-12x32-k5", {}, True),
    "gated": ("gated_pixelcnn", dict(n_layers=8, hidden=32, kernel_size=5), True),
    "row-lstm": ("rowlstm-mnist", {}, True),
    "diagonal-bilstm": ("diagbilstm-mnist", {}, True),
    "multiscale": ("multiscale-mnist", {}, True),
    "pixelcnn-pp": ("pixelcnn_pp", dict(n_layers=1, hidden=32), True),
    "pixelcnn-ae": ("ae-mnist", {}, False),
    "mse-ae": ("mse-mnist", {}, False),
}
TIMING_STEPS = (3, 13)  # the step time is the difference of these two runs' CPU time, divided


def train_config(name: str, out: Path, *, threads: int | None, precision: str, **budget) -> TrainConfig:
    model, options, conditional = FAMILIES[name]
    return TrainConfig(
        model=model,
        model_options=options,
        class_conditional=conditional,
        data="mnist5k",
        binarize="dynamic",
        out=str(out),
        sample_images=0,
        checkpoint_every=10**9,
        tensorboard=False,
        precision=precision,
        compile="off",
        threads=threads,
        seed=0,
        **{**DEMO_SCHEDULE, **budget},
    )


def step_cpu_seconds(name: str, *, threads: int | None, precision: str) -> float:
    """CPU seconds of one training step: (CPU time of a 13-step run - of a 3-step run) / 10."""
    spent = []
    for steps in TIMING_STEPS:
        with tempfile.TemporaryDirectory() as folder:
            config = train_config(
                name,
                Path(folder) / "run",
                threads=threads,
                precision=precision,
                max_steps=steps,
                eval_every=None,
                eval_images=1,
                progress=False,
            )
            started = time.process_time()
            Trainer(config, log=lambda message: None).run()
            spent.append(time.process_time() - started)
    return step_seconds_from(spent)


def step_seconds_from(spent: list[float]) -> float:
    """One step's CPU seconds from the CPU times of the two timing runs (TIMING_STEPS steps each).

    The difference divided by the steps between them leaves the set-up out. But for a tiny model the
    set-up is nearly all of it, and noise can make the longer run no dearer than the shorter: a
    difference of ~0 made a budget of 300,000 steps (the CI run that hung for it). When the difference
    is under a tenth of the longer run's mean time per step, that mean (set-up included: an
    overestimate, so fewer steps) is used instead.
    """
    difference = (spent[1] - spent[0]) / (TIMING_STEPS[1] - TIMING_STEPS[0])
    mean_with_setup = spent[1] / TIMING_STEPS[1]
    return difference if difference > 0.1 * mean_with_setup else max(mean_with_setup, 1e-6)


def train(name: str, folder: Path, minutes: float, *, threads: int | None, precision: str, retrain: bool) -> dict:
    """Train ``name`` for ``minutes`` of CPU time into ``folder`` (or reuse a finished run there): its facts."""
    facts_file = folder / "family.json"
    if facts_file.exists() and not retrain:
        facts = json.loads(facts_file.read_text())
        if facts["minutes"] == minutes and facts["precision"] == precision:
            return facts
    if folder.exists():
        shutil.rmtree(folder)
    step_seconds = step_cpu_seconds(name, threads=threads, precision=precision)
    steps = max(1, round(minutes * 60 / step_seconds))
    config = train_config(
        name,
        folder,
        threads=threads,
        precision=precision,
        max_steps=steps,
        eval_every=None,
        eval_images=1,
        progress=True,
    )
    started, wall = time.process_time(), time.time()
    said = []
    Trainer(config, log=said.append).run()
    facts = {
        "minutes": minutes,
        "precision": precision,
        "step_cpu_seconds": step_seconds,
        "steps": steps,
        "images_per_second": config.batch_size / step_seconds,
        "train_cpu_minutes": (time.process_time() - started) / 60,
        "train_wall_minutes": (time.time() - wall) / 60,
        "precision_chosen": next((m for m in said if m.startswith("precision ")), None),
    }
    facts_file.write_text(json.dumps(facts, indent=1))
    return facts


@torch.no_grad()
def measure(name: str, model, classifier, *, per_class: int, eval_images: int | None) -> dict:
    """Test NLL (or MSE), the class accuracy of samples (or reconstructions) and seconds per sample."""
    test = data.load("mnist5k", "test", binarize="dynamic")
    result = evaluate(model, test, max_images=eval_images, precision="fp32", compile="off")
    row = (
        {"nll_nats": result.nll, "nll_nats_stderr": result.nll_stderr, "bits_per_dim": result.bits_per_dim}
        if model.loss_name == "nll"
        else {model.loss_name: result.loss, f"{model.loss_name}_stderr": result.loss_stderr}
    )
    conditional = FAMILIES[name][2]
    if conditional:
        quality = sample_accuracy(model, classifier, per_class, seed=0)
        row.update(
            accuracy=quality["accuracy"], accuracy_of="samples of each class", accuracy_images=quality["samples"]
        )
    else:
        images, labels = test.images[: 10 * per_class].long(), test.labels[: 10 * per_class]
        if name == "mse-ae":
            pictures = model.reconstruct(images)  # [N, 1, 28, 28] in [0, 1]
        else:  # one sample given each code
            generator = torch.Generator().manual_seed(0)
            pictures = model.reconstruct(images, generator=generator)[:, 0].float()  # [N, 1, 28, 28] in {0, 1}
        row.update(
            accuracy=accuracy_of(classifier, pictures, labels),
            accuracy_of="reconstructions of test digits",
            accuracy_images=len(labels),
        )
    if name != "mse-ae":
        cond = torch.arange(10) if conditional else model.encode(test.images[:10].long())
        generator = torch.Generator().manual_seed(0)
        started = time.process_time()
        model.sample(10, cond=cond, generator=generator)
        row["sample_cpu_seconds_per_image"] = (time.process_time() - started) / 10
    return row


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--only", nargs="+", choices=list(FAMILIES), help="families (default: all)")
    parser.add_argument("--minutes", type=float, default=6.0, help="CPU minutes of training each (default: 6)")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    parser.add_argument(
        "--precision",
        choices=["auto", "fp32", "bf16"],
        default="auto",
        help="training precision (default: auto); evaluation is float32",
    )
    parser.add_argument("--per-class", type=int, default=20, help="samples of each class classified (default: 20)")
    parser.add_argument("--eval-images", type=int, default=None, help="test digits scored (default: all 1,000)")
    parser.add_argument("--classifier-epochs", type=int, default=CLASSIFIER_EPOCHS)
    parser.add_argument("--runs", type=Path, default=Path("runs/families"), help="where the trained runs are kept")
    parser.add_argument("--retrain", action="store_true", help="train again even where a finished run is kept")
    parser.add_argument("--out", type=Path, default=default_out("families.json"), help="JSON to write")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    machine = describe()
    print_machine(machine)
    classifier, classifier_accuracy = train_classifier(0, args.classifier_epochs)
    classifier.eval()
    print(f"digit classifier: {classifier_accuracy['real_test_digits_grey']:.1%} on the real test digits", flush=True)
    # Rows of an earlier call at the same budget stay (``--only`` adds or replaces some).
    earlier = json.loads(args.out.read_text()) if args.out.exists() else {}
    rows = earlier.get("families", {}) if earlier.get("minutes") == args.minutes else {}
    for name in args.only or list(FAMILIES):
        print(f"{name}: training for {args.minutes:g} CPU minutes", flush=True)
        facts = train(
            name, args.runs / name, args.minutes, threads=args.threads, precision=args.precision, retrain=args.retrain
        )
        model = pixelcnn.load(args.runs / name).eval()
        model_name, options, conditional = FAMILIES[name]
        rows[name] = {
            "model": model_name,
            "options": options,
            "class_conditional": conditional,
            "parameters": sum(p.numel() for p in model.parameters()),
            **facts,
            **measure(name, model, classifier, per_class=args.per_class, eval_images=args.eval_images),
        }
        write_json(
            args.out,
            {
                "command": command_line(),
                "machine": machine,
                "minutes": args.minutes,
                "classifier_accuracy": classifier_accuracy,
                "schedule": DEMO_SCHEDULE,
                "pixelcnn_version": pixelcnn.__version__,
                "families": rows,
            },
        )
    cells = [["family", "params", "steps", "train img/s", "test NLL (nats)", "class acc.", "s / sample"]]
    for name, row in ((name, rows[name]) for name in FAMILIES if name in rows):
        nll = f"{row['nll_nats']:.2f} ± {row['nll_nats_stderr']:.2f}" if "nll_nats" in row else f"MSE {row['mse']:.4f}"
        seconds = row.get("sample_cpu_seconds_per_image")
        cells.append(
            [
                name,
                f"{row['parameters']:,}",
                f"{row['steps']:,}",
                f"{row['images_per_second']:.0f}",
                nll,
                f"{row['accuracy']:.1%}",
                "-" if seconds is None else f"{seconds:.3f}",
            ]
        )
    print_cells(cells)
    return 0


if __name__ == "__main__":
    sys.exit(main())
