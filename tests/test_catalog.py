"""Catalog (pure): id and provider-name validation, the route table, mapping normalisation."""
from __future__ import annotations

import logging
from typing import Any

import pytest

from hf_textgen import catalog
from hf_textgen.catalog import is_usable, normalize_mapping, route_for, validate_model_id, validate_provider
from hf_textgen.errors import ConfigurationError

from mocked import ROUTES, as_list, entry, mapping_of

BAD_MODEL_IDS = ["../x", "a?b", "a/b/c", "a--b", "a..b", "x" * 97, "модель/x", "org/modèle", "", "/x", "x/", "a b", "-a", "a#b", "a%2fb", "a/.b", "a./b", "org/-x", "a\\b", "a/b\n", "a\n"]
BAD_PROVIDERS = ["../x", "a/b", "x?y", "%2e%2e", "http://evil", "", "..", "X", "Together", "a b", "x#y", "-x", "x-", "a" * 65, "x\n", None, 3]


@pytest.mark.parametrize("model", ["gpt2", "org/model", "meta-llama/Llama-3.3-70B-Instruct", "a_b/c.d-e", "o/" + "x" * 94])
def test_hub_ids_pass(model: str) -> None:
    assert validate_model_id(model) == model


@pytest.mark.parametrize("model", BAD_MODEL_IDS)
def test_bad_model_ids_are_refused(model: str) -> None:
    with pytest.raises(ConfigurationError, match="invalid model id") as raised:
        validate_model_id(model)
    assert isinstance(raised.value, ValueError)


@pytest.mark.parametrize("name", ["together", "fireworks-ai", "hf-inference", "zai-org", "sambanova", "a", "x_y", "nebius2"])
def test_provider_names_pass(name: str) -> None:
    assert validate_provider(name) == name


@pytest.mark.parametrize("name", BAD_PROVIDERS)
def test_provider_names_that_could_alter_a_url_are_refused(name: Any) -> None:
    with pytest.raises(ConfigurationError, match="invalid provider name") as raised:
        validate_provider(name)
    assert isinstance(raised.value, ValueError)


@pytest.mark.parametrize("provider, route", [*ROUTES, ("hf-inference", "/models/org/model/v1/chat/completions")])
def test_route_table(provider: str, route: str) -> None:
    assert route_for(provider, "org/model") == route


def test_both_mapping_shapes_normalise_to_one_shape_in_order() -> None:
    raw = mapping_of("together", "novita", "groq", cohere=entry(status="error", task="text-generation", provider_id="c"))
    expected = {
        "together": {"providerId": "together-id", "status": "live", "task": "conversational"},
        "novita": {"providerId": "novita-id", "status": "live", "task": "conversational"},
        "groq": {"providerId": "groq-id", "status": "live", "task": "conversational"},
        "cohere": {"providerId": "c", "status": "error", "task": "text-generation"},
    }
    for shape in (raw, as_list(raw)):
        normalized = normalize_mapping(shape, "org/model")
        assert normalized == expected and list(normalized) == list(expected)


def test_list_entries_carry_extra_fields_and_missing_ones_become_empty() -> None:
    raw = [{"provider": "together", "providerId": "t", "status": "live", "task": "conversational", "adapter": None, "type": "single-model"}, {"provider": "novita"}]
    assert normalize_mapping(raw) == {
        "together": {"providerId": "t", "status": "live", "task": "conversational"},
        "novita": {"providerId": "", "status": "", "task": ""},
    }


def test_a_provider_listed_twice_keeps_its_first_entry() -> None:
    raw = [{"provider": "together", "providerId": "first"}, {"provider": "novita"}, {"provider": "together", "providerId": "second"}]
    normalized = normalize_mapping(raw)
    assert list(normalized) == ["together", "novita"] and normalized["together"]["providerId"] == "first"


@pytest.mark.parametrize("shape", ["dict", "list"])
def test_entries_with_hostile_names_or_shapes_are_skipped_with_a_warning(shape: str, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, "hf_textgen")
    hostile = ["../x", "a/b", "x?y", "%2e%2e", "http://evil"]
    raw: Any = {**{name: entry() for name in hostile}, "good": entry(), "broken": "not an object"}
    if shape == "list":
        raw = [{"provider": name, **entry()} for name in hostile] + [{"provider": "good", **entry()}, "not an object", {"providerId": "no name"}]
    assert list(normalize_mapping(raw, "org/model")) == ["good"]
    for name in hostile:
        assert repr(name) in caplog.text
    assert "org/model" in caplog.text


@pytest.mark.parametrize("raw", [None, {}, []])
def test_no_mapping_is_an_empty_mapping(raw: Any) -> None:
    assert normalize_mapping(raw) == {}


@pytest.mark.parametrize("raw", ["together", 3, True])
def test_an_unexpected_mapping_type_raises_value_error(raw: Any) -> None:
    with pytest.raises(ValueError, match="inferenceProviderMapping"):
        normalize_mapping(raw)


@pytest.mark.parametrize(
    "status, task, usable",
    [("live", "conversational", True), ("staging", "conversational", False), ("error", "conversational", False), ("live", "text-generation", False), ("", "", False)],
)
def test_only_live_conversational_entries_are_usable(status: str, task: str, usable: bool) -> None:
    assert is_usable({"status": status, "task": task, "providerId": "x"}) is usable


def test_the_static_catalog_holds_valid_ids() -> None:
    ids = [catalog.DEFAULT_MODEL, catalog.DEFAULT_VISION_MODEL, *catalog.VISION_MODELS, *catalog.MODEL_ALIASES.values(), *catalog.FALLBACK_MODELS]
    assert all(validate_model_id(model) == model for model in ids)
    assert catalog.DEFAULT_MODEL in catalog.FALLBACK_MODELS and catalog.DEFAULT_VISION_MODEL in catalog.VISION_MODELS
    assert len(set(catalog.FALLBACK_MODELS)) == len(catalog.FALLBACK_MODELS)
