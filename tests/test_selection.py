"""Provider choice by the catalogue, as pure decisions: the estimate, the skip matrix, ``prefer``
orders and ties, the cost arithmetic, the model filter. No I/O."""
from __future__ import annotations

import json
import math
from typing import Any, Optional

import pytest

from hf_textgen.capabilities import ModelCatalog, ProviderCapabilities as Caps
from hf_textgen.selection import (
    IMAGE_TOKENS,
    OUTPUT_GUESS,
    Needs,
    Step,
    cost,
    estimate_prompt,
    estimated_cost,
    filter_models,
    needs_of,
    plan,
    skip_reason,
    wants_catalog,
)
from hf_textgen.types import Cost, Usage

TOOLS = [{"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object"}}}]
MESSAGES = [{"role": "user", "content": "Hello there"}]


# --------------------------------------------------------------------------------------- estimate
def test_the_estimate_is_the_compact_json_of_messages_and_tools_over_four_rounded_up() -> None:
    rendered = json.dumps([MESSAGES, TOOLS], separators=(",", ":"))
    assert estimate_prompt(MESSAGES, TOOLS) == math.ceil(len(rendered) / 4)
    assert estimate_prompt(MESSAGES) == math.ceil(len(json.dumps([MESSAGES, []], separators=(",", ":"))) / 4)


def test_an_image_counts_as_a_fixed_number_of_tokens_not_its_bytes() -> None:
    image = {"type": "image_url", "image_url": {"url": "data:image/png;base64," + "A" * 400_000}}
    text = {"type": "text", "text": "What is this?"}
    with_image = [{"role": "user", "content": [text, image]}]
    without = [{"role": "user", "content": [text]}]
    assert estimate_prompt(with_image) == estimate_prompt(without) + IMAGE_TOKENS


def test_needs_of_a_body() -> None:
    body = {"messages": MESSAGES, "max_tokens": 100, "tools": TOOLS, "response_format": {"type": "json_schema", "json_schema": {}}}
    needs = needs_of(body)
    assert (needs.tools, needs.structured, needs.max_tokens) == (True, True, 100)
    assert needs.prompt_tokens == estimate_prompt(MESSAGES, TOOLS)
    assert needs_of({"messages": MESSAGES, "tool_choice": "none"}).tools  # tool_choice alone counts
    assert not needs_of({"messages": MESSAGES, "response_format": {"type": "text"}}).structured
    assert needs_of({"messages": MESSAGES, "response_format": {"type": "json_object"}}).structured
    assert needs_of({"messages": MESSAGES, "max_completion_tokens": 7}).max_tokens == 7
    assert needs_of({"messages": MESSAGES}).max_tokens is None


# ------------------------------------------------------------------------------------ skip matrix
@pytest.mark.parametrize("value, skipped", [(True, False), (False, True), (None, False)])
@pytest.mark.parametrize("capability, needs", [("supports_tools", Needs(tools=True)), ("supports_structured_output", Needs(structured=True))])
def test_each_capability_true_false_missing(capability: str, needs: Needs, value: Optional[bool], skipped: bool) -> None:
    reason = skip_reason(Caps("p", **{capability: value}), needs)
    assert (reason is not None) == skipped
    assert skip_reason(Caps("p", **{capability: value}), Needs()) is None  # not asked for: never skipped


@pytest.mark.parametrize(
    "context, prompt, max_tokens, skipped",
    [(1000, 400, 600, False), (1000, 400, 601, True), (1000, 1001, None, True), (1000, 1000, None, False), (None, 10**9, 10**9, False)],
)
def test_context_length_against_prompt_plus_max_tokens(context: Optional[int], prompt: int, max_tokens: Optional[int], skipped: bool) -> None:
    reason = skip_reason(Caps("p", context_length=context), Needs(prompt_tokens=prompt, max_tokens=max_tokens))
    assert (reason is not None) == skipped
    if reason:
        assert str(context) in reason and "context length" in reason


@pytest.mark.parametrize("status, skipped", [("error", True), ("live", False), (None, False), ("staging", False)])
def test_status_error_skips(status: Optional[str], skipped: bool) -> None:
    assert (skip_reason(Caps("p", status=status), Needs()) is not None) == skipped


def test_a_provider_the_catalogue_does_not_list_is_never_skipped() -> None:
    assert skip_reason(None, Needs(tools=True, structured=True, prompt_tokens=10**9)) is None


# ---------------------------------------------------------------------------------------- order
CANDIDATES = [("a", "A"), ("b", "B"), ("c", "C"), ("d", "D")]


def catalog(*entries: Caps) -> ModelCatalog:
    return ModelCatalog("org/model", entries)


def order(prefer: str, known: ModelCatalog, needs: Needs = Needs(prompt_tokens=1000, max_tokens=1000)) -> list:
    return [step.provider for step in plan(CANDIDATES, known, needs, prefer)]


def test_order_keeps_the_mapping_order() -> None:
    known = catalog(Caps("a", throughput=1), Caps("b", throughput=9))
    assert order("order", known) == ["a", "b", "c", "d"]


def test_cheapest_by_estimated_cost_unknown_last_ties_in_mapping_order() -> None:
    known = catalog(
        Caps("a", input_price=1.0, output_price=1.0),  # 2000e-6
        Caps("b", input_price=0.5, output_price=0.5),  # 1000e-6
        Caps("c", input_price=1.5, output_price=0.5),  # same as a
        Caps("d", input_price=0.1),  # output unknown: last
    )
    assert order("cheapest", known) == ["b", "a", "c", "d"]


def test_cheapest_weighs_input_by_the_prompt_and_output_by_max_tokens() -> None:
    known = catalog(Caps("a", input_price=10.0, output_price=0.0), Caps("b", input_price=0.0, output_price=1.0))
    assert order("cheapest", known, Needs(prompt_tokens=1000, max_tokens=100)) == ["b", "a", "c", "d"]  # 100e-6 < 10000e-6
    assert order("cheapest", known, Needs(prompt_tokens=10, max_tokens=10_000)) == ["a", "b", "c", "d"]  # 100e-6 < 10000e-6


def test_cheapest_assumes_the_default_output_when_max_tokens_is_none() -> None:
    entry = Caps("a", input_price=2.0, output_price=4.0)
    assert estimated_cost(entry, Needs(prompt_tokens=500)) == pytest.approx((2.0 * 500 + 4.0 * OUTPUT_GUESS) / 1e6)


def test_a_free_provider_without_prices_costs_nothing() -> None:
    known = catalog(Caps("a", input_price=0.1, output_price=0.1), Caps("c", is_free=True))
    assert order("cheapest", known) == ["c", "a", "b", "d"]
    assert estimated_cost(Caps("x", is_free=False), Needs()) is None


def test_fastest_by_first_token_latency_and_throughput_highest_first() -> None:
    known = catalog(
        Caps("a", first_token_latency_ms=300, throughput=50),
        Caps("b", first_token_latency_ms=100, throughput=50),
        Caps("c", throughput=80),
        Caps("d", first_token_latency_ms=100),
    )
    assert order("fastest", known) == ["b", "d", "a", "c"]
    assert order("throughput", known) == ["c", "a", "b", "d"]


def test_no_catalogue_keeps_the_mapping_order_and_skips_nothing() -> None:
    steps = plan(CANDIDATES, None, Needs(tools=True), "cheapest")
    assert steps == [Step(name, provider_id) for name, provider_id in CANDIDATES]


def test_named_providers_are_neither_skipped_nor_reordered_but_cautioned() -> None:
    known = catalog(Caps("a", supports_tools=False, throughput=1), Caps("b", throughput=9))
    steps = plan(CANDIDATES, known, Needs(tools=True), "throughput", named=True)
    assert [step.provider for step in steps] == ["a", "b", "c", "d"]
    assert all(step.skip is None for step in steps)
    assert steps[0].caution == "no tool calling (router catalogue)" and steps[1].caution is None


def test_skips_are_kept_in_the_plan_at_their_place() -> None:
    known = catalog(Caps("a", supports_tools=False), Caps("c", status="error"))
    steps = plan(CANDIDATES, known, Needs(tools=True))
    assert [(step.provider, bool(step.skip)) for step in steps] == [("a", True), ("b", False), ("c", True), ("d", False)]


@pytest.mark.parametrize(
    "needs, prefer, named, use, wanted",
    [
        (Needs(), None, False, "auto", False),
        (Needs(), "order", False, "auto", False),
        (Needs(tools=True), None, False, "auto", True),
        (Needs(structured=True), None, False, "auto", True),
        (Needs(), "cheapest", False, "auto", True),
        (Needs(tools=True), None, True, "auto", False),
        (Needs(), None, True, "always", True),
        (Needs(tools=True), "fastest", False, "never", False),
    ],
)
def test_when_a_call_fetches_the_catalogue(needs: Needs, prefer: Optional[str], named: bool, use: str, wanted: bool) -> None:
    assert wants_catalog(needs, prefer, named, use) is wanted


# ----------------------------------------------------------------------------------------- cost
def test_cost_is_the_price_per_million_times_the_tokens() -> None:
    entry = Caps("together", input_price=0.88, output_price=2.0)
    found = cost(entry, Usage(prompt_tokens=1_000, completion_tokens=500, total_tokens=1_500))
    assert found == Cost(pytest.approx(0.00088), pytest.approx(0.001), pytest.approx(0.00188), "together")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "entry, usage",
    [
        (None, Usage(1, 1, 2)),
        (Caps("p", input_price=1.0), Usage(1, 1, 2)),
        (Caps("p", output_price=1.0), Usage(1, 1, 2)),
        (Caps("p", input_price=1.0, output_price=1.0), None),
        (Caps("p", input_price=1.0, output_price=1.0), Usage(0, 0, 0)),
    ],
)
def test_no_cost_when_pricing_or_usage_is_unknown(entry: Optional[Caps], usage: Optional[Usage]) -> None:
    assert cost(entry, usage) is None


def test_a_free_provider_costs_zero() -> None:
    assert cost(Caps("p", is_free=True), Usage(10, 10, 20)) == Cost(0.0, 0.0, 0.0, "p")


# --------------------------------------------------------------------------------------- filter
def models() -> list:
    return [
        ModelCatalog("org/a", (Caps("x", supports_tools=True, context_length=8000, input_price=1, output_price=1, throughput=10),
                               Caps("y", supports_tools=False, context_length=128000, input_price=0.1, output_price=0.1, throughput=90))),
        ModelCatalog("org/b", (Caps("y", supports_tools=True, supports_structured_output=True, context_length=32000,
                                    input_price=0.5, output_price=0.5, first_token_latency_ms=100),)),
        ModelCatalog("org/c", (Caps("z", status="error", supports_tools=True),)),
    ]


def ids(found: Any) -> list:
    return [(model.model, [p.provider for p in model.providers]) for model in found]


def test_filter_models_by_provider_capability_and_context() -> None:
    assert ids(filter_models(models(), tools=True)) == [("org/a", ["x"]), ("org/b", ["y"])]  # an error provider never fits
    assert ids(filter_models(models(), structured=True)) == [("org/b", ["y"])]
    assert ids(filter_models(models(), provider="y", min_context=64000)) == [("org/a", ["y"])]
    assert ids(filter_models(models(), provider="y", tools=True)) == [("org/b", ["y"])]  # one provider meets every condition


def test_filter_models_sorts_providers_and_models_by_their_best() -> None:
    assert ids(filter_models(models(), sort="price")) == [("org/a", ["y", "x"]), ("org/b", ["y"])]
    assert ids(filter_models(models(), sort="throughput")) == [("org/a", ["y", "x"]), ("org/b", ["y"])]
    assert ids(filter_models(models(), sort="latency")) == [("org/b", ["y"]), ("org/a", ["x", "y"])]
