/*
 * vramcore/formulas.h -- the memory formulas, once.
 *
 * Every byte count vramcore reports is computed by the static inline functions
 * below; the Cython kernel (vramcore/_kernel.pyx) only loops over a grid and
 * calls them.  Conventions:
 *
 *   - every quantity is a double: element and byte counts are exact integers up
 *     to 2^53 (8 PiB) and never overflow beyond that (they lose exactness, not
 *     sign), so products such as params x context x batch are safe;
 *   - sizes are in bytes; conversion to GiB (2^30) or GB (1e9) happens in Python;
 *   - no globals, no allocation, no error paths: inputs are validated in Python
 *     (vramcore/_validation.py) before they reach this file.
 *
 * The structs are plain rows of doubles so that a C-contiguous float64 array
 * with VC_*_NFIELDS columns can be read as an array of structs; the Python side
 * packs them in vramcore/_pack.py in exactly this field order.
 */
#pragma once

#include <math.h>

/* Parameter parts, in the order of vc_model.params and vramcore.PARTS. */
enum {
    VC_PART_EMBEDDING = 0,
    VC_PART_ATTENTION,
    VC_PART_MLP_DENSE,
    VC_PART_MLP_ROUTED_EXPERTS,
    VC_PART_MLP_SHARED_EXPERTS,
    VC_PART_NORMS,
    VC_PART_ROUTER,
    VC_PART_LM_HEAD,
    VC_N_PARTS
};

/* One model's geometry, reduced to what the formulas need. */
typedef struct {
    double n_full_layers;        /* decoder layers with full (global) attention */
    double n_sliding_layers;     /* decoder layers with sliding-window attention */
    double sliding_window;       /* window in tokens (0 when there are no sliding layers) */
    double kv_heads;             /* KV heads of a standard (non-MLA) layer */
    double head_dim_k;           /* key head dim (MLA: nope + rope dims) */
    double head_dim_v;           /* value head dim */
    double mla_latent;           /* MLA compressed width kv_lora_rank + rope dim; 0 if not MLA */
    double hidden;               /* hidden size */
    double q_width;              /* query projection width: heads x key head dim */
    double kv_width;             /* one of K/V projection width: kv heads x head dim */
    double dense_intermediate;   /* MLP width of dense layers (0 when none) */
    double n_dense_mlp_layers;   /* layers with a dense MLP */
    double n_moe_layers;         /* layers with a mixture-of-experts MLP */
    double n_experts;            /* routed experts per MoE layer */
    double experts_per_token;    /* experts each token is routed to */
    double expert_intermediate;  /* MLP width of one routed expert */
    double shared_intermediate;  /* total MLP width of the shared experts */
    double vocab;                /* vocabulary size (logits width) */
} vc_model;

/* What a weight dtype (or quantization format) implies beyond the weights' own
 * storage, which Python computes exactly per part (vramcore/dtypes.py) and
 * passes in as bytes. */
typedef struct {
    double act_bytes;            /* bytes per activation element (the compute dtype) */
    double kv_bits;              /* bits per cached K/V element */
} vc_dtype;

/* The rules one engine applies; for "transformers" see vramcore/engines.py. */
typedef struct {
    double sliding_cap_offset;   /* a sliding layer keeps window + offset tokens (transformers: -1) */
    double mla_compressed;       /* 1: MLA caches its latent; 0: decompressed per-head K and V */
    double full_logits;          /* 1: logits for every prompt position; 0: last position only */
    double cuda_context_bytes;   /* CUDA context + library workspaces per GPU */
    double allocator_reserve;    /* caching-allocator slack, as a fraction of KV + activations */
    double n_gpus;               /* GPUs the model is spread over */
} vc_engine;

#define VC_MODEL_NFIELDS (sizeof(vc_model) / sizeof(double))
#define VC_DTYPE_NFIELDS (sizeof(vc_dtype) / sizeof(double))
#define VC_ENGINE_NFIELDS (sizeof(vc_engine) / sizeof(double))

static inline double vc_max(double a, double b) { return a > b ? a : b; }
static inline double vc_min(double a, double b) { return a < b ? a : b; }

/* Bytes of the weights held on the GPU: the parts' stored bytes, summed. */
static inline double vc_weights_bytes(const double part_bytes[VC_N_PARTS])
{
    double total = 0.0;
    for (int p = 0; p < VC_N_PARTS; ++p)
        total += part_bytes[p];
    return total;
}

/* Cached elements per token in one layer (K and V together). */
static inline double vc_kv_elems_per_token_layer(const vc_model *m, const vc_engine *e)
{
    if (m->mla_latent > 0.0 && e->mla_compressed != 0.0)
        return m->mla_latent;                       /* one latent "head", no factor 2 */
    return m->kv_heads * (m->head_dim_k + m->head_dim_v);
}

/* Tokens a sliding layer holds for a sequence of `context` tokens. */
static inline double vc_sliding_tokens(const vc_model *m, const vc_engine *e, double context)
{
    return vc_min(context, m->sliding_window + e->sliding_cap_offset);
}

/* KV-cache bytes of `batch` sequences of `context` tokens. */
static inline double vc_kv_cache_bytes(const vc_model *m, const vc_dtype *d, const vc_engine *e,
                                       double context, double batch)
{
    double tokens = m->n_full_layers * context;
    if (m->n_sliding_layers > 0.0)
        tokens += m->n_sliding_layers * vc_sliding_tokens(m, e, context);
    return batch * tokens * vc_kv_elems_per_token_layer(m, e) * d->kv_bits / 8.0;
}

/* Elements per prompt token alive at the peak inside one decoder layer.
 * Residual stream and its normed copy (2 x hidden), plus the larger of
 *   attention: q, k, v, their rotary copies and the attention output
 *              (3 x q_width + 3 x kv_width; the fused SDPA / flash kernel keeps
 *              no context x context score matrix);
 *   dense MLP: gate, up and act(gate) * up (3 x intermediate);
 *   MoE MLP:   fp32 router logits (2 x n_experts in 16-bit units), the output
 *              accumulator (hidden), one expert at a time over an even share of
 *              the tokens (3 x expert width x top-k / n_experts) and the shared
 *              experts (3 x shared width). */
static inline double vc_layer_peak_elems_per_token(const vc_model *m)
{
    double attn = 3.0 * m->q_width + 3.0 * m->kv_width;
    double mlp = 0.0;
    if (m->n_dense_mlp_layers > 0.0)
        mlp = 3.0 * m->dense_intermediate;
    if (m->n_moe_layers > 0.0 && m->n_experts > 0.0) {
        double moe = 2.0 * m->n_experts + m->hidden
                   + 3.0 * m->expert_intermediate * m->experts_per_token / m->n_experts
                   + 3.0 * m->shared_intermediate;
        mlp = vc_max(mlp, moe);
    }
    return 2.0 * m->hidden + vc_max(attn, mlp);
}

/* Transient peak of one forward pass over a prompt of `context` tokens for
 * `batch` sequences, logits included. */
static inline double vc_activation_bytes(const vc_model *m, const vc_dtype *d, const vc_engine *e,
                                         double context, double batch)
{
    double per_token = vc_layer_peak_elems_per_token(m);
    if (e->full_logits != 0.0) {
        /* final hidden states + logits for every position, in the compute dtype */
        per_token = vc_max(per_token, m->hidden + m->vocab);
        return batch * context * per_token * d->act_bytes;
    }
    /* last-position logits in the compute dtype plus the fp32 copy generate() samples from */
    return batch * context * per_token * d->act_bytes + batch * m->vocab * (d->act_bytes + 4.0);
}

/* Memory outside tensors: CUDA context per GPU and allocator slack. */
static inline double vc_overhead_bytes(const vc_engine *e, double kv_bytes, double activation_bytes)
{
    return e->n_gpus * e->cuda_context_bytes + e->allocator_reserve * (kv_bytes + activation_bytes);
}
