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
/* Hybrid models (vllm/model_executor/models/config.py, HybridAttentionMambaModelConfig;
 * vllm/v1/core/kv_cache_utils.py, _get_kv_cache_groups_uniform_page_size): every
 * layer's page has one size, so the attention block grows to 16 x
 * cdiv(state page, 16 x attention bytes per token) tokens and the state page is
 * padded to it; the layers group by kind into groups of the smallest kind's count
 * (the largest's when within 1.5x) sharing one block pool; a request takes
 * `state_blocks` blocks in each recurrent group (mamba_cache_mode). */
static inline void vc_vllm_hybrid_plan(const vc_model *m, const vc_engine *e, const vc_place *l, vc_plan *p)
{
    double per_token = p->block_size > 0.0 ? p->page / p->block_size : 0.0;
    if (per_token > 0.0 && m->n_full_layers + m->n_sliding_layers > 0.0) {
        double b = 16.0 * vc_ceil_div(p->state_page, 16.0 * per_token);
        p->block_size = vc_max(p->block_size, b);
        p->page = p->block_size * per_token;
    } else {
        p->page = p->state_page;                    /* no attention layer: the state page alone */
    }
    /* the groups from the whole layer counts (every stage pages the model's groups) */
    double nf = m->n_full_layers, ns = m->n_sliding_layers, nr = m->n_state_layers;
    double lo = nr, hi = nr;
    if (nf > 0.0) { lo = vc_min(lo, nf); hi = vc_max(hi, nf); }
    if (ns > 0.0) { lo = vc_min(lo, ns); hi = vc_max(hi, ns); }
    double g = hi < 1.5 * lo ? hi : lo;
    p->full_groups = nf > 0.0 ? vc_ceil(nf / g) : 0.0;
    p->sliding_groups = ns > 0.0 ? vc_ceil(ns / g) : 0.0;
    p->state_groups = vc_ceil(nr / g);
    p->group_size = l->group_layers;            /* the fullest group's layers on this GPU */
    p->state_blocks = e->state_blocks;
    p->unit_frac = vc_is_frac(p->page * p->group_size);
}

static inline void vc_vllm_plan(const vc_model *m, const vc_engine *e, const vc_dtype *d, const vc_place *l,
                                vc_plan *p)
{
    if (m->mm_item_features > 0.0 && e->mm_limit > 0.0 && l->first_stage != 0.0) {  /* the encoder's stage */
        p->mm_features = m->mm_item_features;
        /* the largest of the block's phases, per patch (VisionSpec.vllm_encoder_phases, per tower family) */
        double peak = 0.0;
        for (int k = 0; k < VC_MM_PHASES; k++) {
            const double *ph = m->mm_phase[k];
            peak = vc_max(peak, (ph[0] + ph[1] / e->tp) * d->act_bytes + (ph[2] + ph[3] / e->tp) * 4.0);
        }
        p->mm_enc_item = m->mm_item_patches * peak;
        p->mm_held_token = m->hidden * d->act_bytes;
        p->mm_limit = e->mm_limit;
        /* the dummy pixels in the compute dtype (engines.vllm.mm_dummy_image_elems): beside the encoder's peak,
         * or, under vLLM 0.11.0 / 0.11.1's padded profile, held through the whole profiling run */
        p->mm_image = m->mm_item_pixels * d->act_bytes;
        if (e->mm_padding != 0.0) {
            p->mm_pad = 1.0;
            p->mm_rope = m->mm_rope_table;
        }
    }
    if (m->n_state_layers > 0.0)
        vc_vllm_hybrid_plan(m, e, l, p);
    p->max_model_len = e->max_model_len > 0.0 ? e->max_model_len : m->max_context;
    /* without sliding layers one max_model_len request's blocks do not depend on the GPU: once here */
    if (p->sliding_groups == 0.0 && p->max_model_len > 0.0)
        p->need_max_len = vc_blocks_per_request(p, p->max_model_len, 0.0);
}

VC_INLINE void vc_vllm_cut(const vc_plan *p, double gpu_bytes, double large_gpu, vc_cut *c)
{
    vc_auto a = vc_paged_auto(p, large_gpu);
    vc_parts prof, *s = &prof;
    vc_paged_profile(p, a, s);
    if (p->mm_features > 0.0) {
        /* multimodal models (vllm/v1/worker/gpu_model_runner.py, profile_run; vllm/multimodal/budget.py): the
         * encoder runs over a batch of the largest image, as many as the encoder budget (max of
         * max_num_batched_tokens and one item's embeddings) holds, at most max_num_seqs x the images a
         * max_model_len prompt takes; its outputs stay while the decoder's dummy pass runs */
        double toks = p->mm_features;
        double per_prompt = p->max_model_len > 0.0 ? vc_min(p->mm_limit, vc_floor(p->max_model_len / toks))
                                                   : p->mm_limit;
        double budget_rows = vc_max(a.ubatch, toks);   /* the encoder budget */
        double items = vc_max(1.0, vc_min(vc_floor(budget_rows / toks), a.seqs * vc_max(1.0, per_prompt)));
        double held = items * toks * p->mm_held_token;
        double images = 0.0, beside = items * p->mm_image;   /* the dummy pixels, once per image */
        if (p->mm_pad != 0.0) {
            /* vLLM 0.11.0 / 0.11.1: each output copied into zeros of the budget's rows while the unpadded
             * outputs stay referenced; the dummy images and the encoder's rotary table stay too */
            if (toks < budget_rows)
                held += items * budget_rows * p->mm_held_token;
            images = beside + p->mm_rope;
            beside = 0.0;
        }
        s->act = vc_whole(vc_max(s->act + held, items * p->mm_enc_item + beside + p->profile_workspace) + images);
    }
    c->a = a;
    c->act = s->act;
    c->ovh = s->ovh;
    c->budget = a.fraction * gpu_bytes - p->weights - s->act - p->non_torch
                - (p->graphs_in_budget != 0.0 ? p->cuda_graph : 0.0);
    vc_paged_cut(p, c);
    c->state = 0.0;
    c->seq_cap = INFINITY;          /* vLLM pages a hybrid model's states in the blocks */
}
