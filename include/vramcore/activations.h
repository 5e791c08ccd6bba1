/*
 * vramcore/activations.h -- what a forward pass holds at its peak inside one
 * decoder layer, per token.  The engines scale it by the tokens they run at
 * once (a whole prompt, a profiling batch, an n_ubatch).
 */
#pragma once

#include "vramcore/common.h"

/* Elements per token alive at the peak inside one decoder layer on one TP rank,
 * over the MLP kinds of the layers `l` places on the GPU (a pipeline stage's own).
 * Residual stream and its normed copy (2 x hidden), plus the larger of
 *   attention: q, k, v, their rotary copies and the attention output
 *              (3 x q width + 3 x kv width; fused SDPA / flash attention keeps
 *              no context x context score matrix); under transformers
 *              (`transformers`) the peak is at q's rotary step
 *              (apply_rotary_pos_emb: q, q x cos, rotate_half(q) and its
 *              product with sin beside k and v: 4 x q width + 2 x kv width;
 *              eager's repeated k and v come after it, at 3 q + 2 kv);
 *   dense MLP: gate, up and act(gate) * up (3 x intermediate; an ungated MLP:
 *              up and act(up), 2 x);
 *   MoE MLP:   fp32 router logits (2 x n_experts in 16-bit units), the output
 *              accumulator (hidden), one expert at a time over an even share of
 *              the tokens (3 x expert width x top-k / n_experts) and the shared
 *              experts (3 x shared width);
 * plus what the model keeps through every layer (resident_elems: Gemma-3n's AltUp stacks and per-layer
 * inputs, vramcore.grid.pack.resident_elems).  Under transformers (measured per tensor:
 * tools/measure_prefill_peak.py --breakdown) also what its forward holds beside the layers, the embedding
 * output (inputs_embeds, referenced to the end of the forward, on the first stage) and every token's rotary
 * cos / sin; the MLP runs while the model's loop still holds the layer's input (one hidden more), at the
 * larger of its product step and its down projection (input and output, hidden + intermediate); and an
 * RMSNorm of the residual stream holds its fp32 upcast and product (8 x hidden bytes; in fp32 the upcast is
 * the input itself: 4) and fp32 mean and rsqrt (8 bytes; not Gemma's), beside the attention's output where a
 * layer norms it before the residual add (Gemma's four norms a layer).  Not counted: Gemma's fp32 (1 + weight),
 * hidden x 4 bytes once per forward. */
static inline double vc_layer_peak_elems_per_token(const vc_model *m, double tp, const vc_place *l,
                                                   int transformers, double a)
{
    double q_width = m->num_heads * m->head_dim_k / tp;
    double kv_width = vc_max(1.0, m->kv_heads / tp) * m->head_dim_k;
    double attn = transformers ? 4.0 * q_width + 2.0 * kv_width : 3.0 * q_width + 3.0 * kv_width;
    double held = !transformers ? 0.0 : (l->first_stage != 0.0 ? m->hidden : 0.0)
                                        + 2.0 * m->rotary_dim * m->rope * m->rotary_tables;
    double mlp = 0.0;
    if (l->gpu_dense > 0.0)
        mlp = m->mlp_rows * m->dense_intermediate / tp;
    if (l->gpu_moe > 0.0 && m->n_experts > 0.0) {
        double moe = 2.0 * m->n_experts + m->hidden
                   + m->mlp_rows * m->expert_intermediate / tp * m->experts_per_token / m->n_experts
                   + m->mlp_rows * m->shared_intermediate / tp;
        mlp = vc_max(mlp, moe);
    }
    double norm = 0.0;
    if (transformers) {
        if (l->gpu_dense > 0.0)
            mlp = vc_max(mlp, m->hidden + m->dense_intermediate / tp);
        if (mlp > 0.0)
            mlp += m->hidden;
        /* Gemma's (1 + weight) norm frees its mean and rsqrt before the product */
        norm = (m->norms_per_layer >= 4.0 ? m->hidden : 0.0)
               + ((a != 4.0 ? 8.0 : 4.0) * m->hidden + (m->norm_kind == 1.0 ? 0.0 : 8.0)) / a;
    }
    return 2.0 * m->hidden + m->resident_elems + held + vc_max(vc_max(attn, mlp), norm);
}
