"""``pixelcnn app``: what each tab computes (quick, no server), and every endpoint of a running app called
through ``gradio_client`` on tiny models (slow): the numbers and pictures it returns are the library's.

The browser tests are in test_app_browser.py.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import pixelcnn
from app_server import free_port, running_app, tiny_entries
from pixelcnn import cli, scores
from pixelcnn.app import AppModel, tab_reasons, work

ROOT = Path(__file__).resolve().parents[1]


def read_row_of_images(path, count: int, image_shape, levels: int) -> torch.Tensor:
    """A PNG of ``count`` images side by side, one file pixel per image pixel -> int64 [count, C, H, W]."""
    channels, height, width = image_shape
    picture = np.asarray(Image.open(path).convert("RGB"), dtype=np.float64)  # [H, count * W, 3]
    assert picture.shape == (height, count * width, 3)
    values = np.rint(picture * (levels - 1) / 255).astype(np.int64)
    values = values[..., :1] if channels == 1 else values  # grey: R = G = B
    return torch.from_numpy(values.reshape(height, count, width, channels).transpose(1, 3, 0, 2).copy())


# ------------------------------------------------------------------------------- without a server
@pytest.fixture(scope="module")
def entries():
    return tiny_entries()


def test_tabs_that_do_not_fit_a_model_say_why(entries):
    mnist, digits = entries
    assert all(reason is None for tab, reason in tab_reasons(mnist).items() if tab != "glyphs")
    assert "identity run" in tab_reasons(mnist)["glyphs"]
    assert work.class_choices(digits, "complete") == []  # unconditional: no class menu
    assert work.class_choices(mnist, "sample")[:3] == [work.EACH_CLASS, "0", "1"]
    autoencoder = pixelcnn.build(
        "pixelcnn_ae", image_shape=(1, 8, 8), levels=2, bottleneck=3, encoder_channels=4, n_layers=1, hidden=4
    )
    reasons = tab_reasons(AppModel("ae", autoencoder))
    assert "3-number code" in reasons["sample"] and "3-number code" in reasons["complete"]
    assert reasons["likelihood"] is None and reasons["compress"] is None
    mse = pixelcnn.build("mse_ae", image_shape=(1, 8, 8), levels=2, bottleneck=3)
    assert set(tab_reasons(AppModel("mse", mse)).values()) == {
        "mse_ae is not an exact-likelihood model (it has no log_prob)"
    }


def test_completion_streams_rows_and_keeps_the_given_rows(entries):
    mnist = entries[0]
    image, label = work.test_images(mnist, [3])
    updates = list(work.complete_stream(mnist, image, 10, str(int(label[0])), n=3, seed=5))
    assert len(updates) >= 2 and all(result is None for _, result, _ in updates[:-1])  # frames, then the result
    done = updates[-1][1]
    # The frames: whole rows drawn, fewer each time than the next (a slow page skips frames, never the sampler).
    drawn = [
        count
        for _, count, _ in work.stream_draws(
            lambda callback: mnist.model.complete(image, 10, 0, callback=callback), every=28
        )
    ]
    assert drawn[:-1] == sorted(set(drawn[:-1])) and all(count % 28 == 0 for count in drawn) and drawn[-1] == 18 * 28
    expected = mnist.model.complete(
        image.expand(3, -1, -1, -1), 10, int(label[0]), generator=torch.Generator().manual_seed(5)
    )
    assert torch.equal(done, expected)
    assert torch.equal(done[:, :, :10], image.expand(3, -1, -1, -1)[:, :, :10])


def test_a_stopped_stream_stops_its_sampler(entries):
    mnist = entries[0]
    stream = work.sample_stream(mnist, "2", n=2, seed=0)
    next(stream)
    stream.close()  # the page went away: the sampling thread ends at its next pixel
    deadline = time.monotonic() + 30
    while any(t.name == "pixelcnn-app-draw" for t in threading.enumerate()) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not any(t.name == "pixelcnn-app-draw" for t in threading.enumerate())


def test_drawings_and_files_are_converted_and_said_or_refused(entries, tmp_path):
    mnist = entries[0]
    drawing = np.full((280, 280), 255, dtype=np.uint8)
    drawing[40:60, 60:220] = 0  # a dark bar on white
    image, notes = work.read_drawing(mnist, drawing, tmp_path)
    assert image.shape == (1, 1, 28, 28) and int(image[0, 0, 5, 14]) == 1 and int(image[0, 0, 20, 14]) == 0
    assert any("280x280 scaled" in n for n in notes) and any("inverted" in n for n in notes)
    with pytest.raises(ValueError, match="draw something first"):
        work.read_drawing(mnist, np.full((280, 280), 255, dtype=np.uint8), tmp_path)
    colour = tmp_path / "photo.png"
    Image.new("RGB", (40, 30), (200, 10, 10)).save(colour)
    _, notes = work.read_image_file(mnist, colour)
    assert any("colour (RGB) converted to grey" in n for n in notes) and any("40x30" in n for n in notes)
    not_an_image = tmp_path / "notes.png"
    not_an_image.write_text("hello")
    with pytest.raises(ValueError, match="not an image file"):
        work.read_image_file(mnist, not_an_image)
    with pytest.raises(ValueError, match="rows kept must be an integer in 0..28"):
        next(work.complete_stream(mnist, image, 29, "1", 1, 0))


def test_the_command_needs_a_run_without_a_zoo_and_check_says_what_fits(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr("pixelcnn.cli.app._zoo", lambda: None)
    assert cli.main(["app"]) == 2
    assert "give a RUN to serve" in capsys.readouterr().err
    model = pixelcnn.build("pixelcnn", image_shape=(1, 8, 8), levels=17, n_layers=1, hidden=4)
    pixelcnn.save(model, tmp_path / "digits-model")
    assert cli.main(["app", str(tmp_path / "digits-model"), "--data", "digits", "--check"]) == 0
    out = capsys.readouterr().out
    assert "trained on digits" in out and "Sample: yes" in out and "New glyphs of an unseen font: no, " in out
    monkeypatch.setattr("pixelcnn.app.gradio_missing", lambda: "the app needs Gradio, which is not installed: x")
    assert cli.main(["app", str(tmp_path / "digits-model")]) == 1
    assert capsys.readouterr().err.strip() == "pixelcnn app: error: the app needs Gradio, which is not installed: x"
    assert cli.main(["app", str(tmp_path / "digits-model"), "--port", "0"]) == 2


# ------------------------------------------------------------------------------- a running app
@pytest.fixture(scope="module")
def identity_entry(tmp_path_factory):
    """A tiny ``pixelcnn identity`` run on mnist5k (digits 7, 8, 9 unseen), as the glyphs tab takes it."""
    from pixelcnn.identity import IdentityConfig, read_identity, train_identity

    config = IdentityConfig(
        data="mnist5k",
        binarize="dynamic",
        train_classes=(0, 1, 2, 3, 4, 5, 6),
        embedding_dim=3,
        encoder_channels=4,
        triplet_steps=3,
        per_class=2,
        n_layers=1,
        hidden=4,
        decoder_steps=3,
        decoder_minutes=None,
        batch_size=4,
        judge_steps=2,
        judge_samples=2,
    )
    result = train_identity(config, tmp_path_factory.mktemp("identity") / "run", log=None)
    return AppModel(
        "identity-tiny",
        pixelcnn.load(result.model_path),
        data="mnist5k",
        binarize="dynamic",
        identity=read_identity(result.run_dir),
    )


@pytest.fixture(scope="module")
def served(entries, identity_entry):
    pytest.importorskip("gradio")
    from gradio_client import Client

    with running_app([*entries, identity_entry]) as server:
        yield server, Client(server.url, verbose=False)


def _written_inside(server, name: str) -> bool:
    """The app wrote ``name`` for a request in a folder of its own inside its temporary folder, and Gradio's
    uploads and served files go there too (the client's paths are its own downloaded copies)."""
    import os

    workdir = Path(server.workdir)
    return any(workdir.glob(f"request-*/{name}")) and Path(os.environ["GRADIO_TEMP_DIR"]).is_relative_to(workdir)


@pytest.mark.slow
def test_complete_endpoint_keeps_the_given_rows_bit_for_bit(served, entries):
    server, client = served
    mnist = entries[0]
    live, grid, file, words = client.predict(
        "mnist-tiny", "test image", None, None, 7, 12, "most likely", 3, 11, 1.0, api_name="/complete"
    )
    image, label = work.test_images(mnist, [7])
    completions = read_row_of_images(file, 3, mnist.model.image_shape, 2)
    assert torch.equal(completions[:, :, :12], image.expand(3, -1, -1, -1)[:, :, :12])
    expected = mnist.model.complete(
        image.expand(3, -1, -1, -1), 12, int(label[0]), generator=torch.Generator().manual_seed(11)
    )
    assert torch.equal(completions, expected)
    assert "top 12 rows kept as given" in words and _written_inside(server, "completions.png")


@pytest.mark.slow
def test_complete_endpoint_streams_row_by_row(served):
    _, client = served
    job = client.submit("mnist-tiny", "test image", None, None, 0, 20, "3", 2, 0, 1.0, api_name="/complete")
    job.result(timeout=120)
    outputs = job.outputs()
    # live frames first (the other outputs left as they are), the grid last
    assert len(outputs) >= 2 and outputs[0][1] == {"__type__": "update"} and Path(outputs[-1][1]).is_file()


@pytest.mark.slow
def test_complete_endpoint_completes_a_drawing(served, entries):
    from gradio_client import handle_file

    _, client = served
    drawing = np.full((280, 280), 255, dtype=np.uint8)
    drawing[30:50, 70:210] = 0
    path = Path(served[0].workdir) / "drawn.png"
    Image.fromarray(drawing).save(path)
    editor = {"background": handle_file(str(path)), "layers": [], "composite": handle_file(str(path))}
    _, _, file, words = client.predict(
        "mnist-tiny", "drawing", editor, None, 0, 14, "most likely", 2, 0, 1.0, api_name="/complete"
    )
    completions = read_row_of_images(file, 2, (1, 28, 28), 2)
    expected_top, _ = work.read_drawing(entries[0], drawing, Path(served[0].workdir))
    assert torch.equal(completions[:, :, :14], expected_top.expand(2, -1, -1, -1)[:, :, :14])
    assert "drawing inverted" in words and "(the most likely given the kept rows)" in words


@pytest.mark.slow
def test_sample_endpoint_gives_the_models_samples(served, entries):
    _, client = served
    digits = entries[1]
    live, grid, file, words = client.predict("digits-tiny", "none (unconditional)", 5, 3, 1.0, api_name="/sample")
    samples = read_row_of_images(file, 5, digits.model.image_shape, 17)
    assert torch.equal(samples, digits.model.sample(5, generator=torch.Generator().manual_seed(3)))
    assert Image.open(grid).format == "PNG" and Image.open(live).size[0] > 0


@pytest.mark.slow
def test_likelihood_endpoint_is_the_exact_nll(served, entries):
    _, client = served
    mnist = entries[0]
    image, label = work.test_images(mnist, [4])
    _, words, numbers = client.predict(
        "mnist-tiny", "test image", None, None, 4, str(int(label[0])), api_name="/likelihood"
    )
    exact = -float(mnist.model.log_prob(image, label))
    assert numbers["nll_nats"] == pytest.approx(exact, rel=1e-6)
    assert numbers["bits_per_dim"] == pytest.approx(exact / math.log(2) / 784, rel=1e-6)
    assert numbers["complexity_bits"] == pytest.approx(exact / math.log(2) - float(scores.png_bits(image, 2)[0]))
    assert 0 <= numbers["percentile"] <= 100 and numbers["reference_images"] == 50
    assert numbers["likelihood_ratio_nats"] is None and "needs a background model" in words
    _, _, marginal = client.predict(
        "mnist-tiny", "inverted test image", None, None, 4, "unknown (marginal)", api_name="/likelihood"
    )
    assert marginal["nll_nats"] == pytest.approx(float(scores.nll(mnist.model, 1 - image, "marginal")[0]), rel=1e-6)


@pytest.mark.slow
def test_compress_endpoint_file_decodes_to_the_same_pixels(served, entries):
    server, client = served
    digits = entries[1]
    file, _, words, numbers = client.predict(
        "digits-tiny", "test image", None, 6, "none (unconditional)", api_name="/compress"
    )
    images, _ = work.test_images(digits, list(range(6)))
    assert torch.equal(pixelcnn.decompress(digits.model, Path(file).read_bytes()), images)
    assert numbers["round_trip_identical"] and numbers["bytes"]["pxcz"] == Path(file).stat().st_size
    assert numbers["bytes"]["png"] == sum(scores.codec_bytes(images.numpy(), 17, "png"))
    assert "identical bit for bit" in words and _written_inside(server, "images.pxcz")


@pytest.mark.slow
def test_look_inside_endpoints(served, entries):
    _, client = served
    _, counts = client.predict("mnist-tiny", 20, 14, api_name="/receptive_field")
    assert counts["LEAK"] == 0 and counts["TARGET"] == 1 and counts["SEEN"] > 0
    _, probabilities = client.predict(
        "digits-tiny", "test image", None, 2, 4, 3, "none (unconditional)", api_name="/softmax"
    )
    image, _ = work.test_images(entries[1], [2])
    expected = entries[1].model.head.probabilities(entries[1].model(image))[0, 0, :, 4, 3]
    assert np.allclose(probabilities["probabilities"][0], expected.detach().double().numpy())
    assert Image.open(client.predict(2, api_name="/families")).size[0] > 300


@pytest.mark.slow
def test_new_glyphs_of_an_unseen_identity(served, identity_entry):
    from pixelcnn.identity import identity_code, source_images

    _, client = served
    model = identity_entry.model
    assert tab_reasons(identity_entry)["glyphs"] is None and work.identity_choices(identity_entry) == ["7", "8", "9"]
    picture, file = client.predict("identity-tiny", "a font it never saw", "8", 2, None, None, 3, 4, api_name="/glyphs")
    code = identity_code(model, source_images(work.identity_sets(identity_entry), 8, 2))
    expected = model.sample(3, code.expand(3, -1), generator=torch.Generator().manual_seed(4))
    assert torch.equal(read_row_of_images(file, 3, (1, 28, 28), 2), expected)
    line = client.predict("identity-tiny", "7", "9", 4, 0, api_name="/interpolate")
    assert Image.open(line).size[0] > Image.open(line).size[1]  # one row: 7 | 4 steps | 9


@pytest.mark.slow
def test_wrong_inputs_are_one_line_on_the_page(served, tmp_path):
    from gradio_client import handle_file
    from gradio_client.exceptions import AppError

    _, client = served
    with pytest.raises(AppError, match=r"^rows kept must be an integer in 0\.\.8, got 20$"):
        client.predict(
            "digits-tiny", "test image", None, None, 0, 20, "none (unconditional)", 1, 0, 1.0, api_name="/complete"
        )
    with pytest.raises(AppError, match=r"^test image 99999 does not exist: mnist5k test has images 0\.\.999$"):
        client.predict("mnist-tiny", "test image", None, None, 99999, "unknown (marginal)", api_name="/likelihood")
    with pytest.raises(AppError, match=r"^New glyphs of an unseen font does not apply to digits-tiny: needs"):
        client.predict("digits-tiny", "a font it never saw", "7", 4, None, None, 4, 0, api_name="/glyphs")
    text = tmp_path / "letter.png"
    text.write_text("not a picture")
    with pytest.raises(AppError, match=r"^letter\.png is not an image file this app can read"):
        client.predict(
            "digits-tiny", "uploaded file", [handle_file(str(text))], 1, "none (unconditional)", api_name="/compress"
        )


@pytest.mark.slow
def test_two_sessions_get_their_own_results(served, entries):
    from gradio_client import Client

    server, _ = served
    first, second = Client(server.url, verbose=False), Client(server.url, verbose=False)
    jobs = [
        first.submit("digits-tiny", "none (unconditional)", 3, 1, 1.0, api_name="/sample"),
        second.submit("digits-tiny", "none (unconditional)", 3, 2, 1.0, api_name="/sample"),
    ]
    files = [job.result(timeout=120)[2] for job in jobs]
    assert files[0] != files[1]
    for seed, file in zip((1, 2), files):
        assert torch.equal(
            read_row_of_images(file, 3, (1, 8, 8), 17),
            entries[1].model.sample(3, generator=torch.Generator().manual_seed(seed)),
        )


@pytest.mark.slow
def test_the_command_serves_on_127_0_0_1_and_says_how_to_stop(tmp_path):
    pytest.importorskip("gradio")
    model = pixelcnn.build("pixelcnn", image_shape=(1, 8, 8), levels=17, n_layers=1, hidden=4)
    pixelcnn.save(model, tmp_path / "model")
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "pixelcnn", "app", str(tmp_path / "model"), "--data", "digits", "--port", str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        cwd=tmp_path,
    )
    try:
        line = process.stdout.readline()
        assert f"at http://127.0.0.1:{port}/" in line and "stop it with Ctrl-C" in line, line
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=30) as response:
            assert response.status == 200 and b"pixelcnn" in response.read()
        process.terminate()  # SIGTERM: stops like Ctrl-C, removes its folder
        assert process.wait(timeout=60) == 0
        assert "pixelcnn app: stopped" in process.stdout.read()
    finally:
        if process.poll() is None:
            process.kill()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model"]  # wrote nothing where it ran


@pytest.mark.slow
def test_docs_commands_run(tmp_path, monkeypatch, capsys):
    """Every command of docs/app.md runs, on a tiny run at runs/gated: the serving ones as ``--check`` (a
    server would not return; the server itself is tested above), the benchmark on one small press.
    ``pip install`` and the test command itself are not run; the screenshot command runs in
    test_app_browser.py (it needs the browser)."""
    import runpy

    from doc_commands import documented_commands
    from test_documented_commands import TRAIN_BUDGET

    commands = documented_commands(ROOT / "docs" / "app.md")
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(ROOT / "benchmarks"))
    assert (
        cli.main(
            [
                "train",
                "--model",
                "gated_pixelcnn",
                "--data",
                "mnist5k",
                "--binarize",
                "dynamic",
                "--out",
                "runs/gated",
                "--n-layers",
                "1",
                "--hidden",
                "4",
                *TRAIN_BUDGET,
            ]
        )
        == 0
    )
    has_zoo = cli_app_zoo() is not None
    ran = []
    for command in commands:
        argv = command.argv
        if argv[0] == "pip" or argv[:3] == ["python", "-m", "pytest"] or argv[1:2] == ["docs/app_screenshots.py"]:
            continue
        if argv[0] == "pixelcnn":
            assert cli.main(argv[1:] + ([] if "--check" in argv else ["--check"])) == 0, command
            assert "Draw and complete: yes" in capsys.readouterr().out
        elif argv[1] == "benchmarks/app_latency.py":
            if len(argv) == 2 and not has_zoo:
                continue  # zoo:mnist5k, where the installation has the zoo
            shrunk = argv[2:] + [
                "--repeats",
                "1",
                "--completions",
                "1",
                "--known-rows",
                "26",
                "--out",
                "runs/app_latency.json",
            ]
            assert runpy.run_path(str(ROOT / argv[1]))["main"](shrunk) == 0
            result = json.loads(Path("runs/app_latency.json").read_text())
            assert 0 < result["app_first_row_s"] <= result["app_all_s"] and "machine" in result
        else:
            raise AssertionError(f"{command}: a command this test does not know how to run")
        ran.append(command.text)
    assert any(text.startswith("pixelcnn app") for text in ran) and any("app_latency" in text for text in ran)


def cli_app_zoo():
    from pixelcnn.cli.app import _zoo

    return _zoo()
