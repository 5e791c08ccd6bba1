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
    q->state = p->state_seq > 0.0 ? vc_whole(batch * p->state_seq) : 0.0;   /* most models: none, no rounding */
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

/* At a fixed batch the total is a function of the cells alone, and beyond one
 * ubatch of them (vc_llamacpp_row): weights + states + context + kv_full x C +
 * kv_sliding x min(C, Sw) + ubatch x max(K1, scores x C + extra), Sw the
 * sliding layers' cells, K1 the larger of the logits and the FFN rows.  Its
 * pieces, from one ubatch up, split at the compute buffer's kink and at Sw. */
VC_INLINE void vc_llamacpp_prepare_pieces(const vc_plan *p, double batch, vc_guess *s)
{
    double ub = p->ubatch;
    double k1 = vc_max(p->gpu_vocab_row, p->layer_ubatch_token), sc = p->attn_scores_token, ex = p->attn_extra_token;
    double sw = p->kv_sliding > 0.0 && p->swa_full == 0.0 ? vc_pad(p->window * batch + ub, p->ctx_pad) : INFINITY;
    double kink = sc > 0.0 ? (k1 - ex) / sc : INFINITY;      /* scores x C + extra overtakes K1 beyond it */
    if (!(ub >= 1.0) || !(sw > ub))
        return;                     /* the search decides */
    double fixed = p->weights + vc_whole(batch * p->state_seq) + p->cuda_context;
    double cuts[3] = {ub, vc_min(kink, sw), vc_max(kink, sw)};
    int n = 0;
    for (int i = 0; i < 3 && cuts[i] < INFINITY; i++) {
        if (i > 0 && cuts[i] <= cuts[i - 1])
            continue;
        double c = cuts[i];        /* the piece from c on: which kinks are behind it */
        int scores = c >= kink, saturated = c >= sw;
        s->start[n] = c;
        s->line_b[n] = p->kv_full + (saturated ? 0.0 : p->kv_sliding) + (scores ? ub * sc : 0.0);
        s->line_a[n] = fixed + (saturated ? p->kv_sliding * sw : 0.0) + ub * (scores ? ex : k1);
        n++;
    }
    s->pieces = n;
}

/* The exact answer at a fixed batch from the pieces alone, or -1: the largest
 * multiple C of the padding whose line stays below the memory by the cache's
 * whole-byte ceiling, inside one piece, with C + pad above the memory by more
 * than a ceiling takes back, is the most cells that fit (the total rises with
 * the cells), and floor(C / batch) the longest context: pad(x batch) <= C
 * exactly when x batch <= C. */
VC_INLINE double vc_llamacpp_exact(const vc_plan *p, const vc_guess *s, double batch, double gpu_bytes,
                                   double limit)
{
    if (s->pieces == 0)
        return -1.0;
    double pad = s->mult, inv_pad = 1.0 / pad;      /* by the inverse: one pad low at worst, refused below */
    double slack = p->kv_frac != 0.0 ? 1.0 : 0.0, fp = 1e-9 * (gpu_bytes + 1.0);
    for (int i = s->pieces - 1; i >= 0; i--) {
        double b = s->line_b[i], a = s->line_a[i];
        if (!(b > 0.0)) {
            /* a flat piece (the sliding layers saturated, flash attention's buffer): all of it fits, or none */
            if (a + slack + fp <= gpu_bytes)
                return i + 1 == s->pieces && limit < 4503599627370496.0 ? limit : -1.0;
            if (a - slack > gpu_bytes + fp)
                continue;
            return -1.0;
        }
        double real = (gpu_bytes - a - slack - fp) / b;      /* the most cells on this piece's line */
        if (real < s->start[i]) {
            /* below this piece: an earlier one holds the answer; below the first, nothing fits when even one
             * token per sequence takes a ubatch of cells or more and is above the memory on its line */
            double least = vc_pad(batch, p->ctx_pad);
            if (i == 0 && least >= s->start[0] && a + b * least - slack > gpu_bytes + fp)
                return 0.0;
            continue;
        }
        double end = i + 1 < s->pieces ? s->start[i + 1] : INFINITY;
        double c = vc_floor(real * inv_pad) * pad;
        if (!(c < 1125899906842624.0) || c < s->start[i] || c + pad > end
                || !(a + b * (c + pad) - slack > gpu_bytes + fp))
            return -1.0;
        double x = vc_floor(c / batch);
        return x < 1.0 ? 0.0 : vc_min(x, limit);
    }
    return -1.0;                    /* below one ubatch of cells */
}

/* At a fixed context c the total in the batch b, beyond one ubatch of cells, is
 * weights + context + kv_full x C + kv_sliding x S + ubatch x (scores x C +
 * extra, or K1) + whole(b x state), C = pad(c b) and S = C, or pad(w b +
 * ubatch) once the sliding layers saturate: for each configuration (scores
 * past their kink or not, sliding layers saturated or not) a line in b from
 * below, c b for C and w b + ubatch for S, and the bytes the paddings (under
 * pad cells each) and the ceilings can add (bgap). */
VC_INLINE void vc_llamacpp_prepare_batch(const vc_plan *p, double context, vc_guess *s)
{
    double ub = p->ubatch, pad = vc_max(p->ctx_pad, 1.0);
    double k1 = vc_max(p->gpu_vocab_row, p->layer_ubatch_token), sc = p->attn_scores_token, ex = p->attn_extra_token;
    double kvf = p->kv_full, kvs = p->kv_sliding, w = p->window;
    for (int cfg = 0; cfg < 4; cfg++) {
        int scores = cfg & 1, sat = (cfg >> 1) & 1;
        double per_cell = kvf + (sat ? 0.0 : kvs) + (scores ? ub * sc : 0.0);
        s->bl1[cfg] = context * per_cell + (sat ? kvs * w : 0.0) + p->state_seq;
        s->bl0[cfg] = p->weights + p->cuda_context + ub * (scores ? ex : k1) + (sat ? kvs * ub : 0.0);
        s->bgap[cfg] = (pad - 1.0) * (per_cell + (sat ? kvs : 0.0)) + (p->kv_frac != 0.0 ? 1.0 : 0.0) + 1.0;
        s->binv[cfg] = s->bl1[cfg] > 0.0 ? 1.0 / s->bl1[cfg] : 0.0;
    }
    s->bkink = sc > 0.0 ? (k1 - ex) / sc : INFINITY;
    /* many sequences: c b past any kink; the sliding layers saturate when c > w */
    s->bcfg = (s->bkink < INFINITY ? 1 : 0)
              | (kvs > 0.0 && p->swa_full == 0.0 && context > w ? 2 : 0);
}

/* The configuration that holds for every padding of c b cells at batch b, or -1. */
VC_INLINE int vc_llamacpp_config(const vc_plan *p, const vc_guess *s, double context, double b)
{
    double ub = p->ubatch, pad = vc_max(p->ctx_pad, 1.0), cb = context * b;
    if (!(cb >= ub))
        return -1;                  /* below one ubatch of cells: the compute buffer is not a line */
    int scores;
    if (cb >= s->bkink)
        scores = 1;
    else if (cb + pad - 1.0 < s->bkink)
        scores = 0;
    else
        return -1;
    int sat = 0;
    if (p->kv_sliding > 0.0 && p->swa_full == 0.0) {
        double sw = p->window * b + ub;
        if (sw + pad - 1.0 <= cb)
            sat = 1;
        else if (!(cb + pad - 1.0 <= sw))
            return -1;
    }
    return scores | (sat << 1);
}

/* The most sequences configuration `cfg`'s line allows, if that is exact, else -1:
 * n with its line plus the gap below the memory, n + 1 above it on the line
 * from below (less what the ceilings may take back), and `cfg` holding at both.
 * With `undecided` (the large batches' configuration only) also the n of an
 * answer that is n or n + 1 (n + 2 above the line from below), *undecided set
 * to 1: the caller decides it with one evaluation at n + 1.  The gap of a
 * padded sliding window, up to pad cells of its bytes once, is often a large
 * part of one sequence's bytes. */
VC_INLINE double vc_llamacpp_batch_at(const vc_plan *p, const vc_guess *s, int cfg, double context,
                                      double gpu_bytes, double limit, int *undecided)
{
    double fp = 1e-9 * (gpu_bytes + 1.0), l0 = s->bl0[cfg], inv = s->binv[cfg];
    if (!(inv > 0.0))
        return -1.0;
    double n = vc_max(vc_floor((gpu_bytes - l0 - s->bgap[cfg] - fp) * inv), 0.0);   /* 0: not even one */
    double first_out = vc_max(vc_floor((gpu_bytes - l0 + 0.5 + fp) * inv) + 1.0, 1.0);
    double reach = undecided != NULL && cfg == s->bcfg ? 2.0 : 1.0;
    if (first_out > n + reach || !(n + reach < limit) || !(n < 4503599627370496.0))
        return -1.0;
    if (undecided != NULL)
        *undecided = first_out > n + 1.0;
    /* the large batches' configuration, once it holds, holds for every larger batch (each of its tests grows
     * with b): checked at n alone (at 1 when n is 0) */
    if (cfg == s->bcfg)
        return vc_llamacpp_config(p, s, context, vc_max(n, 1.0)) == cfg ? n : -1.0;
    if (vc_llamacpp_config(p, s, context, n + 1.0) != cfg || (n >= 1.0 && vc_llamacpp_config(p, s, context, n) != cfg))
        return -1.0;
    return n;
}

/* The exact largest batch at a fixed context from the lines alone, or -1: the
 * configuration of large batches first, then the one at the guess. */
VC_INLINE double vc_llamacpp_exact_batch(const vc_plan *p, const vc_guess *s, double context, double gpu_bytes,
                                         double limit, double guess)
{
    double n = vc_llamacpp_batch_at(p, s, s->bcfg, context, gpu_bytes, limit, NULL);
    if (n >= 0.0)
        return n;
    int cfg = vc_llamacpp_config(p, s, context, vc_max(vc_floor(guess), 1.0));
    return cfg >= 0 && cfg != s->bcfg ? vc_llamacpp_batch_at(p, s, cfg, context, gpu_bytes, limit, NULL) : -1.0;
}

/* Closed form of the inverse questions: cache, compute and host buffers are
 * linear in the (padded) cells beyond one ubatch: total = t1 + slope x (cells - c1). */
/* The linear guess (the search's start where the exact forms cannot decide):
 * cache, compute and host buffers are linear in the (padded) cells beyond one
 * ubatch, total = t1 + slope x (cells - c1), from two rows. */
VC_INLINE void vc_llamacpp_prepare_linear(const vc_plan *p, double fixed, int which, vc_guess *s)
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
    s->simple = slope > 0.0;
}

/* Per (row, engine): the exact forms' pieces (a fixed batch) or lines (a fixed
 * context); the linear guess is made only where they cannot decide (vc_solve). */
VC_INLINE void vc_llamacpp_prepare_guess(const vc_plan *p, double fixed, int which, vc_guess *s)
{
    s->mult = vc_max(p->ctx_pad, 1.0);
    s->pieces = 0;
    if (which == 0)
        vc_llamacpp_prepare_pieces(p, fixed, s);
    else
        vc_llamacpp_prepare_batch(p, fixed, s);
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
