"""The public surface: ``hf_textgen.__all__``, the seed's HuggingFaceAPI attributes, and what
``import hf_textgen`` costs (requests and sseclient-py, never anyio or asyncio)."""
from __future__ import annotations

import inspect
import json
import subprocess
import sys

import hf_textgen
from hf_textgen import HuggingFaceAPI, catalog
from hf_textgen.catalog import validate_model_id


def test_all_is_pinned() -> None:
    assert hf_textgen.__all__ == [
        "HuggingFaceAPI",
        "Client",
        "calculate_lenght",
        "errors",
        "ChatResult",
        "ChatStream",
        "AsyncChatStream",
        "ResultCollector",
        "Chunk",
        "ProviderInfo",
        "Usage",
        "FinishReason",
        "ToolCalls",
        "Reasoning",
        "Attempt",
        "Trimmed",
        "Logprobs",
        "Cost",
        "Timeouts",
        "ModelCatalog",
        "ProviderCapabilities",
        "clear_caches",
        "HFTextGenError",
        "ConfigurationError",
        "ConnectError",
        "ModelNotSupportedError",
        "MissingAuthError",
        "PaymentRequiredError",
        "RateLimitError",
        "ResponseError",
        "ResponseStatusError",
        "StreamTimeoutError",
        "InputTrimmedWarning",
    ]


def test_every_exported_member_exists_and_errors_come_from_hf_textgen() -> None:
    for name in hf_textgen.__all__:
        member = getattr(hf_textgen, name)
        if inspect.isclass(member) or inspect.isfunction(member):
            assert member.__module__.startswith("hf_textgen."), name
    exported_errors = {name for name in hf_textgen.__all__ if name.endswith("Error")}
    assert exported_errors == {name for name in hf_textgen.errors.__all__ if name.endswith("Error")}


def test_the_seeds_attributes() -> None:
    api = HuggingFaceAPI
    assert (api.label, api.parent, api.url, api.api_base) == (
        "HuggingFace (Text Generation)",
        "HuggingFace",
        "https://huggingface.co",
        "https://router.huggingface.co/v1",
    )
    assert api.working is True and api.needs_auth is True
    assert api.default_model.startswith("meta-llama/Llama-") and api.default_model.endswith("-Instruct")
    assert api.default_vision_model in api.vision_models and api.default_model in api.fallback_models
    assert api.model_aliases and all(validate_model_id(model) for model in [*api.model_aliases.values(), *api.fallback_models, *api.vision_models])
    assert api.provider_mapping == {}
    assert api.model_aliases == catalog.MODEL_ALIASES and api.model_aliases is not catalog.MODEL_ALIASES


def test_the_seeds_methods() -> None:
    for name in ("get_model", "get_models", "get_mapping_sync", "create_completion"):
        assert callable(getattr(HuggingFaceAPI, name)) and not inspect.iscoroutinefunction(getattr(HuggingFaceAPI, name)), name
    assert inspect.iscoroutinefunction(HuggingFaceAPI.get_mapping)
    seed = ["model", "messages", "api_base", "api_key", "max_tokens", "max_inputs_lenght", "media"]
    parameters = inspect.signature(HuggingFaceAPI.create_completion).parameters
    assert list(parameters)[: len(seed)] == seed
    assert (parameters["max_tokens"].default, parameters["max_inputs_lenght"].default, parameters["media"].default) == (2048, 10000, None)
    assert list(inspect.signature(HuggingFaceAPI.get_mapping).parameters)[:2] == ["model", "api_key"]


ALLOWED_THIRD_PARTY = {"hf_textgen", "requests", "urllib3", "sseclient", "charset_normalizer", "chardet", "idna", "certifi"}
# Not packages: the interpreter's main module, site hooks of editable installs and setuptools, and the
# runtime modules Cython-compiled extensions (charset_normalizer's) register.
ARTEFACTS = ("__main__", "_distutils_hack", "__editable__", "_cython_", "cython_runtime")


def loaded_by(statement: str) -> "set[str]":
    code = f"{statement}; import json, sys; print(json.dumps(sorted(sys.modules)))"
    return set(json.loads(subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True).stdout))


def test_importing_the_package_loads_no_async_library() -> None:
    loaded = loaded_by("from hf_textgen import HuggingFaceAPI, Client, ChatResult, errors")
    tops = {name.split(".")[0] for name in loaded}
    assert not tops & {"anyio", "trio", "sniffio", "asyncio", "concurrent", "outcome"}
    assert "hf_textgen.aio" not in loaded and "hf_textgen.cli" not in loaded and "hf_textgen.testing" not in loaded
    third_party = {name for name in tops - set(sys.stdlib_module_names) if not name.startswith(ARTEFACTS)}
    assert third_party <= ALLOWED_THIRD_PARTY, sorted(third_party - ALLOWED_THIRD_PARTY)
    assert {"requests", "sseclient", "hf_textgen"} <= third_party


def test_the_bare_package_loads_its_names_when_first_used() -> None:
    bare = loaded_by("import hf_textgen")
    assert "requests" not in bare and [name for name in bare if name.startswith("hf_textgen")] == ["hf_textgen"]
    assert "requests" in loaded_by("import hf_textgen; hf_textgen.HuggingFaceAPI")
    assert not hasattr(hf_textgen, "no_such_name") and "Client" in dir(hf_textgen)


def third_party_imports() -> "dict[str, set[str]]":
    """Which hf_textgen modules import each of requests, urllib3, sseclient and anyio (anywhere in the module)."""
    import ast
    from pathlib import Path

    root = Path(hf_textgen.__file__).parent
    found: "dict[str, set[str]]" = {}
    for path in root.rglob("*.py"):
        module = ".".join(path.relative_to(root.parent).with_suffix("").parts).replace(".__init__", "")
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = [alias.name for alias in node.names] if isinstance(node, ast.Import) else (
                [node.module or ""] if isinstance(node, ast.ImportFrom) and not node.level else [])
            for name in names:
                top = name.split(".")[0]
                if top in ("requests", "urllib3", "sseclient", "anyio", "trio"):
                    found.setdefault(top, set()).add(module)
    return found


def test_each_third_party_library_has_one_home() -> None:
    found = third_party_imports()
    assert found["requests"] == found["urllib3"] == {"hf_textgen.transport.via_requests"}
    assert found["sseclient"] == {"hf_textgen.sse"}
    # the bridge; and the batch runner, an application on the async engine (task groups, semaphores)
    assert found["anyio"] == {"hf_textgen.aio.loop", "hf_textgen.batch.job", "hf_textgen.batch.runner"}
    assert found["trio"] == {"hf_textgen.aio.loop"}  # imported only when trio is the running loop
