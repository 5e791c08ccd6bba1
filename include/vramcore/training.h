/*
 * vramcore/training.h -- what one training step holds beyond the weights:
 * gradients, optimizer states and master weights under ZeRO, and the
 * activations autograd saves for the backward pass.  The training engine
 * (engines/train.h) builds its plan from these; knobs and sources in
 * vramcore/engines/train.py.
 *
 * Saved activations were measured tensor by tensor (each storage once) with
 * torch.autograd.graph.saved_tensors_hooks on small copies of Llama-3.2-1B,
 * Qwen3-0.6B and Gemma-2-2B (tools/measure_training.py ->
 * tests/data/training_measured.json); the per-layer and the non-layer terms
 * below reproduce those figures to the byte.  What each term is, in the
 * measured models (a = bytes of a 16-bit activation element):
 *
 *   RMSNorm (Llama style): its fp32 input (4h), the rsqrt (4) and the 16-bit
 *     cast the weight multiplies (a h); Gemma style: fp32 input, rsqrt and the
 *     fp32 normalized copy (8h + 4), plus the fp32 (1 + weight) per norm;
 *   the two norm outputs that feed linears (2 a h);
 *   LoRA / QLoRA (a frozen base, measured with peft on the same copies): frozen
 *     norms keep their fp32 input and rsqrt only, frozen linears keep not their
 *     input (so neither the norm outputs, the down_proj input, the reshaped
 *     eager output, the lm_head input nor the token ids are saved), and each
 *     adapted module saves its input cast to the adapter's dtype and its A
 *     output (computed per model in vramcore/engines/train.py);
 *   q/k norms (Qwen3, Gemma-3): fp32 input, rsqrt per head, 16-bit cast;
 *   SDPA / flash: q and k after rotary, v, the output and the fp32 logsumexp
 *     per head; eager: q, k and v repeated to every head, the reshaped output,
 *     and per (query x key) the fp32 softmax and its 16-bit copy (+ the tanh of
 *     soft-capping);
 *   gated MLP: gate, up, act(gate) and act(gate) x up (4 a i);
 *   outside the layers: the final norm and its output, the fp32 log-softmax of
 *     the loss (4 V; + the tanh of logit soft-capping), token ids and labels
 *     (8 + 8 bytes), the rotary cos/sin of one sequence (2 a rot) and the loss.
 *
 * Mamba2 hybrids (Granite-4.0-H, Bamba, Falcon-H1) were measured the same way on small copies
 * (hybrid_activations), with the fused mamba_ssm function a GPU runs replaced on the CPU by a stand-in
 * saving what its CUDA autograd Function saves (vc_mamba2_saved); layers are counted by token mixer
 * (attention, Mamba2, or both side by side in Falcon-H1's "hybrid" layers).
 *
 * Nemotron-H (one sub-block a layer: a Mamba2 mixer, attention, a squared-ReLU MLP or an MoE) and the
 * routed MLPs of Granite-4.0-H and Nemotron-H (vc_moe_mlp_saved) were measured there too; so were the
 * gated-DeltaNet hybrids (Qwen3-Next, Qwen3.5, Qwen3.5-MoE: vc_deltanet_saved, with fla's and causal_conv1d's
 * functions replaced on the CPU by stand-ins saving what theirs save), their gated attention, zero-centred
 * q/k norms, renormalising routers and Qwen3.5's per-row rotary tables.
 *
 * Gradient checkpointing (non-reentrant) keeps each layer's input (a h) and,
 * under eager attention, one 16-bit (b, 1, s, s) mask per attention kind; the layer's own
 * tensors come back during its backward.  MLA layers and the routers of other MoE families follow
 * the same rules on their own tensors but were not measured (the assumption is named in
 * vramcore/engines/train.py).
 */
#pragma once

#include "vramcore/weights.h"

/* Bytes that scale with b x s (tok), with s only (pos: one sequence's rotary
 * tables), with b x s^2 (sq: eager scores and masks) and not at all (cst). */
typedef struct {
    double tok, pos, sq, cst;
} vc_act_terms;

/* One RMSNorm of width `w`, per token (Gemma's constant fp32 (1 + weight) apart).
 * A frozen norm keeps only its fp32 input and the rsqrt: the copy its weight
 * multiplies is saved for the weight's gradient. */
static inline double vc_norm_saved(const vc_model *m, double w, double a, double frozen)
{
    if (frozen != 0.0)
        return 4.0 * w + 4.0;
    return m->norm_kind != 0.0 ? 8.0 * w + 4.0 : 4.0 * w + 4.0 + a * w;
}

/* What every decoder layer saves for its norms, per token (`cst`: the norms' fp32 constants); the norms'
 * outputs that feed linears are counted per sub-block (vc_sub_block_inputs). */
static inline vc_act_terms vc_layer_norms_saved(const vc_model *m, double a, double frozen)
{
    vc_act_terms t = {0.0, 0.0, 0.0, 0.0};
    double h = m->hidden;
    t.tok = m->norms_per_layer * vc_norm_saved(m, h, a, frozen);
    if (m->norm_kind == 1.0)       /* Gemma's fp32 (1 + weight), Nemotron-H's fp32 weight copy; OLMo-2's none */
        t.cst = m->norms_per_layer * 4.0 * h;
    return t;
}

/* The normed inputs of a stage's token mixers and MLPs, which their first linears save (a h each, none when
 * frozen): two a layer, one in Nemotron-H's one-sub-block layers.  A model with mixer-less layers has no
 * Falcon-H1 "hybrid" layer (vramcore.engines.train.check_trainable), so its mixers are its attention and
 * state layers. */
static inline double vc_sub_block_inputs(const vc_model *m, const vc_place *l, double a, double frozen)
{
    double mixers = m->n_mixerless_layers > 0.0 ? l->gpu_full + l->gpu_sliding + l->gpu_state : l->gpu_layers;
    return frozen != 0.0 ? 0.0 : a * m->hidden * (mixers + l->gpu_dense + l->gpu_moe);
}

/* What one attention block saves for backward, per token; `sq` per (query x key) of one sequence. */
static inline vc_act_terms vc_layer_attention_saved(const vc_model *m, double a, double tp, double eager,
                                                    double frozen)
{
    vc_act_terms t = {0.0, 0.0, 0.0, 0.0};
    double heads = m->num_heads / tp;
    double kvh = m->mla_latent > 0.0 ? heads : vc_max(1.0, m->kv_heads / tp);
    double q = heads * m->head_dim_k, k = kvh * m->head_dim_k, v = kvh * m->head_dim_v;
    if (m->qk_norm != 0.0) {
        /* norms over q and k: one rsqrt per head (1), or per token over the whole projection (2: OLMo-2) */
        double rq = m->qk_norm == 2.0 ? 1.0 : heads, rk = m->qk_norm == 2.0 ? 1.0 : kvh;
        t.tok += vc_norm_saved(m, q, a, frozen) - 4.0 + 4.0 * rq + vc_norm_saved(m, k, a, frozen) - 4.0 + 4.0 * rk;
        /* per-head norms scaling by an fp32 (1 + weight) keep it once a layer each (Qwen3-Next, Qwen3.5, Gemma-3;
         * measured: hybrid_activations) */
        if (m->norm_kind == 1.0 && m->qk_norm == 1.0)
            t.cst += 2.0 * 4.0 * m->head_dim_k;
    }
    if (m->mla_latent > 0.0)       /* the compressed latent and its norm (not measured) */
        t.tok += vc_norm_saved(m, m->mla_latent, a, frozen) + a * m->mla_latent;
    if (eager != 0.0) {
        /* q, k and v repeated to every head; the reshaped output feeds o_proj (saved unless frozen) */
        t.tok += a * (q + heads * m->head_dim_k + heads * m->head_dim_v)
                 + (frozen != 0.0 ? 0.0 : a * heads * m->head_dim_v);
        t.sq = heads * (4.0 + a + (m->attn_softcap != 0.0 ? a : 0.0));
    } else {
        t.tok += a * (q + k + v + heads * m->head_dim_v) + 4.0 * heads;
        /* partial rotary (Bamba, GLM-4.5, Phi-4-mini, Qwen3-Next): apply_rotary_pos_emb concatenates the
         * rotated and passed parts, so q is head-major contiguous, SDPA's output follows q's layout and the
         * transpose(1, 2).contiguous() before o_proj copies it: o_proj saves that copy unless frozen
         * (measured on the CPU: hybrid_activations, bamba-synthetic; on a GPU an assumption) */
        double copied = m->mla_latent == 0.0 && m->rotary_dim < m->head_dim_k;
        if (m->attn_output_gate != 0.0) {
            /* Qwen3-Next / Qwen3.5: attn_output * sigmoid(gate) keeps the reshaped output (the copy, or SDPA's
             * own output) and the sigmoid's (which the sigmoid saves too); o_proj keeps the product unless
             * frozen */
            t.tok += a * heads * m->head_dim_v * ((copied ? 1.0 : 0.0) + 1.0 + (frozen != 0.0 ? 0.0 : 1.0));
        } else if (copied && frozen == 0.0) {
            t.tok += a * heads * m->head_dim_v;
        }
    }
    return t;
}

/* What one Mamba2 mixer saves for backward on the path transformers takes on a GPU in training: its
 * Mamba2 layers (BambaMixer, GraniteMoeHybridMambaLayer, FalconH1Mixer, NemotronHMamba2Mixer) call
 * mamba_ssm's mamba_split_conv1d_scan_combined, whose autograd Function runs the causal conv, the chunked
 * scan, the gated RMSNorm and out_proj and keeps only (state-spaces/mamba, mamba_ssm/ops/triton/
 * ssd_combined.py, MambaSplitConv1dScanCombinedFn.forward, ctx.save_for_backward): the in_proj output
 * zxbcdt (a x proj), the scan output out_x (a x inner) and the gated norm's fp32 rstd, one per row and
 * group (layernorm_gated.py _layer_norm_fwd); the conv and norm outputs are recomputed in its backward.
 * in_proj's input is the layer's normed input (vc_layer_norms_saved) unless it is a scaled copy
 * (Falcon-H1: one a x h copy per multiplied input, for the mixer and for attention).  Per layer (cst):
 * A = -exp(A_log.float()), saved by the Function, and the exp's fp32 result, saved by autograd while
 * A_log trains; Falcon-H1's mup_vector buffer, saved by the multiply (measured: tests/data/
 * training_measured.json, hybrid_activations, with the Function's saved set on the CPU by a stand-in).
 * Under TP the heads and groups split (an assumption: transformers does not shard these layers). */
static inline vc_act_terms vc_mamba2_saved(const vc_model *m, double a, double tp, double frozen)
{
    vc_act_terms t = {0.0, 0.0, 0.0, 0.0};
    double heads = m->mixer_heads / tp;
    double rstd = m->mixer_norm_groups > 0.0 ? 4.0 * vc_max(1.0, m->mixer_norm_groups / tp) : 0.0;
    /* the scaled input copies replace the input norm's output, which no linear then saves (none when frozen) */
    double copies = frozen == 0.0 && m->mixer_input_copies > 0.0 ? (m->mixer_input_copies - 1.0) * a * m->hidden
                                                                  : 0.0;
    t.tok = a * (m->mixer_proj + m->mixer_inner) / tp + rstd + copies;
    t.cst = (frozen != 0.0 ? 4.0 : 8.0) * heads + m->mixer_proj_scale * a * m->mixer_proj;
    return t;
}

/* fla's chunk size: the WY matrix A of chunk_gated_delta_rule is (b, s, value heads, 64) in the input dtype */
#define VC_FLA_CHUNK 64.0

/* What one gated-DeltaNet mixer (Qwen3-Next's Qwen3NextGatedDeltaNet, Qwen3.5's Qwen3_5GatedDeltaNet) saves for
 * backward on the path transformers takes on a GPU in training: it calls causal_conv1d's causal_conv1d_fn and
 * fla's chunk_gated_delta_rule (use_qk_l2norm_in_kernel) when they import (integrations/hub_kernels.py,
 * use_kernel_func_from_hub_with_fallback).  Per token:
 *   CausalConv1dFn keeps its channel-last input, the q|k|v projection (a x conv_dim; Dao-AILab/causal-conv1d
 *     causal_conv1d_interface.py), and recomputes its output;
 *   ChunkGatedDeltaRuleFunction keeps the l2-normalised q and k (a x key width each) and their fp32 rstd per
 *     key head, a contiguous copy of v (a x value width), g cumulated per chunk (fp32 per value head), beta
 *     (a per value head, the storage b.sigmoid() saves too) and A (a x value heads x 64); the chunk states are
 *     recomputed (fla-org/flash-linear-attention fla/ops/gated_delta_rule/chunk.py, fla 0.5.2);
 *   g = -exp(A_log.float()) * softplus(a.float() + dt_bias): softplus's fp32 input, and its output for the
 *     product's gradient by the (trained) A_log;
 *   the gated RMSNorm over value heads (Qwen3NextRMSNormGated, Python by default): its fp32 input, the rsqrt
 *     per row, the 16-bit cast its weight multiplies (for the weight's gradient), the weighted copy and the
 *     fp32 silu of the fp32 gate z with that input ((12 + 2a) x value width + 4 per value head);
 *   out_proj's input (none when frozen).
 * Per layer (cst): -exp(A_log) in fp32 and, while A_log trains, the exp's result.  The projections' input is the
 * layer's normed input (vc_sub_block_inputs).  Measured: tests/data/training_measured.json, hybrid_activations
 * (Qwen3-Next, Qwen3.5, Qwen3.5-MoE), with both functions' saved sets on the CPU by stand-ins.  Under TP the
 * heads split (an assumption, as for Mamba2). */
static inline vc_act_terms vc_deltanet_saved(const vc_model *m, double a, double tp, double frozen)
{
    vc_act_terms t = {0.0, 0.0, 0.0, 0.0};
    double hk = m->dn_key_heads / tp, kw = m->dn_key_width / tp;
    double hv = m->dn_value_heads / tp, vw = m->dn_value_width / tp;
    double trains = frozen != 0.0 ? 0.0 : 1.0;
    double conv = a * m->state_conv_dim / tp;
    double fla = 2.0 * a * kw + 8.0 * hk + a * vw + 4.0 * hv + a * hv + a * hv * VC_FLA_CHUNK;
    double gates = 4.0 * hv + trains * 4.0 * hv;
    double norm = (12.0 + a + trains * a) * vw + 4.0 * hv;
    t.tok = conv + fla + gates + norm + trains * a * vw;
    t.cst = (4.0 + trains * 4.0) * hv;
    return t;
}

/* mamba_ssm's selective scan keeps its state at the end of every chunk of this many tokens (csrc/selective_scan,
 * kChunkSize) */
#define VC_SCAN_CHUNK 2048.0

/* What one Mamba1 mixer (Jamba's JambaMambaMixer) saves for backward on the path transformers takes on a GPU in
 * training: causal_conv1d's causal_conv1d_fn and mamba_ssm's selective_scan_fn, with the dt / B / C RMSNorms
 * and the projections in Python between them.  Per token: the in_proj output (a x 2 inner: causal_conv1d keeps
 * its x half as a channel-last view of the whole); x_proj's input, the conv output (trained); the three norms
 * (Llama style, over the dt rank and the state size); dt_proj's input (trained); and what SelectiveScanFn keeps
 * (state-spaces/mamba selective_scan_interface.py): contiguous copies of u, B, C and the gate z, delta and the
 * pre-gate output (a x inner each, a x state for B and C); out_proj's input, a copy (trained).  Per layer (cst):
 * A = -exp(A_log.float()) in fp32, the exp's result while A_log trains, and the fp32 copies of D and the dt
 * bias of a 16-bit model.  Per sequence and chunk: the scan states x, fp32 (inner, 2 x state) (*chunk).
 * Measured: tests/data/training_measured.json, hybrid_activations (Jamba-v0.1's geometry), with both functions'
 * saved sets on the CPU by stand-ins.  Under TP the inner width splits (an assumption). */
static inline vc_act_terms vc_mamba1_saved(const vc_model *m, double a, double tp, double frozen, double *chunk)
{
    vc_act_terms t = {0.0, 0.0, 0.0, 0.0};
    double inner = m->m1_inner / tp, n = m->m1_state, r = m->m1_dt_rank;
    double trains = frozen != 0.0 ? 0.0 : 1.0;
    double norms = (4.0 + trains * a) * (r + 2.0 * n) + 3.0 * 4.0;
    t.tok = a * inner * (2.0 + 1.0 + 1.0 + 1.0 + 1.0) + trains * a * (2.0 * inner + r) + 2.0 * a * n + norms;
    t.cst = 4.0 * inner * n * (1.0 + trains) + (a < 4.0 ? 8.0 * inner : 0.0);
    *chunk = 8.0 * inner * n;
    return t;
}

/* A dense MLP's saved tensors per token.  Gated: gate, up, act(gate) and its product with up (the down_proj
 * input, not saved when frozen).  Ungated (Nemotron-H's NemotronHMLP, relu2 = ReLUSquaredActivation in
 * transformers activations.py): the relu's output (kept by the relu and by the square) and the square (the
 * down_proj input); up_proj's output is not kept (relu's backward reads its result). */
static inline double vc_mlp_tensors(const vc_model *m, double frozen)
{
    double gated = m->mlp_rows == 3.0;
    return (gated ? 3.0 : 1.0) + (frozen != 0.0 ? 0.0 : 1.0);
}

static inline double vc_dense_mlp_saved(const vc_model *m, double a, double tp, double frozen)
{
    return vc_mlp_tensors(m, frozen) * a * m->dense_intermediate / tp;
}

/* A routed MLP's per token (tok) and per layer (cst), on the path transformers 5.24 takes by default in
 * training: its experts' grouped_mm forward (integrations/moe.py grouped_mm_experts_forward;
 * PreTrainedModel.get_correct_experts_implementation picks "grouped_mm"), shared by every family whose experts
 * class is decorated with use_experts_implementation.  It saves the three int64 index vectors of the k routed
 * copies (the gather of the tokens by expert, of their weights, and the inverse permutation: 24 k), per copy
 * the grouped up-projection's input (a h, not when the experts are frozen), its gated or ungated MLP tensors
 * (vc_mlp_tensors), the down-projection's output and the routing weight its multiply saves (a h + the
 * weight's width), and per layer the grouped_mm offsets (int32 per expert).  The router (router_kind):
 *   0 softmax over every expert, then top-k (Qwen-MoE without norm_topk_prob: not measured): the fp32
 *     probabilities and the top-k indices; 16-bit weights;
 *   3 the same, then the k weights divided in place by their sum (Mixtral, Qwen3-Next, Qwen3.5-MoE): also the
 *     division's k fp32 results and the sum;
 *   1 top-k of the fp32 logits, softmax over the k (Granite-4.0-H GraniteMoeHybridTopKRouter): the softmax's
 *     k fp32 outputs and the top-k indices; 16-bit weights (type_as);
 *   2 sigmoid of fp32 logits, group-limited top-k, gather, renormalised and scaled (Nemotron-H
 *     NemotronHTopkRouter): the fp32 copy of the input its fp32 weight multiplies (not when frozen), the
 *     sigmoid's fp32 scores, the gather's indices, the k gathered weights and their sum the in-place
 *     division keeps; fp32 weights, so the weighted copies are fp32 (measured: tests/data/
 *     training_measured.json, hybrid_activations, Nemotron-3-Nano).
 * Shared experts: a dense MLP of their total width; a sigmoid-gated shared expert (Qwen2-MoE) keeps its
 * output and the gate (not measured). */
static inline vc_act_terms vc_moe_mlp_saved(const vc_model *m, double a, double tp, double frozen, double autocast)
{
    vc_act_terms t = {0.0, 0.0, 0.0, 0.0};
    double k = m->experts_per_token, h = m->hidden, e = m->n_experts;
    double rows = vc_mlp_tensors(m, frozen);
    double router, weight = a, weighted = a * h;
    if (m->router_kind == 3.0) {
        /* softmax over every expert, top-k, then router_top_value /= its sum: the division keeps its result and
         * the sum (fp32; measured: hybrid_activations, Qwen3-Next and Qwen3.5-MoE) */
        router = 4.0 * e + 8.0 * k + 4.0 * k + 4.0;
    } else if (m->router_kind == 1.0) {
        router = 4.0 * k + 8.0 * k;
    } else if (m->router_kind == 2.0) {
        /* under autocast the fp32 router's F.linear runs in 16 bits: no fp32 copy of the input (the 16-bit normed
         * input is the linear's own), and the scores, gathered weights, their sum and the routing weights are
         * 16-bit (measured: hybrid_activations, Nemotron-3-Nano LoRA under autocast) */
        double w = autocast != 0.0 ? a : 4.0;
        router = (frozen != 0.0 || autocast != 0.0 ? 0.0 : 4.0 * h) + w * e + 8.0 * k + w * k + w;
        weight = w;
    } else {
        router = 4.0 * e + 8.0 * k;
    }
    t.tok = router + 24.0 * k
            + k * ((frozen != 0.0 ? 0.0 : a * h) + rows * a * m->expert_intermediate / tp + weighted + weight)
            + rows * a * m->shared_intermediate / tp
            + (m->shared_gate != 0.0 ? a * h + a : 0.0);
    /* the grouped_mm offsets (int32 per expert); under autocast the fp32 router weight's 16-bit cast, which its
     * linear keeps for the input's gradient (Nemotron-H) */
    t.cst = 4.0 * e + (m->router_kind == 2.0 && autocast != 0.0 ? a * e * h : 0.0);
    return t;
}

/* Bytes of the rotary cos/sin a training step saves per position (per token under rope_per_row): saved by the
 * attention layers, or kept as every checkpointed layer's input (none without rotary embeddings: Granite-4.0-H,
 * Nemotron-H).  Every pipeline stage makes its own. */
static inline double vc_rotary_tables(const vc_model *m, double a, double checkpointing)
{
    double tables = checkpointing != 0.0 || m->n_full_layers + m->n_sliding_layers > 0.0 ? 1.0 : 0.0;
    return m->rope * 2.0 * a * m->rotary_dim * tables;
}

/* Everything outside the decoder layers: final norm and its output, the loss's
 * fp32 log-softmax (its vocabulary split over TP), ids and labels, one
 * sequence's rotary cos/sin, the loss scalar and Gemma's embedding scale. */
static inline vc_act_terms vc_outer_saved(const vc_model *m, double a, double tp, double checkpointing,
                                          double frozen)
{
    vc_act_terms t = {0.0, 0.0, 0.0, 0.0};
    double h = m->hidden;
    /* a frozen lm_head keeps not its input, a frozen embedding not the token ids: labels only */
    t.tok = vc_norm_saved(m, h, a, frozen) + (frozen != 0.0 ? 8.0 : a * h + 16.0) + 4.0 * m->vocab / tp;
    if (m->final_softcap != 0.0)
        t.tok += a * m->vocab / tp;
    /* rotary cos/sin: saved by the attention layers, or kept as every checkpointed layer's input (none
     * without rotary embeddings: Granite-4.0-H, Nemotron-H); the position ids under checkpointing where the
     * layers take them (not Granite-4.0-H's; Nemotron-H's blocks do, measured: hybrid_activations) */
    double cos_sin = vc_rotary_tables(m, a, checkpointing);
    if (m->rope_per_row != 0.0)     /* Qwen3.5: one table per batch row (measured: hybrid_activations) */
        t.tok += cos_sin;
    t.pos = (m->rope_per_row != 0.0 ? 0.0 : cos_sin) + (checkpointing != 0.0 ? 8.0 * m->layer_positions : 0.0);
    /* the loss; Gemma's 16-bit sqrt(hidden) scalar (measured saved when the embedding trains, not otherwise) */
    t.cst = 4.0 + (m->embed_scale != 0.0 && frozen == 0.0 ? a : 0.0) + (m->norm_kind == 1.0 ? 4.0 * h : 0.0);
    return t;
}

/* Gradients, optimizer states and master weights on one GPU, and what is
 * offloaded to the host: the per-part inputs split over TP / PP like the
 * weights, then sharded over dp by ZeRO stage (DeepSpeed's accounting,
 * estimate_zero2/3_model_states_mem_needs: stage 1 shards optimizer states and
 * master weights, stage 2 also the gradients, stage 3 also the parameters,
 * with the largest layer's parameters and gradients gathered whole). */
typedef struct {
    double weights, grads, optim, master, host;
} vc_states;

static inline vc_states vc_train_states(const vc_model *m, const vc_train *t, const vc_engine *e,
                                        const vc_place *l)
{
    vc_states s;
    double w = vc_weights_bytes(m, t->weight_bytes, e, l);
    double n = vc_weights_bytes(m, t->trainable, e, l);
    double opt = vc_weights_bytes(m, t->optim_bytes, e, l);
    double dp = vc_max(1.0, e->dp), zero = e->zero;
    double g16 = n * e->grad_bytes, g32 = n * e->fp32_grad_bytes, mw = n * e->master_bytes;
    double sharded_states = (g32 + mw + opt) / (zero >= 1.0 ? dp : 1.0);
    s.weights = zero >= 3.0 ? w / dp + t->gather_bytes : w;
    s.host = 0.0;
    if (zero >= 3.0)
        g16 = g32 > 0.0 ? 0.0 : g16 / dp;   /* DeepSpeed stage 3 counts the fp32 partition only */
    else if (zero >= 2.0)
        g16 /= dp;
    if (e->offload_optimizer != 0.0) {
        s.host = sharded_states;
        s.grads = (zero >= 2.0 ? 0.0 : g16);
        s.optim = s.master = 0.0;
    } else {
        s.grads = g16 + g32 / (zero >= 1.0 ? dp : 1.0);
        s.optim = opt / (zero >= 1.0 ? dp : 1.0);
        s.master = mw / (zero >= 1.0 ? dp : 1.0);
    }
    if (zero >= 3.0) {
        s.grads += t->gather_grad_bytes;
        if (e->offload_params != 0.0) {
            s.host += w / dp;
            s.weights = t->gather_bytes;
        }
    }
    s.weights = vc_whole(s.weights);
    s.grads = vc_whole(s.grads);
    s.optim = vc_whole(s.optim);
    s.master = vc_whole(s.master);
    s.host = vc_whole(s.host);
    return s;
}
