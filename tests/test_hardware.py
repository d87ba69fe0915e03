"""dl2llm.hardware: CPU flags parsed from fixed /proc/cpuinfo texts, the probe on this machine."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from dl2llm.hardware import HardwareProbe, cpu_features, matmul_gflops, parse_cpu_flags, probe

AVX2_CPUINFO = """processor\t: 0
vendor_id\t: AuthenticAMD
model name\t: AMD EPYC 7B13
flags\t\t: fpu vme de pse tsc msr sse sse2 ssse3 fma sse4_1 sse4_2 avx f16c avx2 bmi2
bugs\t\t: sysret_ss_attrs

processor\t: 1
flags\t\t: fpu avx512f avx512_bf16
"""
SAPPHIRE_RAPIDS_FLAGS = (
    "flags : fpu sse2 avx avx2 avx512f avx512dq avx512bw avx512vl avx_vnni avx512_bf16 "
    "avx512_vnni avx512_fp16 amx_bf16 amx_tile amx_int8"
)


def test_parse_cpu_flags_of_an_avx2_only_cpu_reads_the_first_flags_line_only():
    assert parse_cpu_flags(AVX2_CPUINFO) == ("avx2",)


def test_parse_cpu_flags_of_a_cpu_with_avx512_bf16_vnni_and_amx():
    assert parse_cpu_flags(SAPPHIRE_RAPIDS_FLAGS) == (
        "avx2", "avx512f", "avx512_vnni", "avx_vnni", "avx512_bf16", "avx512_fp16",
        "amx_tile", "amx_bf16", "amx_int8",
    )  # fmt: skip


def test_parse_cpu_flags_matches_whole_words_and_survives_other_texts():
    assert parse_cpu_flags("flags : avx512f_extra xavx2 avx512_bf16x") == ()
    assert parse_cpu_flags("") == ()
    assert parse_cpu_flags("Features\t: half thumb fastmult vfp neon") == ()  # an ARM cpuinfo


def test_probe_facts_follow_the_flags_and_the_measurements():
    avx2 = HardwareProbe("X", 2, ("avx2",), False, False)
    assert not avx2.int8_dot_product and avx2.speedup("bf16") is None
    assert avx2.emulated("bf16") and avx2.emulated("fp16") and not avx2.emulated("fp32")
    vnni = HardwareProbe("Y", 4, ("avx2", "avx_vnni"), True, False,
                         matmul_gflops=(("fp32", 100.0), ("bf16", 360.0)))  # fmt: skip
    assert vnni.int8_dot_product and vnni.speedup("bf16") == 3.6
    assert not vnni.emulated("bf16") and vnni.emulated("fp16")
    assert "bf16 360.0" in vnni.report() and "int8 dot products: VNNI/AMX" in vnni.report()
    facts = vnni.as_dict()
    assert facts["cpu_flags"] == ["avx2", "avx_vnni"]
    assert facts["matmul_gflops"] == {"fp32": 100.0, "bf16": 360.0}


def test_probe_of_this_machine_agrees_with_its_sources():
    found = probe(matmul_size=64)
    assert found.cpu_flags == cpu_features()
    if Path("/proc/cpuinfo").is_file():
        assert found.cpu_flags == parse_cpu_flags(Path("/proc/cpuinfo").read_text())
    assert found.mkldnn_bf16 == torch.ops.mkldnn._is_mkldnn_bf16_supported()
    assert (found.cuda_name is not None) == torch.cuda.is_available()
    assert [name for name, _ in found.matmul_gflops] == ["fp32", "bf16", "fp16"]
    assert all(gflops > 0 for _, gflops in found.matmul_gflops)
    json.dumps(found.as_dict())  # fits a results JSON
    assert probe().matmul_gflops == ()  # measuring is optional


def test_matmul_gflops_is_measured_not_assumed():
    assert 0.01 < matmul_gflops("fp32", size=64, min_time_s=0.01) < 1e5
    with pytest.raises(KeyError):
        matmul_gflops("int4")
