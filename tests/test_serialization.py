import json

import pytest
import torch

import pixelcnn
from conftest import make_cond, proof_cases, tiny_model_config
from pixelcnn import serialization


@pytest.mark.parametrize("name, condition", proof_cases(["none", "class", "spatial"]))
def test_every_registry_model_saves_and_loads(tmp_path, name, condition):
    """Each registry model, from its ``tiny-*`` preset: the same config, log_prob and samples after loading."""
    tiny_of = tiny_model_config(name)
    model = pixelcnn.build(tiny_of.preset, **tiny_of.conditions[condition])
    assert model.name == name
    x = torch.randint(0, model.levels, (3, *model.image_shape))
    cond = make_cond(model, 3)
    cond = cond.float() if cond is not None and cond.is_floating_point() else cond
    folder = pixelcnn.save(model, tmp_path / "model")
    loaded = pixelcnn.load(folder)
    assert type(loaded) is type(model) and loaded.config == model.config and not loaded.training
    model.eval()
    assert torch.equal(model.log_prob(x, cond), loaded.log_prob(x, cond))
    draw = lambda m: m.sample(2, None if cond is None else cond[:2], generator=torch.Generator().manual_seed(3))
    assert torch.equal(draw(model), draw(loaded))


@pytest.mark.parametrize(
    "name, extra",
    [
        ("tiny-pixelcnn", dict(num_classes=3)),
        ("tiny-gated", dict(cond_dim=4, spatial_cond=True)),
        ("tiny-gated", dict(image_shape=(3, 4, 4), levels=256, hidden=6)),
    ],
)
def test_save_load_round_trip(tmp_path, name, extra):
    model = pixelcnn.build(name, **extra)
    C, H, W = model.image_shape
    x = torch.randint(0, model.levels, (3, C, H, W))
    cond = torch.tensor([0, 1, 2]) if "num_classes" in extra else torch.randn(3, 4) if "cond_dim" in extra else None
    pixelcnn.save(model, tmp_path / "model")
    loaded = pixelcnn.load(tmp_path / "model")
    assert type(loaded) is type(model) and loaded.config == model.config
    assert not loaded.training
    model.eval()
    assert torch.equal(model.log_prob(x, cond), loaded.log_prob(x, cond))
    saved = json.loads((tmp_path / "model" / "config.json").read_text())
    assert saved["model"] == model.name and saved["version"] == pixelcnn.__version__
    # The weights file path and the config path work too.
    assert pixelcnn.load(tmp_path / "model" / "model.safetensors").config == model.config


def test_float64_models_come_back_as_float64(tmp_path):
    model = pixelcnn.build("tiny-gated").double()
    pixelcnn.save(model, tmp_path / "m")
    assert next(pixelcnn.load(tmp_path / "m").parameters()).dtype == torch.float64


def test_pickle_files_are_refused_with_a_way_to_convert(tmp_path):
    model = pixelcnn.build("tiny-gated")
    torch.save(model.state_dict(), tmp_path / "model.pt")
    with pytest.raises(ValueError, match=r"pickle.*convert.*torch.load"):
        pixelcnn.load(tmp_path / "model.pt")
    # A pickle renamed to look like safetensors is refused too, never unpickled.
    pixelcnn.save(model, tmp_path / "m")
    torch.save(model.state_dict(), tmp_path / "m" / "model.safetensors")
    with pytest.raises(ValueError, match="pickle"):
        pixelcnn.load(tmp_path / "m")


def test_missing_and_corrupt_files_get_clear_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="no saved model"):
        pixelcnn.load(tmp_path / "nothing-here")
    model = pixelcnn.build("tiny-gated")
    folder = pixelcnn.save(model, tmp_path / "m")

    weights = (folder / "model.safetensors").read_bytes()
    (folder / "model.safetensors").write_bytes(weights[: len(weights) // 2])
    with pytest.raises(ValueError, match="corrupt"):
        pixelcnn.load(folder)
    (folder / "model.safetensors").write_bytes(weights)

    config = (folder / "config.json").read_text()
    (folder / "config.json").write_text(config[:20])
    with pytest.raises(ValueError, match="not valid JSON"):
        pixelcnn.load(folder)
    (folder / "config.json").write_text(config.replace('"gated_pixelcnn"', '"no_such_model"'))
    with pytest.raises(ValueError, match="no_such_model"):
        pixelcnn.load(folder)
    (folder / "config.json").write_text(config.replace('"hidden": 8', '"hidden": 16'))
    with pytest.raises(ValueError, match="does not match its config"):
        pixelcnn.load(folder)
    (folder / "config.json").write_text(config.replace('"hidden": 8', '"hidden_units": 8'))
    with pytest.raises(
        ValueError, match=r"no field 'hidden_units' in this version of pixelcnn; its fields are: .*hidden"
    ):
        pixelcnn.load(folder)
    (folder / "config.json").unlink()
    with pytest.raises(FileNotFoundError, match="config.json"):
        pixelcnn.load(folder)


def test_a_failed_save_keeps_the_model_already_saved(tmp_path, monkeypatch):
    model = pixelcnn.build("tiny-gated")
    folder = pixelcnn.save(model, tmp_path / "m")
    before = (folder / "model.safetensors").read_bytes()

    def broken(*args, **kwargs):
        raise OSError("disk full")

    import safetensors.torch

    monkeypatch.setattr(safetensors.torch, "save_file", broken)
    with pytest.raises(OSError, match="disk full"):
        pixelcnn.save(pixelcnn.build("tiny-gated"), folder)
    assert (folder / "model.safetensors").read_bytes() == before
    assert sorted(p.name for p in folder.iterdir()) == ["config.json", "model.safetensors"]
    assert serialization.read_config(folder)["model"] == "gated_pixelcnn"


def test_models_saved_by_version_0_1_still_load():
    # Saved with the code before the MSE baseline left the auto-encoder module (tests/fixtures/, with the
    # values log_prob / loss gave then): the folders load unchanged and give the same numbers.
    from pathlib import Path

    fixtures = Path(__file__).parent / "fixtures"
    recorded = json.loads((fixtures / "saved_models_v0_1.json").read_text())
    x = torch.tensor(recorded["images"])
    ae = pixelcnn.load(fixtures / "pixelcnn_ae_v0_1")
    assert ae.name == "pixelcnn_ae" and ae.config.spatial_cond
    assert torch.allclose(
        ae.log_prob(x).double(), torch.tensor(recorded["pixelcnn_ae_v0_1"], dtype=torch.float64), rtol=0, atol=1e-4
    )
    mse = pixelcnn.load(fixtures / "mse_ae_v0_1")
    assert mse.name == "mse_ae" and mse.loss_name == "mse"
    with torch.no_grad():
        assert torch.allclose(
            mse.loss(x).double(), torch.tensor(recorded["mse_ae_v0_1"], dtype=torch.float64), rtol=0, atol=1e-6
        )
