"""``pixelcnn compress``, ``decompress`` and ``score``: round trips through PNG files, names, labels,
one-line errors."""

from __future__ import annotations

import csv
import json
import math

import pytest
import torch
from PIL import Image

import pixelcnn
from conftest import run
from pixelcnn import cli, coding, data
from pixelcnn.scores import anomaly_scores

TINY = [
    "--n-layers",
    "1",
    "--hidden",
    "4",
    "--no-progress",
    "--no-tensorboard",
    "--sample-images",
    "0",
    "--max-steps",
    "2",
    "--eval-images",
    "8",
    "--batch-size",
    "8",
]


@pytest.fixture(autouse=True)
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """A class-conditional digits model, an unconditional one, and a perturbed background: tiny, 2 steps each."""
    folder = tmp_path_factory.mktemp("coding")
    made = {}
    for name, extra in {
        "cond": ["--model", "gated_pixelcnn", "--class-conditional"],
        "plain": ["--model", "pixelcnn"],
        "background": ["--model", "pixelcnn", "--perturb", "0.2"],
    }.items():
        made[name] = folder / name
        assert cli.main(["train", *extra, *TINY, "--data", "digits", "--out", str(made[name])]) == 0
    made["folder"] = folder
    return made


def test_compress_decompress_round_trip_with_names_and_labels(runs, capsys, tmp_path):
    file = tmp_path / "d.pxcz"
    status, out, err = run(
        capsys, "compress", runs["cond"], "digits:test", "--max-images", "7", "--batch-size", "3", "--out", file
    )
    assert status == 0, err
    assert "7 images" in out and "bits/dim" in out
    records = coding.split_records(file.read_bytes())
    assert len(records) == 3 and [coding.read_header(r).batch for r in records] == [3, 3, 1]
    status, out, err = run(capsys, "decompress", file, "--run", runs["cond"], "--out", tmp_path / "back")
    assert status == 0, err
    test = data.load("digits", "test")
    for k in range(7):
        png = tmp_path / "back" / f"digits-test-{k:05d}.png"
        assert torch.equal(data.read_image(png, (1, 8, 8), 17)[0], test.images[k].long())
    with open(tmp_path / "back" / "labels.csv") as f:
        rows = list(csv.DictReader(f))
    assert [int(r["label"]) for r in rows] == test.labels[:7].tolist()
    # The PNGs compress again to the same images: a folder source, named by relative path.
    (tmp_path / "back" / "sub").mkdir()
    (tmp_path / "back" / "digits-test-00006.png").rename(tmp_path / "back" / "sub" / "six.png")
    status, _, err = run(capsys, "compress", runs["cond"], tmp_path / "back", "--label", "4", "--out", tmp_path / "f")
    assert status == 0, err
    header = coding.read_header((tmp_path / "f").read_bytes())
    assert header.names[-1] == "sub/six.png" and header.names[0] == "digits-test-00000.png"
    model = pixelcnn.load(runs["cond"] / "model")
    assert coding.read_condition(model, header).tolist() == [4] * 7
    # Without --label, the folder's labels.csv (written by decompress) gives them: the same file again.
    (tmp_path / "back" / "sub" / "six.png").rename(tmp_path / "back" / "digits-test-00006.png")
    status, _, err = run(
        capsys, "compress", runs["cond"], tmp_path / "back", "--batch-size", "3", "--out", tmp_path / "again.pxcz"
    )
    assert status == 0, err
    assert (tmp_path / "again.pxcz").read_bytes() == file.read_bytes()


def test_the_file_costs_about_the_nll(runs, capsys, tmp_path):
    model = pixelcnn.load(runs["plain"] / "model")
    file = tmp_path / "p.pxcz"
    status, _, err = run(capsys, "compress", runs["plain"], "digits:test", "--max-images", "40", "--out", file)
    assert status == 0, err
    images = data.load("digits", "test").images[:40].long()
    with torch.no_grad():
        bits = float(-model.log_prob(images).sum()) / math.log(2)
    header = coding.read_header(file.read_bytes())
    assert len(header.names) == 40 and header.size < 120  # a numbered run of names: a few bytes
    assert 8 * file.stat().st_size <= bits + 64 + 8 * header.size


def test_image_files_and_their_errors(runs, capsys, tmp_path):
    for k in range(2):  # 8-bit pictures of 17-level images, drawn as pixelcnn draws them: read exactly
        values = (torch.randint(0, 17, (8, 8)) * 255 / 16).round().to(torch.uint8)
        Image.fromarray(values.numpy(), "L").save(tmp_path / f"i{k}.png")
    Image.new("L", (9, 9)).save(tmp_path / "big.png")
    Image.fromarray((torch.rand(8, 8) * 255).to(torch.uint8).numpy(), "L").save(tmp_path / "noise.png")
    status, _, err = run(
        capsys, "compress", runs["plain"], tmp_path / "i0.png", tmp_path / "i1.png", "--out", tmp_path / "two.pxcz"
    )
    assert status == 0, err
    assert coding.read_header((tmp_path / "two.pxcz").read_bytes()).names == ["i0.png", "i1.png"]
    cases = [
        (("compress", runs["plain"], tmp_path / "missing.png", "--out", tmp_path / "x"), 1, "no such image file"),
        (("compress", runs["plain"], "digits:valid", "--out", tmp_path / "x"), 1, "NAME:SPLIT"),
        (("compress", runs["plain"], tmp_path / "big.png", "--out", tmp_path / "x"), 2, "9x9"),
        (("compress", runs["cond"], tmp_path / "i0.png", "--out", tmp_path / "x"), 2, "--label"),
        (
            ("compress", runs["plain"], tmp_path / "i0.png", "--label", "1", "--out", tmp_path / "x"),
            2,
            "not class-conditional",
        ),
        (("compress", runs["plain"], "mnist5k:test", "--out", tmp_path / "x"), 2, "mnist5k"),
        (
            ("compress", runs["plain"], tmp_path / "i0.png", tmp_path / "i0.png", "--out", tmp_path / "x"),
            2,
            "two images are named",
        ),
        (
            ("decompress", tmp_path / "none.pxcz", "--run", runs["plain"], "--out", tmp_path / "o"),
            1,
            "no compressed file",
        ),
        (("decompress", tmp_path / "two.pxcz", "--run", runs["cond"], "--out", tmp_path / "o"), 2, "different model"),
        (
            ("compress", runs["plain"], tmp_path / "noise.png", "--out", tmp_path / "x"),
            2,
            "would change its pixels (8-bit values rounded to the model's 17 levels); pass --convert",
        ),
    ]
    blob = (tmp_path / "two.pxcz").read_bytes()
    (tmp_path / "cut.pxcz").write_bytes(blob[:-5])
    (tmp_path / "bad.pxcz").write_bytes(blob[:40] + bytes([blob[40] ^ 1]) + blob[41:])
    cases += [
        (("decompress", tmp_path / "cut.pxcz", "--run", runs["plain"], "--out", tmp_path / "o"), 2, "truncated"),
        (("decompress", tmp_path / "bad.pxcz", "--run", runs["plain"], "--out", tmp_path / "o"), 2, "corrupted"),
        (
            ("decompress", tmp_path / "i0.png", "--run", runs["plain"], "--out", tmp_path / "o"),
            2,
            "not a pixelcnn compressed file",
        ),
    ]
    for argv, expected, words in cases:
        status, _, err = run(capsys, *argv)
        assert status == expected, (argv, err)
        assert words in err and len(err.strip().splitlines()) == 1, (argv, err)
    assert not (tmp_path / "o").exists()


def test_score_csv_and_json(runs, capsys, tmp_path):
    status, out, err = run(
        capsys,
        "score",
        runs["plain"],
        "digits:test",
        "--max-images",
        "6",
        "--background",
        runs["background"],
        "--complexity",
        "--csv",
        tmp_path / "s.csv",
        "--json",
        tmp_path / "s.json",
    )
    assert status == 0, err and "mean NLL" in out
    with open(tmp_path / "s.csv") as f:
        rows = list(csv.DictReader(f))
    document = json.loads((tmp_path / "s.json").read_text())
    model, background = pixelcnn.load(runs["plain"] / "model"), pixelcnn.load(runs["background"] / "model")
    images = data.load("digits", "test").images[:6].long()
    expected = anomaly_scores(model, images, background=background)
    assert [r["image"] for r in rows] == [f"digits-test-{k:05d}.png" for k in range(6)]
    for key, column in (("nll", "nll_nats"), ("likelihood_ratio", "likelihood_ratio"), ("complexity", "complexity")):
        assert [float(r[column]) for r in rows] == pytest.approx(expected[key].tolist(), abs=1e-5)
        assert [r[column] for r in document["images"]] == pytest.approx(expected[key].tolist())
    # Bare --json prints the document.
    status, out, _ = run(capsys, "score", runs["plain"], "digits:test", "--max-images", "2", "--json")
    assert status == 0 and len(json.loads(out)["images"]) == 2


def test_score_class_conditional_labels_and_marginal(runs, capsys, tmp_path):
    model = pixelcnn.load(runs["cond"] / "model")
    test = data.load("digits", "test")
    Image.fromarray((test.images[0, 0].numpy() * 15).astype("uint8"), "L").save(tmp_path / "a.png")
    # (values v * 15 are not how pixelcnn draws 17 levels: reading them rounds, so --convert is needed)
    status, _, err = run(
        capsys,
        "score",
        runs["cond"],
        tmp_path / "a.png",
        "digits:test",
        "--max-images",
        "3",
        "--json",
        tmp_path / "s.json",
    )
    assert status == 2 and "would change its pixels" in err and "--convert" in err
    status, _, err = run(
        capsys,
        "score",
        runs["cond"],
        tmp_path / "a.png",
        "digits:test",
        "--max-images",
        "3",
        "--json",
        tmp_path / "s.json",
        "--convert",
    )
    assert status == 0, err
    rows = json.loads((tmp_path / "s.json").read_text())["images"]
    assert [r["label"] for r in rows] == ["marginal", *test.labels[:2].tolist()]
    x = test.images[:2].long()
    with torch.no_grad():
        assert [r["nll_nats"] for r in rows[1:]] == pytest.approx((-model.log_prob(x, test.labels[:2])).tolist())
        image = data.read_image(tmp_path / "a.png", (1, 8, 8), 17, convert=True)
        per_class = torch.stack([model.log_prob(image, torch.tensor([k])) for k in range(10)])
        marginal = math.log(10) - float(torch.logsumexp(per_class.double().flatten(), 0))
    assert rows[0]["nll_nats"] == pytest.approx(marginal)


def test_help_names_the_image_sources(capsys):
    for command in ("compress", "decompress", "score"):
        status, out, _ = run(capsys, command, "--help")
        assert status == 0 and "examples:" in out
    assert "NAME:SPLIT" in run(capsys, "compress", "--help")[1]


def test_outputs_never_replace_what_pixelcnn_did_not_write(runs, capsys, tmp_path):
    """compress --out, decompress --out and score --csv / --json go through the one output check."""
    theirs = tmp_path / "notes.txt"
    theirs.write_text("keep me")
    for argv in (
        ["compress", runs["plain"], "digits:test", "--max-images", "2", "--out", theirs],
        ["score", runs["plain"], "digits:test", "--max-images", "2", "--csv", theirs],
        ["score", runs["plain"], "digits:test", "--max-images", "2", "--json", theirs],
    ):
        status, _, err = run(capsys, *argv)
        assert status == 2 and "--force" in err and len(err.strip().splitlines()) == 1, err
        assert theirs.read_text() == "keep me"
    file = tmp_path / "two.pxcz"
    assert run(capsys, "compress", runs["plain"], "digits:test", "--max-images", "2", "--out", file)[0] == 0
    # its own earlier output is replaced without --force; a run folder's own files never are
    assert run(capsys, "compress", runs["plain"], "digits:test", "--max-images", "3", "--out", file)[0] == 0
    status, _, err = run(capsys, "compress", runs["plain"], "digits:test", "--out", runs["plain"] / "config.json")
    assert status == 2 and "run folder" in err
    back = tmp_path / "back"
    back.mkdir()
    first = back / coding.read_header(coding.split_records(file.read_bytes())[0]).names[0]
    first.write_text("not a picture of ours")
    status, _, err = run(capsys, "decompress", file, "--run", runs["plain"], "--out", back)
    assert status == 2 and "--force" in err
    assert first.read_text() == "not a picture of ours"
    assert run(capsys, "decompress", file, "--run", runs["plain"], "--out", back, "--force")[0] == 0
    assert Image.open(first).size[0] > 0
