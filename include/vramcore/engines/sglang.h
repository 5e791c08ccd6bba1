/*
 * vramcore/engines/sglang.h -- SGLang; knobs and sources in
 * vramcore/engines/sglang.py.
 *
 * Token pool = mem_fraction_static x the memory free before loading - weights
 * (python/sglang/srt/model_executor/model_runner.py, profile_max_num_token);
 * activations and CUDA graphs live in the rest.
 */
#pragma once

#include "vramcore/engines/paged.h"

/* Defaults from the GPU (server_args.py, _handle_gpu_memory_settings): chunked
 * prefill by GPU memory unless set; mem_fraction_static = (mem - reserved) / mem
 * with reserved = 512 MiB + 1.5 x chunked-prefill tokens + 2 x cuda-graph batch
 * + tp x pp / 8 GiB, at least 10 GiB above 60 GiB of memory. */
VC_INLINE vc_auto vc_sglang_auto(const vc_plan *p, double gpu_bytes, double large_gpu)
{
    vc_auto a = vc_paged_auto(p, large_gpu);
    double mib = gpu_bytes / 1048576.0, gib = mib / 1024.0;
    double chunk = gib < 35.0 ? 2048.0 : gib < 60.0 ? 4096.0 : gib < 160.0 ? 8192.0 : 16384.0;
    a.ubatch = p->ubatch > 0.0 ? p->ubatch : chunk;
    if (a.fraction <= 0.0) {
        double graph_bs = gib < 20.0 ? 8.0 : gib < 35.0 ? 24.0 : gib < 60.0 ? 32.0 : gib < 160.0 ? 256.0 : 512.0;
        double reserved = 512.0 + vc_max(a.ubatch, 2048.0) * 1.5 + graph_bs * 2.0 + p->tp_pp / 8.0 * 1024.0;
        if (gib > 60.0)
            reserved = vc_max(reserved, 10240.0);
        a.fraction = vc_max(0.05, vc_floor((mib - reserved) / mib * 1000.0 + 0.5) / 1000.0);
    }
    return a;
}

VC_INLINE void vc_sglang_gpu(const vc_plan *p, double context, double batch, double gpu_bytes,
                                 double large_gpu, vc_result *r, vc_parts *s)
{
    vc_auto a = vc_sglang_auto(p, gpu_bytes, large_gpu);
    vc_paged_profile(p, a, s);
    double budget = a.fraction * (gpu_bytes - p->cuda_context - p->non_torch) - p->weights;
    vc_paged_finish(p, a, budget, context, batch, 0, r, s);
}
