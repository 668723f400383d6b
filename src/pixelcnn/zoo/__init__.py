"""Trained models that ship inside the package: ``pixelcnn.load("zoo:NAME")``.

Each entry is a folder beside this file, installed by ``pip install`` as
package data (no download)::

    zoo/NAME/config.json         the model's config, as pixelcnn.save writes it
    zoo/NAME/model.safetensors   its weights, float32 (likelihoods and compression stay exact)
    zoo/NAME/card.json           what it is and how it was made: data set, training command, commit,
                                 machine, minutes and steps, test NLL with its standard error, and a
                                 fixed subset of the test split with its NLL, which a test recomputes

An entry may instead hold a whole run folder (``pixelcnn identity``'s: its
``model/`` and what the run wrote beside it) plus ``card.json``.

This module reads files only: it imports nothing else of pixelcnn, so the
loader (``serialization.load``) and the CLI's run opening can both use it.
"""

from __future__ import annotations

import json
from pathlib import Path

PREFIX = "zoo:"
CARD_FILE = "card.json"
ZOO_DIR = Path(__file__).resolve().parent

# The fields every card has (checked by the tests; ``docs/zoo.md`` renders them).
CARD_FIELDS = (
    "name",
    "summary",
    "data",
    "split",
    "binarize",
    "model",
    "preset",
    "class_conditional",
    "command",
    "commit",
    "machine",
    "train_minutes",
    "steps",
    "parameters",
    "test",
    "verify",
)


def names() -> list[str]:
    """The zoo's entries, sorted: every folder here with a card."""
    return sorted(entry.name for entry in ZOO_DIR.iterdir() if (entry / CARD_FILE).is_file())


def is_zoo_name(spec) -> bool:
    """True for a string of the form ``zoo:NAME`` (checked later: an unknown NAME is an error there)."""
    return isinstance(spec, str) and spec.startswith(PREFIX)


def path(name: str) -> Path:
    """The folder of the entry ``name`` (``zoo:`` in front is allowed); one-line ValueError when unknown."""
    bare = name[len(PREFIX) :] if is_zoo_name(name) else name
    known = names()
    if bare not in known:
        raise ValueError(
            f"unknown zoo model {bare!r}; the zoo has: {', '.join(known) or 'nothing'} (pixelcnn zoo lists them)"
        )
    return ZOO_DIR / bare


def model_folder(name: str) -> Path:
    """The saved-model folder of the entry ``name``: the entry itself, or its ``model/`` for a run folder."""
    folder = path(name)
    return folder / "model" if (folder / "model" / "config.json").is_file() else folder


def card(name: str) -> dict:
    """The card of the entry ``name`` (``card.json``, a dict)."""
    with open(path(name) / CARD_FILE, encoding="utf-8") as f:
        return json.load(f)


def summary_table() -> list[dict]:
    """One row per entry with its headline numbers, as ``pixelcnn zoo`` prints them."""
    rows = []
    for name in names():
        entry = card(name)
        test = entry["test"]
        rows.append(
            {
                "name": name,
                "summary": entry["summary"],
                "data": entry["data"],
                "nll_nats": test["nll_nats"],
                "nll_nats_stderr": test["nll_nats_stderr"],
                "bits_per_dim": test["bits_per_dim"],
                "parameters": entry["parameters"],
                "size_bytes": size_bytes(name),
            }
        )
    return rows


def size_bytes(name: str | None = None) -> int:
    """Bytes on disk of one entry, or of the whole zoo when ``name`` is None."""
    folders = [path(name)] if name is not None else [ZOO_DIR / n for n in names()]
    return sum(f.stat().st_size for folder in folders for f in folder.rglob("*") if f.is_file())


def render_card(name: str) -> str:
    """The card as text: the facts a user needs to trust and reproduce the entry."""
    entry = card(name)
    test, machine = entry["test"], entry["machine"]
    lines = [
        f"zoo:{name} - {entry['summary']}",
        f"  model        {entry['model']} ({entry['preset'] or 'custom size'}), {entry['parameters']:,} parameters"
        f"{', class-conditional' if entry['class_conditional'] else ''}",
        f"  data         {entry['data']} ({entry['split']} split for the NLL"
        f"{', binarized: ' + entry['binarize'] if entry['binarize'] else ''})",
        f"  test NLL     {test['nll_nats']:.2f} +- {test['nll_nats_stderr']:.2f} nats/image, "
        f"{test['bits_per_dim']:.4f} +- {test['bits_per_dim_stderr']:.4f} bits/dim "
        f"({test['images']} images, float32)",
        f"  trained      {entry['steps']:,} steps in {entry['train_minutes']:.1f} minutes at commit {entry['commit']}",
        f"  machine      {machine['cpu']} ({machine['bf16']}), {machine['threads']} thread(s); {machine['load']}",
        f"  command      {entry['command']}",
    ]
    quality = entry.get("quality") or {}
    if "samples_in_class" in quality:
        lines.append(
            f"  samples      {quality['samples_in_class']:.1%} of {quality['samples']} class-conditional "
            f"samples are their class to a digit classifier ({quality['classifier_on_real_test']:.1%} right "
            f"on the real test digits)"
        )
    identity = entry.get("identity") or {}
    if identity:
        lines.append(
            f"  fonts        trained on {identity['training_fonts']}, NLL above on "
            f"{identity['held_out_fonts']} held-out fonts given the code of 4 of their glyphs; "
            f"embedding 1-NN font accuracy {identity['embedding_1nn_held_out']:.1%} held out"
        )
        generated, control = identity.get("judge_new_glyphs_to_their_font"), identity.get("judge_wrong_code_control")
        if generated and control:
            lines.append(
                f"  judge        new glyphs assigned to the held-out font whose code drew them: "
                f"{generated['fraction']:.1%} +- {generated['standard_error']:.1%} (chance "
                f"{identity['chance']:.1%}; a wrong font's code: {control['fraction']:.1%}); the judge "
                f"is right on {identity['judge_on_real_held_out']:.1%} of real held-out glyphs"
            )
    for note in entry.get("notes", []):
        lines.append(f"  note         {note}")
    lines.append(f"  size         {size_bytes(name) / 1e6:.2f} MB")
    return "\n".join(lines)


def render_markdown() -> str:
    """Every card as a Markdown page: ``docs/zoo.md`` is this text (``pixelcnn zoo --markdown``)."""
    parts = [
        "# Trained models (the zoo)",
        "",
        'Shipped inside the package (no download): `pixelcnn.load("zoo:NAME")` in Python, `zoo:NAME` as',
        "the RUN of every command (its data set is the default `--data`). Each card's test NLL is over the",
        "whole test split in float32; a test recomputes each card's stored subset. This page is written by",
        "`pixelcnn zoo --markdown` and a test checks it is current.",
        "",
        "| entry | model | data | test NLL (nats) | bits/dim | parameters | MB |",
        "|---|---|---|---|---|---|---|",
    ]
    for row in summary_table():
        entry = card(row["name"])
        parts.append(
            f"| `zoo:{row['name']}` | {entry['model']} | {row['data']} | {row['nll_nats']:.2f} ± "
            f"{row['nll_nats_stderr']:.2f} | {row['bits_per_dim']:.4f} | {row['parameters']:,} | "
            f"{row['size_bytes'] / 1e6:.2f} |"
        )
    parts += ["", f"In all: {size_bytes() / 1e6:.2f} MB.", ""]
    for name in names():
        parts += [f"## {name}", "", "```text", render_card(name), "```", ""]
    return "\n".join(parts)
