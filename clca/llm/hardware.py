"""What the machine computes natively: the probe behind ``+quant=auto``.

Generating on a bfloat16 copy of the weights (``+quant=bf16``) pays only where the hardware has bf16 arithmetic:
on an AMD EPYC with AVX-512-BF16 it gave 2.0x the role-play episodes per hour, on an Intel Xeon with AVX-512 and
VNNI but no AVX-512-BF16 it made each utterance 1.4x slower than fp32, and on an AMD EPYC with AVX2 only prefill
took 7x the fp32 time (``bench/RESULTS.md``). A CPU computes
bf16 natively when it has ``avx512_bf16`` or ``amx_bf16`` (x86), or FEAT_BF16 (arm64: ``bf16`` in Linux's
``/proc/cpuinfo`` features, ``hw.optional.arm.FEAT_BF16`` on macOS, Apple M2 and later); a CUDA GPU when
``torch.cuda.is_bf16_supported(including_emulation=False)`` says so for the device in use (compute capability 8.0
and later, every ROCm GPU).

Every reader is an argument (``cpuinfo=``, ``sysctl=``, ``gpu=``...), so tests fake either kind of machine
without touching the environment; :func:`probe` reads the real one once per process and device.
"""

from __future__ import annotations

import logging
import platform
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

log = logging.getLogger(__name__)

#: CPU flags worth naming next to a speed figure (x86 ``flags``, then arm64 ``Features`` of /proc/cpuinfo)
RELEVANT_FLAGS = (
    "avx2",
    "fma",
    "avx512f",
    "avx512_vnni",
    "avx_vnni",
    "avx512_bf16",
    "amx_tile",
    "amx_bf16",
    "amx_int8",
    "asimd",
    "bf16",
    "i8mm",
    "sve",
)
#: x86 flags that mean bf16 matrix products run natively
X86_BF16_FLAGS = ("avx512_bf16", "amx_bf16")
#: the measured cost of bf16 generation on a CPU with AVX-512 but without native bf16 (bench/RESULTS.md, #25)
BF16_COST_AVX512 = (
    "about 1.4x slower than fp32 (bench/RESULTS.md: on an Intel Xeon with AVX-512 and VNNI but no AVX-512-BF16, "
    "2.71 vs 1.91 s per utterance, 1.35x the wall time of the same role-play run)"
)
#: ... and on an x86 CPU without AVX-512 (bench/RESULTS.md, bench/bench_quant.py)
BF16_COST_AVX2 = (
    "several times slower than fp32 (bench/RESULTS.md: on an AMD EPYC with AVX2 and no AVX-512, prefill took "
    "7.2x and decode steps 3.1x the fp32 time)"
)

#: reads a macOS sysctl by name (None: not there)
SysctlReader = Callable[[str], str | None]


@dataclass(frozen=True)
class Hardware:
    """What one device computes natively, as far as clca's weight formats care."""

    device: str  # cpu | cuda:0 | ...
    model: str  # the CPU's model name or the GPU's name ("unknown" when it could not be read)
    flags: tuple[str, ...]  # the relevant flags it has (RELEVANT_FLAGS order; GPUs: ("sm_90",) or ("rocm",))
    native_bf16: bool
    reason: str  # why native_bf16 is what it is, in one sentence

    def describe(self) -> str:
        """One line for logs, bench headers and RESULTS.md: model, flags, the bf16 verdict."""
        flags = ", ".join(self.flags) or "none of " + "/".join(RELEVANT_FLAGS[:6])
        return f"{self.device}: {self.model} [{flags}; native bf16: {'yes' if self.native_bf16 else 'no'}]"


# ----------------------------------------------------------------------------------------------------- readers
def read_cpuinfo() -> str | None:
    """``/proc/cpuinfo`` (Linux), or None where there is none."""
    try:
        return Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace")
    except OSError:
        return None


def read_sysctl(name: str) -> str | None:
    """``sysctl -n name`` (macOS, BSD), or None when it is not there."""
    try:
        out = subprocess.run(["sysctl", "-n", name], capture_output=True, text=True, timeout=5, check=False)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() if out.returncode == 0 and out.stdout.strip() else None


def _first_block(cpuinfo: str) -> dict[str, str]:
    """The fields of the first processor in /proc/cpuinfo text (every core lists the same flags)."""
    fields: dict[str, str] = {}
    for line in cpuinfo.splitlines():
        if not line.strip():
            if fields.get("flags") or fields.get("Features"):
                break
            continue
        key, sep, value = line.partition(":")
        if sep:
            fields.setdefault(key.strip(), value.strip())
    return fields


def _relevant(found: set[str]) -> tuple[str, ...]:
    return tuple(f for f in RELEVANT_FLAGS if f in found)


# ------------------------------------------------------------------------------------------------------- CPU
def probe_cpu(
    *,
    cpuinfo: str | None = None,
    system: str | None = None,
    machine: str | None = None,
    sysctl: SysctlReader | None = None,
    torch_probe: Callable[[], tuple[bool, bool]] | None = None,
) -> Hardware:
    """Whether this CPU computes bf16 natively.

    Defaults read the real machine: ``system``/``machine`` from :mod:`platform`, ``cpuinfo`` from
    ``/proc/cpuinfo`` on Linux, ``sysctl`` from the ``sysctl`` command on macOS, and where neither tells (Windows,
    Intel macOS) ``torch_probe`` (PyTorch's own cpuinfo: (avx512_bf16, amx_tile)).
    """
    system = system or platform.system()
    machine = (machine or platform.machine()).lower()
    if system == "Linux":
        text = cpuinfo if cpuinfo is not None else read_cpuinfo()
        if text:
            return _from_cpuinfo(text, machine)
    if system == "Darwin" and machine in ("arm64", "aarch64"):
        read = sysctl or read_sysctl
        model = read("machdep.cpu.brand_string") or "Apple silicon"
        bf16 = read("hw.optional.arm.FEAT_BF16") == "1"
        flags = ("asimd", "bf16") if bf16 else ("asimd",)
        why = (
            f"{model} reports hw.optional.arm.FEAT_BF16=1: bf16 arithmetic is native"
            if bf16
            else f"{model} does not report hw.optional.arm.FEAT_BF16 (Apple M1 and earlier): no native bf16"
        )
        return Hardware("cpu", model, flags, bf16, why)
    model = platform.processor() or machine or "unknown"
    if system == "Darwin":
        model = (sysctl or read_sysctl)("machdep.cpu.brand_string") or model
    if machine in ("x86_64", "amd64", "i386", "i686"):
        avx512_bf16, amx = (torch_probe or _torch_cpu_probe)()
        found = {"avx512_bf16"} if avx512_bf16 else set()
        found |= {"amx_tile", "amx_bf16"} if amx else set()
        return _x86_verdict(model, found, source="PyTorch's CPU probe")
    return Hardware(
        "cpu",
        model,
        (),
        False,
        f"clca cannot read the flags of a {machine or 'unknown'} CPU on {system or 'this system'}: "
        "bf16 is not assumed native",
    )


def _torch_cpu_probe() -> tuple[bool, bool]:
    """(AVX-512-BF16, AMX tiles) as PyTorch's cpuinfo sees them; (False, False) when it cannot tell."""
    try:
        import torch

        cpu = torch.cpu
        bf16 = bool(getattr(cpu, "_is_avx512_bf16_supported", lambda: False)())
        amx = bool(getattr(cpu, "_is_amx_tile_supported", lambda: False)())
        return bf16, amx
    except Exception:  # pragma: no cover - a torch without these private probes
        return False, False


def _from_cpuinfo(text: str, machine: str) -> Hardware:
    fields = _first_block(text)
    found = set((fields.get("flags") or fields.get("Features") or "").split())
    if "flags" in fields:  # x86
        return _x86_verdict(fields.get("model name") or "unknown", found, source="/proc/cpuinfo")
    model = fields.get("model name") or fields.get("Model") or fields.get("Hardware") or ""
    if not model and fields.get("CPU part"):
        model = f"{machine} CPU (implementer {fields.get('CPU implementer', '?')}, part {fields['CPU part']})"
    model = model or machine or "unknown"
    if "bf16" in found:
        why = f"{model} lists bf16 (FEAT_BF16) in /proc/cpuinfo: bf16 arithmetic is native"
        return Hardware("cpu", model, _relevant(found), True, why)
    why = f"{model} lists no bf16 (FEAT_BF16) in /proc/cpuinfo: no native bf16"
    return Hardware("cpu", model, _relevant(found), False, why)


def _x86_verdict(model: str, found: set[str], *, source: str) -> Hardware:
    flags = _relevant(found)
    native = [f for f in X86_BF16_FLAGS if f in found]
    if native:
        why = f"{model} has {' and '.join(native)} ({source}): bf16 matrix products run natively"
        return Hardware("cpu", model, flags, True, why)
    if "avx512f" in found:
        extra = " and VNNI" if "avx512_vnni" in found else ""
        why = (
            f"{model} has AVX-512{extra} but neither avx512_bf16 nor amx_bf16 ({source}): bf16 is converted "
            "in software, not computed natively"
        )
    else:
        have = ", ".join(f for f in ("avx2", "fma") if f in found) or "no AVX2"
        why = f"{model} has no AVX-512 ({have}; {source}): no native bf16"
    return Hardware("cpu", model, flags, False, why)


# ------------------------------------------------------------------------------------------------------ CUDA
@dataclass(frozen=True)
class GpuFacts:
    """What :func:`probe_cuda` needs to know about a GPU (faked in tests)."""

    name: str
    capability: tuple[int, int]
    bf16: bool  # torch.cuda.is_bf16_supported(including_emulation=False) on this device
    rocm: bool = False


def read_gpu(device: str) -> GpuFacts:
    """The facts of the CUDA (or ROCm) device ``device`` (``cuda`` = the current one)."""
    import torch

    index = torch.device(device).index
    idx = torch.cuda.current_device() if index is None else index
    with torch.cuda.device(idx):
        bf16 = bool(torch.cuda.is_bf16_supported(including_emulation=False))
    return GpuFacts(
        name=torch.cuda.get_device_name(idx),
        capability=tuple(torch.cuda.get_device_capability(idx)),  # type: ignore[arg-type]
        bf16=bf16,
        rocm=bool(torch.version.hip),
    )


def probe_cuda(device: str = "cuda", *, gpu: GpuFacts | None = None) -> Hardware:
    """Whether the GPU ``device`` computes bf16 natively (``gpu``: its facts, read from torch when None)."""
    facts = gpu if gpu is not None else read_gpu(device)
    major, minor = facts.capability
    flags = ("rocm",) if facts.rocm else (f"sm_{major}{minor}",)
    where = "ROCm" if facts.rocm else f"compute capability {major}.{minor}"
    if facts.bf16:
        return Hardware(device, facts.name, flags, True, f"{facts.name} ({where}) computes bf16 natively")
    return Hardware(
        device,
        facts.name,
        flags,
        False,
        f"{facts.name} ({where}) has no native bf16 (it needs compute capability 8.0 or later)",
    )


@lru_cache(maxsize=8)
def probe(device: str = "cpu") -> Hardware:
    """The probe of ``device`` on this machine (read once per process and device)."""
    if device.startswith("cuda"):
        return probe_cuda(device)
    if device == "cpu":
        return probe_cpu()
    return Hardware(
        device, "unknown", (), False, f"clca probes native bf16 on CPUs and CUDA GPUs only, not on {device}"
    )


def cpu_line() -> str:
    """This machine's CPU in one line (model, the flags that matter, native bf16): for bench headers."""
    return probe("cpu").describe()


# ------------------------------------------------------------------------------------------- +quant decision
def resolve_gen_quant(quant: str | None, hw: Hardware, own_dtype: str) -> tuple[str | None, str]:
    """The generation weight format a spec's ``+quant=`` comes to on ``hw``, and why.

    ``None`` (no ``+quant``): the model's own weights, no reason. ``auto``: ``bf16`` where ``hw`` computes bf16
    natively, else None (the model's own ``own_dtype`` weights). ``bf16``: bf16 as asked; on a device without
    native bf16 the reason says what it costs (and the backend warns once, :func:`warn_slow_bf16`).
    """
    if quant is None:
        return None, ""
    if quant == "auto":
        if hw.native_bf16:
            return "bf16", f"+quant=auto chose bf16: {hw.reason}"
        return None, f"+quant=auto kept the model's {own_dtype} weights: {hw.reason}"
    if quant == "bf16":
        if hw.native_bf16:
            return "bf16", f"+quant=bf16 as asked: {hw.reason}"
        cost = bf16_cost(hw)
        return "bf16", f"+quant=bf16 as asked, although {hw.reason}" + (
            f"; bf16 is {cost} there" if cost else ""
        )
    return quant, f"+quant={quant} as asked"


def bf16_cost(hw: Hardware) -> str:
    """What bf16 generation was measured to cost on a CPU like ``hw`` without native bf16 ("" when not measured:
    GPUs, arm64)."""
    if hw.native_bf16 or hw.device != "cpu":
        return ""
    if "avx512f" in hw.flags:
        return BF16_COST_AVX512
    if "avx2" in hw.flags:
        return BF16_COST_AVX2
    return ""


_warned: set[str] = set()


def warn_slow_bf16(hw: Hardware) -> bool:
    """Warn (once per process) that ``+quant=bf16`` was asked for where bf16 is not native; True if it warned."""
    if hw.native_bf16 or "bf16" in _warned:
        return False
    _warned.add("bf16")
    cost = (
        bf16_cost(hw) or "likely slower than in the model's own dtype (not measured on this kind of device)"
    )
    log.warning(
        "clca: +quant=bf16 asked for, but %s. Generation in bf16 will be %s. Use +quant=auto for bf16 only "
        "where the CPU or GPU computes it natively.",
        hw.reason,
        cost,
    )
    return True
