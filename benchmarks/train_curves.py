"""Test NLL against minutes of training: the curve of each model family on binarized mnist5k (or another set).

    python benchmarks/train_curves.py --out runs/train_curves.json
    python benchmarks/train_curves.py --data photo-patches
    python benchmarks/train_curves.py --minutes 20 --marks 5 10 15 20 --budget steps --threads 1

Each configuration trains with ``pixelcnn.train`` on the 4,000 mnist5k
training digits (binarized afresh at each batch) and is evaluated on the
1,000 test digits (one fixed binarization) at each mark. ``--data`` picks another data set (binarized
dynamically when it is
mnist5k, mnist or fashion-mnist); a set without labels needs the
unconditional configurations, which are its default. The NLL is in nats per
image and, in the JSON, in bits/dim too. Two ways to count minutes:

- ``--budget time`` (default): real minutes of training (evaluation not
  counted), evaluated at the first step past each mark. Right on a quiet
  machine.
- ``--budget steps``: on a machine shared with other jobs, wall-clock minutes
  measure the other jobs as much as the model. This mode first waits for an
  idle CPU and times 10 training steps of the configuration (the median,
  after 3 warm-up steps; ``--step-ms`` gives it instead), then trains for
  minutes x 60 / step time steps, with the cosine schedule over those steps,
  and evaluates at the steps that correspond to the marks. ``--threads 1``
  makes such a run less sensitive to the other jobs; the losses do not depend
  on the thread count.

``--precision`` and ``--compile`` are the training switches (``pixelcnn
train --precision / --compile``; default auto, auto): bf16 on a CPU with bf16
units, and ``torch.compile`` for a run of at least 1,000 steps or 3 minutes
(the compile time counts as training time). The JSON key of a run names them
(``...@10min-steps-bf16-compile-off``; older keys without them are float32 eager runs).

Runs go one after the other. Prints a table and writes JSON to ``--out``
(default runs/train_curves.json; results of earlier runs of other
configurations in that file are kept). How the configurations were chosen is
in benchmarks/README.md.

Models: PixelCNN (van den Oord et al., 2016, "Pixel Recurrent Neural
Networks", section 3.5) and the Gated PixelCNN (van den Oord et al., 2016,
"Conditional Image Generation with PixelCNN Decoders", section 2), class-
conditional through the label embedding of its equation 4.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import pixelcnn
from machine import command_line, default_out, describe, print_machine, write_json
from pixelcnn.train.config import DEMO_SCHEDULE

# The schedule every configuration uses unless it says otherwise, the demo's: batch 16 (twice the
# updates of batch 32 for about the same images/s on a CPU), a high peak learning rate, a short
# warm-up, cosine decay over the budget and EMA weights for evaluation.
SCHEDULE = DEMO_SCHEDULE
DATA_FIELDS = ("image_shape", "levels", "num_classes")  # these come from the data set, not the preset


def preset_options(name: str) -> tuple[str, dict]:
    """A preset's model name and its size options (without the data-set fields, which the data set gives)."""
    preset = pixelcnn.presets[name]
    return preset.model, {k: v for k, v in preset.config.items() if k not in DATA_FIELDS}


# name -> (model, model options, class-conditional, changes to SCHEDULE); class-conditional None:
# when the data set has labels. 5x5 kernels: at these sizes a larger receptive field is the cheapest
# way down (benchmarks/README.md, "How the configurations were chosen").
CONFIGS = {
    "gated-demo": (*preset_options("gated-demo"), True, {}),
    "pixelcnn-k5": ("pixelcnn", dict(n_layers=4, hidden=32, kernel_size=5), True, {}),
    "pixelcnn-6x32-k5": (*preset_options("pixelcnn-6x32-k5"), True, {}),
    "gated-demo-uncond": (*preset_options("gated-demo"), False, {}),
    "pixelcnn-k5-uncond": ("pixelcnn", dict(n_layers=4, hidden=32, kernel_size=5), False, {}),
    # The 10-minute search at bf16 + compile speed (about three times float32's steps): deeper
    # PixelCNNs and a deeper Gated PixelCNN; 12 x 32 won (benchmarks/README.md).
    "pixelcnn-8x32-k5": ("pixelcnn", dict(n_layers=8, hidden=32, kernel_size=5), True, {}),
    "pixelcnn-10x32-k5": ("pixelcnn", dict(n_layers=10, hidden=32, kernel_size=5), True, {}),
    "pixelcnn-12x32-k5": (*preset_options("pixelcnn-12x32-k5"), True, {}),
    "pixelcnn-16x32-k5": ("pixelcnn", dict(n_layers=16, hidden=32, kernel_size=5), True, {}),
    "gated-8x32-k5": ("gated_pixelcnn", dict(n_layers=8, hidden=32, kernel_size=5), True, {}),
    # A public implementation's recipe (batch 32, Adam 1e-3, no schedule, no EMA) on a small Gated PixelCNN.
    "gated-5x32-plain-adam": (
        "gated_pixelcnn",
        dict(n_layers=5, hidden=32),
        True,
        dict(batch_size=32, lr=1e-3, warmup_steps=0, lr_decay="none", ema_decay=None),
    ),
    # PixelCNN++ (Salimans et al., 2017), small enough for a CPU, on the same schedule as the others.
    "pixelcnnpp-photo": (*preset_options("pixelcnnpp-photo"), False, {}),
    # A check that the script runs, in seconds: one gated layer of 8 maps.
    "tiny-gated": ("gated_pixelcnn", dict(n_layers=1, hidden=8, kernel_size=3), None, {}),
}
DEFAULT = ["pixelcnn-6x32-k5", "pixelcnn-k5", "gated-demo"]
DEFAULT_UNLABELLED = ["pixelcnn-k5-uncond", "gated-demo-uncond"]


def cpu_idle_fraction(seconds: float = 1.0) -> float:
    """Fraction of CPU time idle over the next ``seconds`` (from /proc/stat; 1.0 where unavailable)."""

    def read():
        with open("/proc/stat") as f:
            values = [int(v) for v in f.readline().split()[1:]]
        return values[3] + values[4], sum(values)  # idle + iowait, total

    try:
        idle0, total0 = read()
        time.sleep(seconds)
        idle1, total1 = read()
    except OSError:
        return 1.0
    return (idle1 - idle0) / max(1, total1 - total0)


BINARIZED = ("mnist5k", "mnist", "fashion-mnist")


def data_shape(data_name: str) -> tuple[tuple[int, int, int], int, int | None]:
    """(image_shape, levels, num_classes) of the data set as the models see it."""
    from pixelcnn import data

    test = data.load(data_name, "test", binarize="threshold" if data_name in BINARIZED else None)
    return tuple(test.image_shape), test.levels, test.num_classes


def is_conditional(name: str, data_name: str) -> bool:
    """Whether the configuration conditions on the class label on this data set."""
    conditional = CONFIGS[name][2]
    return data_shape(data_name)[2] is not None if conditional is None else conditional


def build_config(name: str, data_name: str):
    """The configuration's model, built for the data set; a clear error for a conditional one without labels."""
    model_name, options, _, _ = CONFIGS[name]
    image_shape, levels, num_classes = data_shape(data_name)
    conditional = is_conditional(name, data_name)
    if conditional and num_classes is None:
        raise SystemExit(
            f"{name} is class-conditional but {data_name} has no labels: use an unconditional "
            f"configuration ({', '.join(n for n in CONFIGS if CONFIGS[n][2] is not True)})"
        )
    return pixelcnn.build(
        model_name, image_shape=image_shape, levels=levels, num_classes=num_classes if conditional else None, **options
    )


def quiet_step_seconds(name: str, data_name: str, *, wait_minutes: float = 30.0) -> dict:
    """Median seconds per training step (all threads), timed once the CPU is idle."""
    import statistics

    import torch

    changes = CONFIGS[name][3]
    batch = {**SCHEDULE, **changes}["batch_size"]
    deadline = time.time() + 60 * wait_minutes
    idle = cpu_idle_fraction()
    while idle < 0.9 and time.time() < deadline:
        time.sleep(5)
        idle = cpu_idle_fraction()
    torch.manual_seed(0)
    model = build_config(name, data_name)
    optimizer = torch.optim.Adam(model.parameters())
    images = torch.randint(0, model.levels, (batch, *model.image_shape))
    num_classes = model.config.num_classes
    labels = torch.randint(0, num_classes, (batch,)) if num_classes else None
    times = []
    for _ in range(13):
        started = time.perf_counter()
        loss = -model.log_prob(images, labels).mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        times.append(time.perf_counter() - started)
    return {
        "step_seconds": statistics.median(times[3:]),
        "cpu_idle_before": round(idle, 3),
        "threads": torch.get_num_threads(),
    }


def run_one(
    name: str,
    data_name: str,
    minutes: float,
    marks: list[float],
    seed: int,
    threads: int | None,
    budget: str,
    step_ms: float | None,
    eval_images: int | None = None,
    precision: str = "auto",
    compile: str = "auto",
) -> dict:
    """Train one configuration for ``minutes`` (real, or as steps), evaluating at each mark; its JSON row."""
    import torch

    from pixelcnn.train import TrainConfig, Trainer

    model, options, _, changes = CONFIGS[name]
    conditional = is_conditional(name, data_name)
    parameters = sum(p.numel() for p in build_config(name, data_name).parameters())
    every = _common_interval(marks)
    timing = None
    if budget == "steps":
        timing = {"step_seconds": step_ms / 1000, "given": True} if step_ms else quiet_step_seconds(name, data_name)
        steps_per_interval = max(1, round(every * 60 / timing["step_seconds"]))
        stop = dict(max_steps=steps_per_interval * round(minutes / every), eval_every=steps_per_interval)
    else:
        stop = dict(max_minutes=minutes, eval_every=None, eval_every_minutes=every)
    with tempfile.TemporaryDirectory() as folder:
        config = TrainConfig(
            model=model,
            model_options=options,
            class_conditional=conditional,
            data=data_name,
            binarize="dynamic" if data_name in BINARIZED else None,
            out=str(Path(folder) / name),
            sample_images=0,
            checkpoint_every=10**9,
            progress=True,
            eval_images=eval_images,
            precision=precision,
            compile=compile,
            tensorboard=False,
            seed=seed,
            threads=threads,
            **stop,
            **{**SCHEDULE, **changes},
        )
        load_before = os.getloadavg()[0]
        started = time.time()
        said = []
        result = Trainer(config, log=said.append).run()
        records = [json.loads(line) for line in open(Path(folder) / name / "metrics.jsonl")]
    evals = [r for r in records if r["kind"] == "eval"]
    curve = {}
    for mark in marks:
        if budget == "steps":  # the evaluation at the step that corresponds to the mark
            after = [r for r in evals if r["step"] >= round(mark / every) * steps_per_interval]
        else:  # the first evaluation at or after the mark (the first step past it)
            after = [r for r in evals if r["train_minutes"] >= mark - 1e-9]
        if after:
            record = after[0]
            curve[f"{mark:g}"] = {
                "nll": round(record["nll_nats"], 2),
                "stderr": round(record["nll_nats_stderr"], 2),
                "bits_per_dim": round(after[0]["bits_per_dim"], 4),
                "step": after[0]["step"],
                "train_minutes": after[0]["train_minutes"],
            }
    return {
        "name": name,
        "data": data_name,
        "model": model,
        "options": options,
        "class_conditional": conditional,
        "schedule": {**SCHEDULE, **changes},
        "parameters": parameters,
        "minutes": minutes,
        "budget": budget,
        "precision": precision,
        "compile": compile,
        "precision_chosen": next((m for m in said if m.startswith("precision ")), None),
        "compile_warning": next((m for m in said if "torch.compile failed" in m), None),
        "quiet_timing": timing,
        "train_minutes_measured": round(result.train_minutes, 2),
        "steps": result.step,
        "epochs": round(result.epoch, 2),
        "images_per_second": round(result.images_per_second, 1),
        "curve": curve,
        "final_nll": round(result.final_eval.nll, 2),
        "final_stderr": round(result.final_eval.nll_stderr, 2),
        "final_bits_per_dim": round(result.final_eval.bits_per_dim, 4),
        "eval_images": eval_images,
        "wall_minutes": round((time.time() - started) / 60, 2),
        "load_average_before": round(load_before, 2),
        "load_average_after": round(os.getloadavg()[0], 2),
        "threads": torch.get_num_threads(),
        "seed": seed,
    }


def _common_interval(marks: list[float]) -> float:
    """The evaluation interval that hits every mark (marks are multiples of it)."""
    step = marks[0]
    for mark in marks[1:]:
        a, b = round(step * 1000), round(mark * 1000)
        while b:
            a, b = b, a % b
        step = a / 1000
    return step


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--only",
        nargs="+",
        choices=sorted(CONFIGS),
        help=f"configurations (default: {DEFAULT}; without labels: {DEFAULT_UNLABELLED}); "
        f"tiny-gated checks the script in seconds",
    )
    parser.add_argument("--data", default="mnist5k", help="data set (default: mnist5k)")
    parser.add_argument("--minutes", type=float, default=10.0, help="minutes of training per run (default: 10)")
    parser.add_argument(
        "--marks",
        type=float,
        nargs="+",
        default=[2.5, 5, 7.5, 10],
        help="minutes at which to evaluate (default: 2.5 5 7.5 10; those past --minutes are "
        "dropped, and --minutes is always one)",
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    parser.add_argument(
        "--budget",
        choices=["time", "steps"],
        default="time",
        help="count real minutes, or steps at the quiet machine's speed (see above)",
    )
    parser.add_argument("--step-ms", type=float, help="--budget steps: milliseconds per step instead of timing it")
    parser.add_argument("--eval-images", type=int, help="test images per evaluation (default: the whole split)")
    parser.add_argument(
        "--precision",
        choices=["auto", "fp32", "bf16", "fp16"],
        default="auto",
        help="training precision (default: auto)",
    )
    parser.add_argument(
        "--compile",
        choices=["auto", "on", "off"],
        default="auto",
        help="torch.compile the training step (default: auto)",
    )
    parser.add_argument(
        "--out",
        type=Path,
        default=default_out("train_curves.json"),
        help="JSON file (default: %(default)s; the committed results are benchmarks/results/train_curves.json)",
    )
    args = parser.parse_args(argv)
    marks = sorted(m for m in args.marks if m <= args.minutes)
    if not marks or marks[-1] != args.minutes:
        marks.append(args.minutes)

    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    machine = describe()
    print_machine(machine)
    results = json.loads(args.out.read_text()) if args.out.exists() else {}
    runs = results.setdefault("runs", {})
    results["machine"] = machine
    names = args.only or (DEFAULT if data_shape(args.data)[2] is not None else DEFAULT_UNLABELLED)
    unit = "nll" if args.data in BINARIZED else "bits_per_dim"  # nats for binary digits, bits/dim otherwise
    print(
        f"test {'NLL in nats' if unit == 'nll' else 'bits/dim'} on {args.data}, {args.minutes:g} minutes "
        f"({args.budget} budget) per configuration, {len(names)} configuration(s)"
    )
    header = (
        f"{'configuration':<28}{'params':>10}{'steps':>7}{'img/s':>7}"
        + "".join(f"{f'{m:g} min':>10}" for m in marks)
        + f"{'load':>6}"
    )
    print(header + "\n" + "-" * len(header), flush=True)
    from tqdm.auto import tqdm

    for name in tqdm(names, desc="configurations", unit="run"):
        row = run_one(
            name,
            args.data,
            args.minutes,
            marks,
            args.seed,
            args.threads,
            args.budget,
            args.step_ms,
            args.eval_images,
            args.precision,
            args.compile,
        )
        row["command"] = command_line()
        data_tag = "" if args.data == "mnist5k" else f"-{args.data}"
        switches = f"-{args.precision}" + (f"-compile-{args.compile}" if args.compile != "auto" else "")
        runs[f"{name}{data_tag}@{args.minutes:g}min-{args.budget}{switches}"] = row
        cells = "".join(
            f"{row['curve'].get(f'{m:g}', {}).get(unit, float('nan')):>10.{2 if unit == 'nll' else 3}f}" for m in marks
        )
        tqdm.write(
            f"{name:<28}{row['parameters']:>10,d}{row['steps']:>7}{row['images_per_second']:>7.0f}{cells}"
            f"{row['load_average_after']:>6.1f}"
        )
        write_json(args.out, results)  # after every run: a long series that stops keeps what it measured
    return 0


if __name__ == "__main__":
    sys.exit(main())
