/*
 * vramcore/formulas.h -- the memory formulas, once: every header of this folder,
 * in layer order.  The kernel (vramcore/grid/_kernel.pyx) includes this file.
 *
 *   common.h         input rows (model, dtype, engine), the result row, helpers
 *   weights.h        weights per GPU under tensor / pipeline parallelism
 *   cache.h          KV bytes per token and layer
 *   activations.h    the per-token peak inside one layer
 *   plan.h           per-(model, dtype, engine) constants and rows
 *   engines/<kind>.h one header per engine: its cache, peak, budget and closed forms
 *   engines.h        the plan builder and the dispatch by engine kind
 *   solve.h          the inverse questions
 */
#pragma once

#include "vramcore/solve.h"
