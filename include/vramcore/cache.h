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

/* Bytes of one token in one layer.  K and V may be stored apart at different widths
 * (llama.cpp cache_type_k / cache_type_v); an MLA latent is one K-type row. */
static inline double vc_kv_bytes_per_token_layer(const vc_model *m, const vc_dtype *d, const vc_engine *e)
{
    double bits_k = e->kv_bits > 0.0 ? e->kv_bits : d->kv_bits;
    double bits_v = e->kv_bits_v > 0.0 ? e->kv_bits_v : bits_k;
    if (bits_v == bits_k || (m->mla_latent > 0.0 && e->mla_compressed != 0.0))
        return vc_kv_elems_per_token_layer(m, e) * bits_k / 8.0;
    double heads = m->mla_latent > 0.0 ? m->kv_heads / e->tp : vc_max(1.0, m->kv_heads / e->tp);
    return heads * (m->head_dim_k * bits_k + m->head_dim_v * bits_v) / 8.0;
}
