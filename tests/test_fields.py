"""Fields on demand: sweep(..., fields=...) computes and writes only the fields asked for, equal to the full sweep."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import vramcore
from vramcore.grid.results import FIELDS

GRID = dict(models=["DeepSeek-R1-Distill-Llama-8B", "Qwen3-30B-A3B"], dtypes=["bf16", "fp8", "Q4_K_M"],
            contexts=[1024, 32768, 131072], batches=[1, 16], gpus=["H100", "A100-80GB", "RTX-4090"],
            engine=["transformers", "vllm", "llamacpp", "lora"])
FULL = vramcore.sweep(**GRID)


@settings(max_examples=30, deadline=None)
@given(chosen=st.lists(st.sampled_from(FIELDS), min_size=1, max_size=6, unique=True))
def test_selected_fields_equal_the_full_sweep(chosen: list[str]) -> None:
    s = vramcore.sweep(**GRID, fields=chosen)
    assert set(s.fields) == set(chosen) | {"gpu_bytes"}
    for name in FIELDS:
        if name in s.fields:
            got, want = s.field(name), FULL.field(name)
            assert got.dtype == want.dtype and np.array_equal(got, want), name
        else:
            assert getattr(s, name) is None
            with pytest.raises(ValueError, match=f"pass fields= with '{name}'"):
                s.field(name)


def test_verdict_only_sweep_keeps_python_verdicts() -> None:
    # FP8 on an A100 under transformers and GGUF under transformers are decided in Python: fits alone has them
    s = vramcore.sweep(**GRID, fields=("fits",))
    assert np.array_equal(s.field("fits"), FULL.fits) and s.field("fits").dtype == np.bool_
    assert not s.field("fits")[:, 1, :, :, 1, 0].any()        # fp8 on an A100, transformers
    assert not s.field("fits")[:, 2, :, :, :, 0].any()        # Q4_K_M (GGUF) under transformers


def test_partial_sweeps_export_and_refuse_what_they_lack(tmp_path: Path) -> None:
    s = vramcore.sweep(**GRID, fields=("total_bytes", "fits"))
    df = s.to_pandas()
    assert list(df.columns[-3:]) == ["total_bytes", "gpu_bytes", "fits"] and len(df) == s.size
    from vramcore.io.export import write, write_table

    path = tmp_path / "grid.json"
    write(s, path)
    rows = json.loads(path.read_text())
    assert set(rows[0]) == {*s.dims, "total_bytes", "gpu_bytes", "fits"}
    with pytest.raises(ValueError, match="cell\\(\\) needs every field"):
        s.cell(0, 0, 0, 0, 0, 0)
    with pytest.raises(ValueError, match="which this sweep did not compute"):
        write_table(s, io.StringIO())
    for bad in (["total"], [3], "weights"):
        with pytest.raises(ValueError, match="is not a result field"):
            vramcore.sweep("Qwen3-8B", fields=bad)
