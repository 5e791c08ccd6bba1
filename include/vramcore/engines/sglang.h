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

/* What the model leaves of SGLang's static fraction (before a hybrid model's state pool). */
VC_INLINE double vc_sglang_budget(const vc_plan *p, vc_auto a, double gpu_bytes)
{
    return a.fraction * (gpu_bytes - p->cuda_context - p->non_torch) - p->weights;
}

/* Hybrid models: a MambaPool of mamba_full_memory_ratio (0.9) / (1 + 0.9) of the budget in whole
 * requests' states (plus a dummy slot); the token pool gets the rest
 * (srt/model_executor: _handle_max_mamba_cache; srt/configs/mamba_utils.py).  0 without states. */
VC_INLINE double vc_sglang_state_slots(const vc_plan *p, double budget)
{
    return p->state_seq > 0.0 && budget > 0.0 ? vc_floor(budget * 9.0 / 19.0 / p->state_seq) : 0.0;
}

/* Running requests a hybrid model's MambaPool allows: its slots over
 * MAMBA_CACHE_SIZE_MAX_RUNNING_REQUESTS_RATIO (3) plus the radix cache's two
 * extra buffers per request with the overlap scheduler. */
VC_INLINE double vc_sglang_running(double slots)
{
    return vc_floor(slots / 5.0);
}

VC_INLINE void vc_sglang_cut(const vc_plan *p, double gpu_bytes, double large_gpu, vc_cut *c)
{
    vc_auto a = vc_sglang_auto(p, gpu_bytes, large_gpu);
    vc_parts prof;
    vc_paged_profile(p, a, &prof);
    double budget = vc_sglang_budget(p, a, gpu_bytes);
    double slots = vc_sglang_state_slots(p, budget);
    c->a = a;
    c->act = prof.act;
    c->ovh = prof.ovh;
    c->budget = budget - slots * p->state_seq;
    vc_paged_cut(p, c);
    c->state = slots > 0.0 ? (slots + 1.0) * p->state_seq : 0.0;
    c->seq_cap = p->state_seq > 0.0 ? vc_sglang_running(slots) : INFINITY;
}
