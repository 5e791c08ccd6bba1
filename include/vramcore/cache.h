/*
 * vramcore/cache.h -- KV-cache geometry: bytes of one token in one layer.
 * How many tokens each engine keeps, and in what pages, is the engine's
 * (engines/<kind>.h).
 */
#pragma once

#include "vramcore/common.h"

/* Cached elements per token in one layer on one TP rank (K and V together).
 * Standard attention: KV heads are split over TP ranks and replicated when
 * tp > kv_heads.  MLA latents are replicated on every rank. */
static inline double vc_kv_elems_per_token_layer(const vc_model *m, const vc_engine *e)
{
    if (m->mla_latent > 0.0 && e->mla_compressed != 0.0)
        return m->mla_latent;                       /* one latent "head", no factor 2 */
    double heads = m->mla_latent > 0.0 ? m->kv_heads / e->tp : vc_max(1.0, m->kv_heads / e->tp);
    return heads * (m->head_dim_k + m->head_dim_v);
}

/* Bytes of the attention's own K and V (or latent) of one token in one layer.  K and V
 * may be stored apart at different widths (llama.cpp cache_type_k / cache_type_v); an
 * MLA latent is one K-type row. */
static inline double vc_attn_kv_bytes_per_token_layer(const vc_model *m, const vc_engine *e, double bits_k)
{
    double bits_v = e->kv_bits_v > 0.0 ? e->kv_bits_v : bits_k;
    if (bits_v == bits_k || (m->mla_latent > 0.0 && e->mla_compressed != 0.0))
        return vc_kv_elems_per_token_layer(m, e) * bits_k / 8.0;
    double heads = m->mla_latent > 0.0 ? m->kv_heads / e->tp : vc_max(1.0, m->kv_heads / e->tp);
    return heads * (m->head_dim_k * bits_k + m->head_dim_v * bits_v) / 8.0;
}

/* Bytes of one token in one layer: the attention's K and V, and DeepSeek-V3.2's
 * indexer key (one per token and layer, on every rank, at the engine's indexer width). */
static inline double vc_kv_bytes_per_token_layer(const vc_model *m, const vc_dtype *d, const vc_engine *e)
{
    double bits_k = e->kv_bits > 0.0 ? e->kv_bits : d->kv_bits;
    double index = m->index_kv_elems * (e->index_bits > 0.0 ? e->index_bits : bits_k) / 8.0;
    return index + vc_attn_kv_bytes_per_token_layer(m, e, bits_k);
}

/* Bytes of one sequence's recurrent state in one recurrent layer on one TP rank
 * (hybrid models): the causal convolution's window, kernel + offset inputs of
 * every channel (transformers keeps the whole kernel, the serving engines its
 * past inputs only), and the recurrent matrix, in the engine's widths or the
 * model's own (an fp32 recurrent state where its reference code keeps one).
 * Heads and channels split over TP ranks, Mamba2's B and C channels as
 * vc_state_tp_groups groups. */
static inline double vc_state_bytes_per_seq_layer(const vc_model *m, const vc_dtype *d, const vc_engine *e)
{
    if (m->n_state_layers <= 0.0)
        return 0.0;
    double conv_bits = e->state_conv_bits > 0.0 ? e->state_conv_bits : 8.0 * d->act_bytes;
    double ssm_bits = e->state_ssm_bits > 0.0 ? e->state_ssm_bits
                                              : (m->state_ssm_fp32 != 0.0 ? 32.0 : 8.0 * d->act_bytes);
    double channels = m->state_conv_dim
                      + m->state_group_width * (vc_state_tp_groups(m, e->tp) - m->state_groups);  /* all ranks */
    double conv = channels * vc_max(0.0, m->state_conv_kernel + e->state_conv_offset) * conv_bits;
    return (conv + m->state_ssm_elems * ssm_bits) / 8.0 / e->tp;
}
