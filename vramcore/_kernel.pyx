# cython: language_level=3
"""The compiled grid loop.  No validation, no allocation, no Python objects in nogil code.

Inputs are packed by vramcore/_pack.py and checked by vramcore/_validation.py;
the formulas are the vc_* functions of include/vramcore/formulas.h.
"""

from cython.parallel cimport prange


cdef extern from "vramcore/formulas.h" nogil:
    ctypedef struct vc_model:
        pass
    ctypedef struct vc_dtype:
        pass
    ctypedef struct vc_engine:
        pass
    size_t VC_MODEL_NFIELDS
    size_t VC_DTYPE_NFIELDS
    size_t VC_ENGINE_NFIELDS
    int VC_N_PARTS
    double vc_weights_bytes(const double *part_bytes)
    double vc_kv_cache_bytes(const vc_model *m, const vc_dtype *d, const vc_engine *e,
                             double context, double batch)
    double vc_activation_bytes(const vc_model *m, const vc_dtype *d, const vc_engine *e,
                               double context, double batch)
    double vc_overhead_bytes(const vc_engine *e, double kv_bytes, double activation_bytes)


cdef extern from "vramcore/openmp_shim.h" nogil:
    int vc_openmp_enabled()
    int vc_max_threads()


MODEL_NFIELDS = VC_MODEL_NFIELDS
DTYPE_NFIELDS = VC_DTYPE_NFIELDS
ENGINE_NFIELDS = VC_ENGINE_NFIELDS
N_PARTS = VC_N_PARTS
OPENMP = bool(vc_openmp_enabled())


def max_threads():
    """Threads OpenMP would use by default (1 without OpenMP)."""
    return vc_max_threads()


def weights(const double[:, :, ::1] part_bytes, double[:, ::1] out):
    """out[m, d] = weight bytes of model m stored as dtype d, from its (m, d, part) bytes."""
    cdef Py_ssize_t m, d
    with nogil:
        for m in range(part_bytes.shape[0]):
            for d in range(part_bytes.shape[1]):
                out[m, d] = vc_weights_bytes(&part_bytes[m, d, 0])


def grid(const double[:, ::1] models, const double[:, ::1] dtypes, const double[::1] engine,
         const double[::1] contexts, const double[::1] batches, const double[::1] gpu_bytes,
         const double[:, ::1] weights_bytes,
         double[::1] kv_out, double[::1] activation_out, double[::1] overhead_out,
         double[::1] total_out, double[::1] headroom_out, unsigned char[::1] fits_out,
         Py_ssize_t row_start, Py_ssize_t row_stop, int n_threads):
    """Fill rows [row_start, row_stop) of the flattened (model, dtype, context, batch) grid.

    Each row writes its n_gpus = len(gpu_bytes) cells of every output, which
    are flat views of C-contiguous (models, dtypes, contexts, batches, gpus)
    arrays.  Every cell depends only on its own inputs, so the result is the
    same for any thread count.
    """
    cdef Py_ssize_t n_c = contexts.shape[0]
    cdef Py_ssize_t n_b = batches.shape[0]
    cdef Py_ssize_t n_d = dtypes.shape[0]
    cdef Py_ssize_t n_g = gpu_bytes.shape[0]
    cdef const vc_engine *e = <const vc_engine *> &engine[0]
    cdef Py_ssize_t row, m, d, c, b, g, rest, cell
    cdef const vc_model *mp
    cdef const vc_dtype *dp
    cdef double ctx, bat, kv, act, ovh, total, head
    if n_threads < 1:
        n_threads = 1
    for row in prange(row_start, row_stop, nogil=True, num_threads=n_threads, schedule="static"):
        b = row % n_b
        rest = row // n_b
        c = rest % n_c
        rest = rest // n_c
        d = rest % n_d
        m = rest // n_d
        mp = <const vc_model *> &models[m, 0]
        dp = <const vc_dtype *> &dtypes[d, 0]
        ctx = contexts[c]
        bat = batches[b]
        kv = vc_kv_cache_bytes(mp, dp, e, ctx, bat)
        act = vc_activation_bytes(mp, dp, e, ctx, bat)
        ovh = vc_overhead_bytes(e, kv, act)
        total = weights_bytes[m, d] + kv + act + ovh
        cell = row * n_g
        for g in range(n_g):
            head = gpu_bytes[g] - total
            kv_out[cell + g] = kv
            activation_out[cell + g] = act
            overhead_out[cell + g] = ovh
            total_out[cell + g] = total
            headroom_out[cell + g] = head
            fits_out[cell + g] = head >= 0.0
