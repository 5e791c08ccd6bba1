/*
 * vramcore/weights.h -- weights on the most loaded GPU of a tensor x pipeline
 * parallel layout.  The stored bytes of each part come in from Python
 * (vramcore/storage/, exact per format); this header only splits them.
 * Which layers sit on the GPU comes in as counts by kind (vc_place, from
 * vramcore/grid/pack.py): a pipeline stage's own layers, or llama.cpp's -ngl.
 */
#pragma once

#include "vramcore/common.h"

/* Bytes of one TP rank's share of the per-layer weights of the layers `l`
 * places (on the GPU, or with host = 1 in host memory).  Every layer holds an
 * even share of the token mixers (attention and recurrent) and norms; dense
 * MLPs sit in the dense layers, experts and routers in the MoE layers. */
static inline double vc_layer_weights_rank(const vc_model *m, const double pb[VC_N_PARTS], double tp,
                                           const vc_place *l, int host)
{
    double L = vc_n_layers(m);
    double layers = host ? l->host_layers : l->gpu_layers;
    double dense = host ? l->host_dense : l->gpu_dense;
    double moe = host ? l->host_moe : l->gpu_moe;
    double extra = pb[VC_PART_ATTENTION] * l->attn_kv_extra;   /* k/v an engine adds in KV-sharing layers */
    double attn = pb[VC_PART_ATTENTION] - extra;
    double kvf = m->attn_kv_fraction, repf = m->attn_replicated_fraction, grpf = m->attn_group_fraction;
    double kv_split = m->kv_heads > 0.0 ? vc_min(tp, m->kv_heads) : tp;
    /* Mamba2 B and C rows: whole groups per rank (vc_state_tp_groups, common.h) */
    double grp_rank = grpf > 0.0 ? vc_state_tp_groups(m, tp) / (m->state_groups * tp) : 0.0;
    double attn_rank = tp > 1.0 ? attn * (1.0 - kvf - repf - grpf) / tp + (attn * kvf + extra) / kv_split + attn * repf
                                      + attn * grpf * grp_rank
                                : pb[VC_PART_ATTENTION];
    double out = (attn_rank + pb[VC_PART_NORMS]) * (layers / L);
    if (m->n_dense_mlp_layers > 0.0)
        out += pb[VC_PART_MLP_DENSE] / tp * (dense / m->n_dense_mlp_layers);
    if (m->n_moe_layers > 0.0)
        out += ((pb[VC_PART_MLP_ROUTED_EXPERTS] + pb[VC_PART_MLP_SHARED_EXPERTS]) / tp + pb[VC_PART_ROUTER])
               * (moe / m->n_moe_layers);
    return out;
}

/* Bytes of one TP rank's share of a multimodal model's vision tower and
 * projector and its audio tower (Gemma-3n): split like the decoder's matrices
 * (vLLM's default mm_encoder_tp_mode "weights"), 0 for a text-only model. */
static inline double vc_tower_weights_rank(const double pb[VC_N_PARTS], double tp)
{
    return (pb[VC_PART_VISION_TOWER] + pb[VC_PART_MM_PROJECTOR] + pb[VC_PART_AUDIO_TOWER]) / tp;
}

/* Weights on one GPU of the stage `l` places.  TP splits attention and MLP
 * matrices, the vocabulary and the vision tower; k/v projections split over at
 * most kv_heads ranks; norms and the router are replicated.  PP gives the first
 * stage the embedding and the vision tower, and the last the lm_head (a tied
 * lm_head is a second copy there). */
static inline double vc_weights_bytes(const vc_model *m, const double pb[VC_N_PARTS], const vc_engine *e,
                                      const vc_place *l)
{
    double tp = e->tp;
    double out = vc_layer_weights_rank(m, pb, tp, l, 0);
    double emb = pb[VC_PART_EMBEDDING] / tp;
    double head = pb[VC_PART_LM_HEAD] / tp;
    if (e->pp > 1.0 && head == 0.0)
        head = emb;                     /* tied: the last stage loads its own copy */
    if (l->first_stage != 0.0)
        out += emb + vc_tower_weights_rank(pb, tp);
    if (l->last_stage != 0.0)
        out += head;
    return out;
}
