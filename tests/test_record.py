"""The shared repr / equality / hash of the frozen dataclasses (vramcore._record) behave as dataclasses' own."""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from hypothesis import given
from hypothesis import strategies as st

import vramcore
from vramcore._record import Record


@dataclass(frozen=True, slots=True, repr=False, eq=False)
class Ours(Record):
    a: int
    b: str = "x"
    c: int = field(default=0, compare=False)
    d: float = field(default=0.0, repr=False)


@dataclass(frozen=True, slots=True)
class Theirs:
    a: int
    b: str = "x"
    c: int = field(default=0, compare=False)
    d: float = field(default=0.0, repr=False)


@dataclass(frozen=True, repr=False, eq=False)
class OursOne(Record):
    a: int


@dataclass(frozen=True)
class TheirsOne:
    a: int


@dataclass(frozen=True, repr=False, eq=False)
class OursNone(Record):
    pass


@dataclass(frozen=True)
class TheirsNone:
    pass


values = st.tuples(st.integers(-3, 3), st.sampled_from(["x", "y", "it's"]), st.integers(0, 2),
                   st.sampled_from([0.0, 1.5, float("nan")]))


@given(values, values)
def test_like_dataclasses(x: tuple, y: tuple) -> None:
    ox, oy, tx, ty = Ours(*x), Ours(*y), Theirs(*x), Theirs(*y)
    assert repr(ox).replace("Ours(", "Theirs(") == repr(tx)
    assert (ox == oy) == (tx == ty) and (ox != oy) == (tx != ty)
    if ox == oy:
        assert hash(ox) == hash(oy)
    assert ox == replace(ox, c=x[2] + 1) and hash(ox) == hash(replace(ox, c=x[2] + 1))  # compare=False
    assert (OursOne(x[0]) == OursOne(y[0])) == (TheirsOne(x[0]) == TheirsOne(y[0]))
    assert hash(OursOne(x[0])) == hash(OursOne(x[0]))


def test_other_classes_and_empty() -> None:
    assert Ours(1).__eq__(Theirs(1)) is NotImplemented and Ours(1) != Theirs(1)
    assert Ours(1) != (1, "x", 0, 0.0) and Ours(1).__eq__(3) is NotImplemented
    assert OursNone() == OursNone() and hash(OursNone()) == hash(OursNone())
    assert repr(OursNone()) == repr(TheirsNone()).replace("TheirsNone", "OursNone")
    assert repr(OursOne(2)) == "OursOne(a=2)"


def test_library_records() -> None:
    spec = vramcore.get_model("DeepSeek-R1-Distill-Llama-8B").spec
    # ModelSpec leaves model_type and quantization out of equality, as its dataclass did
    assert spec == replace(spec, model_type="other") and hash(spec) == hash(replace(spec, model_type="other"))
    assert spec != replace(spec, intermediate_size=spec.intermediate_size + 1)
    gpu = vramcore.get_gpu("H100")
    assert repr(gpu).startswith("GPUSpec(name='H100-SXM-80GB', vendor='NVIDIA', ") and gpu == replace(gpu)
    assert vramcore.get_engine("vllm") != vramcore.get_engine("sglang")
    assert vramcore.get_engine("vllm") == vramcore.get_engine("vllm", gpu_memory_utilization=0.9)
    assert {vramcore.get_dtype("bf16"), vramcore.get_dtype("bf16")} == {vramcore.get_dtype("bf16")}
