"""The zoo: every card is true (its stored test subset's NLL recomputed), every entry loads as ``zoo:NAME``
from Python and from every RUN-taking command, an unknown name is one line, and the wheel carries the files."""

import json
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
import torch
from safetensors import safe_open
from safetensors.torch import load_file

import pixelcnn
from conftest import run
from pixelcnn import data, zoo
from pixelcnn.evaluate import nll_per_image

REPO = Path(__file__).resolve().parents[1]
# The entries the README and the app rely on; a missing one is a packaging bug, not a skip.
EXPECTED = {"digits", "glyphs-identity", "mnist5k", "mnist5k-pixelcnn", "photo-patches"}
ZOO_LIMIT_BYTES = 25_000_000


def test_the_expected_entries_are_there_and_small():
    assert EXPECTED <= set(zoo.names())
    assert zoo.size_bytes() < ZOO_LIMIT_BYTES


@pytest.mark.parametrize("name", zoo.names())
def test_card_has_every_field_and_matches_its_model(name):
    card = zoo.card(name)
    assert set(zoo.CARD_FIELDS) <= set(card), set(zoo.CARD_FIELDS) - set(card)
    assert card["name"] == name
    model = pixelcnn.load(f"zoo:{name}")
    assert model.name == card["model"]
    assert sum(p.numel() for p in model.parameters()) == card["parameters"]
    assert (getattr(model.config, "num_classes", None) is not None) == card["class_conditional"]
    if card.get("kind") == "identity":
        # A pixelcnn identity run: its identity.json beside the model; its data set (glyphs) is made from the
        # fonts of the machine, so the card's NLL is checked on the glyphs stored with it (below), not here.
        assert (zoo.path(name) / "identity.json").is_file() and card["test"]["images"] > 0
        return
    dataset = data.load(card["data"], "test", binarize=card["binarize"])
    assert tuple(dataset.image_shape) == tuple(model.image_shape) and dataset.levels == model.levels
    assert card["test"]["images"] == len(dataset)  # the headline NLL is over the whole test split
    assert abs(pixelcnn.bits_per_dim(card["test"]["nll_nats"], model.image_shape) - card["test"]["bits_per_dim"]) < 1e-9


@pytest.mark.parametrize("name", zoo.names())
def test_weights_are_float32(name):
    weights = zoo.model_folder(name) / "model.safetensors"
    with safe_open(str(weights), framework="pt") as f:
        dtypes = {f.get_slice(key).get_dtype() for key in f.keys()}
    assert dtypes == {"F32"}


@pytest.mark.parametrize("name", zoo.names())
def test_card_nll_is_recomputed(name):
    """The NLL of the card's fixed test subset, recomputed in float32 here, is the card's (float32 sums on
    another CPU differ only in the last bits)."""
    card = zoo.card(name)
    verify = card["verify"]
    model = pixelcnn.load(f"zoo:{name}")
    if "file" in verify:  # stored glyphs and the codes of their fonts (an identity entry)
        stored = load_file(str(zoo.path(name) / verify["file"]))
        with torch.no_grad():
            losses = -model.float().log_prob(stored["images"].long(), stored["codes"]).double()
        assert len(losses) == verify["first_images"]
    else:
        dataset = data.load(card["data"], "test", binarize=card["binarize"])
        losses = nll_per_image(model, dataset, max_images=verify["first_images"], precision="fp32", compile="off")
    assert abs(float(losses.mean()) - verify["nll_nats"]) < verify["tolerance_nats"]


def test_card_check_catches_a_wrong_card(monkeypatch):
    """The recomputation is a real check: a card whose subset NLL is off by 0.05 nats fails it."""
    card = zoo.card("digits")
    card["verify"] = dict(card["verify"], nll_nats=card["verify"]["nll_nats"] + 0.05)
    monkeypatch.setattr(zoo, "card", lambda name: card)
    with pytest.raises(AssertionError):
        test_card_nll_is_recomputed("digits")


def test_unknown_name_is_one_line_listing_the_known_ones(capsys):
    with pytest.raises(ValueError, match=r"unknown zoo model 'mnist'; the zoo has: .*digits"):
        pixelcnn.load("zoo:mnist")
    status, out, err = run(capsys, "sample", "zoo:mnist", "--out", "x.png")
    assert status == 2 and out == ""
    assert err.count("\n") == 1 and "unknown zoo model 'mnist'" in err and "digits" in err
    status, _, err = run(capsys, "zoo", "nope")
    assert status == 2 and "the zoo has:" in err


def test_zoo_command_lists_and_prints_cards(capsys):
    status, out, _ = run(capsys, "zoo")
    assert status == 0
    for name in zoo.names():
        assert name in out and f"{zoo.card(name)['test']['nll_nats']:.2f}" in out
    status, out, _ = run(capsys, "zoo", "digits")
    card = zoo.card("digits")
    assert status == 0 and card["command"] in out and card["commit"] in out and card["machine"]["cpu"] in out
    status, out, _ = run(capsys, "zoo", "digits", "--json")
    assert status == 0 and json.loads(out) == zoo.card("digits")


def test_zoo_runs_default_to_their_own_data(capsys, tmp_path):
    """Every RUN-taking command accepts zoo:NAME; the entry's data set is the default --data."""
    out_png = tmp_path / "s.png"
    assert run(capsys, "sample", "zoo:digits", "--per-class", "1", "--out", out_png)[0] == 0 and out_png.is_file()
    assert run(capsys, "complete", "zoo:digits", "--rows", "4", "--n", "2", "--out", tmp_path / "c.png")[0] == 0
    status, out, _ = run(capsys, "eval", "zoo:digits", "--json")
    assert status == 0 and json.loads(out)["data"] == "digits"
    assert run(capsys, "viz", "nll-map", "zoo:digits", "--test-index", "0", "--out", tmp_path / "m.png")[0] == 0
    status, _, err = run(
        capsys, "compress", "zoo:digits", "digits:test", "--max-images", "3", "--out", tmp_path / "a.pxcz"
    )
    assert status == 0, err
    assert run(capsys, "decompress", tmp_path / "a.pxcz", "--run", "zoo:digits", "--out", tmp_path / "back")[0] == 0
    assert len(list((tmp_path / "back").glob("*.png"))) == 3
    status, out, _ = run(
        capsys, "score", "zoo:digits", "digits:test", "--max-images", "2", "--json", tmp_path / "s.json"
    )
    assert status == 0 and len(json.loads((tmp_path / "s.json").read_text())["images"]) == 2


def test_glyphs_identity_draws_new_glyphs_of_stored_glyphs_with_no_training():
    """zoo:glyphs-identity in the app's New glyphs tab: a few glyphs of a held-out font (the card's stored ones,
    so no font of this machine is needed) give new glyphs, drawn from their code."""
    pytest.importorskip("gradio")
    from pixelcnn import cli
    from pixelcnn.app import tab_reasons, work
    from pixelcnn.cli.app import open_entries

    entry = open_entries(cli.build_parser().parse_args(["app", "zoo:glyphs-identity"]))[0]
    assert tab_reasons(entry)["glyphs"] is None
    stored = load_file(str(zoo.path("glyphs-identity") / zoo.card("glyphs-identity")["verify"]["file"]))
    sources = stored["images"][:4].long()  # 4 glyphs of the first held-out font
    picture, drawn = work.new_glyphs(entry, sources, 3, seed=0)
    assert drawn.shape == (3, 1, 28, 28) and set(drawn.unique().tolist()) <= {0, 1} and picture is not None


def test_zoo_model_samples_in_python():
    model = pixelcnn.load("zoo:digits")
    samples = model.sample(4, cond=torch.arange(4), generator=torch.Generator().manual_seed(0))
    assert samples.shape == (4, 1, 8, 8) and int(samples.max()) < 17


@pytest.mark.slow
def test_wheel_contains_the_zoo(tmp_path):
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "-w",
            str(tmp_path),
            str(REPO),
        ],
        check=True,
    )
    wheel = next(tmp_path.glob("pixelcnn-*.whl"))
    inside = set(zipfile.ZipFile(wheel).namelist())
    for name in zoo.names():
        files = [f for f in zoo.path(name).rglob("*") if f.is_file()]
        assert {"card.json", "config.json", "model.safetensors"} <= {f.name for f in files}
        for file in files:  # every file of the entry: its card, weights, identity.json, ...
            relative = file.relative_to(zoo.ZOO_DIR).as_posix()
            assert f"pixelcnn/zoo/{relative}" in inside, f"{relative} is not in the wheel"


def test_docs_page_is_current(capsys):
    """docs/zoo.md is what ``pixelcnn zoo --markdown`` prints: the cards and the page cannot drift apart."""
    status, out, _ = run(capsys, "zoo", "--markdown")
    assert status == 0
    assert (REPO / "docs" / "zoo.md").read_text() == out
