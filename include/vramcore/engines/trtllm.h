/*
 * vramcore/engines/trtllm.h -- TensorRT-LLM (PyTorch backend); knobs and sources
 * in vramcore/engines/trtllm.py.
 *
 * KV = free_gpu_memory_fraction x (total - the profiled peak incl. non-torch
 * memory) (tensorrt_llm/_torch/pyexecutor/_util.py, KvCacheCreator).
 */
#pragma once

#include "vramcore/engines/paged.h"

VC_INLINE void vc_trtllm_cut(const vc_plan *p, double gpu_bytes, double large_gpu, vc_cut *c)
{
    vc_auto a = vc_paged_auto(p, large_gpu);
    vc_parts prof;
    vc_paged_profile(p, a, &prof);
    /* hybrid models: the Mamba cache manager holds one state slot per request of max_batch_size (plus a
     * padding and an attention-DP slot) before the KV cache takes its fraction of what is free
     * (tensorrt_llm/_torch/pyexecutor/mamba_cache_manager.py) */
    double pool = p->state_seq > 0.0 ? (a.seqs + 2.0) * p->state_seq : 0.0;
    c->a = a;
    c->act = prof.act;
    c->ovh = prof.ovh;
    c->budget = a.fraction * (gpu_bytes - p->weights - prof.act - prof.ovh - pool);
    vc_paged_cut(p, c);
    c->state = pool;
    c->seq_cap = pool > 0.0 ? a.seqs : INFINITY;
}
