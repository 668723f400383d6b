"""The registry and the tests follow each other: every model has its tiny configuration and preset,
every preset names a model the registry builds. With these, the proofs parametrized over
``pixelcnn.list_models()`` (causality, exactness, fast == naive, save / load, compression) run for
every model, and a model added without a tiny configuration fails them."""

import dataclasses

import pytest

import pixelcnn
from conftest import TINY_MODELS, model_cases, tiny_model_config
from pixelcnn.models.registry import BASELINES, config_for


def test_every_registry_model_has_a_tiny_configuration_and_no_other_name_does():
    assert sorted(TINY_MODELS) == pixelcnn.list_models()


@pytest.mark.parametrize("name", pixelcnn.list_models())
def test_each_tiny_configuration_builds_its_model_and_names_a_tiny_preset_of_it(name):
    tiny_of = tiny_model_config(name)
    preset = pixelcnn.presets[tiny_of.preset]
    assert tiny_of.preset.startswith("tiny-") and preset.model == name
    fields = {f.name for f in dataclasses.fields(pixelcnn.models.registry.model_class(name).config_class)}
    for condition, extra in tiny_of.conditions.items():
        assert set(tiny_of.options) | set(extra) <= fields, condition
        assert config_for(name, **tiny_of.options, **extra)[0] == name


@pytest.mark.parametrize("preset", sorted(pixelcnn.presets))
def test_every_presets_family_is_a_registry_model_or_a_baseline(preset):
    family = pixelcnn.presets[preset].model
    assert family in pixelcnn.list_models() or family in BASELINES, (preset, family)
    assert config_for(preset)[0] == family  # the preset's fields are its model's


def test_a_model_without_a_tiny_configuration_fails_the_proofs(monkeypatch):
    """What a new registry entry meets: its cases are generated, and building it fails with the fix named."""
    from pixelcnn.models import registry

    monkeypatch.setitem(registry.MODELS, "new_model", registry.MODELS["pixelcnn"])
    assert ("new_model", "none") in model_cases() and ("new_model", "spatial") in model_cases()
    with pytest.raises(LookupError, match="new_model.*TINY_MODELS in tests/conftest.py"):
        tiny_model_config("new_model")
