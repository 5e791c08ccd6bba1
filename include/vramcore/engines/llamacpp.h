/*
 * vramcore/engines/llamacpp.h -- llama.cpp (llama-server / llama-cli); knobs and
 * sources in vramcore/engines/llamacpp.py.
 *
 * One cache of n_ctx = context x n_seq cells padded to ctx_pad, allocated up
 * front; -ngl offloads the output layer first, then the last repeating layers;
 * token embeddings, layers not offloaded and the logits buffer stay on the host;
 * a compute buffer of one n_ubatch.
 */
#pragma once

#include "vramcore/plan.h"

/* llama.cpp offloads the output layer first, then the last n_gpu_layers - 1
 * repeating layers (src/llama-model.cpp, load_tensors: i_gpu_start = n_layer + 1 - ngl),
 * so the kinds on the GPU are those of the last layers: vramcore/grid/pack.py
 * counts them into the placement (vc_place); over several GPUs (-sm layer) the
 * offloaded range, output layer last, is split evenly in order, one stage row
 * per GPU. */

/* The output layer is offloaded as soon as one layer is. */
VC_INLINE int vc_llamacpp_output_on_gpu(const vc_engine *e)
{
    return e->n_gpu_layers < 0.0 || e->n_gpu_layers >= 1.0;
}

/* The offloaded output layer sits on the last GPU of a layer split (its index
 * n_layer is the last of the split's range, load_tensors: dev_output). */
VC_INLINE int vc_llamacpp_output_here(const vc_engine *e, const vc_place *l)
{
    return vc_llamacpp_output_on_gpu(e) && l->last_stage != 0.0;
}

/* GPU weights: the offloaded layers and the output matrix when it is offloaded
 * here, and a multimodal model's projector file on the first GPU (mmproj: tower
 * and projector, on the GPU unless --no-mmproj-offload, whatever -ngl says);
 * token embeddings stay in host memory. */
static inline double vc_llamacpp_weights_bytes(const vc_model *m, const double pb[VC_N_PARTS], const vc_engine *e,
                                                const vc_place *l)
{
    double tp = e->tp;
    double layers = vc_layer_weights_rank(m, pb, tp, l, 0);
    double emb = pb[VC_PART_EMBEDDING] / tp;
    double head = pb[VC_PART_LM_HEAD] / tp;
    return layers + (vc_llamacpp_output_here(e, l) ? (head > 0.0 ? head : emb) : 0.0)
           + (l->first_stage != 0.0 ? vc_tower_weights_rank(pb, tp) : 0.0);
}

/* Host weights: token embeddings, the layers not offloaded, and the output
 * matrix when it is not offloaded. */
static inline double vc_llamacpp_host_weights_bytes(const vc_model *m, const double pb[VC_N_PARTS],
                                                    const vc_engine *e, const vc_place *l)
{
    double layers = vc_layer_weights_rank(m, pb, 1.0, l, 1);
    return layers + pb[VC_PART_EMBEDDING] + (vc_llamacpp_output_on_gpu(e) ? 0.0 : pb[VC_PART_LM_HEAD]);
}

/* The plan fields only llama.cpp uses: placement, host cache and the compute
 * buffer (ggml graph in f32, one ubatch): without flash attention the scores of
 * every head over the whole cache plus about seven hidden-size rows; the FFN
 * (2 x n_ff + 4 x hidden); the logits with the final hidden rows when the output
 * layer is on the GPU (fits logged CI buffers). */
static inline void vc_llamacpp_plan(const vc_model *m, const vc_dtype *d, const double pb[VC_N_PARTS],
                                    const vc_engine *e, const vc_place *l, vc_plan *p)
{
    /* layers left on the CPU keep their whole cache (no tensor split there) */
    vc_engine e_host = *e;
    e_host.tp = 1.0;
    double ptl_host = vc_kv_bytes_per_token_layer(m, d, &e_host);
    p->weights = vc_llamacpp_weights_bytes(m, pb, e, l);
    p->host_weights = vc_llamacpp_host_weights_bytes(m, pb, e, l);
    p->kv_full_host = l->host_full * ptl_host;
    p->kv_sliding_host = l->host_sliding * ptl_host;
    if (p->ubatch <= 0.0)
        p->ubatch = 512.0;           /* llama.cpp's default n_ubatch (common/common.h) */
    p->attn_scores_token = e->flash_attn != 0.0 ? 0.0 : m->num_heads * 4.0;
    p->layer_ubatch_token = ((m->mlp_rows - 1.0) * m->dense_intermediate + 4.0 * m->hidden) * 4.0;
    p->attn_extra_token = e->flash_attn != 0.0 ? 0.0 : 7.0 * m->hidden * 4.0;
    p->gpu_vocab_row = vc_llamacpp_output_here(e, l) ? (m->vocab + m->hidden) * 4.0 : 0.0;
    p->host_ubatch_token = m->hidden * 4.0;
    p->host_logit_row = m->vocab * 4.0;
    /* recurrent layers left on the CPU keep their states there (one cell per sequence) */
    p->state_seq_host = l->host_state * vc_state_bytes_per_seq_layer(m, d, &e_host);
}

/* Cells of the unified cache for n_seq = batch sequences of `context` tokens
 * (n_ctx = context x batch, padded); sliding layers keep
 * min(n_ctx, pad(window x n_seq + n_ubatch)) unless swa_full
 * (src/llama-context.cpp, src/llama-kv-cache-iswa.cpp). */
VC_INLINE double vc_llamacpp_cells(const vc_plan *p, double context, double batch)
{
    return vc_pad(context * batch, p->ctx_pad);
}

VC_INLINE double vc_llamacpp_swa_cells(const vc_plan *p, double context, double batch)
{
    double n_ctx = vc_llamacpp_cells(p, context, batch);
    if (p->swa_full != 0.0)
        return n_ctx;
    return vc_min(n_ctx, vc_pad(p->window * batch + p->ubatch, p->ctx_pad));
}

VC_INLINE void vc_llamacpp_row(const vc_plan *p, double context, double batch, vc_row *q)
{
    /* n_seq = batch sequences share one cache of n_ctx = context x batch cells */
    double cells = vc_llamacpp_cells(p, context, batch);
    double swa = p->kv_sliding > 0.0 || p->kv_sliding_host > 0.0 ? vc_llamacpp_swa_cells(p, context, batch) : 0.0;
    double ub = vc_min(p->ubatch, cells);
    q->kv = p->kv_frac != 0.0 ? vc_whole(p->kv_full * cells + p->kv_sliding * swa)
                              : p->kv_full * cells + p->kv_sliding * swa;
    /* compute buffer of the worst-case ubatch (n_kv = the whole cache) */
    /* whole already: ubatch, cells and the f32 row sizes are integers */
    q->act = ub * vc_max(vc_max(p->gpu_vocab_row, p->layer_ubatch_token),
                         p->attn_scores_token * cells + p->attn_extra_token);
    q->ovh = p->cuda_context;
    /* hybrid models: llama_memory_recurrent keeps one cell per sequence (n_seq_max = batch) in every
     * recurrent layer (src/llama-memory-recurrent.cpp) */
    q->state = vc_whole(batch * p->state_seq);
    /* host: token embeddings and layers left on the CPU with their cache, the
     * logits output buffer (n_vocab x n_seq f32) and the host compute buffer
     * (input embeddings + f32 KQ mask) */
    q->host = p->host_weights + p->kv_full_host * cells + p->kv_sliding_host * swa
              + p->host_logit_row * batch + ub * (p->host_ubatch_token + cells * 4.0)
              + batch * p->state_seq_host;
    if (p->host_frac != 0.0)
        q->host = vc_whole(q->host);
    q->capacity = cells;
    q->per_seq = context;
    q->inv_per_seq = 1.0 / context;
    q->total = p->weights + q->kv + q->act + q->state + q->ovh;
}

VC_INLINE void vc_llamacpp_gpu(const vc_plan *p, const vc_row *q, double context, double gpu_bytes,
                                   vc_result *r, vc_parts *s)
{
    (void)p;
    (void)gpu_bytes;                /* the row decides everything; the GPU only checks the fit (engines.h) */
    s->kv = q->kv;
    s->act = q->act;
    s->ovh = q->ovh;
    s->total = q->total;
    r->kv_capacity_tokens = q->capacity;
    r->max_concurrency = vc_floor(q->capacity / context);
    s->why = 0;
    s->spare = INFINITY;
}

/* Closed form of the inverse questions: cache, compute and host buffers are
 * linear in the (padded) cells beyond one ubatch: total = t1 + slope x (cells - c1). */
VC_INLINE void vc_llamacpp_prepare_guess(const vc_plan *p, double fixed, int which, vc_guess *s)
{
    double pad = vc_max(p->ctx_pad, 1.0);
    double c1 = vc_max(vc_pad(p->ubatch, pad), pad);
    vc_row q1, q2;
    if (which == 0) {
        vc_llamacpp_row(p, c1 / fixed, fixed, &q1);
        vc_llamacpp_row(p, (c1 + pad) / fixed, fixed, &q2);
    } else {
        vc_llamacpp_row(p, fixed, c1 / fixed, &q1);
        vc_llamacpp_row(p, fixed, (c1 + pad) / fixed, &q2);
    }
    double slope = (q2.kv + q2.act + q2.state - q1.kv - q1.act - q1.state) / pad;
    s->base = p->weights + q1.kv + q1.act + q1.state + q1.ovh;
    s->scale = slope > 0.0 ? 1.0 / slope : 0.0;
    s->shift = -c1;
    s->mult = pad;
    if (slope <= 0.0)
        s->simple = 0;
}

VC_INLINE double vc_llamacpp_guess_at(const vc_guess *s, double fixed, double gpu_bytes, double cap)
{
    if (!s->simple)
        return cap;
    double g = (gpu_bytes - s->base) * s->scale - s->shift;
    /* cells rounded down to the padding, shared among the sequences */
    double cells = vc_floor(g / s->mult) * s->mult;
    return vc_floor(cells / fixed);     /* cells / batch = context; cells / context = batch */
}
