"""The zoo's cards: re-measure every entry, or make an entry from a finished run.

    python benchmarks/zoo.py --out runs/zoo.json
    python benchmarks/zoo.py --only digits

Without ``add``, every entry of ``pixelcnn.zoo`` is loaded and its test NLL
recomputed on the whole test split of its data set in float32, then printed
beside the number on its card (a card the code cannot reproduce is a bug; the
quick version of this check, on each card's stored subset, is a test).

``add NAME --run RUN ...`` makes the entry ``src/pixelcnn/zoo/NAME/`` from a
finished ``pixelcnn train`` run: the EMA weights of ``RUN/model`` (float32),
and a card with the command, the commit, the machine, the steps and minutes
from ``RUN/metrics.jsonl``, the test NLL with its standard error, and a fixed
subset of the test split with its mean NLL for the test to recompute.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path

import torch

import pixelcnn
from machine import command_line, default_out, describe, print_cells, print_machine, write_json
from pixelcnn import data, zoo
from pixelcnn.evaluate import evaluate, nll_per_image

VERIFY_IMAGES = 64  # the test images whose NLL a card stores for the quick test (the first ones)
VERIFY_FILE = "verify.safetensors"  # an identity entry's verify glyphs and their codes


def entry_dataset(card: dict, split: str = "test"):
    return data.load(card["data"], split, binarize=card["binarize"])


def measure(model, card: dict, max_images: int | None = None) -> dict:
    """The card's ``test`` block: NLL over the test split (or its first ``max_images``), float32."""
    result = evaluate(model, entry_dataset(card), max_images=max_images, precision="fp32", compile="off")
    return result.to_dict()


def verify_block(model, card: dict) -> dict:
    """The first VERIFY_IMAGES test images and their mean NLL: what the quick test recomputes."""
    dataset = entry_dataset(card)
    losses = nll_per_image(model, dataset, max_images=VERIFY_IMAGES, precision="fp32", compile="off")
    return {"split": "test", "first_images": len(losses), "nll_nats": float(losses.mean()), "tolerance_nats": 0.01}


def training_facts(run: Path) -> dict:
    """Steps and training minutes of a run, from the last training line of its metrics.jsonl."""
    last = None
    with open(run / "metrics.jsonl", encoding="utf-8") as f:
        for line in f:
            record = json.loads(line)
            if record.get("kind") == "train":
                last = record
    if last is None:
        raise SystemExit(f"{run}/metrics.jsonl has no training line: is {run} a finished pixelcnn train run?")
    return {"steps": int(last["step"]), "train_minutes": round(float(last["train_minutes"]), 2)}


def add_entry(args) -> None:
    run = Path(args.run)
    config = json.loads((run / "config.json").read_text())
    model = pixelcnn.load(run / "model").float()
    folder = zoo.ZOO_DIR / args.name
    if folder.exists():
        shutil.rmtree(folder)
    pixelcnn.save(model, folder)  # float32 safetensors + config.json
    machine = describe()
    card = {
        "name": args.name,
        "summary": args.summary,
        "data": config["data"],
        "split": "test",
        "binarize": config["binarize"],
        "model": model.name,
        "preset": args.preset,
        "class_conditional": bool(config["class_conditional"]),
        "command": args.command,
        "commit": args.commit,
        "machine": {
            "cpu": machine["cpu"],
            "bf16": ", ".join(machine["bf16_flags"]) or "no bf16 units",
            "threads": args.threads,
            "load": args.load,
            "torch": machine["torch"],
        },
        **training_facts(run),
        "parameters": sum(p.numel() for p in model.parameters()),
        "test": measure(model, {"data": config["data"], "binarize": config["binarize"]}),
        "quality": {},
    }
    card["verify"] = verify_block(model, card)
    if args.quality:  # a JSON of benchmarks/sample_quality.py
        quality = json.loads(Path(args.quality).read_text())
        card["quality"] = {
            "samples_in_class": quality["accuracy"],
            "samples": quality["samples"],
            "samples_in_class_by_class": quality["per_class"],
            "classifier_on_real_test": quality["classifier_accuracy"]["real_test_digits_grey"],
            "quality_command": quality["command"],
        }
    (folder / zoo.CARD_FILE).write_text(json.dumps(card, indent=2) + "\n")
    print(zoo.render_card(args.name))


@torch.no_grad()
def held_out_nll(model, identity: dict) -> tuple[dict, dict]:
    """-log p(x | code of its font) over every held-out glyph (the code: the mean embedding of 4 other glyphs of
    the font, as in training): the card's ``test`` block, and the first VERIFY_IMAGES glyphs with their codes."""
    from pixelcnn.identity import class_subset, embed, identity_codes, identity_split, load_identity_data

    config = identity["config"]
    train_all, test_all = load_identity_data(config)
    _, unseen = identity_split(train_all, test_all, identity["measurements"]["training_classes"])
    held_out = class_subset(test_all, unseen)
    images = held_out.prepare_batch(held_out.images, torch.Generator().manual_seed(0))  # [N, 1, H, W]
    codes = identity_codes(
        embed(model, held_out),
        held_out.labels,
        torch.arange(len(held_out)),
        config["identity_images"],
        torch.Generator().manual_seed(0),
    )  # [N, D]
    losses = torch.cat([-model.log_prob(x, c) for x, c in zip(images.split(256), codes.split(256))]).double()
    nll, stderr = float(losses.mean()), float(losses.std()) / len(losses) ** 0.5
    test = {
        "data": config["data"],
        "split": "test (held-out fonts)",
        "images": len(losses),
        "nll_nats": nll,
        "nll_nats_stderr": stderr,
        "bits_per_dim": float(pixelcnn.bits_per_dim(nll, model.image_shape)),
        "bits_per_dim_stderr": float(pixelcnn.bits_per_dim(stderr, model.image_shape)),
        "precision": "float32",
        "given": "the code of 4 other glyphs of the same font",
    }
    verify = {
        "images": images[:VERIFY_IMAGES].to(torch.uint8).contiguous(),
        "codes": codes[:VERIFY_IMAGES].float().contiguous(),
    }
    return test, verify


def add_identity_entry(args) -> None:
    """An entry from a finished ``pixelcnn identity`` run: its model/ and identity.json, the card, and the
    verify glyphs stored with their codes (the glyphs data set depends on the fonts a machine has)."""
    from safetensors.torch import save_file

    run = Path(args.run)
    identity = json.loads((run / "identity.json").read_text())
    model = pixelcnn.load(run / "model").float().eval()
    folder = zoo.ZOO_DIR / args.name
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir()
    pixelcnn.save(model, folder / "model")
    shutil.copy(run / "identity.json", folder / "identity.json")
    test, verify = held_out_nll(model, identity)
    save_file(verify, str(folder / VERIFY_FILE))
    with torch.no_grad():
        verify_nll = float(-model.log_prob(verify["images"].long(), verify["codes"]).double().mean())
    config, measured = identity["config"], identity["measurements"]
    judge = measured.get("judge", {})
    machine = describe()
    card = {
        "name": args.name,
        "kind": "identity",
        "summary": args.summary,
        "data": config["data"],
        "split": "test",
        "binarize": config["binarize"],
        "model": model.name,
        "preset": None,
        "class_conditional": False,
        "command": args.command,
        "commit": args.commit,
        "machine": {
            "cpu": machine["cpu"],
            "bf16": ", ".join(machine["bf16_flags"]) or "no bf16 units",
            "threads": args.threads,
            "load": args.load,
            "torch": machine["torch"],
        },
        "steps": measured["decoder"]["steps"],
        "train_minutes": round(measured["minutes"], 2),
        "parameters": sum(p.numel() for p in model.parameters()),
        "test": test,
        "identity": {
            "training_fonts": len(measured["training_classes"]),
            "held_out_fonts": len(measured["unseen_classes"]),
            "embedding_1nn_held_out": measured["unseen"]["nearest_neighbour_accuracy"],
            "embedding_1nn_training": measured["seen"]["nearest_neighbour_accuracy"],
            "judge_on_real_held_out": judge.get("real_held_out_accuracy"),
            "judge_new_glyphs_to_their_font": judge.get("generated"),
            "judge_wrong_code_control": judge.get("wrong_identity_control"),
            "chance": judge.get("chance"),
        },
        "verify": {
            "split": "held-out glyphs stored in " + VERIFY_FILE,
            "first_images": VERIFY_IMAGES,
            "file": VERIFY_FILE,
            "nll_nats": verify_nll,
            "tolerance_nats": 0.01,
        },
        "notes": [
            "The glyphs data set is made from the fonts a machine has (matplotlib's and the Debian fonts-* "
            "packages .ci/run installs), so the verify glyphs are stored in the entry."
        ],
    }
    (folder / zoo.CARD_FILE).write_text(json.dumps(card, indent=2) + "\n")
    print(zoo.render_card(args.name))


def remeasure(args) -> None:
    machine = describe()
    print_machine(machine)
    rows, cells = [], [["entry", "data", "images", "card NLL", "measured NLL", "difference", "bits/dim", "agrees"]]
    for name in args.only or zoo.names():
        card = zoo.card(name)
        model = pixelcnn.load(f"zoo:{name}")
        if card.get("kind") == "identity":  # held-out fonts given their codes (every glyph)
            measured = held_out_nll(model, json.loads((zoo.path(name) / "identity.json").read_text()))[0]
        else:
            measured = measure(model, card, args.max_images)
        stated = card["test"]
        difference = measured["nll_nats"] - stated["nll_nats"]
        # Another CPU's float32 sums differ in the last bits, nothing more: a full-split mean agrees to 0.01 nats.
        agrees = measured["images"] != stated["images"] or abs(difference) < 0.01
        rows.append(
            {"name": name, "card": stated, "measured": measured, "difference_nats": difference, "agrees": agrees}
        )
        cells.append(
            [
                name,
                card["data"],
                str(measured["images"]),
                f"{stated['nll_nats']:.3f}",
                f"{measured['nll_nats']:.3f}",
                f"{difference:+.4f}",
                f"{measured['bits_per_dim']:.4f}",
                "yes" if agrees else "NO",
            ]
        )
    print_cells(cells)
    total = zoo.size_bytes()
    print(f"zoo: {len(rows)} entries, {total / 1e6:.2f} MB")
    write_json(Path(args.out), {"command": command_line(), "machine": machine, "entries": rows, "zoo_bytes": total})
    if not all(row["agrees"] for row in rows):
        raise SystemExit("a card's NLL is not what its model gives")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="action")
    add = sub.add_parser("add", help="make a zoo entry from a finished pixelcnn train or identity run")
    add.add_argument("name")
    add.add_argument("--run", required=True, help="the run folder (pixelcnn train --out or identity --out)")
    add.add_argument("--summary", required=True, help="one line: what the model is")
    add.add_argument("--preset", default=None, help="the preset it was trained from, if any")
    add.add_argument("--command", required=True, help="the exact training command")
    add.add_argument("--commit", required=True, help="the commit it was trained at")
    add.add_argument("--threads", type=int, required=True, help="torch threads of the training run")
    add.add_argument("--load", required=True, help="what else ran on the machine meanwhile")
    add.add_argument("--quality", help="a JSON file of sample-quality figures to put on the card")
    parser.add_argument("--only", nargs="*", help="re-measure only these entries")
    parser.add_argument("--max-images", type=int, default=None, help="score only the first N test images")
    parser.add_argument("--out", default=str(default_out("zoo.json")), help="JSON to write")
    args = parser.parse_args(argv)
    if args.action == "add":
        (add_identity_entry if (Path(args.run) / "identity.json").is_file() else add_entry)(args)
    else:
        remeasure(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
