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
 *   - every figure is per GPU: with tensor parallelism (tp) and pipeline
 *     parallelism (pp) it is the most loaded GPU's share;
 *   - no globals, no allocation, no error paths: inputs are validated in Python
 *     (vramcore/_validation.py) before they reach this file.
 *
 * The structs are plain rows of doubles so that a C-contiguous float64 array
 * with VC_*_NFIELDS columns can be read as an array of structs; the Python side
 * packs them in vramcore/_pack.py in exactly this field order.
 */
#pragma once

#include <math.h>

/* Parameter parts, in the order of the weight-bytes rows and vramcore.PARTS. */
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

/* Engine kinds (vramcore/engines.py). */
enum {
    VC_ENGINE_TRANSFORMERS = 0,  /* dynamic cache, grows with the sequences */
    VC_ENGINE_VLLM = 1,          /* paged cache sized from a memory budget after profiling */
    VC_ENGINE_SGLANG = 2,        /* token pool sized from mem_fraction_static */
    VC_ENGINE_TRTLLM = 3,        /* paged cache from a fraction of the free memory */
    VC_ENGINE_LLAMACPP = 4       /* cache allocated for n_ctx cells up front */
};

/* One model's geometry, reduced to what the formulas need. */
typedef struct {
    double n_full_layers;        /* decoder layers with full (global) attention */
    double n_sliding_layers;     /* decoder layers with sliding-window attention */
    double sliding_window;       /* window in tokens (0 when there are no sliding layers) */
    double num_heads;            /* query heads */
    double kv_heads;             /* KV heads of a standard (non-MLA) layer; MLA: query heads */
    double head_dim_k;           /* key head dim (MLA: nope + rope dims) */
    double head_dim_v;           /* value head dim */
    double mla_latent;           /* MLA compressed width kv_lora_rank + rope dim; 0 if not MLA */
    double hidden;               /* hidden size */
    double dense_intermediate;   /* MLP width of dense layers */
    double n_dense_mlp_layers;   /* layers with a dense MLP */
    double n_moe_layers;         /* layers with a mixture-of-experts MLP */
    double n_experts;            /* routed experts per MoE layer */
    double experts_per_token;    /* experts each token is routed to */
    double expert_intermediate;  /* MLP width of one routed expert */
    double shared_intermediate;  /* total MLP width of the shared experts */
    double vocab;                /* vocabulary size (logits width) */
    double max_context;          /* trained context; 0 when unknown */
    double attn_kv_fraction;     /* share of attention weights in k/v projections (split over min(tp, kv_heads)) */
    double attn_replicated_fraction; /* share replicated on every TP rank (MLA latent projections) */
} vc_model;

/* What a weight dtype (or quantization format) implies beyond the weights' own
 * storage, which Python computes exactly per part (vramcore/dtypes.py) and
 * passes in as bytes. */
typedef struct {
    double act_bytes;            /* bytes per activation element (the compute dtype) */
    double kv_bits;              /* bits per cached K/V element (block formats: effective bits) */
} vc_dtype;

/* The rules one engine applies; fields, defaults and sources in vramcore/engines.py. */
typedef struct {
    double kind;                 /* VC_ENGINE_* */
    double tp;                   /* tensor-parallel degree */
    double pp;                   /* pipeline-parallel degree */
    double sliding_cap_offset;   /* transformers: a sliding layer keeps window + offset tokens */
    double mla_compressed;       /* 1: MLA caches its latent; 0: decompressed per-head K and V */
    double full_logits;          /* transformers: 1 = logits for every prompt position */
    double cuda_context_bytes;   /* CUDA context + library workspaces per GPU (outside the allocator) */
    double allocator_reserve;    /* caching-allocator slack, fraction of KV + activations */
    double mem_fraction;         /* vLLM gpu_memory_utilization / SGLang mem_fraction_static /
                                    TRT-LLM free_gpu_memory_fraction */
    double block_size;           /* tokens per KV block (page) */
    double max_num_batched_tokens; /* vLLM profile tokens / llama.cpp n_ubatch / TRT max_num_tokens */
    double max_num_seqs;         /* vLLM / SGLang running requests (sampler logits in the profile) */
    double cuda_graph_bytes;     /* CUDA-graph memory pool */
    double non_torch_bytes;      /* vLLM non-torch allocations (NCCL, cuBLAS) besides the context */
    double ctx_pad;              /* llama.cpp: n_ctx is padded to a multiple of this */
    double n_gpu_layers;         /* llama.cpp: layers offloaded to the GPU; < 0 = all (+ output) */
    double swa_full;             /* llama.cpp: 1 = sliding layers keep the full context */
    double max_model_len;        /* longest sequence the engine accepts; 0 = no limit */
    double kv_bits;              /* engine-level KV dtype width (vLLM kv_cache_dtype); 0 = the dtype row's */
} vc_engine;

/* Everything one configuration produces (per GPU). */
typedef struct {
    double weights_bytes;
    double kv_cache_bytes;
    double activation_bytes;
    double overhead_bytes;
    double total_bytes;
    double headroom_bytes;
    double fits;                 /* 1 or 0 */
    double kv_capacity_tokens;   /* tokens of cache the engine holds per layer */
    double kv_blocks;            /* blocks (pages) of the paged engines; 0 otherwise */
    double max_concurrency;      /* sequences of `context` tokens that fit at once */
    double host_bytes;           /* memory the engine keeps on the host (llama.cpp) */
} vc_result;

#define VC_MODEL_NFIELDS (sizeof(vc_model) / sizeof(double))
#define VC_DTYPE_NFIELDS (sizeof(vc_dtype) / sizeof(double))
#define VC_ENGINE_NFIELDS (sizeof(vc_engine) / sizeof(double))
#define VC_RESULT_NFIELDS (sizeof(vc_result) / sizeof(double))

static inline double vc_max(double a, double b) { return a > b ? a : b; }
static inline double vc_min(double a, double b) { return a < b ? a : b; }
static inline double vc_ceil_div(double a, double b) { return ceil(a / b); }
static inline double vc_pad(double x, double to) { return to > 1.0 ? ceil(x / to) * to : x; }

static inline int vc_is_budgeted(const vc_engine *e)
{
    int k = (int)e->kind;
    return k == VC_ENGINE_VLLM || k == VC_ENGINE_SGLANG || k == VC_ENGINE_TRTLLM;
}

/* ------------------------------------------------------------------ layers per GPU */

static inline double vc_n_layers(const vc_model *m) { return m->n_full_layers + m->n_sliding_layers; }

/* Share of the decoder layers on the most loaded GPU: ceil(L / pp) of L for
 * pipeline stages; llama.cpp: the offloaded layers. */
static inline double vc_layer_share(const vc_model *m, const vc_engine *e)
{
    double L = vc_n_layers(m);
    if ((int)e->kind == VC_ENGINE_LLAMACPP && e->n_gpu_layers >= 0.0)
        return vc_min(e->n_gpu_layers, L) / L;
    if (e->pp > 1.0)
        return ceil(L / e->pp) / L;
    return 1.0;
}

/* llama.cpp keeps the output layer on the GPU only when every repeating layer is there too. */
static inline int vc_output_on_gpu(const vc_model *m, const vc_engine *e)
{
    if ((int)e->kind != VC_ENGINE_LLAMACPP || e->n_gpu_layers < 0.0)
        return 1;
    return e->n_gpu_layers > vc_n_layers(m);
}

/* ------------------------------------------------------------------ weights */

/* Bytes of one TP rank's share of the per-layer weights of the whole model. */
static inline double vc_layer_weights_rank(const vc_model *m, const double pb[VC_N_PARTS], double tp)
{
    double attn = pb[VC_PART_ATTENTION];
    double kvf = m->attn_kv_fraction, repf = m->attn_replicated_fraction;
    double kv_split = m->kv_heads > 0.0 ? vc_min(tp, m->kv_heads) : tp;
    double attn_rank = attn * (1.0 - kvf - repf) / tp + attn * kvf / kv_split + attn * repf;
    double mlp_rank = (pb[VC_PART_MLP_DENSE] + pb[VC_PART_MLP_ROUTED_EXPERTS]
                       + pb[VC_PART_MLP_SHARED_EXPERTS]) / tp;
    return attn_rank + mlp_rank + pb[VC_PART_ROUTER] + pb[VC_PART_NORMS];
}

/* Weights on the most loaded GPU.  TP splits attention and MLP matrices and the
 * vocabulary; k/v projections split over at most kv_heads ranks; norms and the
 * router are replicated.  PP gives the first stage the embedding and the last
 * the lm_head (a tied lm_head is a second copy there). */
static inline double vc_weights_bytes(const vc_model *m, const double pb[VC_N_PARTS], const vc_engine *e)
{
    double tp = e->tp;
    double layers = vc_layer_weights_rank(m, pb, tp) * vc_layer_share(m, e);
    double emb = pb[VC_PART_EMBEDDING] / tp;
    double head = pb[VC_PART_LM_HEAD] / tp;
    if ((int)e->kind == VC_ENGINE_LLAMACPP) {
        /* token embeddings stay in host memory; the output matrix follows the last layer */
        return layers + (vc_output_on_gpu(m, e) ? (head > 0.0 ? head : emb) : 0.0);
    }
    if (e->pp > 1.0) {
        if (head == 0.0)
            head = emb;                 /* tied: the last stage loads its own copy */
        return layers + vc_max(emb, head);
    }
    return layers + emb + head;
}

/* Weights the engine keeps in host memory (llama.cpp: token embeddings, the
 * layers not offloaded, and the output matrix when it is not offloaded). */
static inline double vc_host_weights_bytes(const vc_model *m, const double pb[VC_N_PARTS], const vc_engine *e)
{
    if ((int)e->kind != VC_ENGINE_LLAMACPP)
        return 0.0;
    double layers = vc_layer_weights_rank(m, pb, 1.0) * (1.0 - vc_layer_share(m, e));
    return layers + pb[VC_PART_EMBEDDING] + (vc_output_on_gpu(m, e) ? 0.0 : pb[VC_PART_LM_HEAD]);
}

/* ------------------------------------------------------------------ KV cache geometry */

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

/* Bytes of one token in one layer. */
static inline double vc_kv_bytes_per_token_layer(const vc_model *m, const vc_dtype *d, const vc_engine *e)
{
    double bits = e->kv_bits > 0.0 ? e->kv_bits : d->kv_bits;
    return vc_kv_elems_per_token_layer(m, e) * bits / 8.0;
}

/* transformers: tokens a sliding layer holds for a sequence of `context` tokens. */
static inline double vc_sliding_tokens(const vc_model *m, const vc_engine *e, double context)
{
    return vc_min(context, m->sliding_window + e->sliding_cap_offset);
}

/* transformers DynamicCache: bytes of `batch` sequences of `context` tokens. */
static inline double vc_dynamic_kv_bytes(const vc_model *m, const vc_dtype *d, const vc_engine *e,
                                         double context, double batch)
{
    double share = vc_layer_share(m, e);
    double tokens = m->n_full_layers * context;
    if (m->n_sliding_layers > 0.0)
        tokens += m->n_sliding_layers * vc_sliding_tokens(m, e, context);
    return batch * tokens * share * vc_kv_bytes_per_token_layer(m, d, e);
}

/* Paged engines: layer-blocks one request of `context` tokens needs.  Full
 * layers: ceil(context / block); sliding layers (vLLM SlidingWindowSpec):
 * ceil(min(window - 1 + max_num_batched_tokens, context) / block) + 1. */
static inline double vc_layer_blocks_per_request(const vc_model *m, const vc_engine *e, double context)
{
    double B = e->block_size;
    double blocks = m->n_full_layers * vc_ceil_div(context, B);
    if (m->n_sliding_layers > 0.0) {
        double t = vc_min(m->sliding_window - 1.0 + e->max_num_batched_tokens, context);
        blocks += m->n_sliding_layers * (vc_ceil_div(t, B) + 1.0);
    }
    return blocks * vc_layer_share(m, e);
}

/* llama.cpp: cells of the unified cache for n_seq = batch sequences of `context`
 * tokens (n_ctx = context x batch padded); sliding layers keep
 * min(n_ctx, pad(window x n_seq + n_ubatch)) unless swa_full. */
static inline double vc_llamacpp_cells_full(const vc_engine *e, double context, double batch)
{
    return vc_pad(context * batch, e->ctx_pad);
}

static inline double vc_llamacpp_cells_swa(const vc_model *m, const vc_engine *e, double context, double batch)
{
    double n_ctx = vc_llamacpp_cells_full(e, context, batch);
    if (e->swa_full != 0.0)
        return n_ctx;
    return vc_min(n_ctx, vc_pad(m->sliding_window * batch + e->max_num_batched_tokens, e->ctx_pad));
}

static inline double vc_llamacpp_kv_bytes(const vc_model *m, const vc_dtype *d, const vc_engine *e,
                                          double context, double batch)
{
    double tokens = m->n_full_layers * vc_llamacpp_cells_full(e, context, batch);
    if (m->n_sliding_layers > 0.0)
        tokens += m->n_sliding_layers * vc_llamacpp_cells_swa(m, e, context, batch);
    return tokens * vc_layer_share(m, e) * vc_kv_bytes_per_token_layer(m, d, e);
}

/* ------------------------------------------------------------------ activations */

/* Elements per token alive at the peak inside one decoder layer on one TP rank.
 * Residual stream and its normed copy (2 x hidden), plus the larger of
 *   attention: q, k, v, their rotary copies and the attention output
 *              (3 x q width + 3 x kv width; fused SDPA / flash attention keeps
 *              no context x context score matrix);
 *   dense MLP: gate, up and act(gate) * up (3 x intermediate);
 *   MoE MLP:   fp32 router logits (2 x n_experts in 16-bit units), the output
 *              accumulator (hidden), one expert at a time over an even share of
 *              the tokens (3 x expert width x top-k / n_experts) and the shared
 *              experts (3 x shared width). */
static inline double vc_layer_peak_elems_per_token(const vc_model *m, double tp)
{
    double q_width = m->num_heads * m->head_dim_k / tp;
    double kv_width = vc_max(1.0, m->kv_heads / tp) * m->head_dim_k;
    double attn = 3.0 * q_width + 3.0 * kv_width;
    double mlp = 0.0;
    if (m->n_dense_mlp_layers > 0.0)
        mlp = 3.0 * m->dense_intermediate / tp;
    if (m->n_moe_layers > 0.0 && m->n_experts > 0.0) {
        double moe = 2.0 * m->n_experts + m->hidden
                   + 3.0 * m->expert_intermediate / tp * m->experts_per_token / m->n_experts
                   + 3.0 * m->shared_intermediate / tp;
        mlp = vc_max(mlp, moe);
    }
    return 2.0 * m->hidden + vc_max(attn, mlp);
}

/* Transient peak of one forward pass over `tokens` prompt tokens of `seqs`
 * sequences, logits included (`logit_rows` rows in the compute dtype plus an
 * fp32 copy for sampling). */
static inline double vc_forward_peak_bytes(const vc_model *m, const vc_dtype *d, double tp,
                                           double tokens, double logit_rows)
{
    return tokens * vc_layer_peak_elems_per_token(m, tp) * d->act_bytes
           + logit_rows * m->vocab * (d->act_bytes + 4.0);
}

/* transformers: prefill of `batch` prompts of `context` tokens. */
static inline double vc_transformers_activation_bytes(const vc_model *m, const vc_dtype *d, const vc_engine *e,
                                                      double context, double batch)
{
    if (e->full_logits != 0.0) {
        /* final hidden states + logits for every position, in the compute dtype */
        double per_token = vc_max(vc_layer_peak_elems_per_token(m, e->tp), m->hidden + m->vocab / e->tp);
        return batch * context * per_token * d->act_bytes;
    }
    return vc_forward_peak_bytes(m, d, e->tp, batch * context, batch);
}

/* ------------------------------------------------------------------ one configuration */

static inline void vc_estimate(const vc_model *m, const vc_dtype *d, const double pb[VC_N_PARTS],
                               const vc_engine *e, double context, double batch, double gpu_bytes,
                               vc_result *r)
{
    int kind = (int)e->kind;
    double w = vc_weights_bytes(m, pb, e);
    double per_tok_layer = vc_kv_bytes_per_token_layer(m, d, e);
    double kv, act, ovh, total, need;
    r->weights_bytes = w;
    r->host_bytes = 0.0;
    r->kv_blocks = 0.0;

    if (kind == VC_ENGINE_TRANSFORMERS) {
        kv = vc_dynamic_kv_bytes(m, d, e, context, batch);
        act = vc_transformers_activation_bytes(m, d, e, context, batch);
        ovh = e->cuda_context_bytes + e->allocator_reserve * (kv + act);
        total = w + kv + act + ovh;
        r->kv_capacity_tokens = context * batch;
        /* sequences of `context` tokens the free memory holds: everything but the
         * constant part scales with the batch */
        double per_seq = (vc_dynamic_kv_bytes(m, d, e, context, 1.0)
                          + vc_transformers_activation_bytes(m, d, e, context, 1.0))
                         * (1.0 + e->allocator_reserve);
        double free_ = gpu_bytes - w - e->cuda_context_bytes;
        r->max_concurrency = free_ > 0.0 ? floor(free_ / per_seq) : 0.0;
        r->fits = total <= gpu_bytes;
    } else if (kind == VC_ENGINE_LLAMACPP) {
        kv = vc_llamacpp_kv_bytes(m, d, e, context, batch);
        /* compute buffer: one ubatch through a layer plus its KQ mask over the cache
         * (f32, n_kv x n_ubatch) and the ubatch's logits */
        double ub = vc_min(e->max_num_batched_tokens, context * batch);
        double n_kv = vc_llamacpp_cells_full(e, context, batch);
        act = ub * vc_layer_peak_elems_per_token(m, 1.0) * 4.0 + n_kv * ub * 4.0
              + (vc_output_on_gpu(m, e) ? ub * m->vocab * 4.0 : 0.0);
        ovh = e->cuda_context_bytes;
        total = w + kv + act + ovh;
        /* host: token embeddings, layers left on the CPU and their cache, logits output buffer */
        double host_kv = m->n_full_layers * vc_llamacpp_cells_full(e, context, batch);
        if (m->n_sliding_layers > 0.0)
            host_kv += m->n_sliding_layers * vc_llamacpp_cells_swa(m, e, context, batch);
        host_kv *= (1.0 - vc_layer_share(m, e)) * per_tok_layer;
        r->host_bytes = vc_host_weights_bytes(m, pb, e) + host_kv
                        + (m->hidden + m->vocab) * batch * 4.0;
        r->kv_capacity_tokens = vc_llamacpp_cells_full(e, context, batch);
        r->max_concurrency = floor(r->kv_capacity_tokens / context);
        r->fits = total <= gpu_bytes;
    } else {
        /* budgeted engines: the KV cache takes what the budget leaves.  vLLM and
         * SGLang: fraction x total - weights - profiled peak - non-torch memory
         * (the CUDA context and graph pool live in the remaining fraction);
         * TensorRT-LLM: fraction x the memory free after weights, activations
         * and the runtime's own allocations. */
        double tokens = vc_min(e->max_num_batched_tokens, context * batch);
        double seqs = vc_min(e->max_num_seqs, batch);
        double budget;
        act = vc_forward_peak_bytes(m, d, e->tp, tokens, seqs);
        ovh = e->cuda_context_bytes + e->non_torch_bytes + e->cuda_graph_bytes;
        if (kind == VC_ENGINE_TRTLLM)
            budget = e->mem_fraction * (gpu_bytes - w - act - ovh);
        else
            budget = e->mem_fraction * gpu_bytes - w - act - e->non_torch_bytes;
        double layers = vc_n_layers(m) * vc_layer_share(m, e);
        double page = e->block_size * per_tok_layer;           /* one block of one layer */
        double blocks = budget > 0.0 ? floor(budget / (page * layers)) : 0.0;
        kv = blocks * page * layers;
        total = w + kv + act + ovh;
        r->kv_blocks = blocks;
        r->kv_capacity_tokens = blocks * e->block_size;
        need = vc_layer_blocks_per_request(m, e, context);    /* layer-blocks per request */
        r->max_concurrency = need > 0.0 ? blocks * layers / need : 0.0;
        r->fits = budget > 0.0 && r->max_concurrency >= batch && total <= gpu_bytes
                  && (e->max_model_len <= 0.0 || context <= e->max_model_len);
    }
    r->kv_cache_bytes = kv;
    r->activation_bytes = act;
    r->overhead_bytes = ovh;
    r->total_bytes = total;
    r->headroom_bytes = gpu_bytes - total;
}

/* ------------------------------------------------------------------ inverse questions */

static inline int vc_fits(const vc_model *m, const vc_dtype *d, const double pb[VC_N_PARTS],
                          const vc_engine *e, double context, double batch, double gpu_bytes)
{
    vc_result r;
    vc_estimate(m, d, pb, e, context, batch, gpu_bytes, &r);
    return r.fits != 0.0;
}

/* Move a closed-form guess to the exact answer of a monotone question: the largest
 * x in [0, cap] with ok(x) (ok(0) is true by convention).  `which` selects the
 * free variable: 0 = context at fixed batch, 1 = batch at fixed context.  The
 * guess is exact for the linear pieces; the galloping steps only absorb block
 * and padding rounding, so they run a handful of evaluations. */
static inline int vc_ok(const vc_model *m, const vc_dtype *d, const double pb[VC_N_PARTS],
                        const vc_engine *e, double fixed, double x, double gpu_bytes, int which)
{
    if (x <= 0.0)
        return 1;
    return which == 0 ? vc_fits(m, d, pb, e, x, fixed, gpu_bytes)
                      : vc_fits(m, d, pb, e, fixed, x, gpu_bytes);
}

static inline double vc_refine_max(const vc_model *m, const vc_dtype *d, const double pb[VC_N_PARTS],
                                   const vc_engine *e, double fixed, double guess, double cap,
                                   double gpu_bytes, int which)
{
    double lo, hi, step;
    guess = floor(vc_max(0.0, vc_min(guess, cap)));
    if (vc_ok(m, d, pb, e, fixed, guess, gpu_bytes, which)) {
        /* gallop up: lo ok, find hi not ok (or the cap) */
        lo = guess;
        step = 1.0;
        for (;;) {
            hi = vc_min(lo + step, cap);
            if (hi <= lo)
                return lo;
            if (!vc_ok(m, d, pb, e, fixed, hi, gpu_bytes, which))
                break;
            lo = hi;
            step *= 2.0;
        }
    } else {
        /* gallop down: hi not ok, find lo ok (0 always is) */
        hi = guess;
        step = 1.0;
        for (;;) {
            lo = vc_max(hi - step, 0.0);
            if (vc_ok(m, d, pb, e, fixed, lo, gpu_bytes, which))
                break;
            hi = lo;
            step *= 2.0;
        }
    }
    while (hi - lo > 1.0) {          /* invariant: ok(lo), !ok(hi) */
        double mid = floor((lo + hi) / 2.0);
        if (vc_ok(m, d, pb, e, fixed, mid, gpu_bytes, which))
            lo = mid;
        else
            hi = mid;
    }
    return lo;
}

/* Closed-form context guess for the transformers engine: memory is
 * weights + context + (1 + reserve) x (kv + activations), linear in the context
 * on each side of the sliding cap. */
static inline double vc_transformers_context_guess(const vc_model *m, const vc_dtype *d, const double pb[VC_N_PARTS],
                                                   const vc_engine *e, double batch, double gpu_bytes)
{
    double ptl = vc_kv_bytes_per_token_layer(m, d, e) * vc_layer_share(m, e);
    double x = (gpu_bytes - vc_weights_bytes(m, pb, e) - e->cuda_context_bytes) / (1.0 + e->allocator_reserve);
    double per_tok_act, c0;
    if (e->full_logits != 0.0) {
        per_tok_act = vc_max(vc_layer_peak_elems_per_token(m, e->tp), m->hidden + m->vocab / e->tp) * d->act_bytes;
        c0 = 0.0;
    } else {
        per_tok_act = vc_layer_peak_elems_per_token(m, e->tp) * d->act_bytes;
        c0 = batch * m->vocab * (d->act_bytes + 4.0);
    }
    x -= c0;
    if (x <= 0.0)
        return 0.0;
    double cap = m->n_sliding_layers > 0.0 ? m->sliding_window + e->sliding_cap_offset : INFINITY;
    double slope_lo = batch * (ptl * (m->n_full_layers + m->n_sliding_layers) + per_tok_act);
    double c = x / slope_lo;
    if (c <= cap)
        return c;
    double slope_hi = batch * (ptl * m->n_full_layers + per_tok_act);
    return (x - batch * ptl * m->n_sliding_layers * cap) / slope_hi;
}

/* Largest context (tokens per sequence) that fits `batch` sequences, capped at
 * `cap` (the model's max context); 0 when nothing fits. */
static inline double vc_max_context(const vc_model *m, const vc_dtype *d, const double pb[VC_N_PARTS],
                                    const vc_engine *e, double batch, double gpu_bytes, double cap)
{
    double guess;
    int kind = (int)e->kind;
    if (kind == VC_ENGINE_TRANSFORMERS) {
        guess = vc_transformers_context_guess(m, d, pb, e, batch, gpu_bytes);
    } else if (vc_is_budgeted(e)) {
        /* at the profile size the budget is fixed: the blocks one sequence may use */
        vc_result r;
        vc_estimate(m, d, pb, e, e->max_num_batched_tokens, 1.0, gpu_bytes, &r);
        double layers = vc_n_layers(m) * vc_layer_share(m, e);
        double full = m->n_full_layers * vc_layer_share(m, e);
        guess = full > 0.0 ? r.kv_blocks * layers / (batch * full) * e->block_size
                           : cap;
    } else {
        /* llama.cpp: ignoring padding, the cache and mask are linear in n_ctx */
        vc_result r1, r2;
        vc_estimate(m, d, pb, e, e->ctx_pad, batch, gpu_bytes, &r1);
        vc_estimate(m, d, pb, e, 2.0 * e->ctx_pad, batch, gpu_bytes, &r2);
        double slope = (r2.total_bytes - r1.total_bytes) / e->ctx_pad;
        guess = slope > 0.0 ? e->ctx_pad + (gpu_bytes - r1.total_bytes) / slope : cap;
    }
    return vc_refine_max(m, d, pb, e, batch, guess, cap, gpu_bytes, 0);
}

/* Largest batch of `context`-token sequences that fits (0 when none). */
static inline double vc_max_batch(const vc_model *m, const vc_dtype *d, const double pb[VC_N_PARTS],
                                  const vc_engine *e, double context, double gpu_bytes, double cap)
{
    vc_result r;
    vc_estimate(m, d, pb, e, context, 1.0, gpu_bytes, &r);
    double guess = r.max_concurrency;
    if ((int)e->kind == VC_ENGINE_LLAMACPP) {
        vc_result r2;
        vc_estimate(m, d, pb, e, context, 2.0, gpu_bytes, &r2);
        double slope = r2.total_bytes - r.total_bytes;
        guess = slope > 0.0 ? 1.0 + (gpu_bytes - r.total_bytes) / slope : cap;
    }
    return vc_refine_max(m, d, pb, e, context, guess, cap, gpu_bytes, 1);
}
