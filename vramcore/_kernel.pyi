"""Type stub of the compiled kernel (vramcore/_kernel.pyx)."""

from typing import Any

MODEL_NFIELDS: int
DTYPE_NFIELDS: int
ENGINE_NFIELDS: int
N_PARTS: int
OPENMP: bool

def max_threads() -> int: ...
def weights(models: Any, dtypes: Any, out: Any) -> None: ...
def grid(
    models: Any,
    dtypes: Any,
    engine: Any,
    contexts: Any,
    batches: Any,
    gpu_bytes: Any,
    weights_bytes: Any,
    kv_out: Any,
    activation_out: Any,
    overhead_out: Any,
    total_out: Any,
    headroom_out: Any,
    fits_out: Any,
    row_start: int,
    row_stop: int,
    n_threads: int,
) -> None: ...
