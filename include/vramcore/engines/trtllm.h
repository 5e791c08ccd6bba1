/*
 * vramcore/engines/trtllm.h -- TensorRT-LLM (PyTorch backend); knobs and sources
 * in vramcore/engines/trtllm.py.
 *
 * KV = free_gpu_memory_fraction x (total - the profiled peak incl. non-torch
 * memory) (tensorrt_llm/_torch/pyexecutor/_util.py, KvCacheCreator).
 */
#pragma once

#include "vramcore/engines/paged.h"

VC_INLINE void vc_trtllm_gpu(const vc_plan *p, double context, double batch, double gpu_bytes,
                                 double large_gpu, vc_result *r, vc_parts *s)
{
    vc_auto a = vc_paged_auto(p, large_gpu);
    vc_paged_profile(p, a, s);
    /* hybrid models: the Mamba cache manager holds one state slot per request of max_batch_size (plus a
     * padding and an attention-DP slot) before the KV cache takes its fraction of what is free
     * (tensorrt_llm/_torch/pyexecutor/mamba_cache_manager.py) */
    double pool = p->state_seq > 0.0 ? (a.seqs + 2.0) * p->state_seq : 0.0;
    double budget = a.fraction * (gpu_bytes - p->weights - s->act - s->ovh - pool);
    vc_paged_finish(p, a, budget, context, batch, 0, r, s);
    if (pool > 0.0) {
        s->state = pool;
        s->total += pool;
        r->max_concurrency = vc_min(r->max_concurrency, a.seqs);
        if (a.seqs < batch)
            s->why |= VC_WHY_KV_BELOW_BATCH;
    }
}
