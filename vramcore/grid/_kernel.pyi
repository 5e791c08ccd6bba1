"""Type stub of the compiled kernel (vramcore/grid/_kernel.pyx)."""

import numpy as np
import numpy.typing as npt

MAX_ENGINES: int
MODEL_NFIELDS: int
DTYPE_NFIELDS: int
ENGINE_NFIELDS: int
RESULT_NFIELDS: int
PLAN_NFIELDS: int
POOL_NFIELDS: int
CUT_NFIELDS: int
TRAIN_NFIELDS: int
PLACE_NFIELDS: int
N_PARTS: int
OPENMP: bool
REASONS_BLOCKING: int
RESULT_FIELDS: tuple[str, ...]

_F64 = npt.NDArray[np.float64]

def max_threads() -> int: ...
def grid(
    models: _F64,
    dtypes: _F64,
    part_bytes: _F64,
    engines: _F64,
    train: _F64,
    place: _F64,
    contexts: _F64,
    batches: _F64,
    gpu_bytes: _F64,
    gpu_large: _F64,
    plans: _F64,
    out: _F64,
    fits: npt.NDArray[np.uint8],
    row_start: int,
    row_stop: int,
    n_threads: int,
    select: npt.NDArray[np.int32] | None = ...,
    write_fits: bool = ...,
    out1: _F64 | None = ...,
    select1: npt.NDArray[np.int32] | None = ...,
    out2: _F64 | None = ...,
    select2: npt.NDArray[np.int32] | None = ...,
    reasons: npt.NDArray[np.uint16] | None = ...,
    cuts: _F64 | None = ...,
    out3: _F64 | None = ...,
    select3: npt.NDArray[np.int32] | None = ...,
    out4: _F64 | None = ...,
    select4: npt.NDArray[np.int32] | None = ...,
) -> None: ...
def solve(
    which: int,
    models: _F64,
    dtypes: _F64,
    part_bytes: _F64,
    engines: _F64,
    train: _F64,
    place: _F64,
    fixed: _F64,
    gpu_bytes: _F64,
    gpu_large: _F64,
    caps: _F64,
    plans: _F64,
    pools: _F64,
    out: npt.NDArray[np.int64],
    row_start: int,
    row_stop: int,
    n_threads: int,
) -> None: ...
def cell_plan(model: object, dtype: object, part_bytes: object, engine: object, train: object, place: object,
              plan: object) -> None: ...
def cell(plan: object, context: float, batch: float, gpu_bytes: float, large_gpu: float) -> tuple[float, ...]: ...
