"""benchmarks/gpu_check.py on the CPU: its checks fail on a broken sampler, coder or model; its budget holds.

The script is written for a GPU that nobody here has; these tests keep its CPU side honest: the
tiny run passes and reports every CUDA-only item as skipped, and each check function, given a
deliberately broken sampler, coder, causal mask or saved model, reports the failure.
"""

import importlib.util
import json
import sys
import time
from pathlib import Path

import pytest
import torch

import pixelcnn
from pixelcnn import coding
from pixelcnn.models.gated import GatedPixelCNNCache

pytestmark = pytest.mark.slow  # the budgeted gpu_check runs: the slow tier

REPO = Path(__file__).resolve().parents[1]
CPU = torch.device("cpu")


@pytest.fixture(scope="module")
def gpu_check():
    """The script as a module (it imports ``machine`` from its own folder, as ``python SCRIPT`` would)."""
    sys.path.insert(0, str(REPO / "benchmarks"))
    try:
        spec = importlib.util.spec_from_file_location("gpu_check", REPO / "benchmarks" / "gpu_check.py")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        yield module
    finally:
        sys.path.remove(str(REPO / "benchmarks"))


@pytest.fixture
def tiny_gated():
    torch.manual_seed(0)
    model = pixelcnn.build(
        "gated_pixelcnn", image_shape=(3, 4, 4), levels=4, n_layers=1, hidden=8, num_classes=3
    ).eval()
    generator = torch.Generator().manual_seed(0)
    x = torch.randint(0, 4, (2, 3, 4, 4), generator=generator)
    return model, x, torch.tensor([0, 2])


def test_the_tiny_cpu_run_passes_and_skips_what_needs_cuda(gpu_check, tmp_path):
    out = tmp_path / "gpu_check.json"
    started = time.monotonic()
    # (--grace 0: a run past its budget must not end this process, the test runner's)
    code = gpu_check.main(["--device", "cpu", "--tiny", "--minutes", "1", "--grace", "0", "--out", str(out)])
    took = time.monotonic() - started
    result = json.loads(out.read_text())
    rows = {part: result["parts"][part]["rows"] for part in gpu_check.SHARES}
    failed = [row for part in rows.values() for row in part if row["status"] == "FAIL"]
    assert code == 0 and result["failures"] == 0 and not failed, failed
    assert took < 60 + 15, f"a 60 s budget took {took:.0f} s"
    assert result["machine"]["cpu"] and result["device"] == {"type": "cpu", "torch": torch.__version__}
    # (a loaded machine skips some checks for want of time; none may fail, and the first ones run)
    assert rows["correctness"][0]["status"] == "pass", rows["correctness"][0]
    assert all(row["status"] in ("pass", "skipped", "cut") for row in rows["correctness"]), rows["correctness"]
    cuda_only = [row for part in rows.values() for row in part if "CUDA graph" in row["item"] or "fp16" in row["item"]]
    assert len(cuda_only) == 4, cuda_only  # fp16 training and CUDA graphs, for the two models
    assert all(row["status"] == "skipped" and "no CUDA" in row["detail"] for row in cuda_only), cuda_only
    assert rows["training"][0]["item"].startswith("--precision auto"), rows["training"]


def test_a_broken_cached_step_fails_the_sampling_check(gpu_check, tiny_gated, monkeypatch):
    model, x, cond = tiny_gated
    passed, _, _ = gpu_check.check_fast_equals_naive(model, x, cond, CPU, known_rows=0)
    assert passed
    real_step = GatedPixelCNNCache.step
    monkeypatch.setattr(GatedPixelCNNCache, "step", lambda self, *where: real_step(self, *where).flip(-1))
    passed, detail, values = gpu_check.check_fast_equals_naive(model, x, cond, CPU, known_rows=0)
    assert not passed and values["differ"] > 0, detail
    passed, _, _ = gpu_check.check_fast_equals_naive(model, x, cond, CPU, known_rows=3)  # a preset's last row
    assert not passed


def test_a_broken_coder_fails_the_round_trip_check(gpu_check, tiny_gated, monkeypatch, tmp_path):
    model, x, cond = tiny_gated
    report = gpu_check.Report(tmp_path / "report.json", {})
    report.begin("correctness", 60)
    assert report.run("intact", lambda: gpu_check.check_round_trip(model, model, x, cond))["status"] == "pass"

    # 1. A decoder whose conditionals differ from the encoder's (another platform's floats): refused.
    real_call = coding.codec._Coder.__call__

    def decoder_off(self, params, row, col, channel):
        return real_call(self, params if self.decoder is None else params.flip(-1), row, col, channel)

    monkeypatch.setattr(coding.codec._Coder, "__call__", decoder_off)
    assert report.run("decoder off", lambda: gpu_check.check_round_trip(model, model, x, cond))["status"] == "FAIL"
    monkeypatch.undo()

    # 2. A decoder that returns a wrong image without complaint.
    real_decompress = coding.decompress
    monkeypatch.setattr(coding, "decompress", lambda *args, **kw: real_decompress(*args, **kw).roll(1, dims=-1))
    passed, detail, _ = gpu_check.check_round_trip(model, model, x, cond)
    assert not passed and "WRONG" in detail


def test_the_causality_check_catches_a_leak(gpu_check, monkeypatch):
    import pixelcnn.nn.gated as gated_layer

    model = pixelcnn.build("gated_pixelcnn", image_shape=(3, 4, 4), levels=4, n_layers=2, hidden=6)
    assert gpu_check.check_causality(model, None, CPU, None)[0]
    monkeypatch.setattr(gated_layer, "shift_down", lambda x: x)  # the vertical stack sees its own row
    passed, detail, values = gpu_check.check_causality(model, None, CPU, None)
    assert not passed and values["leaks"] > 0, detail
    passed, detail, _ = gpu_check.check_causality(model, None, CPU, outputs=4)  # a preset's few outputs
    assert not passed, detail


def test_the_log_prob_and_save_load_checks_catch_a_difference(gpu_check, tiny_gated, monkeypatch):
    model, x, cond = tiny_gated
    assert gpu_check.check_log_prob_matches_cpu(model, model, x, cond, CPU)[0]
    assert gpu_check.check_save_load(model, model, x, cond)[0]
    other = pixelcnn.build("gated_pixelcnn", **model.config.to_dict()).eval()  # other weights
    assert not gpu_check.check_log_prob_matches_cpu(model, other, x, cond, CPU)[0]
    monkeypatch.setattr(pixelcnn, "load", lambda *args, **kw: other)
    assert not gpu_check.check_save_load(model, model, x, cond)[0]


def test_an_item_is_skipped_by_its_estimate_and_cut_at_the_deadline(gpu_check, tmp_path):
    report = gpu_check.Report(tmp_path / "report.json", {})
    report.begin("sampling", 0.5)
    skipped = report.run("too long", lambda: (True, "", {}), estimate_s=10)
    assert skipped["status"] == "skipped" and "needs ~10 s" in skipped["detail"]
    started = time.monotonic()
    with pytest.raises(gpu_check.BudgetSpent):
        with gpu_check.hard_deadline(0.5):
            report.run("runs over", lambda: (time.sleep(5), (True, "", {}))[1])
    assert time.monotonic() - started < 2
    assert json.loads((tmp_path / "report.json").read_text())["parts"]["sampling"]["rows"][0]["status"] == "skipped"


def test_bad_arguments_are_one_line_errors(gpu_check, capsys):
    for argv, message in (
        (["--minutes", "0"], "--minutes must be positive"),
        (["--train-batch", "0"], "--train-batch must be a positive integer"),
        (["--grace", "-1"], "--grace must be 0 or more seconds"),
        (["--device", "tpu"], "--device"),
    ):
        with pytest.raises(SystemExit) as stop:
            gpu_check.main(argv + ["--device", "cpu"] if argv[0] != "--device" else argv)
        assert stop.value.code == 2 and message in capsys.readouterr().err
