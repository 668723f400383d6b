"""Precision and compilation switches: what ``auto`` picks for each kind of hardware (mocked), bf16 training,
the compile fallback, sampling and evaluation under bf16, old configs, and bad values on the command line."""

import functools
import json

import pytest
import torch

import conftest
import pixelcnn
from pixelcnn import cli, hardware
from pixelcnn.data import load as load_data
from pixelcnn.evaluate import evaluate
from pixelcnn.hardware import choose_compile, choose_precision
from pixelcnn.train import TrainConfig, Trainer

CPU, CUDA, MPS = torch.device("cpu"), torch.device("cuda"), torch.device("mps")


@pytest.fixture
def cpu_units(monkeypatch):
    """Pretend the CPU has the given bf16 units: cpu_units("AMX"), ("AVX512-BF16") or (None)."""

    def pretend(units):
        monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: units == "AMX")
        monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda: units in ("AMX", "AVX512-BF16"))

    return pretend


@pytest.fixture
def cuda_bf16(monkeypatch):
    def pretend(supported: bool):
        monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *args, **kwargs: supported)

    return pretend


# ------------------------------------------------------------------------------------- the choice
@pytest.mark.parametrize("units, expected", [("AMX", "bf16"), ("AVX512-BF16", "bf16"), (None, "fp32")])
def test_auto_on_a_cpu_is_bf16_only_with_bf16_units(cpu_units, units, expected):
    cpu_units(units)
    precision = choose_precision("auto", CPU)
    assert precision.name == expected and not precision.grad_scaling
    assert (units or "no bfloat16 units") in str(precision)  # says why, in one line
    assert "\n" not in str(precision)


@pytest.mark.parametrize("supported, expected, scaling", [(True, "bf16", False), (False, "fp16", True)])
def test_auto_on_cuda_is_bf16_or_fp16_with_gradient_scaling(cuda_bf16, supported, expected, scaling):
    cuda_bf16(supported)
    precision = choose_precision("auto", CUDA)
    assert (precision.name, precision.grad_scaling, precision.device_type) == (expected, scaling, "cuda")


def test_auto_keeps_the_cached_sampler_in_float32_on_a_cpu(cpu_units, cuda_bf16):
    cpu_units("AMX")
    cuda_bf16(True)
    assert choose_precision("auto", CPU, cached_sampler=True).name == "fp32"  # tiny steps: casts cost more
    assert choose_precision("bf16", CPU, cached_sampler=True).name == "bf16"  # unless asked for
    assert choose_precision("auto", CUDA, cached_sampler=True).name == "bf16"


def test_auto_on_mps_is_float32():
    assert choose_precision("auto", MPS).name == "fp32"


def test_impossible_or_unknown_precisions_are_clear_errors(cuda_bf16, cpu_units):
    cuda_bf16(False)
    cpu_units(None)
    with pytest.raises(ValueError, match="does not support bfloat16"):
        choose_precision("bf16", CUDA)
    with pytest.raises(ValueError, match="fp16 needs a CUDA GPU"):
        choose_precision("fp16", CPU)
    with pytest.raises(ValueError, match="precision must be one of auto, fp32, bf16, fp16, got 'fp8'"):
        choose_precision("fp8", CPU)
    assert "emulated" in choose_precision("bf16", CPU).reason  # allowed, but said to be slow


def test_compile_auto_is_on_for_long_runs_only(monkeypatch):
    long_steps, long_minutes = hardware.COMPILE_AUTO_MIN_STEPS, hardware.COMPILE_AUTO_MIN_MINUTES
    monkeypatch.setattr(hardware, "compiler_available", lambda: True)
    assert choose_compile("auto", CPU, planned_steps=long_steps)[0]
    assert choose_compile("auto", CUDA, planned_minutes=long_minutes)[0]
    assert not choose_compile("auto", CPU, planned_steps=long_steps - 1)[0]
    # a run stops at its first budget: many minutes but few steps is a short run
    assert not choose_compile("auto", CPU, planned_steps=5, planned_minutes=10 * long_minutes)[0]
    assert not choose_compile("auto", MPS, planned_steps=10 * long_steps)[0]
    assert choose_compile("on", CPU, planned_steps=1) == (True, "compile on: asked for")
    assert not choose_compile("off", CPU, planned_steps=10 * long_steps)[0]
    # float32 on a CPU: compiling does not pay (measured), so auto there is float32 eager
    on, reason = choose_compile("auto", CPU, planned_steps=10 * long_steps, precision="fp32")
    assert not on and "float32 on a CPU" in reason
    assert choose_compile("auto", CPU, planned_steps=long_steps, precision="bf16")[0]
    assert choose_compile("auto", CUDA, planned_steps=long_steps, precision="fp32")[0]
    assert choose_compile("on", CPU, planned_steps=1, precision="fp32")[0]
    monkeypatch.setattr(hardware, "compiler_available", lambda: False)
    on, reason = choose_compile("auto", CPU, planned_steps=10 * long_steps)
    assert not on and "no C++ compiler" in reason
    with pytest.raises(ValueError, match="compile must be one of auto, on, off"):
        choose_compile("yes", CPU)


# ------------------------------------------------------------------------------------- training
# conftest's tiny run, wider (hidden 8) and longer (30 steps at lr 3e-3): long enough to lower the loss.
tiny_config = functools.partial(conftest.tiny_config, model_options=dict(n_layers=2, hidden=8), max_steps=30, lr=3e-3)


def losses(run_dir) -> list[float]:
    lines = [json.loads(line) for line in open(run_dir / "metrics.jsonl")]
    return [line["loss_nats"] for line in lines if line["kind"] == "train"]


def test_a_bf16_run_trains_under_autocast_and_lowers_the_loss(tmp_path, monkeypatch):
    seen = []
    network = pixelcnn.models.gated.GatedPixelCNN.network

    def spy(self, x, h):
        out = network(self, x, h)
        seen.append(out.dtype)
        return out

    monkeypatch.setattr(pixelcnn.models.gated.GatedPixelCNN, "network", spy)
    messages = []
    result = Trainer(tiny_config(tmp_path, precision="bf16", compile="off"), log=messages.append).run()
    assert seen[0] == torch.bfloat16  # the network ran in bf16 ...
    assert all(p.dtype == torch.float32 for p in pixelcnn.load(result.model_path).parameters())  # ... weights f32
    assert any(m.startswith("precision bf16: asked for") and "compile off" in m for m in messages)
    curve = losses(result.run_dir)
    assert sum(curve[-5:]) / 5 < sum(curve[:5]) / 5 - 20  # nats per image, from about 540
    assert result.final_eval.precision == "network and head in float32"  # the logged NLL is float32


@pytest.mark.parametrize("units, precision, compiled", [(None, "fp32", False), ("AVX512-BF16", "bf16", True)])
def test_auto_on_a_cpu_without_bf16_units_is_float32_eager(
    tmp_path, monkeypatch, cpu_units, units, precision, compiled
):
    """A long run under --precision auto --compile auto: bf16 and compiled where the CPU has bf16 units,
    and float32 eager (never slower than it) where it has none."""
    cpu_units(units)
    monkeypatch.setattr(hardware, "compiler_available", lambda: True)
    monkeypatch.setattr(torch, "compile", lambda module, **kw: module)  # no real compile in a unit test
    messages = []
    trainer = Trainer(tiny_config(tmp_path, precision="auto", compile="auto", max_steps=5000), log=messages.append)
    trainer._setup()  # the choices, without training
    assert trainer.precision.name == precision and trainer.compiled is compiled
    assert any(m.startswith(f"precision {precision}: auto") and ("compile auto: on" in m) is compiled for m in messages)


class FailingCompile:
    """What torch.compile returns in the test: a module that fails in forward or in backward."""

    def __init__(self, module, where):
        self.module, self.where, self.calls = module, where, 0

    def __call__(self, *args):
        self.calls += 1
        if self.where == "forward":
            raise RuntimeError("C++ compile error: cannot find Python.h\nmore lines")
        return FailInBackward.apply(self.module(*args))


class FailInBackward(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        return x.clone()

    @staticmethod
    def backward(ctx, grad):
        raise RuntimeError("inductor failed while compiling the backward graph")


@pytest.mark.parametrize("where", ["forward", "backward"])
def test_a_failing_compile_warns_once_and_trains_in_eager_mode(tmp_path, monkeypatch, where):
    made = []
    monkeypatch.setattr(torch, "compile", lambda module, **kw: made.append(FailingCompile(module, where)) or made[-1])
    messages = []
    result = Trainer(tiny_config(tmp_path, compile="on", max_steps=4, precision="fp32"), log=messages.append).run()
    warnings = [m for m in messages if "torch.compile failed" in m]
    assert len(warnings) == 1 and "\n" not in warnings[0] and "RuntimeError" in warnings[0]
    assert result.step == 4 and len(losses(result.run_dir)) == 4 and made[0].calls == 1
    # the same steps as an eager run: the failed attempt changed nothing
    eager = Trainer(
        tiny_config(tmp_path, "eager", compile="off", max_steps=4, precision="fp32"), log=lambda m: None
    ).run()
    assert losses(result.run_dir) == losses(eager.run_dir)


def test_old_configs_with_amp_and_compile_booleans_load(tmp_path):
    values = tiny_config(tmp_path).to_dict()
    del values["precision"], values["compile"]
    (tmp_path / "config.json").write_text(json.dumps({**values, "amp": True, "compile": True}))
    config = TrainConfig.load(tmp_path / "config.json")
    assert (config.precision, config.compile) == ("auto", "on")
    config = TrainConfig.from_dict({**values, "amp": False, "compile": False})
    assert (config.precision, config.compile) == ("fp32", "off")
    with pytest.raises(ValueError, match="precision must be one of"):
        TrainConfig(precision="fp8")


# ------------------------------------------------------------------------------------- eval and sampling
@pytest.fixture(scope="module")
def tiny_models():
    torch.manual_seed(0)
    return {
        "gated": pixelcnn.build("gated_pixelcnn", image_shape=(1, 6, 6), levels=2, n_layers=2, hidden=8, num_classes=3),
        "pixelcnn": pixelcnn.build("pixelcnn", image_shape=(3, 5, 5), levels=4, n_layers=2, hidden=12),
    }


def test_eval_in_bf16_is_close_to_fp32_and_the_head_runs_in_float32(monkeypatch):
    torch.manual_seed(0)
    model = pixelcnn.build("gated_pixelcnn", image_shape=(1, 28, 28), levels=2, n_layers=2, hidden=8, num_classes=10)
    test = load_data("mnist5k", "test", binarize="dynamic")
    exact = evaluate(model, test, max_images=64)
    head_log_prob, inside = model.head.log_prob, []

    def spy(params, x):
        out = head_log_prob(params, x)
        inside.append((torch.is_autocast_enabled("cpu"), out.dtype))
        return out

    monkeypatch.setattr(model.head, "log_prob", spy)
    low = evaluate(model, test, max_images=64, precision="bf16")
    assert inside and all(state == (False, torch.float32) for state in inside)
    assert abs(low.nll - exact.nll) < 0.05 * exact.nll_stderr + 0.2  # nats per image, about 540 here
    assert exact.precision == "network and head in float32"
    assert low.to_dict()["precision"] == "network in bf16 (autocast), head in float32"
    assert "head in float32" in str(low)


class CountingCompile:
    """What torch.compile returns in the eval tests: the function itself, counting calls (or failing)."""

    def __init__(self, function, fail: bool):
        self.function, self.fail, self.calls = function, fail, 0

    def __call__(self, *args):
        self.calls += 1
        if self.fail:
            raise RuntimeError("inductor: C++ compile error\nmore lines")
        return self.function(*args)


@pytest.mark.parametrize("fail", [False, True])
def test_eval_compiles_when_asked_and_a_failed_compile_scores_the_same_in_eager_mode(monkeypatch, fail):
    torch.manual_seed(0)
    model = pixelcnn.build("pixelcnn", image_shape=(1, 28, 28), levels=2, n_layers=1, hidden=4)
    test = load_data("mnist5k", "test", binarize="dynamic")
    eager = evaluate(model, test, max_images=40, batch_size=16, compile="off")
    made = []
    monkeypatch.setattr(
        torch, "compile", lambda function, **kw: made.append(CountingCompile(function, fail)) or made[-1]
    )
    assert evaluate(model, test, max_images=40, batch_size=16, compile="auto") == eager and not made  # 3 batches
    if fail:
        with pytest.warns(
            RuntimeWarning,
            match="torch.compile failed .RuntimeError: inductor: C.. compile error.; evaluating without compiling",
        ):
            compiled = evaluate(model, test, max_images=40, batch_size=16, compile="on")
        assert made[0].calls == 1  # tried once, then eager for every batch
    else:
        compiled = evaluate(model, test, max_images=40, batch_size=16, compile="on")
        assert made[0].calls == 3  # every batch through the compiled loss
    assert compiled == eager


def test_fast_equals_naive_under_bf16(tiny_models):
    """The Gated PixelCNN's cached sampler rounds like its full pass in bf16: the same images (64 of 64 here)."""
    model = tiny_models["gated"]
    cond = torch.arange(16) % 3
    draws = {
        method: model.sample(16, cond, method=method, precision="bf16", generator=torch.Generator().manual_seed(3))
        for method in ("naive", "fast")
    }
    assert torch.equal(draws["naive"], draws["fast"])
    done = {
        method: model.complete(
            draws["naive"], 2, cond, method=method, precision="bf16", generator=torch.Generator().manual_seed(4)
        )
        for method in ("naive", "fast")
    }
    assert torch.equal(done["naive"], done["fast"])


@pytest.mark.parametrize("name", ["gated", "pixelcnn"])
def test_under_bf16_every_cached_step_reads_the_full_pass_conditionals(tiny_models, name):
    """Teacher forcing: both samplers fed the same image give each pixel-channel's parameters within bf16
    rounding of each other (a draw can differ only where a uniform falls that close to a threshold)."""
    from pixelcnn.sampling import cached_generate, naive_generate

    model = tiny_models[name].eval()
    image = torch.randint(0, model.levels, (4, *model.image_shape), generator=torch.Generator().manual_seed(0))
    cond = model.encode_condition(torch.tensor([0, 1, 2, 0]) if model.config.num_classes else None)
    params, dtypes = {}, set()
    for method, generate in (("naive", naive_generate), ("fast", cached_generate)):
        seen = params[method] = []

        def choose(step_params, row, col, channel):
            dtypes.add((method, step_params.dtype))
            seen.append(step_params.float())
            return image[:, channel, row, col]

        with choose_precision("bf16", CPU).autocast():
            generate(model, torch.zeros_like(image), 0, cond, choose=choose)
    assert ("naive", torch.bfloat16) in dtypes  # the network ran in bf16
    naive, fast = torch.stack(params["naive"]), torch.stack(params["fast"])
    assert naive.shape == fast.shape and naive.dtype == torch.float32
    assert (naive - fast).abs().max() < 0.05 * naive.abs().max() + 0.02  # bf16 has 8 bits of mantissa


# ------------------------------------------------------------------------------------- the command line
@pytest.mark.parametrize(
    "command",
    [
        ["train", "--max-steps", "1"],
        ["eval", "RUN"],
        ["sample", "RUN", "--out", "x.png"],
        ["complete", "RUN", "--rows", "2", "--out", "x.png"],
    ],
)
def test_a_bad_precision_is_one_line_and_exit_2(capsys, command):
    with pytest.raises(SystemExit) as stop:
        cli.main([*command, "--precision", "fp8"])
    err = capsys.readouterr().err
    assert stop.value.code == 2 and len(err.strip().splitlines()) == 1
    assert "--precision" in err and "fp8" in err


def test_a_bad_compile_value_is_one_line_and_exit_2(capsys):
    with pytest.raises(SystemExit) as stop:
        cli.main(["train", "--max-steps", "1", "--compile", "yes"])
    err = capsys.readouterr().err
    assert stop.value.code == 2 and len(err.strip().splitlines()) == 1 and "--compile" in err


def test_a_compiled_loss_does_not_recompile_for_each_batch_value_range():
    """The input checks read each batch's (min, max) as Python ints; inside a compiled graph that made
    torch.compile specialise on them and recompile for every new range (8 times, then give up and run
    eager). Under compile those data-dependent checks are skipped: one graph serves every batch."""
    graphs = []

    def counting_backend(graph_module, example_inputs):
        graphs.append(graph_module)
        return graph_module.forward

    torch._dynamo.reset()
    model = pixelcnn.build("gated_pixelcnn", image_shape=(1, 6, 6), levels=4, num_classes=3, n_layers=1, hidden=4)
    loss = torch.compile(lambda x, y: -model.log_prob(x, y).mean(), backend=counting_backend, dynamic=False)
    generator = torch.Generator().manual_seed(0)
    x = torch.randint(0, 4, (4, *model.image_shape), generator=generator)
    loss(x, torch.tensor([0, 1, 2, 0]))
    compiled = len(graphs)
    assert compiled >= 1
    for high, label in ((1, 0), (2, 1), (3, 2)):  # new (min, max) of the images and of the labels
        loss(x.clamp(max=high), torch.full((4,), label))
    assert len(graphs) == compiled  # no new graph for them
    torch._dynamo.reset()
