/*
 * vramcore/engines.h -- the engine registry of the formulas: builds a plan and
 * sends each configuration to its engine's header by kind.  Adding an engine is
 * one header in engines/ and one case in each switch below (and its module in
 * vramcore/engines/).
 */
#pragma once

#include "vramcore/engines/llamacpp.h"
#include "vramcore/engines/sglang.h"
#include "vramcore/engines/train.h"
#include "vramcore/engines/transformers.h"
#include "vramcore/engines/trtllm.h"
#include "vramcore/engines/vllm.h"

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

/* Everything about one (model, dtype, engine) triple that does not depend on
 * context, batch or GPU: the shared part here, the engine's own fields in its
 * header. */
static inline void vc_make_plan(const vc_model *m, const vc_dtype *d, const double pb[VC_N_PARTS],
                                const vc_engine *e, const vc_train *t, const vc_place *l, vc_plan *p)
{
    int kind = (int)e->kind;
    double ptl = vc_kv_bytes_per_token_layer(m, d, e);
    double peak = vc_layer_peak_elems_per_token(m, e->tp, l, kind == VC_ENGINE_TRANSFORMERS, d->act_bytes);
    int last = l->last_stage != 0.0;   /* logits, the sampler and the loss are the last stage's */
    p->kind = e->kind;
    if (kind == VC_ENGINE_VLLM && e->mm_limit == 0.0) {
        /* vLLM's text-only mode (limit_mm_per_prompt 0 for every modality) never builds the towers */
        double text_pb[VC_N_PARTS];
        for (int i = 0; i < VC_N_PARTS; i++)
            text_pb[i] = pb[i];
        text_pb[VC_PART_VISION_TOWER] = text_pb[VC_PART_MM_PROJECTOR] = text_pb[VC_PART_AUDIO_TOWER] = 0.0;
        p->weights = vc_weights_bytes(m, text_pb, e, l);
    } else {
        p->weights = vc_weights_bytes(m, pb, e, l);
    }
    p->host_weights = 0.0;
    p->kv_full = l->gpu_full * ptl;
    p->kv_sliding = l->gpu_sliding * ptl;
    p->kv_full_host = p->kv_sliding_host = 0.0;
    /* cross-attention layers: the images' vision tokens, once per sequence whatever its length */
    p->cross_seq = l->gpu_cross * m->cross_tokens * ptl;
    p->window = m->sliding_window;
    p->sliding_cap = m->sliding_window + e->sliding_cap_offset;
    /* transformers: the int64 position_ids generate() passes, 8 bytes a token (measured per tensor) */
    double positions = kind == VC_ENGINE_TRANSFORMERS ? 8.0 : 0.0;
    p->act_token = peak * d->act_bytes + positions;
    p->act_token_full = (last ? vc_max(peak, m->hidden + m->vocab / e->tp) : peak) * d->act_bytes + positions;
    p->full_logits = e->full_logits;
    p->logit_row = last ? m->vocab * (d->act_bytes + 4.0) : 0.0;
    p->cuda_context = e->cuda_context_bytes;
    p->reserve = e->allocator_reserve;
    p->ctx_pad = e->ctx_pad;
    p->swa_full = e->swa_full;
    p->ubatch = e->max_num_batched_tokens;
    p->max_num_seqs = e->max_num_seqs;
    p->fixed_overhead = e->cuda_context_bytes + e->non_torch_bytes + e->cuda_graph_bytes;
    p->non_torch = e->non_torch_bytes;
    p->mem_fraction = e->mem_fraction;
    p->block_size = e->block_size;
    p->layers = l->gpu_layers;
    p->full_share = l->gpu_full;
    p->sliding_share = l->gpu_sliding;
    p->max_model_len = e->max_model_len;
    p->max_context = m->max_context;
    p->sampler_bytes = last ? e->sampler_bytes : 0.0;
    p->graphs_in_budget = e->graphs_in_budget;
    p->cuda_graph = e->cuda_graph_bytes;
    p->page = e->block_size * ptl;
    p->vocab = m->vocab;
    p->tp_pp = e->tp * e->pp;
    p->group_size = p->layers;
    p->full_groups = p->sliding_groups = 0.0;
    p->attn_scores_token = p->layer_ubatch_token = p->attn_extra_token = 0.0;
    p->unit_frac = 0.0;
    p->need_max_len = -1.0;
    p->gpu_vocab_row = p->host_ubatch_token = p->host_logit_row = 0.0;
    p->grads = p->optim = p->master = p->host_states = 0.0;
    p->t_tok = p->t_pos = p->t_sq = p->t_cst = p->t_chunk = p->tl_tok = p->tl_sq = p->tr_tok = 0.0;
    p->dequant = p->trainable = 0.0;
    p->state_seq = l->gpu_state * vc_state_bytes_per_seq_layer(m, d, e);
    p->state_page = vc_state_bytes_per_seq_layer(m, d, e);
    p->state_groups = p->state_blocks = p->state_seq_host = 0.0;
    p->mm_features = p->mm_enc_item = p->mm_held_token = p->mm_limit = 0.0;
    p->sampler_hidden = last && e->hidden_states != 0.0 ? m->hidden * d->act_bytes : 0.0;
    p->profile_workspace = e->profile_workspace;
    p->mm_pad = p->mm_image = p->mm_rope = 0.0;
    p->enc_seq = p->enc_embed_token = p->enc_held_seq = p->enc_pair = 0.0;
    p->act_pair = p->mask_pair = 0.0;
    p->mask_from = INFINITY;
    if (kind == VC_ENGINE_TRANSFORMERS && m->image_patches > 0.0 && l->first_stage != 0.0)
        vc_transformers_encoder_plan(m, d, p);
    if (kind == VC_ENGINE_TRANSFORMERS)
        vc_transformers_attention_plan(m, d, e, l, p);
    if (kind == VC_ENGINE_TRAIN)
        vc_train_plan(m, d, t, e, l, p);
    else if (kind == VC_ENGINE_LLAMACPP)
        vc_llamacpp_plan(m, d, pb, e, l, p);
    else if (kind == VC_ENGINE_VLLM || kind == VC_ENGINE_SGLANG || kind == VC_ENGINE_TRTLLM)
        vc_paged_plan(m, l, p);
    if (kind == VC_ENGINE_VLLM)
        vc_vllm_plan(m, e, d, l, p);
    /* RotaryEmbedding's cos/sin cache, counted with the weights: compute dtype, or fp32 where the engine's
     * implementation of the model asks for it (vLLM's gpt-oss) */
    if (e->rope_cache != 0.0 && m->max_context > 0.0 && kind != VC_ENGINE_TRAIN)
        p->weights += m->max_context * m->rotary_dim * (l->rope_fp32 != 0.0 ? 4.0 : d->act_bytes);
    /* which per-token rates make fractional bytes (most make whole ones: no rounding in the hot loop) */
    p->kv_frac = vc_max(vc_max(vc_is_frac(p->kv_full), vc_is_frac(p->kv_sliding)), vc_is_frac(p->cross_seq));
    p->act_frac = vc_max(vc_max(vc_is_frac(p->act_token), vc_is_frac(p->act_token_full)), vc_is_frac(p->logit_row));
    p->act_frac = vc_max(p->act_frac, vc_max(vc_is_frac(p->enc_seq), vc_is_frac(p->enc_held_seq)));
    p->act_frac = vc_max(p->act_frac, vc_max(vc_is_frac(p->enc_pair), vc_max(vc_is_frac(p->act_pair),
                                                                  vc_is_frac(p->mask_pair))));
    p->host_frac = vc_max(vc_is_frac(p->kv_full_host), vc_is_frac(p->kv_sliding_host));
    /* whole bytes: a fractional share (sub-byte formats, TP splits of odd sizes) is rounded up */
    p->weights = vc_whole(p->weights);
    p->host_weights = vc_whole(p->host_weights);
}

/* The GPU-independent part of a configuration (zero for the budgeted engines,
 * which size everything from the GPU). */
VC_INLINE void vc_estimate_row(const vc_plan *p, double context, double batch, vc_row *q)
{
    int kind = (int)p->kind;
    if (kind == VC_ENGINE_TRANSFORMERS)
        vc_transformers_row(p, context, batch, q);
    else if (kind == VC_ENGINE_TRAIN)
        vc_train_row(p, context, batch, q);
    else if (kind == VC_ENGINE_LLAMACPP)
        vc_llamacpp_row(p, context, batch, q);
    else
        q->kv = q->act = q->ovh = q->per_seq = q->inv_per_seq = q->host = q->capacity = q->total = q->state = 0.0;
}

/* 1 for the engines that size their KV cache from the GPU's memory (vLLM, SGLang, TensorRT-LLM). */
VC_INLINE int vc_budgeted(const vc_plan *p)
{
    int kind = (int)p->kind;
    return kind == VC_ENGINE_VLLM || kind == VC_ENGINE_SGLANG || kind == VC_ENGINE_TRTLLM;
}

/* A budgeted engine's cut of one GPU (vc_cut): the same for every request. */
VC_INLINE void vc_budgeted_cut(const vc_plan *p, double gpu_bytes, double large_gpu, vc_cut *c)
{
    int kind = (int)p->kind;
    if (kind == VC_ENGINE_SGLANG)
        vc_sglang_cut(p, gpu_bytes, large_gpu, c);
    else if (kind == VC_ENGINE_TRTLLM)
        vc_trtllm_cut(p, gpu_bytes, large_gpu, c);
    else
        vc_vllm_cut(p, gpu_bytes, large_gpu, c);
}

/* The verdict's bits every engine shares, and the result's fields from the parts. */
VC_INLINE void vc_result_finish(const vc_plan *p, const vc_row *q, double context, double gpu_bytes,
                                const vc_parts *s, vc_result *r)
{
    int why = s->why;
    if (p->weights > gpu_bytes)
        why |= VC_WHY_WEIGHTS_EXCEED_GPU;
    if (s->total > gpu_bytes)
        why |= VC_WHY_TOTAL_EXCEEDS_GPU;
    if (p->max_model_len > 0.0 && context > p->max_model_len)
        why |= VC_WHY_CONTEXT_BEYOND_MAX_MODEL_LEN;
    if (p->max_context > 0.0 && context > p->max_context)
        why |= VC_WHY_CONTEXT_BEYOND_TRAINED;
    if (s->total > 9007199254740992.0 || q->host > 9007199254740992.0)
        why |= VC_WHY_APPROXIMATE;
    r->kv_cache_bytes = s->kv;
    r->activation_bytes = s->act;
    r->overhead_bytes = s->ovh;
    r->total_bytes = s->total;
    r->gradients_bytes = p->grads;
    r->optimizer_bytes = p->optim;
    r->master_weights_bytes = p->master;
    r->trainable_params = p->trainable;
    r->state_bytes = s->state;
    /* memory left; for the budgeted engines what the cache has beyond the request */
    r->headroom_bytes = vc_min(gpu_bytes - s->total, s->spare);
    r->reasons = (double)why;
    r->fits = (why & VC_WHY_BLOCKING) == 0;
}

/* Every figure of one configuration of a budgeted engine from the GPU's cut
 * (vc_budgeted_cut): what a request changes, so that a grid cuts each GPU once. */
VC_INLINE void vc_estimate_gpu_cut(const vc_plan *p, const vc_row *q, const vc_cut *c, double context,
                                   double batch, double gpu_bytes, vc_result *r)
{
    vc_parts s;
    s.state = q->state;
    r->weights_bytes = p->weights;
    r->host_bytes = q->host;
    /* vLLM checks one max_model_len request at start-up; SGLang and TensorRT-LLM do not */
    vc_paged_request(p, c, context, batch, (int)p->kind == VC_ENGINE_VLLM, r, &s);
    vc_result_finish(p, q, context, gpu_bytes, &s, r);
}

/* Every figure of one configuration from its row part.  `large_gpu` is 1 for the
 * GPUs vLLM gives its larger batch defaults (>= 70 GiB, not an A100). */
VC_INLINE void vc_estimate_gpu(const vc_plan *p, const vc_row *q, double context, double batch,
                                   double gpu_bytes, double large_gpu, vc_result *r)
{
    if (vc_budgeted(p)) {
        vc_cut c;
        vc_budgeted_cut(p, gpu_bytes, large_gpu, &c);
        vc_estimate_gpu_cut(p, q, &c, context, batch, gpu_bytes, r);
        return;
    }
    vc_parts s;
    s.state = q->state;
    r->weights_bytes = p->weights;
    r->host_bytes = q->host;
    r->kv_blocks = 0.0;
    switch ((int)p->kind) {
    case VC_ENGINE_TRANSFORMERS:
        vc_transformers_gpu(p, q, gpu_bytes, r, &s);
        break;
    case VC_ENGINE_LLAMACPP:
        vc_llamacpp_gpu(p, q, context, gpu_bytes, r, &s);
        break;
    default:
        vc_train_gpu(q, r, &s);
        break;
    }
    vc_result_finish(p, q, context, gpu_bytes, &s, r);
}

/* The engines whose figures the GPU does not change (transformers, llama.cpp,
 * training: nothing sized from its memory): only the verdict and transformers'
 * concurrency differ from one GPU to the next.  0: the GPU changes the figures
 * (a budgeted engine); 1: transformers (its concurrency is per GPU); 2:
 * llama.cpp or training (only the verdict is).  `r0` is the first GPU's result
 * (vc_estimate_gpu); vc_gpu_free_why gives another GPU's reasons exactly as
 * vc_estimate_gpu would. */
VC_INLINE int vc_gpu_free_kind(const vc_plan *p)
{
    if (vc_budgeted(p))
        return 0;
    return (int)p->kind == VC_ENGINE_TRANSFORMERS ? 1 : 2;
}

VC_INLINE int vc_gpu_free_why(const vc_plan *p, const vc_result *r0, double gpu_bytes)
{
    int why = (int)r0->reasons & ~(VC_WHY_WEIGHTS_EXCEED_GPU | VC_WHY_TOTAL_EXCEEDS_GPU);
    if (p->weights > gpu_bytes)
        why |= VC_WHY_WEIGHTS_EXCEED_GPU;
    if (r0->total_bytes > gpu_bytes)
        why |= VC_WHY_TOTAL_EXCEEDS_GPU;
    return why;
}

/* vc_gpu_free_why and its fits for a contiguous run of GPUs: reasons[g] and
 * fits[g] of GPU g (gpu_bytes[g]; reasons NULL: fits alone), the first GPU's
 * result `r0`.  The same
 * compares, eight GPUs a step where SSE2 is there (every x86-64), one at a
 * time elsewhere and for the tail. */
VC_INLINE void vc_gpu_free_verdict_run(const vc_plan *p, const vc_result *r0, const double *gpu_bytes, long n_g,
                                       unsigned short *reasons, unsigned char *fits)
{
    const int base = (int)r0->reasons & ~(VC_WHY_WEIGHTS_EXCEED_GPU | VC_WHY_TOTAL_EXCEEDS_GPU);
    const double w = p->weights, total = r0->total_bytes;
    long g = 0;
#if defined(__SSE2__)
    const __m128d vw = _mm_set1_pd(w), vt = _mm_set1_pd(total);
    const __m128i vbase = _mm_set1_epi16((short)base), bw = _mm_set1_epi16(VC_WHY_WEIGHTS_EXCEED_GPU);
    const __m128i bt = _mm_set1_epi16(VC_WHY_TOTAL_EXCEEDS_GPU), blocking = _mm_set1_epi16(VC_WHY_BLOCKING);
    const __m128i one = _mm_set1_epi8(1);
    for (; g + 8 <= n_g; g += 8) {
        __m128i mw[2], mt[2];
        for (int h = 0; h < 2; h++) {
            __m128i cw[2], ct[2];
            for (int i = 0; i < 2; i++) {
                const __m128d x = _mm_loadu_pd(gpu_bytes + g + 4 * h + 2 * i);
                /* each 64-bit all-ones / zero mask to its low 32 bits */
                cw[i] = _mm_shuffle_epi32(_mm_castpd_si128(_mm_cmpgt_pd(vw, x)), _MM_SHUFFLE(2, 0, 2, 0));
                ct[i] = _mm_shuffle_epi32(_mm_castpd_si128(_mm_cmpgt_pd(vt, x)), _MM_SHUFFLE(2, 0, 2, 0));
            }
            mw[h] = _mm_unpacklo_epi64(cw[0], cw[1]);          /* four GPUs' masks, 32 bits each */
            mt[h] = _mm_unpacklo_epi64(ct[0], ct[1]);
        }
        const __m128i why = _mm_or_si128(vbase, _mm_or_si128(_mm_and_si128(_mm_packs_epi32(mw[0], mw[1]), bw),
                                                             _mm_and_si128(_mm_packs_epi32(mt[0], mt[1]), bt)));
        if (reasons != NULL)
            _mm_storeu_si128((__m128i *)(void *)(reasons + g), why);
        const __m128i fit = _mm_cmpeq_epi16(_mm_and_si128(why, blocking), _mm_setzero_si128());
        _mm_storel_epi64((__m128i *)(void *)(fits + g), _mm_and_si128(_mm_packs_epi16(fit, fit), one));
    }
#endif
    for (; g < n_g; g++) {
        const double x = gpu_bytes[g];
        const int why = base | (w > x ? VC_WHY_WEIGHTS_EXCEED_GPU : 0) | (total > x ? VC_WHY_TOTAL_EXCEEDS_GPU : 0);
        if (reasons != NULL)
            reasons[g] = (unsigned short)why;
        fits[g] = (why & VC_WHY_BLOCKING) == 0;
    }
}

VC_INLINE void vc_estimate(const vc_plan *p, double context, double batch, double gpu_bytes,
                               double large_gpu, vc_result *r)
{
    vc_row q;
    vc_estimate_row(p, context, batch, &q);
    vc_estimate_gpu(p, &q, context, batch, gpu_bytes, large_gpu, r);
}

/* Pipeline stages: one configuration's figures from the plans of its `n`
 * distinct stages (p[0] .. p[n - 1]), each a GPU of its own.  Every stage must
 * fit, so the reasons are all the stages' together, the headroom the smallest
 * and the concurrency and capacity the smallest.  The other figures are the
 * binding stage's: for the budgeted engines the stage with the fewest blocks
 * (vLLM gives every stage the smallest block count, kv_cache_utils.py,
 * get_kv_cache_configs), for the others the stage holding the most memory. */
VC_INLINE void vc_estimate_stages(const vc_plan *p, int n, double context, double batch, double gpu_bytes,
                                  double large_gpu, vc_result *r)
{
    int budgeted = vc_budgeted(&p[0]);
    vc_estimate(&p[0], context, batch, gpu_bytes, large_gpu, r);
    double head = r->headroom_bytes, conc = r->max_concurrency, cap = r->kv_capacity_tokens;
    int why = (int)r->reasons;
    for (int k = 1; k < n; k++) {
        vc_result t;
        vc_estimate(&p[k], context, batch, gpu_bytes, large_gpu, &t);
        int binds = budgeted ? (t.kv_blocks < r->kv_blocks
                                || (t.kv_blocks == r->kv_blocks && t.headroom_bytes < r->headroom_bytes))
                             : t.total_bytes > r->total_bytes;
        head = vc_min(head, t.headroom_bytes);
        conc = vc_min(conc, t.max_concurrency);
        cap = vc_min(cap, t.kv_capacity_tokens);
        why |= (int)t.reasons;
        if (binds)
            *r = t;
    }
    r->headroom_bytes = head;
    r->max_concurrency = conc;
    r->kv_capacity_tokens = cap;
    r->reasons = (double)why;
    r->fits = (why & VC_WHY_BLOCKING) == 0;
}
