/*
 * vramcore/engines/train.h -- a training step (full fine-tuning, LoRA, QLoRA);
 * knobs and sources in vramcore/engines/train.py, formulas in training.h.
 *
 * context = sequence length, batch = micro-batch per GPU.  The peak of a step
 * is the model states (weights, gradients, optimizer states, master weights:
 * constant per plan) plus the activations saved for backward at the end of
 * the forward, plus the larger transient of the backward's start (the loss's
 * fp32 gradients over the vocabulary) or of one layer's backward (its
 * recomputed tensors under checkpointing and its gradient buffers), plus the
 * CUDA context and the allocator's slack.
 */
#pragma once

#include "vramcore/plan.h"
#include "vramcore/training.h"

static inline void vc_train_plan(const vc_model *m, const vc_dtype *d, const vc_train *t, const vc_engine *e,
                                 const vc_place *l, vc_plan *p)
{
    double a = e->train_act_bytes > 0.0 ? e->train_act_bytes : d->act_bytes;
    double tp = e->tp, h = m->hidden;
    double layers = l->gpu_layers;
    double inflight = vc_max(1.0, l->in_flight);   /* 1F1B: stage k of pp holds pp - k micro-batches */
    int ckpt = e->recompute >= 2.0, selective = e->recompute == 1.0;
    vc_states s = vc_train_states(m, t, e, l);
    double frozen = e->frozen_base;
    vc_act_terms nt = vc_layer_norms_saved(m, a, frozen);
    vc_act_terms at = vc_layer_attention_saved(m, a, tp, l->attn_impl == 2.0, frozen);
    /* scaled by the stage's recurrent layers: Mamba2, gated DeltaNet or Mamba1 (with its scan states per chunk) */
    double chunk = 0.0;
    vc_act_terms mt = m->dn_value_heads > 0.0 ? vc_deltanet_saved(m, a, tp, frozen)
                      : m->m1_inner > 0.0 ? vc_mamba1_saved(m, a, tp, frozen, &chunk) : vc_mamba2_saved(m, a, tp, frozen);
    /* the stage's layers by token mixer: attention, a recurrent mixer, or both side by side (Falcon-H1's
     * "hybrid") */
    double attn_layers = l->gpu_full + l->gpu_sliding, state_layers = l->gpu_state;
    double n_attn = m->n_full_layers + m->n_sliding_layers;
    double one_sq = n_attn > 0.0 ? at.sq : 0.0;
    vc_act_terms o = vc_outer_saved(m, a, tp, ckpt ? 1.0 : 0.0, frozen);
    if (l->last_stage == 0.0)           /* the final norm, lm_head input and loss are the last stage's; per-row
                                           rotary tables every stage's */
        o.tok = m->rope_per_row != 0.0 ? vc_rotary_tables(m, a, ckpt ? 1.0 : 0.0) : 0.0;
    double dense = m->n_dense_mlp_layers > 0.0 ? vc_dense_mlp_saved(m, a, tp, frozen) : 0.0;
    vc_act_terms moe_t = {0.0, 0.0, 0.0, 0.0};
    if (m->n_moe_layers > 0.0 && m->n_experts > 0.0)
        moe_t = vc_moe_mlp_saved(m, a, tp, frozen, e->autocast);
    double moe = moe_t.tok;
    double mlp_all = l->gpu_dense * dense + l->gpu_moe * moe;
    /* the largest layer of the model, recomputed under checkpointing: the largest of the (token mixer, MLP)
     * pairs its layers have (m->layer_pairs, vramcore/grid/pack.py layer_pairs), each with the normed input of
     * each sub-block it has (a Nemotron-H block has one) */
    double one_pair = 0.0;
    int pairs = (int)m->layer_pairs;
    for (int mi = 0; mi < 4; mi++) {
        for (int pi = 0; pi < 3; pi++) {
            if (!(pairs & (1 << (3 * mi + pi))))
                continue;
            double mix = mi == 0 ? at.tok : mi == 1 ? mt.tok : mi == 2 ? at.tok + mt.tok : 0.0;
            double mlp = pi == 0 ? dense : pi == 1 ? moe : 0.0;
            double inputs = frozen != 0.0 ? 0.0 : a * h * ((mi != 3) + (pi != 2));
            one_pair = vc_max(one_pair, mix + mlp + inputs);
        }
    }
    double one_layer = nt.tok + one_pair + t->adapter_token_layer;
    double widest = vc_max(l->gpu_dense > 0.0 ? m->dense_intermediate : 0.0,   /* this stage's layers' */
                           m->experts_per_token * m->expert_intermediate + m->shared_intermediate) / tp;
    p->weights = s.weights;
    p->grads = s.grads;
    p->optim = s.optim;
    p->master = s.master;
    p->host_states = s.host;
    if (ckpt) {
        p->t_tok = inflight * layers * a * h + o.tok;
        /* eager: the 16-bit (b, 1, s, s) mask of each attention kind is a checkpoint input */
        p->t_sq = l->attn_impl == 2.0 ? a * m->attn_kinds : 0.0;
        p->t_cst = o.cst;
        p->tl_tok = one_layer;          /* the layer being back-propagated, recomputed */
        p->tl_sq = one_sq;
        p->t_chunk = 0.0;
    } else {
        p->t_tok = inflight * (layers * (nt.tok + t->adapter_token_layer) + vc_sub_block_inputs(m, l, a, frozen)
                               + attn_layers * at.tok + state_layers * mt.tok + mlp_all) + o.tok;
        p->t_sq = selective ? 0.0 : inflight * attn_layers * at.sq;   /* selective: scores recomputed */
        p->t_cst = o.cst + inflight * (layers * (nt.cst + t->adapter_layer_bytes) + attn_layers * at.cst
                                       + state_layers * mt.cst + l->gpu_moe * moe_t.cst);
        p->tl_tok = 0.0;
        p->tl_sq = selective ? one_sq : 0.0;   /* selective: one layer's scores recomputed */
        p->t_chunk = inflight * state_layers * chunk;
    }
    p->t_pos = o.pos;
    /* one layer's backward: gradients of the residual stream in and out, and of
     * the MLP's gate, up and their product (an assumption: not measured) */
    p->tl_tok += 2.0 * a * h + 3.0 * a * widest;
    /* the loss's backward: fp32 gradients of the log-probabilities and of the
     * logits, then their 16-bit copy, over the (TP-split) vocabulary */
    p->tr_tok = l->last_stage != 0.0 ? (8.0 + a) * m->vocab / tp : 0.0;
    p->dequant = t->dequant_bytes;
    if (e->backward_transient == 0.0)   /* only what autograd holds when the forward ends (the measured figure) */
        p->tl_tok = p->tl_sq = p->tr_tok = p->dequant = 0.0;
    p->trainable = t->trainable_total;
    p->act_frac = 1.0;
}

/* The activation peak of one step of `batch` sequences of `context` tokens. */
VC_INLINE double vc_train_activations(const vc_plan *p, double context, double batch)
{
    double bs = batch * context, s2 = context * context;
    double saved = bs * p->t_tok + context * p->t_pos + batch * s2 * p->t_sq + p->t_cst
                   + batch * vc_ceil(context / VC_SCAN_CHUNK) * p->t_chunk
                   + (batch == 1.0 ? 8.0 : 0.0);   /* batch 1: the labels stay a view of the padded (s + 1) row */
    double transient = vc_max(bs * p->tr_tok, bs * p->tl_tok + batch * s2 * p->tl_sq);
    return saved + transient + p->dequant;
}

VC_INLINE void vc_train_row(const vc_plan *p, double context, double batch, vc_row *q)
{
    q->kv = q->state = 0.0;   /* a training step keeps no cache and no recurrent state across steps */
    q->act = vc_whole(vc_train_activations(p, context, batch));
    q->ovh = p->cuda_context + (p->reserve > 0.0 ? vc_whole(p->reserve * q->act) : 0.0);
    q->per_seq = q->inv_per_seq = 0.0;
    q->host = p->host_states;
    q->capacity = 0.0;
    q->total = p->weights + p->grads + p->optim + p->master + q->act + q->ovh;
}

VC_INLINE void vc_train_gpu(const vc_row *q, vc_result *r, vc_parts *s)
{
    s->kv = 0.0;
    s->act = q->act;
    s->ovh = q->ovh;
    s->total = q->total;
    s->why = 0;
    s->spare = INFINITY;
    r->kv_capacity_tokens = 0.0;
    r->max_concurrency = 0.0;
}

/* Closed forms of the largest context at `fixed` sequences (which = 0) or the
 * largest micro-batch at `fixed` tokens (which = 1).  The total is
 * K + max(g1(x), g2(x)) but for whole-byte roundings: g1 with the loss's
 * transient, g2 with one layer's backward, each a x^2 + b x (a quadratic in
 * the context under eager attention, a line in the batch), both times
 * (1 + reserve).  Stored as base = K, (scale, shift) = (a, b) of g1 and
 * (hi_scale, hi_shift) of g2; slack = the bytes the roundings add at most:
 * the activations' and the reserve's ceilings, and under which = 1 the 8
 * bytes of a batch of one (vc_train_activations), which K leaves out. */
VC_INLINE void vc_train_prepare_guess(const vc_plan *p, double fixed, int which, vc_guess *s)
{
    double res = 1.0 + p->reserve;
    double tok = p->t_tok, sq = p->t_sq;
    s->base = p->weights + p->grads + p->optim + p->master + p->cuda_context + res * (p->t_cst + p->dequant);
    if (which == 0) {
        double b = fixed;
        if (b == 1.0)
            s->base += res * 8.0;          /* the labels' padded row, exactly */
        s->scale = res * b * sq;
        s->shift = res * (b * (tok + p->tr_tok) + p->t_pos);
        s->hi_scale = res * b * (sq + p->tl_sq);
        s->hi_shift = res * (b * (tok + p->tl_tok) + p->t_pos);
        s->slack = 2.0 + p->reserve;
        if (p->t_chunk > 0.0) {
            /* Mamba1's scan states, b ceil(x / 2048) of them, bounded by b (x / 2048 + 1): the guess is a lower
             * bound and the search decides (an infinite slack takes no closed-form answer) */
            double per = res * b * p->t_chunk;
            s->base += per;
            s->shift += per / VC_SCAN_CHUNK;
            s->hi_shift += per / VC_SCAN_CHUNK;
            s->slack = INFINITY;
        }
    } else {
        double c = fixed, s2 = c * c;
        s->base += res * c * p->t_pos;
        s->scale = s->hi_scale = 0.0;
        double chunks = vc_ceil(c / VC_SCAN_CHUNK) * p->t_chunk;   /* Mamba1's scan states: a line in the batch */
        s->shift = res * (c * (tok + p->tr_tok) + s2 * sq + chunks);
        s->hi_shift = res * (c * (tok + p->tl_tok) + s2 * (sq + p->tl_sq) + chunks);
        s->slack = 2.0 + p->reserve + res * 8.0;
    }
}

/* The guess: the smaller branch's root (the total's max is each branch's bound). */
VC_INLINE double vc_train_guess_at(const vc_guess *s, double gpu_bytes)
{
    double free_ = gpu_bytes - s->base;
    if (free_ <= 0.0)
        return 0.0;
    return vc_min(vc_quadratic_root(s->scale, s->shift, free_), vc_quadratic_root(s->hi_scale, s->hi_shift, free_));
}

/* The exact answer from the closed form alone, or -1 where the roundings could
 * decide it.  With r the guess (the smaller root, of branch j) and n = floor(r):
 * n + 1 does not fit when branch j at n + 1 is above the memory by more than a
 * ceiling can take back (vc_whole may round down by a fraction of a byte),
 * which its slope at r times (n + 1 - r) bounds from below (both branches are
 * convex); n fits when each branch at n stays below the memory by more than
 * the slack, which its slope at n times its root's distance from n bounds.
 * 0 when one unit is already above the memory. */
VC_INLINE double vc_train_exact(const vc_guess *s, double gpu_bytes, double limit)
{
    double free_ = gpu_bytes - s->base;
    double r1 = free_ > 0.0 ? vc_quadratic_root(s->scale, s->shift, free_) : 0.0;
    double r2 = free_ > 0.0 ? vc_quadratic_root(s->hi_scale, s->hi_shift, free_) : 0.0;
    double r = vc_min(r1, r2);
    if (!(r < 4503599627370496.0))
        return -1.0;                   /* no growth, or beyond exact doubles: the search decides */
    double fp = 1e-9 * (gpu_bytes + 1.0);                  /* bytes of float error, generously */
    double slope_r = r1 <= r2 ? 2.0 * s->scale * r + s->shift : 2.0 * s->hi_scale * r + s->hi_shift;
    double up = vc_max(vc_floor(r) + 1.0, 1.0);           /* the first count that must not fit */
    if (!(slope_r * (up - r) > 1.0 + s->slack + fp))
        return -1.0;
    if (r < 1.0)
        return 0.0;
    double n = up - 1.0;
    if (n + 1.0 >= limit)
        return -1.0;
    double d1 = (2.0 * s->scale * n + s->shift) * (r1 - n), d2 = (2.0 * s->hi_scale * n + s->hi_shift) * (r2 - n);
    return d1 > s->slack + fp && d2 > s->slack + fp ? n : -1.0;
}
