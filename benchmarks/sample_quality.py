"""How often a class-conditional model's samples are the digit they were asked to be.

    python benchmarks/sample_quality.py zoo:mnist5k --out runs/sample_quality.json
    python benchmarks/sample_quality.py runs/mnist --per-class 50 --seed 1

A small CNN (two 3x3 convolutions, 32 and 64 maps, each with a 2x2 max-pool,
then 128 hidden units) is trained, with its own seed, on the 4,000 real
mnist5k training digits, binarized afresh at each epoch as the models see
them. Its accuracy on the 1,000 real test digits (grey, and the one fixed
binarization that the NLL is measured on) is printed beside the number that
matters: the fraction of the model's samples, ``--per-class`` for each of the
10 classes, that it assigns to the class they were drawn for. The classifier's
own accuracy bounds what that fraction can show.

Works for any class-conditional model of binary 28x28 images with 10 classes
(a RUN folder, a model folder or ``zoo:NAME``). Prints a table and writes JSON.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch
from torch import nn

import pixelcnn
from machine import command_line, default_out, describe, print_cells, print_machine, write_json
from pixelcnn import data

CLASSIFIER_EPOCHS = 12


def digit_classifier() -> nn.Module:
    """[B, 1, 28, 28] floats in 0..1 -> [B, 10] logits."""
    return nn.Sequential(
        nn.Conv2d(1, 32, 3, padding=1),
        nn.ReLU(),
        nn.MaxPool2d(2),  # [B, 32, 14, 14]
        nn.Conv2d(32, 64, 3, padding=1),
        nn.ReLU(),
        nn.MaxPool2d(2),  # [B, 64, 7, 7]
        nn.Flatten(),
        nn.Linear(64 * 7 * 7, 128),
        nn.ReLU(),
        nn.Dropout(0.25),
        nn.Linear(128, 10),
    )


def train_classifier(
    seed: int = 0, epochs: int = CLASSIFIER_EPOCHS, batch_size: int = 64, max_images: int | None = None
) -> tuple[nn.Module, dict]:
    """The classifier, trained on mnist5k's train digits binarized afresh each epoch; its test accuracies."""
    torch.manual_seed(seed)
    generator = torch.Generator().manual_seed(seed)
    train = data.load("mnist5k", "train")
    images, labels = train.images[:max_images], train.labels[:max_images]  # uint8 [N, 1, 28, 28], [N]
    grey = images.float() / 255
    classifier = digit_classifier()
    optimizer = torch.optim.Adam(classifier.parameters(), lr=1e-3)
    classifier.train()
    for _ in range(epochs):
        binary = torch.bernoulli(grey, generator=generator)  # the dynamic binarization the models train on
        order = torch.randperm(len(images), generator=generator)
        for start in range(0, len(images), batch_size):
            batch = order[start : start + batch_size]
            loss = nn.functional.cross_entropy(classifier(binary[batch]), labels[batch])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    classifier.eval()
    test_grey = data.load("mnist5k", "test")
    test_binary = data.load("mnist5k", "test", binarize="dynamic")  # the fixed draw of the NLL
    accuracy = {
        "real_test_digits_grey": accuracy_of(classifier, test_grey.images.float() / 255, test_grey.labels),
        "real_test_digits_binarized": accuracy_of(classifier, test_binary.images.float(), test_binary.labels),
    }
    return classifier, accuracy


@torch.no_grad()
def accuracy_of(classifier: nn.Module, images: torch.Tensor, labels: torch.Tensor) -> float:
    """Fraction of ``images`` (floats in 0..1, [N, 1, 28, 28]) assigned to ``labels``."""
    return float((classifier(images).argmax(1) == labels).float().mean())


@torch.no_grad()
def sample_accuracy(model, classifier: nn.Module, per_class: int, seed: int, batch: int = 250) -> dict:
    """Draw ``per_class`` samples of each class (the fast sampler), classify them: overall and per class."""
    config = model.config
    if getattr(config, "num_classes", None) != 10 or tuple(model.image_shape) != (1, 28, 28) or model.levels != 2:
        raise SystemExit(
            "sample_quality.py needs a class-conditional model of binary 28x28 images with 10 classes; "
            f"got image_shape={tuple(model.image_shape)}, levels={model.levels}, "
            f"num_classes={getattr(config, 'num_classes', None)}"
        )
    wanted = torch.arange(10).repeat_interleave(per_class)  # [10 * per_class]
    generator = torch.Generator().manual_seed(seed)
    started = time.perf_counter()
    samples = torch.cat(
        [model.sample(len(part), cond=part, generator=generator) for part in wanted.split(batch)]
    )  # int [N, 1, 28, 28] in {0, 1}
    seconds = time.perf_counter() - started
    predicted = classifier(samples.float()).argmax(1)
    right = predicted == wanted
    return {
        "samples": len(wanted),
        "accuracy": float(right.float().mean()),
        "per_class": [float(right[wanted == c].float().mean()) for c in range(10)],
        "sampling_seconds": seconds,
    }


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("run", help="a class-conditional binary 28x28 model: run folder, model folder or zoo:NAME")
    parser.add_argument("--per-class", type=int, default=50, help="samples of each class (default: 50)")
    parser.add_argument("--seed", type=int, default=0, help="the samples' generator (default: 0)")
    parser.add_argument("--classifier-seed", type=int, default=0, help="the classifier's training (default: 0)")
    parser.add_argument("--classifier-epochs", type=int, default=CLASSIFIER_EPOCHS)
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    parser.add_argument("--out", default=str(default_out("sample_quality.json")), help="JSON to write")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    machine = describe()
    print_machine(machine)
    from pixelcnn.cli import open_run

    model = open_run(args.run, "cpu").model
    classifier, classifier_accuracy = train_classifier(args.classifier_seed, args.classifier_epochs)
    result = sample_accuracy(model, classifier, args.per_class, args.seed)
    cells = [
        ["what", "accuracy"],
        ["classifier on the real test digits (grey)", f"{classifier_accuracy['real_test_digits_grey']:.1%}"],
        ["classifier on the test digits, binarized", f"{classifier_accuracy['real_test_digits_binarized']:.1%}"],
        [f"{args.run} samples ({result['samples']}), intended class", f"{result['accuracy']:.1%}"],
    ]
    cells += [[f"  class {c}", f"{a:.1%}"] for c, a in enumerate(result["per_class"])]
    print_cells(cells)
    write_json(
        Path(args.out),
        {
            "command": command_line(),
            "machine": machine,
            "run": args.run,
            "per_class": args.per_class,
            "seed": args.seed,
            "classifier_seed": args.classifier_seed,
            "classifier_epochs": args.classifier_epochs,
            "classifier_accuracy": classifier_accuracy,
            "pixelcnn_version": pixelcnn.__version__,
            **result,
        },
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
