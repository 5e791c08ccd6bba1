# cython: language_level=3
"""The compiled grid loops.  No validation, no allocation, no Python objects in nogil code.

Inputs are packed by vramcore/grid/pack.py and checked by vramcore/grid/validation.py;
the formulas are the vc_* functions of include/vramcore/formulas.h.  Each call
first turns every (model, dtype, engine) triple into a plan (the constants of
the formulas, in a caller-allocated scratch array), then loops over the
flattened index of the caller-allocated C-contiguous outputs, decoding the axis
indices.  Each cell depends only on its own inputs, so the results are
identical for any thread count.
"""

from cython.parallel cimport prange


cdef extern from "vramcore/formulas.h" nogil:
    ctypedef struct vc_model:
        pass
    ctypedef struct vc_dtype:
        pass
    ctypedef struct vc_engine:
        pass
    ctypedef struct vc_plan:
        pass
    ctypedef struct vc_train:
        pass
    ctypedef struct vc_place:
        double n_stages
    ctypedef struct vc_row:
        pass
    ctypedef struct vc_result:
        double weights_bytes
        double kv_cache_bytes
        double activation_bytes
        double overhead_bytes
        double total_bytes
        double headroom_bytes
        double kv_capacity_tokens
        double kv_blocks
        double max_concurrency
        double host_bytes
        double gradients_bytes
        double optimizer_bytes
        double master_weights_bytes
        double trainable_params
        double state_bytes
        double reasons
        double fits
    size_t VC_MODEL_NFIELDS
    size_t VC_DTYPE_NFIELDS
    size_t VC_ENGINE_NFIELDS
    size_t VC_RESULT_NFIELDS
    size_t VC_PLAN_NFIELDS
    size_t VC_TRAIN_NFIELDS
    size_t VC_PLACE_NFIELDS
    int VC_N_PARTS
    void vc_make_plan(const vc_model *m, const vc_dtype *d, const double *pb, const vc_engine *e,
                      const vc_train *t, const vc_place *l, vc_plan *p)
    void vc_estimate_row(const vc_plan *p, double context, double batch, vc_row *q)
    void vc_estimate_gpu(const vc_plan *p, const vc_row *q, double context, double batch, double gpu_bytes,
                         double large_gpu, vc_result *r)
    void vc_estimate(const vc_plan *p, double context, double batch, double gpu_bytes, double large_gpu,
                     vc_result *r)
    void vc_estimate_stages(const vc_plan *p, int n, double context, double batch, double gpu_bytes,
                            double large_gpu, vc_result *r)
    int vc_gpu_free_kind(const vc_plan *p)
    void vc_gpu_free_verdict_run(const vc_plan *p, const vc_result *r0, const double *gpu_bytes, long n_g,
                                 unsigned short *reasons, unsigned char *fits)
    int vc_gpu_free_why(const vc_plan *p, const vc_result *r0, double gpu_bytes)
    double vc_transformers_concurrency(const vc_plan *p, const vc_row *q, double gpu_bytes)
    ctypedef struct vc_guess:
        pass
    ctypedef struct vc_pool:
        pass
    ctypedef struct vc_cut:
        pass
    void vc_budgeted_cut(const vc_plan *p, double gpu_bytes, double large_gpu, vc_cut *c)
    void vc_estimate_gpu_cut(const vc_plan *p, const vc_row *q, const vc_cut *c, double context, double batch,
                             double gpu_bytes, vc_result *r)
    int vc_budgeted(const vc_plan *p)
    void vc_prepare_guess(const vc_plan *p, double fixed, int which, vc_guess *s)
    void vc_paged_pool(const vc_plan *p, double gpu_bytes, double large, vc_pool *o)
    double vc_solve(const vc_plan *p, const vc_guess *s, const vc_pool *pool, double fixed, double gpu_bytes,
                    double large, double cap, int which)


cdef extern from "vramcore/formulas.h":
    int VC_WHY_BLOCKING


cdef extern from "vramcore/openmp_shim.h" nogil:
    int vc_openmp_enabled()
    int vc_max_threads()


MAX_ENGINES = _MAX_ENGINES
MODEL_NFIELDS = VC_MODEL_NFIELDS
POOL_NFIELDS = _POOL
CUT_NFIELDS = _CUT
DTYPE_NFIELDS = VC_DTYPE_NFIELDS
ENGINE_NFIELDS = VC_ENGINE_NFIELDS
RESULT_NFIELDS = VC_RESULT_NFIELDS
PLAN_NFIELDS = VC_PLAN_NFIELDS
TRAIN_NFIELDS = VC_TRAIN_NFIELDS
PLACE_NFIELDS = VC_PLACE_NFIELDS
N_PARTS = VC_N_PARTS
OPENMP = bool(vc_openmp_enabled())
#: Bits of the `reasons` row that make a configuration not fit (VC_WHY_BLOCKING).
REASONS_BLOCKING = VC_WHY_BLOCKING
#: Rows of the `out` array of grid(), in order (fits goes to its own uint8 array).
RESULT_FIELDS = ("weights_bytes", "kv_cache_bytes", "activation_bytes", "overhead_bytes",
                 "total_bytes", "headroom_bytes", "kv_capacity_tokens", "kv_blocks",
                 "max_concurrency", "host_bytes", "gradients_bytes", "optimizer_bytes",
                 "master_weights_bytes", "trainable_params", "state_bytes", "reasons")


def max_threads():
    """Threads OpenMP would use by default (1 without OpenMP)."""
    return vc_max_threads()


cdef void _plans(const double[:, ::1] models, const double[:, ::1] dtypes, const double[:, :, :, ::1] part_bytes,
                 const double[:, ::1] engines, const double[:, :, :, ::1] train, const double[:, :, :, ::1] place,
                 double[:, :, :, :, ::1] plans) noexcept nogil:
    cdef Py_ssize_t m, d, e, k
    for m in range(models.shape[0]):
        for d in range(dtypes.shape[0]):
            for e in range(engines.shape[0]):
                for k in range(place.shape[2]):
                    vc_make_plan(<const vc_model *> &models[m, 0], <const vc_dtype *> &dtypes[d, 0],
                                 &part_bytes[m, d, e, 0], <const vc_engine *> &engines[e, 0],
                                 <const vc_train *> &train[m, d, e, 0], <const vc_place *> &place[m, e, k, 0],
                                 <vc_plan *> &plans[m, d, e, k, 0])


cdef inline int _n_stages(const double *place, Py_ssize_t m, Py_ssize_t e, Py_ssize_t n_e,
                          Py_ssize_t n_s) noexcept nogil:
    """Distinct pipeline stages of (model m, engine e): the n_stages field of its first place row."""
    return <int> (<const vc_place *> (place + (m * n_e + e) * n_s * VC_PLACE_NFIELDS)).n_stages


cdef enum:
    _POOL = 4            # doubles of one vc_pool (blocks, reasons, ubatch, seq_cap)
    _CUT = 11            # doubles of one vc_cut (its vc_auto's 3, then 8)
    _HEADROOM = 5        # RESULT_FIELDS indices of the per-GPU fields of the GPU-free engines
    _CONCURRENCY = 8
    _REASONS = 15
    _BLOCK = 64          # cells computed before their fields are written as contiguous runs
    _MAX_ENGINES = 16    # engines per sweep (checked in vramcore/grid/resolve.py)
    _ROWS = 16           # rows of a GPU-free engine whose formulas run before their writes
    _N_OUT = 16          # vc_result fields before fits: the rows of `out`, RESULT_FIELDS


cdef void _gpu_free_cells(const vc_plan *p, const vc_row *q, const vc_result *r0, int how,
                          const double *gpu_bytes, Py_ssize_t n_g, Py_ssize_t n_e,
                          double *out, Py_ssize_t n_cells, const int *select, Py_ssize_t n_sel,
                          double *out1, Py_ssize_t n_cells1, const int *select1, Py_ssize_t n_sel1,
                          unsigned char *fits, unsigned short *reasons, Py_ssize_t first,
                          Py_ssize_t first1) noexcept nogil:
    """Every GPU's cells of one (row, engine) of an engine the GPU changes nothing of but the verdict.

    `r0`, the first GPU's result, comes from the formulas (vc_estimate_gpu); the
    others differ only in headroom, reasons, fits and (how = 1, transformers)
    the concurrency, computed in one pass over the GPUs as vc_estimate_gpu
    would; every other field is its first GPU's value.  `first` is the cell
    of (row, GPU 0, engine) in `out`, `fits` and `reasons`, `first1` in
    `out1`; a GPU's cell is n_e further.
    """
    cdef Py_ssize_t g, k, at
    cdef int j, why
    cdef double v, total
    cdef double *head = NULL
    cdef double *why_f = NULL
    cdef double *conc = NULL
    total = r0.total_bytes
    for k in range(n_sel1):
        out1[k * n_cells1 + first1] = (<const double *> r0)[select1[k]]
    for k in range(n_sel):
        j = select[k]
        at = k * n_cells + first
        if j == _HEADROOM:
            head = out + at
        elif j == _REASONS:
            why_f = out + at
        elif j == _CONCURRENCY and how == 1:
            conc = out + at
        else:
            v = (<const double *> r0)[j]
            for g in range(n_g):
                out[at + g * n_e] = v
    # one tight loop per output over the GPUs (no test inside: the compiler keeps each in registers); one
    # engine: contiguous runs (vectorised)
    if head != NULL and n_e == 1:
        for g in range(n_g):
            head[g] = gpu_bytes[g] - total
    elif head != NULL:
        for g in range(n_g):
            head[g * n_e] = gpu_bytes[g] - total
    if conc != NULL:
        for g in range(n_g):
            conc[g * n_e] = vc_transformers_concurrency(p, q, gpu_bytes[g])
    if why_f != NULL:
        for g in range(n_g):
            why_f[g * n_e] = <double> vc_gpu_free_why(p, r0, gpu_bytes[g])
    if fits != NULL and n_e == 1:
        vc_gpu_free_verdict_run(p, r0, gpu_bytes, n_g, reasons + first if reasons != NULL else NULL, fits + first)
    elif reasons != NULL and fits != NULL:
        for g in range(n_g):
            why = vc_gpu_free_why(p, r0, gpu_bytes[g])
            reasons[first + g * n_e] = <unsigned short> why
            fits[first + g * n_e] = (why & VC_WHY_BLOCKING) == 0
    elif reasons != NULL:
        for g in range(n_g):
            reasons[first + g * n_e] = <unsigned short> vc_gpu_free_why(p, r0, gpu_bytes[g])
    elif fits != NULL:
        for g in range(n_g):
            fits[first + g * n_e] = (vc_gpu_free_why(p, r0, gpu_bytes[g]) & VC_WHY_BLOCKING) == 0


cdef void _grid_row(const double *plans, const double *place, Py_ssize_t n_s, Py_ssize_t n_d, Py_ssize_t n_e,
                    const double *contexts, Py_ssize_t n_c,
                    const double *batches, Py_ssize_t n_b, const double *gpu_bytes, const double *gpu_large,
                    Py_ssize_t n_g, double *out, Py_ssize_t n_cells, const int *select, Py_ssize_t n_sel,
                    double *out1, Py_ssize_t n_cells1, const int *select1, Py_ssize_t n_sel1,
                    unsigned char *fits, unsigned short *reasons, const double *cuts, Py_ssize_t row,
                    Py_ssize_t b, Py_ssize_t c, Py_ssize_t md, Py_ssize_t m) noexcept nogil:
    """All gpus x engines cells of one (model, dtype, context, batch) row, its axis indices decoded.

    Raw pointers (no memoryview reference counting per call); locals are per
    call, so per thread.  `out` is the (n_sel, n_cells) array: row k holds the
    RESULT_FIELDS entry select[k]; `out1` the (n_sel1, n_cells1) array of the
    fields select1 that do not depend on the GPU, written once per (row,
    engine) from the first GPU's cells; `fits` and `reasons` (the reasons
    bits as uint16) are written unless NULL.  An engine
    split into several distinct pipeline stages (n_stages > 1) combines its
    stages' figures per cell (vc_estimate_stages); the others reuse their row part.
    """
    cdef Py_ssize_t g, e, i, k, j, start, stop, base
    cdef int ns[_MAX_ENGINES]
    cdef int how[_MAX_ENGINES]
    cdef bint slow = False
    cdef Py_ssize_t per_row = n_g * n_e
    cdef double ctx = contexts[c], bat = batches[b]
    cdef vc_row q[_MAX_ENGINES]
    cdef vc_result rs[_BLOCK]
    cdef const vc_plan *p
    base = row * per_row
    for e in range(n_e):
        ns[e] = _n_stages(place, m, e, n_e, n_s)
        how[e] = 0
        if ns[e] == 1:
            p = <const vc_plan *> (plans + (md * n_e + e) * n_s * VC_PLAN_NFIELDS)
            vc_estimate_row(p, ctx, bat, &q[e])
            how[e] = vc_gpu_free_kind(p)
        if how[e] != 0:     # GPU-free: each field as one (strided) run over the GPUs
            vc_estimate_gpu(p, &q[e], ctx, bat, gpu_bytes[0], gpu_large[0], &rs[0])
            _gpu_free_cells(p, &q[e], &rs[0], how[e], gpu_bytes, n_g, n_e, out, n_cells, select, n_sel,
                            out1, n_cells1, select1, n_sel1, fits, reasons, base + e, row * n_e + e)
        else:
            slow = True
    if not slow:
        return
    # the other engines' cells in blocks: compute into a small local buffer, then write each
    # output field as one contiguous run (few interleaved write streams)
    start = 0
    while start < per_row:
        stop = start + _BLOCK
        if stop > per_row:
            stop = per_row
        for i in range(start, stop):
            g = i // n_e
            e = i % n_e
            if how[e] != 0:
                continue
            p = <const vc_plan *> (plans + (md * n_e + e) * n_s * VC_PLAN_NFIELDS)
            if ns[e] == 1 and cuts != NULL:     # a budgeted engine: its GPU cut once per grid (_cuts)
                vc_estimate_gpu_cut(p, &q[e], <const vc_cut *> (cuts + ((md * n_e + e) * n_s * n_g + g) * _CUT),
                                    ctx, bat, gpu_bytes[g], &rs[i - start])
            elif ns[e] == 1:
                vc_estimate_gpu(p, &q[e], ctx, bat, gpu_bytes[g], gpu_large[g], &rs[i - start])
            else:
                vc_estimate_stages(p, ns[e], ctx, bat, gpu_bytes[g], gpu_large[g], &rs[i - start])
        for k in range(n_sel):          # one contiguous run per selected field
            j = select[k]
            for i in range(start, stop):
                if how[i % n_e] == 0:
                    out[k * n_cells + base + i] = (<const double *> &rs[i - start])[j]
        if start < n_e:                 # the first GPU's cells: the fields written once per engine
            for k in range(n_sel1):
                j = select1[k]
                for i in range(start, stop if stop < n_e else n_e):
                    if how[i] == 0:
                        out1[k * n_cells1 + row * n_e + i] = (<const double *> &rs[i - start])[j]
        if fits != NULL:
            for i in range(start, stop):
                if how[i % n_e] == 0:
                    fits[base + i] = rs[i - start].fits != 0.0
        if reasons != NULL:
            for i in range(start, stop):
                if how[i % n_e] == 0:
                    reasons[base + i] = <unsigned short> rs[i - start].reasons
        start = stop


cdef void _batch_free(const double *plans, Py_ssize_t n_s, Py_ssize_t n_d, Py_ssize_t n_e, const double *contexts,
                      Py_ssize_t n_c, const double *batches, Py_ssize_t n_b, const double *gpu_bytes,
                      const double *gpu_large, Py_ssize_t n_g, double *out4, Py_ssize_t n_cells4,
                      const int *select4, Py_ssize_t n_sel4, Py_ssize_t outer, Py_ssize_t row_start) noexcept nogil:
    """The fields select4 of (model, dtype, context) index `outer` on every GPU, from its first row in the chunk.

    The caller's promise: they do not depend on the batch (transformers'
    concurrency: the memory left over one sequence's bytes), every engine of
    one pipeline stage.  A chunk that starts inside the outer writes the same
    values again.
    """
    cdef Py_ssize_t c = outer % n_c
    cdef Py_ssize_t md = outer // n_c
    cdef Py_ssize_t b = row_start - outer * n_b if row_start > outer * n_b else 0
    cdef Py_ssize_t e, g, k
    cdef const vc_plan *p
    cdef vc_row q
    cdef vc_result r
    for e in range(n_e):
        p = <const vc_plan *> (plans + (md * n_e + e) * n_s * VC_PLAN_NFIELDS)
        vc_estimate_row(p, contexts[c], batches[b], &q)
        for g in range(n_g):
            vc_estimate_gpu(p, &q, contexts[c], batches[b], gpu_bytes[g], gpu_large[g], &r)
            for k in range(n_sel4):
                out4[k * n_cells4 + (outer * n_g + g) * n_e + e] = (<const double *> &r)[select4[k]]


cdef void _check_stages(const double[:, :, :, ::1] place, double[:, :, :, :, ::1] plans) except *:
    """Refuse a place array whose n_stages fields point past its stage rows, or plans of another stage count."""
    cdef Py_ssize_t m, e
    cdef double n
    if plans.shape[3] != place.shape[2]:
        raise ValueError("grid: plans and place disagree on the number of stage rows")
    for m in range(place.shape[0]):
        for e in range(place.shape[1]):
            n = (<const vc_place *> &place[m, e, 0, 0]).n_stages
            if not (1.0 <= n <= place.shape[2]) or n != <int> n:
                raise ValueError(f"grid: n_stages {n} of (model {m}, engine {e}) is not in 1..{place.shape[2]}")


cdef void _cuts(const double *plans, const double *place, Py_ssize_t n_md, Py_ssize_t n_d, Py_ssize_t n_e,
                Py_ssize_t n_s, const double *gpu_bytes, const double *gpu_large, Py_ssize_t n_g,
                double *cuts) noexcept nogil:
    """Every single-stage budgeted plan's cut of every GPU (vc_budgeted_cut), _CUT doubles per (plan, gpu)."""
    cdef Py_ssize_t md, e, g, i
    cdef const vc_plan *p
    for md in range(n_md):
        for e in range(n_e):
            if _n_stages(place, md // n_d, e, n_e, n_s) != 1:
                continue
            i = (md * n_e + e) * n_s
            p = <const vc_plan *> (plans + i * VC_PLAN_NFIELDS)
            if vc_budgeted(p):
                for g in range(n_g):
                    vc_budgeted_cut(p, gpu_bytes[g], gpu_large[g], <vc_cut *> (cuts + (i * n_g + g) * _CUT))


cdef void _grid_rows(const double *plans, const double *place, Py_ssize_t n_s, Py_ssize_t n_d, Py_ssize_t n_e,
                     const double *contexts, Py_ssize_t n_c,
                     const double *batches, Py_ssize_t n_b, const double *gpu_bytes, const double *gpu_large,
                     Py_ssize_t n_g, double *out, Py_ssize_t n_cells, const int *select, Py_ssize_t n_sel,
                     double *out1, Py_ssize_t n_cells1, const int *select1, Py_ssize_t n_sel1,
                     unsigned char *fits, unsigned short *reasons, const double *cuts, Py_ssize_t outer,
                     Py_ssize_t row_start, Py_ssize_t row_stop) noexcept nogil:
    """The rows of (model, dtype, context) index `outer` that lie in [row_start, row_stop)."""
    cdef Py_ssize_t c = outer % n_c
    cdef Py_ssize_t md = outer // n_c          # m * n_d + d
    cdef Py_ssize_t m = md // n_d
    cdef Py_ssize_t first = outer * n_b, b
    cdef Py_ssize_t b0 = row_start - first if row_start > first else 0
    cdef Py_ssize_t b1 = row_stop - first if row_stop - first < n_b else n_b
    cdef Py_ssize_t e, bs, be, i
    cdef int how
    cdef const vc_plan *p
    cdef vc_row qs[_ROWS]
    cdef vc_result rs[_ROWS]
    cdef double ctx = contexts[c]
    # the engines that the GPU changes nothing of but the verdict, of one pipeline stage: the formulas of a
    # block of rows first (independent rows, so their rounding chains overlap), then their writes
    for e in range(n_e):
        p = <const vc_plan *> (plans + (md * n_e + e) * n_s * VC_PLAN_NFIELDS)
        if _n_stages(place, m, e, n_e, n_s) != 1 or vc_gpu_free_kind(p) == 0:
            break
    else:
        for e in range(n_e):
            p = <const vc_plan *> (plans + (md * n_e + e) * n_s * VC_PLAN_NFIELDS)
            how = vc_gpu_free_kind(p)
            bs = b0
            while bs < b1:
                be = bs + _ROWS if bs + _ROWS < b1 else b1
                for b in range(bs, be):
                    i = b - bs
                    vc_estimate_row(p, ctx, batches[b], &qs[i])
                    vc_estimate_gpu(p, &qs[i], ctx, batches[b], gpu_bytes[0], gpu_large[0], &rs[i])
                for b in range(bs, be):
                    i = b - bs
                    _gpu_free_cells(p, &qs[i], &rs[i], how, gpu_bytes, n_g, n_e, out, n_cells, select, n_sel,
                                    out1, n_cells1, select1, n_sel1, fits, reasons, (first + b) * n_g * n_e + e,
                                    (first + b) * n_e + e)
                bs = be
        return
    for b in range(b0, b1):
        _grid_row(plans, place, n_s, n_d, n_e, contexts, n_c, batches, n_b, gpu_bytes, gpu_large, n_g, out, n_cells,
                  select, n_sel, out1, n_cells1, select1, n_sel1, fits, reasons, cuts, first + b, b, c, md, m)


def grid(const double[:, ::1] models, const double[:, ::1] dtypes, const double[:, :, :, ::1] part_bytes,
         const double[:, ::1] engines, const double[:, :, :, ::1] train, const double[:, :, :, ::1] place,
         const double[::1] contexts,
         const double[::1] batches, const double[::1] gpu_bytes, const double[::1] gpu_large,
         double[:, :, :, :, ::1] plans, double[:, ::1] out, unsigned char[::1] fits, Py_ssize_t row_start,
         Py_ssize_t row_stop, int n_threads, const int[::1] select=None, bint write_fits=True,
         double[:, ::1] out1=None, const int[::1] select1=None, double[:, ::1] out2=None,
         const int[::1] select2=None, unsigned short[::1] reasons=None, double[:, ::1] cuts=None,
         double[:, ::1] out3=None, const int[::1] select3=None, double[:, ::1] out4=None,
         const int[::1] select4=None):
    """Fill rows [row_start, row_stop) of the flattened (model, dtype, context, batch) grid.

    Each row holds its gpus x engines cells of every output (C order: model,
    dtype, context, batch, gpu, engine).  `plans` is scratch of shape (models,
    dtypes, engines, stages, PLAN_NFIELDS); `part_bytes` the (models, dtypes, engines, N_PARTS) weight
    bytes as each engine holds them; `train` the (models, dtypes, engines,
    TRAIN_NFIELDS) rows of the training engines (zeros elsewhere); `place` the
    (models, engines, stages, PLACE_NFIELDS) layer placements, one row per
    distinct pipeline stage (n_stages of them valid); `out` has one row per name in
    RESULT_FIELDS and one column per cell; `fits` one byte per cell.  Fields on
    demand: with `select` (indices into RESULT_FIELDS), `out` holds only those
    rows, in that order (at least one row is allocated; `select` may be empty);
    `write_fits` False leaves `fits` alone.  Fields written once, at the shape
    they have: `out1` (len(select1), models x dtypes x contexts x batches x
    engines) takes the fields select1 that do not depend on the GPU (the
    caller's promise: no budgeted engine), from each row's first GPU; `out2`
    (len(select2), models x dtypes x engines) the plan constants select2 (the
    caller's promise: one pipeline stage each), written whatever the rows.
    `reasons`, one uint16 per cell, takes the reasons bits (then leave
    ``reasons`` out of `select`).  `cuts`, scratch of (models x dtypes x
    engines x stages x gpus, CUT_NFIELDS), lets the budgeted engines cut each
    GPU once for every row (vc_budgeted_cut) instead of once per cell; with
    them, `out3` (len(select3), models x dtypes x gpus x engines) takes the
    fields select3 that no request changes (the caller's promise: every engine
    budgeted, one pipeline stage each), from each cut.  `out4` (len(select4),
    models x dtypes x contexts x gpus x engines) takes the fields select4 that
    do not depend on the batch (the caller's promise: transformers' concurrency,
    one pipeline stage each), once per (model, dtype, context) the rows touch.
    """
    cdef Py_ssize_t n_d = dtypes.shape[0], n_c = contexts.shape[0], n_b = batches.shape[0]
    cdef Py_ssize_t n_e = engines.shape[0], n_g = gpu_bytes.shape[0], n_cells = out.shape[1]
    cdef Py_ssize_t outer, k, n_s = place.shape[2]
    cdef const double *plans_p = &plans[0, 0, 0, 0, 0]
    cdef const double *place_p = &place[0, 0, 0, 0]
    cdef double *out_p = &out[0, 0]
    cdef unsigned char *fits_p = &fits[0] if write_fits else NULL
    cdef int all_fields[_N_OUT]
    cdef const int *select_p = all_fields
    cdef Py_ssize_t n_sel = _N_OUT
    cdef double *out1_p = NULL
    cdef const int *select1_p = NULL
    cdef Py_ssize_t n_sel1 = 0, n_cells1 = 0
    cdef unsigned short *reasons_p = NULL
    if reasons is not None:
        if reasons.shape[0] != models.shape[0] * n_d * n_c * n_b * n_g * n_e:
            raise ValueError("grid: reasons needs one entry per cell")
        reasons_p = &reasons[0]
    for k in range(_N_OUT):
        all_fields[k] = <int> k
    if select is not None:
        n_sel = select.shape[0]
        if n_sel > out.shape[0]:
            raise ValueError("grid: out has fewer rows than the selected fields")
        for k in range(n_sel):
            if select[k] < 0 or select[k] >= _N_OUT:
                raise ValueError(f"grid: field index {select[k]} out of range")
        if n_sel > 0:
            select_p = &select[0]
    elif out.shape[0] < _N_OUT:
        raise ValueError("grid: out needs a row per RESULT_FIELDS entry")
    if select1 is not None and select1.shape[0] > 0:
        n_sel1 = select1.shape[0]
        _check_select("select1", select1, out1, models.shape[0] * n_d * n_c * n_b * n_e)
        out1_p, select1_p, n_cells1 = &out1[0, 0], &select1[0], out1.shape[1]
    if select2 is not None and select2.shape[0] > 0:
        _check_select("select2", select2, out2, models.shape[0] * n_d * n_e)
    _check_stages(place, plans)
    cdef double *cuts_p = NULL
    cdef double *out3_p = NULL
    cdef const int *select3_p = NULL
    cdef Py_ssize_t n_sel3 = 0
    if cuts is not None:
        if cuts.shape[0] != models.shape[0] * n_d * n_e * n_s * n_g or cuts.shape[1] != _CUT:
            raise ValueError("grid: cuts must be (models x dtypes x engines x stages x gpus, CUT_NFIELDS)")
        cuts_p = &cuts[0, 0]
    if select3 is not None and select3.shape[0] > 0:
        if cuts_p == NULL:
            raise ValueError("grid: out3 needs cuts")
        _check_select("select3", select3, out3, models.shape[0] * n_d * n_g * n_e)
        out3_p, select3_p, n_sel3 = &out3[0, 0], &select3[0], select3.shape[0]
    cdef double *out4_p = NULL
    cdef const int *select4_p = NULL
    cdef Py_ssize_t n_sel4 = 0, n_cells4 = 0
    if select4 is not None and select4.shape[0] > 0:
        _check_select("select4", select4, out4, models.shape[0] * n_d * n_c * n_g * n_e)
        out4_p, select4_p, n_sel4, n_cells4 = &out4[0, 0], &select4[0], select4.shape[0], out4.shape[1]
    if n_threads < 1:
        n_threads = 1
    with nogil:
        _plans(models, dtypes, part_bytes, engines, train, place, plans)
        if cuts_p != NULL:
            _cuts(plans_p, place_p, models.shape[0] * n_d, n_d, n_e, n_s, &gpu_bytes[0], &gpu_large[0], n_g, cuts_p)
        if select2 is not None and select2.shape[0] > 0:
            _plan_constants(plans, gpu_bytes[0], gpu_large[0], &out2[0, 0], &select2[0], select2.shape[0])
        if out3_p != NULL:
            _request_free(plans_p, models.shape[0] * n_d, n_e, n_s, &gpu_bytes[0], n_g, cuts_p, out3_p, select3_p,
                          n_sel3)
    if row_stop <= row_start:
        return
    # one (model, dtype, context) run of batches per iteration: its indices decoded once, not per row (the
    # integer divisions cost a row as much as its formulas)
    for outer in prange(row_start // n_b, (row_stop - 1) // n_b + 1, nogil=True, num_threads=n_threads,
                        schedule="static"):
        _grid_rows(plans_p, place_p, n_s, n_d, n_e, &contexts[0], n_c, &batches[0], n_b, &gpu_bytes[0],
                   &gpu_large[0], n_g, out_p, n_cells, select_p, n_sel, out1_p, n_cells1, select1_p, n_sel1,
                   fits_p, reasons_p, cuts_p, outer, row_start, row_stop)
        if out4_p != NULL:
            _batch_free(plans_p, n_s, n_d, n_e, &contexts[0], n_c, &batches[0], n_b, &gpu_bytes[0], &gpu_large[0],
                        n_g, out4_p, n_cells4, select4_p, n_sel4, outer, row_start)


cdef void _plan_constants(const double[:, :, :, :, ::1] plans, double gpu_bytes, double large, double *out,
                          const int *select, Py_ssize_t n_sel) noexcept nogil:
    """Write the fields `select` of every (model, dtype, engine) plan that no cell changes (its first stage's)."""
    cdef Py_ssize_t m, d, e, k, at = 0
    cdef Py_ssize_t n = plans.shape[0] * plans.shape[1] * plans.shape[2]
    cdef vc_result r
    for m in range(plans.shape[0]):
        for d in range(plans.shape[1]):
            for e in range(plans.shape[2]):
                vc_estimate(<const vc_plan *> &plans[m, d, e, 0, 0], 1.0, 1.0, gpu_bytes, large, &r)
                for k in range(n_sel):
                    out[k * n + at] = (<const double *> &r)[select[k]]
                at = at + 1


cdef void _request_free(const double *plans, Py_ssize_t n_md, Py_ssize_t n_e, Py_ssize_t n_s,
                        const double *gpu_bytes, Py_ssize_t n_g, const double *cuts, double *out, const int *select,
                        Py_ssize_t n_sel) noexcept nogil:
    """Write the fields `select` of every (model, dtype, gpu, engine) that no request changes, from its cut."""
    cdef Py_ssize_t md, e, g, k, i, at
    cdef Py_ssize_t n = n_md * n_g * n_e
    cdef vc_row q
    cdef vc_result r
    cdef const vc_plan *p
    for md in range(n_md):
        for e in range(n_e):
            i = (md * n_e + e) * n_s
            p = <const vc_plan *> (plans + i * VC_PLAN_NFIELDS)
            vc_estimate_row(p, 1.0, 1.0, &q)
            for g in range(n_g):
                vc_estimate_gpu_cut(p, &q, <const vc_cut *> (cuts + (i * n_g + g) * _CUT), 1.0, 1.0, gpu_bytes[g],
                                    &r)
                at = (md * n_g + g) * n_e + e
                for k in range(n_sel):
                    out[k * n + at] = (<const double *> &r)[select[k]]


cdef int _check_select(str name, const int[::1] select, double[:, ::1] out, Py_ssize_t cells) except -1:
    """Refuse field indices out of range, or an `out` array of another shape than (len(select), cells)."""
    cdef Py_ssize_t k
    if out is None or out.shape[0] < select.shape[0] or out.shape[1] != cells:
        raise ValueError(f"grid: the {name} fields need an out array of {select.shape[0]} x {cells}")
    for k in range(select.shape[0]):
        if select[k] < 0 or select[k] >= _N_OUT:
            raise ValueError(f"grid: {name} field index {select[k]} out of range")
    return 0


cdef void _pools(const double *plans, const double *place, Py_ssize_t n_md, Py_ssize_t n_d, Py_ssize_t n_e,
                 Py_ssize_t n_s, const double *gpu_bytes, const double *gpu_large, Py_ssize_t n_g,
                 double *pools) noexcept nogil:
    """The budgeted plans' pools on every GPU (vc_paged_pool), _POOL doubles per (plan, gpu); others untouched."""
    cdef Py_ssize_t md, e, k, g, i
    cdef const vc_plan *p
    for md in range(n_md):
        for e in range(n_e):
            for k in range(_n_stages(place, md // n_d, e, n_e, n_s)):
                i = (md * n_e + e) * n_s + k
                p = <const vc_plan *> (plans + i * VC_PLAN_NFIELDS)
                if vc_budgeted(p):
                    for g in range(n_g):
                        vc_paged_pool(p, gpu_bytes[g], gpu_large[g], <vc_pool *> (pools + (i * n_g + g) * _POOL))


cdef void _solve_row(int which, const double *plans, const double *place, const double *pools, Py_ssize_t n_s,
                     Py_ssize_t n_d, Py_ssize_t n_e, const double *fixed,
                     Py_ssize_t n_f, const double *gpu_bytes, const double *gpu_large, Py_ssize_t n_g,
                     const double *caps, long long *out, Py_ssize_t row) noexcept nogil:
    """All gpus x engines answers of one (model, dtype, fixed) row; locals are per call (per thread).

    Under pipeline stages every stage must fit: the answer is the smallest of
    the stages' (each later stage solved below the answer so far).  The
    budgeted engines read their pool on each GPU from `pools` (made once for
    every context or batch asked).
    """
    cdef Py_ssize_t f = row % n_f
    cdef Py_ssize_t md = row // n_f            # m * n_d + d
    cdef Py_ssize_t m = md // n_d
    cdef Py_ssize_t g, e, k, at, i
    cdef int ns
    cdef vc_guess s
    cdef const vc_plan *p
    cdef const vc_pool *pool
    for e in range(n_e):
        ns = _n_stages(place, m, e, n_e, n_s)
        for k in range(ns):
            i = (md * n_e + e) * n_s + k
            p = <const vc_plan *> (plans + i * VC_PLAN_NFIELDS)
            vc_prepare_guess(p, fixed[f], which, &s)
            for g in range(n_g):
                at = (row * n_g + g) * n_e + e
                pool = <const vc_pool *> (pools + (i * n_g + g) * _POOL)
                if k == 0:
                    out[at] = <long long> vc_solve(p, &s, pool, fixed[f], gpu_bytes[g], gpu_large[g], caps[m], which)
                elif out[at] > 0:
                    out[at] = <long long> vc_solve(p, &s, pool, fixed[f], gpu_bytes[g], gpu_large[g],
                                                   <double> out[at], which)


def solve(int which, const double[:, ::1] models, const double[:, ::1] dtypes,
          const double[:, :, :, ::1] part_bytes, const double[:, ::1] engines, const double[:, :, :, ::1] train,
          const double[:, :, :, ::1] place, const double[::1] fixed,
          const double[::1] gpu_bytes, const double[::1] gpu_large, const double[::1] caps,
          double[:, :, :, :, ::1] plans, double[:, :, :, :, :, ::1] pools, long long[::1] out,
          Py_ssize_t row_start, Py_ssize_t row_stop, int n_threads):
    """Inverse questions over rows [row_start, row_stop) of the flattened (model, dtype, fixed) grid.

    which = 0: largest context for each batch in `fixed`; which = 1: largest
    batch for each context in `fixed`.  caps[m] bounds the answer of model m.
    Each row holds gpus x engines answers (C order: model, dtype, fixed, gpu, engine).
    `plans` and `pools` are scratch (vramcore/grid/pack.py plans_scratch / pools_scratch).
    """
    cdef Py_ssize_t n_d = dtypes.shape[0], n_e = engines.shape[0], n_f = fixed.shape[0], n_g = gpu_bytes.shape[0]
    cdef Py_ssize_t row, n_s = place.shape[2], n_md = models.shape[0] * n_d
    cdef const double *plans_p = &plans[0, 0, 0, 0, 0]
    cdef const double *place_p = &place[0, 0, 0, 0]
    cdef long long *out_p = &out[0]
    cdef double *pools_p = &pools[0, 0, 0, 0, 0, 0]
    _check_stages(place, plans)
    if (pools.shape[0] != plans.shape[0] or pools.shape[1] != plans.shape[1] or pools.shape[2] != plans.shape[2]
            or pools.shape[3] != plans.shape[3] or pools.shape[4] != n_g or pools.shape[5] != _POOL):
        raise ValueError("solve: pools must be (models, dtypes, engines, stages, gpus, POOL_NFIELDS)")
    if n_threads < 1:
        n_threads = 1
    with nogil:
        _plans(models, dtypes, part_bytes, engines, train, place, plans)
        _pools(plans_p, place_p, n_md, n_d, n_e, n_s, &gpu_bytes[0], &gpu_large[0], n_g, pools_p)
    for row in prange(row_start, row_stop, nogil=True, num_threads=n_threads, schedule="dynamic", chunksize=64):
        _solve_row(which, plans_p, place_p, pools_p, n_s, n_d, n_e, &fixed[0], n_f, &gpu_bytes[0], &gpu_large[0],
                   n_g, &caps[0], out_p, row)


# ---------------------------------------------------------------------- one configuration (the scalar path)
def cell_plan(const double[::1] model, const double[::1] dtype, const double[::1] part_bytes,
              const double[::1] engine, const double[::1] train, const double[::1] place, double[::1] plan):
    """Build one (model, dtype, engine) plan into `plan` (PLAN_NFIELDS doubles a stage) from its packed rows.

    The rows are any buffers of doubles (``array.array("d")``: no numpy needed)
    of MODEL_NFIELDS, DTYPE_NFIELDS, N_PARTS, ENGINE_NFIELDS and TRAIN_NFIELDS
    values, and `place` of PLACE_NFIELDS values per distinct pipeline stage (its
    first row's n_stages of them), as vramcore/grid/pack.py builds them; `plan`
    holds PLAN_NFIELDS values per stage.
    """
    cdef Py_ssize_t k, n
    if (model.shape[0] != VC_MODEL_NFIELDS or dtype.shape[0] != VC_DTYPE_NFIELDS
            or part_bytes.shape[0] != VC_N_PARTS or engine.shape[0] != VC_ENGINE_NFIELDS
            or train.shape[0] != VC_TRAIN_NFIELDS or place.shape[0] < VC_PLACE_NFIELDS
            or place.shape[0] % VC_PLACE_NFIELDS):
        raise ValueError("cell_plan: a row has the wrong number of fields")
    n = <Py_ssize_t> (<const vc_place *> &place[0]).n_stages
    if n != place.shape[0] // VC_PLACE_NFIELDS or plan.shape[0] != n * VC_PLAN_NFIELDS:
        raise ValueError("cell_plan: place and plan must hold n_stages rows each")
    for k in range(n):
        vc_make_plan(<const vc_model *> &model[0], <const vc_dtype *> &dtype[0], &part_bytes[0],
                     <const vc_engine *> &engine[0], <const vc_train *> &train[0],
                     <const vc_place *> &place[k * VC_PLACE_NFIELDS], <vc_plan *> &plan[k * VC_PLAN_NFIELDS])


def cell(const double[::1] plan, double context, double batch, double gpu_bytes, double large_gpu):
    """Return every vc_result field of one configuration of a `plan`, as a tuple (RESULT_FIELDS, then fits).

    `plan` holds one PLAN_NFIELDS row per distinct pipeline stage (cell_plan).
    The same formulas as :func:`grid`, cell for cell: the figures are identical.
    """
    cdef vc_result r
    cdef Py_ssize_t n = plan.shape[0] // VC_PLAN_NFIELDS
    if n < 1 or plan.shape[0] % VC_PLAN_NFIELDS:
        raise ValueError("cell: the plan has the wrong number of fields")
    if n == 1:
        vc_estimate(<const vc_plan *> &plan[0], context, batch, gpu_bytes, large_gpu, &r)
    else:
        vc_estimate_stages(<const vc_plan *> &plan[0], <int> n, context, batch, gpu_bytes, large_gpu, &r)
    return (r.weights_bytes, r.kv_cache_bytes, r.activation_bytes, r.overhead_bytes, r.total_bytes,
            r.headroom_bytes, r.kv_capacity_tokens, r.kv_blocks, r.max_concurrency, r.host_bytes,
            r.gradients_bytes, r.optimizer_bytes, r.master_weights_bytes, r.trainable_params, r.state_bytes,
            r.reasons, r.fits)
