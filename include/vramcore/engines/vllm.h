/*
 * vramcore/engines/vllm.h -- vLLM (V1 engine); knobs and sources in
 * vramcore/engines/vllm.py.
 *
 * KV budget = gpu_memory_utilization x total - weights - the profiling run's
 * peak - non-torch memory (- the CUDA-graph estimate from v0.21)
 * (vllm/v1/worker/gpu_worker.py, determine_available_memory).
 */
#pragma once

#include "vramcore/engines/paged.h"

VC_INLINE void vc_vllm_gpu(const vc_plan *p, double context, double batch, double gpu_bytes, double large_gpu,
                               vc_result *r, vc_parts *s)
{
    vc_auto a = vc_paged_auto(p, large_gpu);
    vc_paged_profile(p, a, s);
    double budget = a.fraction * gpu_bytes - p->weights - s->act - p->non_torch
                    - (p->graphs_in_budget != 0.0 ? p->cuda_graph : 0.0);
    vc_paged_finish(p, a, budget, context, batch, gpu_bytes, r, s);
}
