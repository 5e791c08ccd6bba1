/*
 * vramcore/engines/vllm.h -- vLLM (V1 engine); knobs and sources in
 * vramcore/engines/vllm.py.
 *
 * KV budget = gpu_memory_utilization x total - weights - the profiling run's
 * peak - non-torch memory (- the CUDA-graph estimate from v0.21)
 * (vllm/v1/worker/gpu_worker.py, determine_available_memory).  max_model_len
 * defaults to the model's max_position_embeddings (vllm/config, _get_and_verify_max_len),
 * and vLLM refuses to start when the cache cannot hold one such sequence
 * (vllm/v1/core/kv_cache_utils.py, check_enough_kv_cache_memory).
 */
#pragma once

#include "vramcore/engines/paged.h"

/* The longest sequence vLLM accepts: its max_model_len, else the model's trained context. */
static inline void vc_vllm_plan(const vc_model *m, const vc_engine *e, vc_plan *p)
{
    p->max_model_len = e->max_model_len > 0.0 ? e->max_model_len : m->max_context;
    /* without sliding layers one max_model_len request's blocks do not depend on the GPU: once here */
    if (p->sliding_groups == 0.0 && p->max_model_len > 0.0)
        p->need_max_len = vc_blocks_per_request(p, p->max_model_len, 0.0);
}

VC_INLINE void vc_vllm_gpu(const vc_plan *p, double context, double batch, double gpu_bytes, double large_gpu,
                               vc_result *r, vc_parts *s)
{
    vc_auto a = vc_paged_auto(p, large_gpu);
    vc_paged_profile(p, a, s);
    double budget = a.fraction * gpu_bytes - p->weights - s->act - p->non_torch
                    - (p->graphs_in_budget != 0.0 ? p->cuda_graph : 0.0);
    vc_paged_finish(p, a, budget, context, batch, 1, r, s);
}
