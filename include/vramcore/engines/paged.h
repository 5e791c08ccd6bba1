/*
 * vramcore/engines/paged.h -- what the budgeted, paged serving engines (vLLM,
 * SGLang, TensorRT-LLM) share: a profiling peak, a KV budget cut into blocks,
 * and the blocks each request needs.  Each engine header states its own budget
 * and defaults (engines/vllm.h, sglang.h, trtllm.h).
 */
#pragma once

#include "vramcore/plan.h"

/* Settings an engine derives from the GPU when left at 0 ("auto"). */
typedef struct { double ubatch, seqs, fraction; } vc_auto;

/* vLLM's batch defaults, which TensorRT-LLM's unset knobs follow too
 * (vllm/engine/arg_utils.py, get_batch_defaults): GPUs of >= 70 GiB other than
 * the A100 get max_num_batched_tokens 8192 and max_num_seqs 1024 (API server),
 * others 2048 and 256. */
VC_INLINE vc_auto vc_paged_auto(const vc_plan *p, double large_gpu)
{
    vc_auto a;
    a.seqs = p->max_num_seqs > 0.0 ? p->max_num_seqs : (large_gpu != 0.0 ? 1024.0 : 256.0);
    a.fraction = p->mem_fraction;
    a.ubatch = p->ubatch > 0.0 ? p->ubatch : (large_gpu != 0.0 ? 8192.0 : 2048.0);
    return a;
}

/* vLLM groups hybrid layers (vllm/v1/core/kv_cache_utils.py, get_kv_cache_groups):
 * group size = the smaller kind's count (the larger's when within 1.5x); each
 * kind splits into ceil(n / group size) groups of consecutive layers; one block
 * id is one page in each layer of the fullest group on this GPU (the
 * placement's group_layers: a pipeline stage holds part of the groups). */
static inline void vc_paged_plan(const vc_model *m, const vc_place *l, vc_plan *p)
{
    double nf = m->n_full_layers, ns = m->n_sliding_layers;
    p->group_size = l->group_layers;
    if (nf > 0.0 && ns > 0.0) {
        /* from the whole layer counts: every stage pages the model's groups */
        double lo = vc_min(nf, ns), hi = vc_max(nf, ns);
        double g = hi < 1.5 * lo ? hi : lo;
        p->full_groups = vc_ceil(nf / g);
        p->sliding_groups = vc_ceil(ns / g);
    } else {
        /* the attention layers (a hybrid model's recurrent layers keep their states apart) */
        p->full_groups = nf > 0.0 ? 1.0 : 0.0;
        p->sliding_groups = ns > 0.0 ? 1.0 : 0.0;
    }
    p->unit_frac = vc_is_frac(p->page * p->group_size);
}

/* Layer-blocks one request of `context` tokens needs.  Full layers:
 * ceil(context / block); sliding layers (vLLM SlidingWindowSpec):
 * ceil(min(window - 1 + max_num_batched_tokens, context) / block) + 1. */
/* vLLM hybrid models: the blocks of a request's recurrent states, state_blocks
 * in each recurrent group (mamba_cache_mode "all": one per block of max_model_len). */
VC_INLINE double vc_state_blocks_per_request(const vc_plan *p, double context)
{
    if (p->state_groups <= 0.0)
        return 0.0;
    return p->state_groups * (p->state_blocks > 0.0 ? p->state_blocks
                                                    : vc_ceil_div(vc_max(p->max_model_len, context), p->block_size));
}

VC_INLINE double vc_blocks_per_request(const vc_plan *p, double context, double ubatch)
{
    double B = p->block_size;
    double blocks = p->full_groups * vc_ceil_div(context, B) + vc_state_blocks_per_request(p, context);
    if (p->sliding_groups > 0.0) {
        double t = vc_min(p->window - 1.0 + ubatch, context);
        blocks += p->sliding_groups * (vc_ceil_div(t, B) + 1.0);
    }
    return blocks;
}

/* The profiling run's peak: the larger of a forward pass over the scheduler's
 * token budget T and the sampler over one logits row per request (N =
 * min(max_num_seqs, T) rows of sampler_bytes per logit, beside vLLM's T + 2N
 * hidden states), plus the workspace the run holds throughout; the fixed
 * overhead (context, non-torch memory, CUDA graphs) beside it. */
VC_INLINE void vc_paged_profile(const vc_plan *p, vc_auto a, vc_parts *s)
{
    double seqs = vc_min(a.seqs, a.ubatch);
    double sampler = seqs * p->vocab * p->sampler_bytes + (a.ubatch + 2.0 * seqs) * p->sampler_hidden;
    s->act = vc_whole(vc_max(a.ubatch * p->act_token, sampler) + p->profile_workspace);
    s->ovh = p->fixed_overhead;
}

/* The budget's blocks, the cache they make and what it holds.  The spare memory
 * is the blocks beyond the request (`batch` sequences of `context`, and for vLLM
 * one sequence of max_model_len, which it checks at start-up) times the bytes of
 * a block; negative when the cache is short by that much. */
/* What a budgeted engine makes of one GPU before any request: its settings,
 * the budget and its blocks, the cache, profile peak and overhead they come
 * with, and a hybrid model's state pool outside the blocks (SGLang's MambaPool,
 * TensorRT-LLM's Mamba slots: `state`, `seq_cap` requests at most; INFINITY
 * elsewhere).  The same for every context and batch: the grid makes it once
 * per (plan, GPU) (vc_estimate_gpu_cut). */
typedef struct {
    vc_auto a;
    double budget, blocks, kv, act, ovh, total, state, seq_cap;
} vc_cut;

/* the kernel lays cuts out as 11 doubles each (_kernel.pyx, _CUT) */
typedef char vc_cut_is_11_doubles[sizeof(vc_cut) == 11 * sizeof(double) ? 1 : -1];

/* The budget's blocks and the cache they make (`c->a`, `budget`, act and ovh set). */
VC_INLINE void vc_paged_cut(const vc_plan *p, vc_cut *c)
{
    double unit = p->page * p->group_size;             /* bytes of one block id */
    c->blocks = c->budget > 0.0 && unit > 0.0 ? vc_floor(c->budget / unit) : 0.0;
    c->kv = p->unit_frac != 0.0 ? vc_whole(c->blocks * unit) : c->blocks * unit;
    c->total = p->weights + c->kv + c->act + c->ovh;
}

/* One request on a cut GPU: `batch` sequences of `context` tokens.  The spare
 * memory is the blocks beyond the request (and for vLLM one sequence of
 * max_model_len, which it checks at start-up) times the bytes of a block;
 * negative when the cache is short by that much.  A state pool outside the
 * blocks adds its bytes and bounds the requests (c->seq_cap). */
VC_INLINE void vc_paged_request(const vc_plan *p, const vc_cut *c, double context, double batch,
                                int check_max_model_len, vc_result *r, vc_parts *s)
{
    double unit = p->page * p->group_size, blocks = c->blocks, budget = c->budget;
    s->kv = c->kv;
    s->act = c->act;
    s->ovh = c->ovh;
    s->total = c->total;
    r->kv_blocks = blocks;
    /* vLLM logs num_blocks // groups x block_size tokens (kv_cache_utils.py) */
    r->kv_capacity_tokens = vc_floor(blocks / vc_max(p->full_groups + p->sliding_groups + p->state_groups, 1.0))
                            * p->block_size;
    double need = vc_blocks_per_request(p, context, c->a.ubatch);
    double required = batch * need;
    if (p->state_groups > 0.0)      /* the requests' states: pages of the same pool, inside kv */
        s->state = batch * vc_state_blocks_per_request(p, context) * unit;
    /* a model of recurrent layers only needs no KV block: the engine's state slots bound it */
    r->max_concurrency = need > 0.0 ? blocks / need : (p->state_seq > 0.0 ? INFINITY : 0.0);
    s->why = 0;
    if (budget <= 0.0)
        s->why |= VC_WHY_NO_KV_BUDGET;
    else if (r->max_concurrency < batch)
        s->why |= VC_WHY_KV_BELOW_BATCH;
    if (check_max_model_len && p->max_model_len > 0.0) {
        double need_max = p->need_max_len >= 0.0 ? p->need_max_len
                                                 : vc_blocks_per_request(p, p->max_model_len, c->a.ubatch);
        if (blocks < need_max)
            s->why |= VC_WHY_KV_BELOW_MAX_MODEL_LEN;
        required = vc_max(required, need_max);
    }
    if (budget > 0.0 && p->unit_frac == 0.0)
        s->spare = (blocks - required) * unit;     /* whole already */
    else
        s->spare = -vc_whole(-(budget > 0.0 ? (blocks - required) * unit : budget - required * unit));
    if (c->seq_cap < INFINITY) {    /* a state pool beside the blocks */
        s->state = c->state;
        s->total += c->state;
        if (c->seq_cap < r->max_concurrency)
            r->max_concurrency = c->seq_cap;
        if (c->seq_cap < batch)
            s->why |= VC_WHY_KV_BELOW_BATCH;
    }
}

/* Inverse questions: blocks are fixed by the budget (`r`, one sequence of the
 * smallest context), full layers need ceil(context / block) blocks each. */
VC_INLINE double vc_paged_guess_from(const vc_plan *p, const vc_result *r, double fixed, double cap, int which)
{
    if (which == 1)
        return r->max_concurrency;
    return p->full_groups > 0.0 ? vc_floor(r->kv_blocks / (fixed * p->full_groups)) * p->block_size : cap;
}
