/*
 * vramcore/engines/transformers.h -- Hugging Face transformers
 * (AutoModelForCausalLM + generate()); knobs and sources in
 * vramcore/engines/transformers.py.
 *
 * DynamicCache: full layers hold every token, sliding layers window + offset
 * tokens, cross-attention layers (mllama) the images' vision tokens once per
 * sequence; the prefill peak is one layer's activations per prompt token plus the
 * last-position logits (or every position's) -- with images, the larger of that
 * (and the image embeddings kept through it) and the vision tower's peak over
 * the request's images; a CUDA context per GPU and the caching allocator's slack
 * on top.
 */
#pragma once

#include "vramcore/plan.h"

/* The vision tower's prefill (VisionSpec.transformers_encoder_phases; transformers 5.x
 * Qwen2_5_VLModel.forward / get_image_features, Gemma3Model, Mistral3Model): one tower call over
 * every image of the batch, its peak per patch (and per pair of patches of the call: Pixtral's
 * sdpa mask, VisionSpec.transformers_encoder_pairs); beside it the prompt's inputs_embeds (hidden
 * per token); the tower's outputs stay referenced through the decoder.  Not split over TP (the
 * text model's tp_plan alone), on the first stage only (the caller's test). */
static inline void vc_transformers_encoder_plan(const vc_model *m, const vc_dtype *d, vc_plan *p)
{
    p->enc_seq = m->image_patches * (m->mm_tf_act * d->act_bytes + m->mm_tf_f32 * 4.0 + m->mm_tf_fixed)
                 + m->image_count * m->mm_tf_image * d->act_bytes;
    p->enc_embed_token = m->hidden * d->act_bytes;
    p->enc_held_seq = m->image_patches * (m->mm_tf_held_act * d->act_bytes + m->mm_tf_held_f32 * 4.0)
                      + m->image_features * m->mm_tf_held_feature * d->act_bytes;
    p->enc_pair = m->image_patches * m->image_patches * m->mm_tf_pair * d->act_bytes;
}

/* What a prefill's attention holds per (query x key) pair of one sequence, beside the per-token peak
 * (measured: tools/measure_prefill_peak.py, tests/data/prefill_peak_measured.json, transformers 5.24).
 * eager (l->attn_impl 2; eager_attention_forward): per head on this rank the scores in the compute dtype,
 * their fp32 softmax and its cast back, a + 4 + a (in fp32 the cast is the softmax itself and adding the
 * mask holds two score tensors: 2a); with attention sinks (gpt-oss) the scores, them concatenated with the
 * sinks and that less its row max, 3a (the softmax runs in the compute dtype); and the additive mask of each
 * attention kind in the compute dtype, built before the first layer and kept to the last.
 * sdpa (0): no scores; full layers pass is_causal, a sliding (or chunked) layer a boolean mask of 1 byte a
 * pair once the prompt reaches the window (masking_utils skips it below), which on CUDA PyTorch converts to
 * an additive mask in the query's dtype before the memory-efficient kernel, a more during each such layer
 * (aten/src/ATen/native/transformers/attention.cpp, convert_boolean_attn_mask: at::where; its padding to a
 * multiple of 16 keys is not counted).  flash (1): nothing. */
static inline void vc_transformers_attention_plan(const vc_model *m, const vc_dtype *d, const vc_engine *e,
                                                  const vc_place *l, vc_plan *p)
{
    double a = d->act_bytes, heads = m->num_heads / e->tp;
    if (l->gpu_full + l->gpu_sliding <= 0.0)    /* a stage with no attention layer: no pairs (vc_make_plan's) */
        return;
    if (l->attn_impl == 2.0) {
        double scores = m->attention_sinks != 0.0 ? 3.0 * a : vc_max(2.0 * a, a + 4.0 + (a != 4.0 ? a : 0.0));
        p->act_pair = heads * scores + m->attn_kinds * a;
    } else if (l->attn_impl == 0.0 && l->gpu_sliding > 0.0) {
        p->mask_pair = 1.0 + a;
        p->mask_from = m->sliding_window;
    }
}

/* The pairs' bytes of one sequence of `context` tokens (vc_transformers_attention_plan). */
VC_INLINE double vc_transformers_pairs(const vc_plan *p, double context)
{
    return context * context * (p->act_pair + (context >= p->mask_from ? p->mask_pair : 0.0));
}

VC_INLINE void vc_transformers_row(const vc_plan *p, double context, double batch, vc_row *q)
{
    double kv_seq = p->kv_full * context + p->cross_seq;
    if (p->kv_sliding > 0.0)
        kv_seq += p->kv_sliding * vc_min(context, p->sliding_cap);
    double act_seq = p->full_logits != 0.0 ? context * p->act_token_full
                                           : context * p->act_token + p->logit_row;
    act_seq += vc_transformers_pairs(p, context);
    double dec_seq = act_seq + p->enc_held_seq, enc_seq = p->enc_seq + context * p->enc_embed_token;
    if (p->enc_seq > 0.0)  /* a request with images: the larger of the decoder's phase and the tower's */
        act_seq = vc_max(dec_seq, enc_seq + batch * p->enc_pair);
    /* whole bytes: a fractional part (a quantized cache, the slack) is rounded up */
    q->kv = p->kv_frac != 0.0 ? vc_whole(batch * kv_seq) : batch * kv_seq;
    q->act = p->act_frac != 0.0 ? vc_whole(batch * act_seq) : batch * act_seq;
    /* hybrid models: each sequence's recurrent states (a fixed size, whatever the context) */
    q->state = p->state_seq > 0.0 ? vc_whole(batch * p->state_seq) : 0.0;   /* most models: none, no rounding */
    q->ovh = p->cuda_context + (p->reserve > 0.0 ? vc_whole(p->reserve * (q->kv + q->act + q->state)) : 0.0);
    /* everything but the constant part scales with the batch */
    q->per_seq = (kv_seq + act_seq + p->state_seq) * (1.0 + p->reserve);
    if (p->enc_pair > 0.0) {  /* the tower's phase grows with the batch: the two phases' costs apart */
        q->per_seq = (kv_seq + dec_seq + p->state_seq) * (1.0 + p->reserve);
        q->pair_enc = (kv_seq + enc_seq + p->state_seq) * (1.0 + p->reserve);
    }
    q->inv_per_seq = 1.0 / q->per_seq;
    q->host = 0.0;
    q->capacity = context * batch;
    q->total = p->weights + q->kv + q->act + q->state + q->ovh;
}

/* What n sequences cost beyond the constant part when the tower's phase grows with the batch:
 * the larger of the decoder's phase (per_seq each) and the tower's (pair_enc each, and the pairs). */
static inline double vc_transformers_pair_cost(const vc_plan *p, const vc_row *q, double n)
{
    return vc_max(n * q->per_seq, n * q->pair_enc + n * n * p->enc_pair * (1.0 + p->reserve));
}

/* The largest n whose cost fits `free_` (> 0): each phase's root, then exact steps (a few at most: the
 * roots are off by float rounding only; bounded, so that no count past 2^53 can spin). */
static inline double vc_transformers_pair_concurrency(const vc_plan *p, const vc_row *q, double free_)
{
    double a = p->enc_pair * (1.0 + p->reserve), b = q->pair_enc;
    double n = vc_min(vc_floor(free_ * q->inv_per_seq),
                      vc_floor(2.0 * free_ / (b + sqrt(b * b + 4.0 * a * free_))));  /* stable root */
    n = vc_max(n, 0.0);
    for (int i = 0; i < 4 && vc_transformers_pair_cost(p, q, n + 1.0) <= free_; i++)
        n += 1.0;
    for (int i = 0; i < 4 && n > 0.0 && vc_transformers_pair_cost(p, q, n) > free_; i++)
        n -= 1.0;
    return n;
}

/* Sequences the memory left after the constant part holds: floor(free / per_seq),
 * by a reciprocal and one exact correction step instead of a division per GPU. */
VC_INLINE double vc_transformers_concurrency(const vc_plan *p, const vc_row *q, double gpu_bytes)
{
    double free_ = gpu_bytes - p->weights - p->cuda_context;
    double n = 0.0;
    if (free_ > 0.0 && p->enc_pair > 0.0)
        return vc_transformers_pair_concurrency(p, q, free_);
    if (free_ > 0.0) {
        n = vc_floor(free_ * q->inv_per_seq);
        if ((n + 1.0) * q->per_seq <= free_)
            n += 1.0;
        else if (n > 0.0 && n * q->per_seq > free_)
            n -= 1.0;
    }
    return n;
}

VC_INLINE void vc_transformers_gpu(const vc_plan *p, const vc_row *q, double gpu_bytes, vc_result *r,
                                       vc_parts *s)
{
    s->kv = q->kv;
    s->act = q->act;
    s->ovh = q->ovh;
    s->total = q->total;
    r->kv_capacity_tokens = q->capacity;
    r->max_concurrency = vc_transformers_concurrency(p, q, gpu_bytes);
    s->why = 0;
    s->spare = INFINITY;
}

/* Closed form of the largest context at `fixed` sequences (which = 0) or the
 * largest batch at `fixed` tokens (which = 1): weights + context + (1 + reserve)
 * x (kv + activations) is linear in the context on each side of the sliding cap
 * and linear in the batch. */
VC_INLINE void vc_transformers_prepare_guess(const vc_plan *p, double fixed, int which, vc_guess *s)
{
    double per_tok = p->full_logits != 0.0 ? p->act_token_full : p->act_token;
    double logits = p->full_logits != 0.0 ? 0.0 : p->logit_row;
    double inv_res = 1.0 / (1.0 + p->reserve);
    s->base = p->weights + p->cuda_context;
    if (which == 0) {
        double batch = fixed;
        /* the states and the images' cross-attention cache do not grow with the context */
        s->base += batch * (p->state_seq + p->cross_seq) * (1.0 + p->reserve);
        s->scale = inv_res / (batch * (p->kv_full + p->kv_sliding + per_tok));
        s->shift = logits / (p->kv_full + p->kv_sliding + per_tok);
        /* the pairs (eager scores, sdpa masks) make each piece a quadratic: its root, from the line's */
        double pair = p->act_pair + p->mask_pair;
        s->quad = pair / (p->kv_full + p->kv_sliding + per_tok);
        if (p->kv_sliding > 0.0) {
            s->cap_at = p->sliding_cap;
            s->hi_scale = inv_res / (batch * (p->kv_full + per_tok));
            s->hi_shift = (logits + p->kv_sliding * p->sliding_cap) / (p->kv_full + per_tok);
            s->hi_quad = pair / (p->kv_full + per_tok);
        }
    } else {
        double context = fixed;
        double kv_seq = p->kv_full * context + p->kv_sliding * vc_min(context, p->sliding_cap) + p->cross_seq;
        s->scale = inv_res / (kv_seq + context * per_tok + logits + p->state_seq + vc_transformers_pairs(p, context));
        s->shift = 0.0;
    }
    /* the total is that line but for four whole-byte ceilings (cache, activations, states, the slack on
     * them) of under (1 + reserve) bytes each: that many bytes, in units of the answer, either side */
    s->slack = 8.0 * (1.0 + p->reserve) * vc_max(s->scale, s->hi_scale);
    /* with images the activations are the larger of two lines: the decoder's line is a guess only, which
     * vc_refine_max corrects (the total stays monotone in the context and the batch) */
    if (p->enc_seq > 0.0)
        s->slack = 0.0;
    /* the quadratic's root is a guess only (float error in the square root, the mask's step at mask_from) */
    if (s->quad > 0.0)
        s->slack = 0.0;
}

/* g tokens of a line's guess -> the root of the quadratic whose linear part it is: q c^2 + rate c = g rate,
 * with quad = q / rate */
VC_INLINE double vc_transformers_root(double g, double quad)
{
    return quad > 0.0 && g > 0.0 ? vc_quadratic_root(quad, 1.0, g) : g;
}

VC_INLINE double vc_transformers_guess_at(const vc_guess *s, double gpu_bytes)
{
    double g = vc_transformers_root((gpu_bytes - s->base) * s->scale - s->shift, s->quad);
    if (g > s->cap_at)
        g = vc_transformers_root((gpu_bytes - s->base) * s->hi_scale - s->hi_shift, s->hi_quad);
    return g;
}
