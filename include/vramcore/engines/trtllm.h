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
    double budget = a.fraction * (gpu_bytes - p->weights - s->act - s->ovh);
    vc_paged_finish(p, a, budget, context, batch, 0, r, s);
}
