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
 * inputs, vramcore.grid.pack.resident_elems) and, under transformers, what its forward holds beside the
 * layers: the embedding output (inputs_embeds, referenced to the end of the forward, on the first stage)
 * and the rotary cos / sin of every token (measured per tensor: tools/measure_prefill_peak.py). */
static inline double vc_layer_peak_elems_per_token(const vc_model *m, double tp, const vc_place *l,
                                                   int transformers)
{
    double q_width = m->num_heads * m->head_dim_k / tp;
    double kv_width = vc_max(1.0, m->kv_heads / tp) * m->head_dim_k;
    double attn = transformers ? 4.0 * q_width + 2.0 * kv_width : 3.0 * q_width + 3.0 * kv_width;
    double held = transformers ? (l->first_stage != 0.0 ? m->hidden : 0.0) + 2.0 * m->rotary_dim * m->rope : 0.0;
    double mlp = 0.0;
    if (l->gpu_dense > 0.0)
        mlp = m->mlp_rows * m->dense_intermediate / tp;
    if (l->gpu_moe > 0.0 && m->n_experts > 0.0) {
        double moe = 2.0 * m->n_experts + m->hidden
                   + m->mlp_rows * m->expert_intermediate / tp * m->experts_per_token / m->n_experts
                   + m->mlp_rows * m->shared_intermediate / tp;
        mlp = vc_max(mlp, moe);
    }
    return 2.0 * m->hidden + m->resident_elems + held + vc_max(attn, mlp);
}
