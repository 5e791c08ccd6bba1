"""Tests for the GPU catalog (vramcore.hardware.gpus) and shared name lookup (vramcore._names)."""

from __future__ import annotations

import dataclasses
import math
from types import SimpleNamespace

import numpy as np
import pytest
from vramcore.gpus import GPUSpec, _spec_from_entry, get_gpu, list_gpus

from vramcore._names import build_table, lookup, normalize_name

MIB = 2**20
GIB = 2**30

# Memory totals as nvidia-smi reports them (MiB; MI300X: rocm-smi).
# Source: /work/shared/reference/README.md, public nvidia-smi transcripts.
REFERENCE_TOTAL_MIB = {
    "H100-SXM-80GB": 81559,
    "H200-SXM-141GB": 143771,
    "A100-SXM4-40GB": 40960,
    "A100-SXM4-80GB": 81920,
    "L40S": 46068,
    "L4": 23034,
    "A10G": 23028,
    "T4": 15360,  # ECC on (16384 with ECC off)
    "V100-SXM2-16GB": 16384,
    "V100-SXM2-32GB": 32768,
    "RTX-3090": 24576,
    "RTX-4090": 24564,
    "RTX-5090": 32607,
    "RTX-6000-Ada": 48508,
    "B200": 183359,
    "MI300X": 196288,
}

# What CUDA / PyTorch / vLLM see as the device total, in GiB.
# Source: /work/shared/reference/README.md, public nvidia-smi transcripts
# (H100: vLLM logs 79.18 GiB; H200: about 139.7-139.8 GiB; RTX 3090: about 23.58 GiB).
REFERENCE_CUDA_GIB = {
    "H100-SXM-80GB": (79.1, 79.3),
    "H200-SXM-141GB": (139.7, 139.81),
    "RTX-3090": (23.57, 23.59),
}


# --------------------------------------------------------------------------- names


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("h100", "h100"),
        ("  H100 SXM  ", "h100-sxm"),
        ("H100_80GB__HBM3", "h100-80gb-hbm3"),
        ("h100 - sxm", "h100-sxm"),
        ("RTX\t6000\nAda", "rtx-6000-ada"),
        ("--a10g--", "a10g"),
        ("Qwen2.5-7B", "qwen2.5-7b"),
        ("meta-llama/Llama-3.2-1B", "meta-llama/llama-3.2-1b"),
        ("STRASSE", "strasse"),
        ("Straße", "strasse"),  # casefold, not lower
        ("", ""),
    ],
)
def test_normalize_name(raw: str, expected: str) -> None:
    assert normalize_name(raw) == expected


def test_normalize_name_is_idempotent() -> None:
    for raw in ["H100 80GB HBM3", "rtx_4090", " a - b _ c "]:
        once = normalize_name(raw)
        assert normalize_name(once) == once


def test_normalize_name_rejects_non_str() -> None:
    with pytest.raises(TypeError, match="int"):
        normalize_name(3)  # type: ignore[arg-type]


def _toy_table() -> dict[str, SimpleNamespace]:
    big = SimpleNamespace(name="Big-Card-80GB")
    small = SimpleNamespace(name="Small-Card")
    return build_table([(big.name, ["big", "bigcard"], big), (small.name, ["small"], small)], what="card")


def test_lookup_finds_canonical_and_aliases() -> None:
    table = _toy_table()
    big = lookup("Big-Card-80GB", table, what="card", argname="card")
    assert lookup("big", table, what="card", argname="card") is big
    assert lookup(" BIG card 80gb ", table, what="card", argname="card") is big
    assert lookup("BigCard", table, what="card", argname="card") is big


def test_lookup_type_error_names_argument_and_type() -> None:
    with pytest.raises(TypeError, match=r"argument 'accel' .* not float"):
        lookup(1.5, _toy_table(), what="card", argname="accel")
    with pytest.raises(TypeError, match="NoneType"):
        lookup(None, _toy_table(), what="card", argname="accel")


def test_lookup_suggests_canonical_names() -> None:
    with pytest.raises(ValueError) as info:
        lookup("smal", _toy_table(), what="card", argname="accel")
    message = str(info.value)
    assert message.startswith("unknown card 'smal' for argument 'accel'; did you mean ")
    assert "'Small-Card'" in message
    assert message.endswith("(see vramcore.list_cards())")


def test_lookup_suggestion_list_has_no_repeats() -> None:
    # "big" and "bigcard" both resemble "bigg" but belong to one entry.
    with pytest.raises(ValueError) as info:
        lookup("bigg", _toy_table(), what="card", argname="accel")
    assert str(info.value).count("'Big-Card-80GB'") == 1


def test_lookup_lists_valid_names_when_nothing_is_close() -> None:
    with pytest.raises(ValueError, match="valid names include 'Big-Card-80GB', 'Small-Card'"):
        lookup("zzzzzz", _toy_table(), what="card", argname="accel")


def test_lookup_empty_table() -> None:
    with pytest.raises(ValueError, match=r"no models are known \(see vramcore.list_models\(\)\)"):
        lookup("llama", {}, what="model", argname="model")


def test_lookup_display_for_plain_values() -> None:
    # Values without a .name: str values are shown as they are, others by key.
    assert lookup("BF16", {"bf16": "bfloat16"}, what="dtype", argname="dtype") == "bfloat16"
    with pytest.raises(ValueError, match="did you mean 'bfloat16'"):
        lookup("bf61", {"bf16": "bfloat16"}, what="dtype", argname="dtype")
    with pytest.raises(ValueError, match="did you mean 'fp8'"):
        lookup("fp9", {"fp8": 1}, what="dtype", argname="dtype")
    with pytest.raises(ValueError, match="did you mean 'EIGHT'"):
        lookup("fp9", {"fp8": 1}, what="dtype", argname="dtype", display=lambda v: "EIGHT")


def test_build_table_rejects_duplicates_and_empty_names() -> None:
    with pytest.raises(ValueError, match="normalises to 'x-y'"):
        build_table([("X-Y", ["x_y"], 1)], what="gpu")
    with pytest.raises(ValueError, match="already used"):
        build_table([("A", [], 1), ("B", ["a"], 2)], what="gpu")
    with pytest.raises(ValueError, match="empty"):
        build_table([("A", [" - "], 1)], what="gpu")


# --------------------------------------------------------------------------- catalog lookup


@pytest.mark.parametrize(
    "alias",
    [
        "h100",
        "H100",
        "H100-80GB",
        "h100-sxm",
        "H100 SXM",
        "h100_sxm",
        "NVIDIA H100 80GB HBM3",
        "H100-SXM-80GB",
    ],
)
def test_h100_aliases_resolve_to_one_spec(alias: str) -> None:
    assert get_gpu(alias) is get_gpu("H100-SXM-80GB")


def test_every_canonical_name_and_alias_resolves_to_its_entry() -> None:
    for name in list_gpus():
        spec = get_gpu(name)
        assert spec.name == name
        for alias in spec.aliases:
            assert get_gpu(alias) is spec
            assert get_gpu(alias.upper()) is spec
            assert get_gpu(alias.replace("-", " ")) is spec


def test_list_gpus_is_sorted_unique_and_complete() -> None:
    names = list_gpus()
    assert names == sorted(names)
    assert len(names) == len(set(names))
    assert set(REFERENCE_TOTAL_MIB) <= set(names)
    for extra in ["H100-PCIe-80GB", "A100-PCIe-40GB", "A100-PCIe-80GB", "A10", "RTX-A6000"]:
        assert extra in names


def test_list_gpus_returns_a_fresh_list() -> None:
    names = list_gpus()
    names.clear()
    assert list_gpus()


def test_unknown_gpu_suggests_close_names() -> None:
    with pytest.raises(ValueError, match="did you mean") as info:
        get_gpu("h10")
    message = str(info.value)
    assert message.startswith("unknown gpu 'h10' for argument 'gpu'; did you mean ")
    assert "'H100-SXM-80GB'" in message
    assert "(see vramcore.list_gpus())" in message


def test_ambiguous_short_name_lists_the_variants() -> None:
    with pytest.raises(ValueError, match="did you mean") as info:
        get_gpu("a100")
    for variant in ["A100-SXM4-40GB", "A100-SXM4-80GB", "A100-PCIe-40GB", "A100-PCIe-80GB"]:
        assert repr(variant) in str(info.value)


def test_unknown_gpu_without_close_match_lists_valid_names() -> None:
    with pytest.raises(ValueError, match=r"valid names include .*list_gpus\(\)"):
        get_gpu("qqqqqqqq")


@pytest.mark.parametrize("bad", [80, 80.0, None, b"h100", ["h100"]])
def test_get_gpu_rejects_non_str(bad: object) -> None:
    with pytest.raises(TypeError, match=rf"argument 'gpu' .* not {type(bad).__name__}"):
        get_gpu(bad)  # type: ignore[arg-type]


def test_get_gpu_passes_gpuspec_through() -> None:
    custom = GPUSpec(name="my-card", vendor="x", memory_total_bytes=12 * GIB)
    assert get_gpu(custom) is custom
    catalog = get_gpu("l4")
    assert get_gpu(catalog) is catalog


# --------------------------------------------------------------------------- catalog data


@pytest.mark.parametrize(("name", "mib"), sorted(REFERENCE_TOTAL_MIB.items()))
def test_reference_memory_totals(name: str, mib: int) -> None:
    spec = get_gpu(name)
    assert spec.memory_total_bytes == mib * MIB


@pytest.mark.parametrize(("name", "bounds"), sorted(REFERENCE_CUDA_GIB.items()))
def test_reference_cuda_visible_totals(name: str, bounds: tuple[float, float]) -> None:
    spec = get_gpu(name)
    assert spec.cuda_visible_bytes is not None
    low, high = bounds
    assert low <= spec.cuda_visible_bytes / GIB <= high
    assert spec.usable_bytes == spec.cuda_visible_bytes


def test_h100_cuda_total_matches_vllm_log() -> None:
    # vLLM logs total_gpu_memory (79.18GiB) on an H100 SXM.
    assert round(get_gpu("h100").usable_bytes / GIB, 2) == 79.18


def test_every_entry_is_consistent() -> None:
    vendors = set()
    for name in list_gpus():
        spec = get_gpu(name)
        vendors.add(spec.vendor)
        assert isinstance(spec.source, str) and spec.source.strip(), name
        assert spec.memory_total_bytes > 0 and spec.memory_total_bytes % MIB == 0, name
        assert spec.bandwidth_bytes_per_s > 1e11, name  # every catalog card is > 100 GB/s
        assert 0 < spec.usable_bytes <= spec.memory_total_bytes, name
        if spec.cuda_visible_bytes is None:
            assert spec.usable_bytes == spec.memory_total_bytes, name
        else:
            assert spec.usable_bytes == spec.cuda_visible_bytes, name
            # CUDA sees a few hundred MiB to ~1.3 GiB less than nvidia-smi's total.
            assert spec.memory_total_bytes - spec.cuda_visible_bytes < 2 * GIB, name
    assert {"NVIDIA", "AMD"} <= vendors


def test_every_source_names_where_the_figure_comes_from() -> None:
    for name in list_gpus():
        source = get_gpu(name).source
        assert "http" in source or "transcripts" in source, name


def test_bandwidth_and_gib_conversions() -> None:
    h100 = get_gpu("h100")
    assert h100.bandwidth_bytes_per_s == pytest.approx(3.35e12)
    assert get_gpu("a100-80gb").memory_gib == 80.0
    assert get_gpu("h100").memory_gib == pytest.approx(81559 / 1024)


# --------------------------------------------------------------------------- GPUSpec


def test_usable_bytes_prefers_cuda_visible() -> None:
    with_cuda = GPUSpec(name="c", vendor="x", memory_total_bytes=100 * MIB, cuda_visible_bytes=90 * MIB)
    without = GPUSpec(name="c", vendor="x", memory_total_bytes=100 * MIB)
    assert with_cuda.usable_bytes == 90 * MIB
    assert without.usable_bytes == 100 * MIB


def test_custom_gpuspec_defaults_and_normalisation() -> None:
    card = GPUSpec(
        name="my-card",
        vendor="x",
        memory_total_bytes=np.int64(24 * GIB),
        bandwidth_bytes_per_s=np.float64(1e12),
        aliases=["mine"],  # type: ignore[arg-type]
    )
    assert type(card.memory_total_bytes) is int
    assert type(card.bandwidth_bytes_per_s) is float
    assert card.aliases == ("mine",)
    assert card.cuda_visible_bytes is None
    assert card.source == "user-defined"
    assert card.memory_gib == 24.0
    assert card == GPUSpec(name="my-card", vendor="x", memory_total_bytes=24 * GIB,
                           bandwidth_bytes_per_s=1e12, aliases=("mine",))


def test_gpuspec_is_frozen_and_slotted() -> None:
    card = GPUSpec(name="c", vendor="x", memory_total_bytes=GIB)
    with pytest.raises(dataclasses.FrozenInstanceError):
        card.memory_total_bytes = 2 * GIB  # type: ignore[misc]
    assert not hasattr(card, "__dict__")
    assert hash(card) == hash(GPUSpec(name="c", vendor="x", memory_total_bytes=GIB))


@pytest.mark.parametrize(
    ("kwargs", "error", "field"),
    [
        ({"memory_total_bytes": 0}, ValueError, "memory_total_bytes"),
        ({"memory_total_bytes": -1}, ValueError, "memory_total_bytes"),
        ({"memory_total_bytes": 8e9}, TypeError, "memory_total_bytes"),
        ({"memory_total_bytes": "8GB"}, TypeError, "memory_total_bytes"),
        ({"memory_total_bytes": True}, TypeError, "memory_total_bytes"),
        ({"cuda_visible_bytes": 0}, ValueError, "cuda_visible_bytes"),
        ({"cuda_visible_bytes": 2 * GIB}, ValueError, "cuda_visible_bytes"),
        ({"cuda_visible_bytes": 0.5 * GIB}, TypeError, "cuda_visible_bytes"),
        ({"bandwidth_bytes_per_s": -1.0}, ValueError, "bandwidth_bytes_per_s"),
        ({"bandwidth_bytes_per_s": math.nan}, ValueError, "bandwidth_bytes_per_s"),
        ({"bandwidth_bytes_per_s": math.inf}, ValueError, "bandwidth_bytes_per_s"),
        ({"bandwidth_bytes_per_s": "fast"}, TypeError, "bandwidth_bytes_per_s"),
        ({"name": ""}, ValueError, "name"),
        ({"name": "  "}, ValueError, "name"),
        ({"vendor": None}, TypeError, "vendor"),
        ({"aliases": "mine"}, TypeError, "aliases"),
        ({"aliases": ("ok", "")}, ValueError, "aliases"),
        ({"source": 3}, TypeError, "source"),
    ],
)
def test_custom_gpuspec_validation(kwargs: dict[str, object], error: type[Exception], field: str) -> None:
    args: dict[str, object] = {"name": "c", "vendor": "x", "memory_total_bytes": GIB}
    args.update(kwargs)
    with pytest.raises(error, match=rf"GPUSpec\.{field}\b"):
        GPUSpec(**args)  # type: ignore[arg-type]


def _entry(**changes: object) -> dict[str, object]:
    entry: dict[str, object] = {
        "name": "Card",
        "aliases": ["card-a"],
        "vendor": "NVIDIA",
        "memory_total_mib": 1024,
        "cuda_visible_bytes": None,
        "bandwidth_gb_s": 100,
        "source": "somewhere",
    }
    entry.update(changes)
    return entry


def test_catalog_entry_conversion() -> None:
    spec = _spec_from_entry(0, _entry(cuda_visible_bytes=1000 * MIB))
    assert spec.memory_total_bytes == GIB
    assert spec.cuda_visible_bytes == 1000 * MIB
    assert spec.bandwidth_bytes_per_s == 1e11
    assert spec.aliases == ("card-a",)


@pytest.mark.parametrize(
    "changes",
    [
        {"memory_total_mib": 0},
        {"memory_total_mib": 1.5},
        {"memory_total_mib": True},
        {"cuda_visible_bytes": "big"},
        {"cuda_visible_bytes": 2 * GIB},
        {"bandwidth_gb_s": 0},
        {"aliases": "card-a"},
        {"source": ""},
        {"vendor": ""},
        {"name": ""},
        {"extra": 1},
    ],
)
def test_catalog_entry_validation(changes: dict[str, object]) -> None:
    with pytest.raises(ValueError, match=r"gpus\.json: entry 3"):
        _spec_from_entry(3, _entry(**changes))


def test_catalog_entry_missing_key() -> None:
    entry = _entry()
    del entry["source"]
    with pytest.raises(ValueError, match=r"missing keys \['source'\]"):
        _spec_from_entry(0, entry)
