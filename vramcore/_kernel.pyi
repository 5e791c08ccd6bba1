"""Type stub of the compiled kernel (vramcore/_kernel.pyx)."""

import numpy as np
import numpy.typing as npt

MODEL_NFIELDS: int
DTYPE_NFIELDS: int
ENGINE_NFIELDS: int
N_PARTS: int
OPENMP: bool

_F64 = npt.NDArray[np.float64]

def max_threads() -> int: ...
def weights(part_bytes: _F64, out: _F64) -> None: ...
def grid(
    models: _F64,
    dtypes: _F64,
    engine: _F64,
    contexts: _F64,
    batches: _F64,
    gpu_bytes: _F64,
    weights_bytes: _F64,
    kv_out: _F64,
    activation_out: _F64,
    overhead_out: _F64,
    total_out: _F64,
    headroom_out: _F64,
    fits_out: npt.NDArray[np.uint8],
    row_start: int,
    row_stop: int,
    n_threads: int,
) -> None: ...
