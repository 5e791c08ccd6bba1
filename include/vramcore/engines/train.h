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
    vc_act_terms at = vc_layer_attention_saved(m, a, tp, e->eager_attention, frozen);
    vc_act_terms mt = vc_mamba2_saved(m, a, tp, frozen);   /* scaled by the stage's Mamba2 layers */
    /* the stage's layers by token mixer: attention, Mamba2, or both side by side (Falcon-H1's "hybrid") */
    double attn_layers = l->gpu_full + l->gpu_sliding, state_layers = l->gpu_state;
    /* the largest mixer of one layer of the model (recomputed under checkpointing) */
    double n_attn = m->n_full_layers + m->n_sliding_layers;
    double one_mixer = n_attn + m->n_state_layers > m->n_layers ? at.tok + mt.tok
                       : vc_max(n_attn > 0.0 ? at.tok : 0.0, m->n_state_layers > 0.0 ? mt.tok : 0.0);
    double one_sq = n_attn > 0.0 ? at.sq : 0.0;
    vc_act_terms o = vc_outer_saved(m, a, tp, ckpt ? 1.0 : 0.0, frozen);
    if (l->last_stage == 0.0)
        o.tok = 0.0;                    /* the final norm, lm_head input and loss are the last stage's */
    double dense = m->n_dense_mlp_layers > 0.0 ? vc_dense_mlp_saved(m, a, tp, frozen) : 0.0;
    double moe = m->n_moe_layers > 0.0 && m->n_experts > 0.0 ? vc_moe_mlp_saved(m, a, tp, frozen) : 0.0;
    double mlp_all = l->gpu_dense * dense + l->gpu_moe * moe;
    double one_layer = nt.tok + one_mixer + vc_max(dense, moe) + t->adapter_token_layer;
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
        p->t_sq = e->eager_attention != 0.0 ? a * m->attn_kinds : 0.0;
        p->t_cst = o.cst;
        p->tl_tok = one_layer;          /* the layer being back-propagated, recomputed */
        p->tl_sq = one_sq;
    } else {
        p->t_tok = inflight * (layers * (nt.tok + t->adapter_token_layer) + attn_layers * at.tok
                               + state_layers * mt.tok + mlp_all) + o.tok;
        p->t_sq = selective ? 0.0 : inflight * attn_layers * at.sq;   /* selective: scores recomputed */
        p->t_cst = o.cst + inflight * (layers * (nt.cst + t->adapter_layer_bytes) + state_layers * mt.cst);
        p->tl_tok = 0.0;
        p->tl_sq = selective ? one_sq : 0.0;   /* selective: one layer's scores recomputed */
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

/* Closed form of the largest context at `fixed` sequences (which = 0: a
 * quadratic in s under eager attention) or the largest micro-batch at `fixed`
 * tokens (which = 1: linear); the transient's max is taken as a sum, so the
 * guess is low by at most the smaller transient and the exact check moves it. */
VC_INLINE void vc_train_prepare_guess(const vc_plan *p, double fixed, int which, vc_guess *s)
{
    double res = 1.0 + p->reserve;
    s->base = p->weights + p->grads + p->optim + p->master + p->cuda_context + res * (p->t_cst + p->dequant + 8.0);
    if (which == 0) {
        double b = fixed;
        s->scale = res * b * (p->t_sq + p->tl_sq);                               /* s^2 */
        s->shift = res * (b * (p->t_tok + p->tr_tok + p->tl_tok) + p->t_pos);    /* s */
    } else {
        double c = fixed, s2 = c * c;
        s->scale = 0.0;
        s->shift = res * (c * (p->t_tok + p->tr_tok + p->tl_tok) + s2 * (p->t_sq + p->tl_sq));  /* b */
        s->base += res * c * p->t_pos;
    }
}

VC_INLINE double vc_train_guess_at(const vc_guess *s, double gpu_bytes)
{
    double free_ = gpu_bytes - s->base;
    if (free_ <= 0.0)
        return 0.0;
    if (s->scale > 0.0)
        return (sqrt(s->shift * s->shift + 4.0 * s->scale * free_) - s->shift) / (2.0 * s->scale);
    return s->shift > 0.0 ? free_ / s->shift : INFINITY;
}
