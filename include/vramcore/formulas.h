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
    double rotary_dim;           /* rotary embedding width (head dim; MLA: rope dim) */
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
    double sampler_bytes;        /* profile: bytes per (sequence x vocab entry) of the sampler's buffers */
    double graphs_in_budget;     /* vLLM >= 0.21: the CUDA-graph estimate is subtracted from the KV budget */
    double flash_attn;           /* llama.cpp: 1 = fused attention (no n_head x n_kv x n_ubatch scores) */
    double rope_cache;           /* 1 = the engine holds a cos/sin cache of max_context x rotary_dim */
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

/* ------------------------------------------------------------------ layers per GPU */

static inline double vc_n_layers(const vc_model *m) { return m->n_full_layers + m->n_sliding_layers; }

/* Share of the decoder layers on the most loaded GPU: ceil(L / pp) of L for
 * pipeline stages; llama.cpp: the offloaded layers. */
static inline double vc_layer_share(const vc_model *m, const vc_engine *e)
{
    double L = vc_n_layers(m);
    /* llama.cpp offloads the output layer first, then the last n_gpu_layers - 1
     * repeating layers (src/llama-model.cpp, load_tensors: i_gpu_start = n_layer + 1 - ngl) */
    if ((int)e->kind == VC_ENGINE_LLAMACPP && e->n_gpu_layers >= 0.0)
        return vc_min(vc_max(e->n_gpu_layers - 1.0, 0.0), L) / L;
    if (e->pp > 1.0)
        return ceil(L / e->pp) / L;
    return 1.0;
}

/* llama.cpp offloads the output layer as soon as one layer is offloaded. */
static inline int vc_output_on_gpu(const vc_model *m, const vc_engine *e)
{
    (void)m;
    if ((int)e->kind != VC_ENGINE_LLAMACPP || e->n_gpu_layers < 0.0)
        return 1;
    return e->n_gpu_layers >= 1.0;
}

/* ------------------------------------------------------------------ weights */

/* Bytes of one TP rank's share of the per-layer weights of the whole model. */
static inline double vc_layer_weights_rank(const vc_model *m, const double pb[VC_N_PARTS], double tp)
{
    double attn = pb[VC_PART_ATTENTION];
    double kvf = m->attn_kv_fraction, repf = m->attn_replicated_fraction;
    double kv_split = m->kv_heads > 0.0 ? vc_min(tp, m->kv_heads) : tp;
    double attn_rank = tp > 1.0 ? attn * (1.0 - kvf - repf) / tp + attn * kvf / kv_split + attn * repf : attn;
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

/* Share of the decoder layers llama.cpp leaves in host memory (not offloaded);
 * 0 for every other engine and for llama.cpp with every layer offloaded. */
static inline double vc_host_share(const vc_model *m, const vc_engine *e)
{
    double L = vc_n_layers(m);
    if ((int)e->kind != VC_ENGINE_LLAMACPP || e->n_gpu_layers < 0.0)
        return 0.0;
    return 1.0 - vc_min(vc_max(e->n_gpu_layers - 1.0, 0.0), L) / L;
}

/* Weights the engine keeps in host memory (llama.cpp: token embeddings, the
 * layers not offloaded, and the output matrix when it is not offloaded). */
static inline double vc_host_weights_bytes(const vc_model *m, const double pb[VC_N_PARTS], const vc_engine *e)
{
    if ((int)e->kind != VC_ENGINE_LLAMACPP)
        return 0.0;
    double layers = vc_layer_weights_rank(m, pb, 1.0) * vc_host_share(m, e);
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

/* ------------------------------------------------------------------ plans */

/* Everything about one (model, dtype, engine) triple that does not depend on
 * context, batch or GPU, computed once before a grid loop so that each cell
 * costs a few multiplications.  All fields are doubles (a plan row). */
typedef struct {
    double kind;                 /* VC_ENGINE_* */
    double weights;              /* weights on the most loaded GPU */
    double host_weights;         /* weights in host memory (llama.cpp) */
    double kv_full;              /* KV bytes per token of all full layers on this GPU */
    double kv_sliding;           /* KV bytes per token of all sliding layers on this GPU */
    double kv_full_host;         /* llama.cpp: the same for layers left on the host */
    double kv_sliding_host;
    double window;               /* sliding window (tokens) */
    double sliding_cap;          /* transformers: tokens a sliding layer keeps */
    double act_token;            /* activation bytes per prompt token (layer peak) */
    double act_token_full;       /* transformers full_logits: max(layer peak, hidden + vocab) per token */
    double full_logits;          /* 1 when every position's logits are computed */
    double logit_row;            /* bytes of one logits row in the compute dtype + its fp32 copy */
    double cuda_context;         /* per GPU, outside the allocator */
    double reserve;              /* transformers allocator slack fraction */
    double ctx_pad;              /* llama.cpp n_ctx padding */
    double swa_full;             /* llama.cpp */
    double ubatch;               /* llama.cpp n_ubatch / vLLM profile tokens */
    double gpu_vocab_row;        /* llama.cpp: f32 logits row bytes when the output layer is on the GPU */
    double host_logit_row;       /* llama.cpp: host output buffer bytes per sequence */
    double max_num_seqs;         /* budgeted engines: sampler rows in the profile */
    double fixed_overhead;       /* budgeted: context + non-torch + CUDA graphs */
    double non_torch;            /* vLLM / SGLang: subtracted from the budget */
    double mem_fraction;
    double block_size;
    double layer_block;          /* bytes of one block across every layer on this GPU */
    double full_share;           /* full layers on this GPU (count) */
    double sliding_share;        /* sliding layers on this GPU (count) */
    double layers;               /* decoder layers on this GPU */
    double max_model_len;
    double sampler_bytes;        /* budgeted: bytes per sampler logit */
    double graphs_in_budget;
    double cuda_graph;
    double group_size;           /* vLLM: layers sharing one block id (hybrid KV groups) */
    double full_groups;          /* vLLM: KV groups of full-attention layers */
    double sliding_groups;       /* vLLM: KV groups of sliding-window layers */
    double page;                 /* bytes of one block of one layer */
    double kv_token_all;         /* KV bytes per token over every layer on this GPU */
    double attn_scores_token;    /* llama.cpp without flash attention: bytes per (ubatch token x cache cell) */
    double layer_ubatch_token;   /* llama.cpp: f32 FFN compute per ubatch token */
    double attn_extra_token;     /* llama.cpp without flash attention: f32 rows beside the scores */
    double host_ubatch_token;    /* llama.cpp host compute per ubatch token (input embeddings) */
    double vocab;
    double tp_pp;                /* GPUs of one model replica */
} vc_plan;

#define VC_PLAN_NFIELDS (sizeof(vc_plan) / sizeof(double))

static inline void vc_make_plan(const vc_model *m, const vc_dtype *d, const double pb[VC_N_PARTS],
                                const vc_engine *e, vc_plan *p)
{
    double share = vc_layer_share(m, e);
    double ptl = vc_kv_bytes_per_token_layer(m, d, e);
    double peak = vc_layer_peak_elems_per_token(m, e->tp);
    p->kind = e->kind;
    p->weights = vc_weights_bytes(m, pb, e);
    p->host_weights = vc_host_weights_bytes(m, pb, e);
    p->kv_full = m->n_full_layers * share * ptl;
    p->kv_sliding = m->n_sliding_layers * share * ptl;
    /* layers left on the CPU keep their whole cache (no tensor split there) */
    vc_engine e_host = *e;
    e_host.tp = 1.0;
    double ptl_host = vc_kv_bytes_per_token_layer(m, d, &e_host);
    p->kv_full_host = m->n_full_layers * vc_host_share(m, e) * ptl_host;
    p->kv_sliding_host = m->n_sliding_layers * vc_host_share(m, e) * ptl_host;
    p->window = m->sliding_window;
    p->sliding_cap = m->sliding_window + e->sliding_cap_offset;
    p->act_token = peak * d->act_bytes;
    p->act_token_full = vc_max(peak, m->hidden + m->vocab / e->tp) * d->act_bytes;
    p->full_logits = e->full_logits;
    p->logit_row = m->vocab * (d->act_bytes + 4.0);
    p->cuda_context = e->cuda_context_bytes;
    p->reserve = e->allocator_reserve;
    p->ctx_pad = e->ctx_pad;
    p->swa_full = e->swa_full;
    p->ubatch = e->max_num_batched_tokens;
    if ((int)e->kind == VC_ENGINE_LLAMACPP && p->ubatch <= 0.0)
        p->ubatch = 512.0;           /* llama.cpp's default n_ubatch (common/common.h) */
    p->max_num_seqs = e->max_num_seqs;
    p->fixed_overhead = e->cuda_context_bytes + e->non_torch_bytes + e->cuda_graph_bytes;
    p->non_torch = e->non_torch_bytes;
    p->mem_fraction = e->mem_fraction;
    p->block_size = e->block_size;
    p->layers = vc_n_layers(m) * share;
    p->layer_block = e->block_size * ptl * p->layers;
    p->full_share = m->n_full_layers * share;
    p->sliding_share = m->n_sliding_layers * share;
    p->max_model_len = e->max_model_len;
    p->sampler_bytes = e->sampler_bytes;
    p->graphs_in_budget = e->graphs_in_budget;
    p->cuda_graph = e->cuda_graph_bytes;
    p->page = e->block_size * ptl;
    p->kv_token_all = ptl * p->layers;
    p->vocab = m->vocab;
    p->tp_pp = e->tp * e->pp;
    /* vLLM groups hybrid layers (vllm/v1/core/kv_cache_utils.py, get_kv_cache_groups):
     * group size = the smaller kind's count (the larger's when within 1.5x); each
     * kind splits into ceil(n / group size) groups; one block id is one page in
     * each of group-size tensors. */
    if (p->full_share > 0.0 && p->sliding_share > 0.0) {
        double lo = vc_min(p->full_share, p->sliding_share), hi = vc_max(p->full_share, p->sliding_share);
        p->group_size = hi < 1.5 * lo ? hi : lo;
        p->full_groups = ceil(p->full_share / p->group_size);
        p->sliding_groups = ceil(p->sliding_share / p->group_size);
    } else {
        p->group_size = p->layers;
        p->full_groups = p->full_share > 0.0 ? 1.0 : 0.0;
        p->sliding_groups = p->sliding_share > 0.0 ? 1.0 : 0.0;
    }
    /* llama.cpp compute buffer (ggml graph in f32, one ubatch): without flash
     * attention the scores of every head over the whole cache plus about seven
     * hidden-size rows; the FFN (2 x n_ff + 4 x hidden); the logits with the final
     * hidden rows when the output layer is on the GPU (fits logged CI buffers). */
    p->attn_scores_token = e->flash_attn != 0.0 ? 0.0 : m->num_heads * 4.0;
    p->layer_ubatch_token = (2.0 * m->dense_intermediate + 4.0 * m->hidden) * 4.0;
    p->attn_extra_token = e->flash_attn != 0.0 ? 0.0 : 7.0 * m->hidden * 4.0;
    p->gpu_vocab_row = vc_output_on_gpu(m, e) ? (m->vocab + m->hidden) * 4.0 : 0.0;
    p->host_ubatch_token = m->hidden * 4.0;
    p->host_logit_row = m->vocab * 4.0;
    if (e->rope_cache != 0.0 && m->max_context > 0.0)
        p->weights += m->max_context * m->rotary_dim * d->act_bytes;
}

/* llama.cpp: cells of the unified cache for n_seq = batch sequences of
 * `context` tokens (n_ctx = context x batch, padded); sliding layers keep
 * min(n_ctx, pad(window x n_seq + n_ubatch)) unless swa_full. */
static inline double vc_llamacpp_cells(const vc_plan *p, double context, double batch)
{
    return vc_pad(context * batch, p->ctx_pad);
}

static inline double vc_llamacpp_swa_cells(const vc_plan *p, double context, double batch)
{
    double n_ctx = vc_llamacpp_cells(p, context, batch);
    if (p->swa_full != 0.0)
        return n_ctx;
    return vc_min(n_ctx, vc_pad(p->window * batch + p->ubatch, p->ctx_pad));
}

/* Paged engines: layer-blocks one request of `context` tokens needs.  Full
 * layers: ceil(context / block); sliding layers (vLLM SlidingWindowSpec):
 * ceil(min(window - 1 + max_num_batched_tokens, context) / block) + 1. */
static inline double vc_blocks_per_request(const vc_plan *p, double context, double ubatch)
{
    double B = p->block_size;
    double blocks = p->full_groups * vc_ceil_div(context, B);
    if (p->sliding_groups > 0.0) {
        double t = vc_min(p->window - 1.0 + ubatch, context);
        blocks += p->sliding_groups * (vc_ceil_div(t, B) + 1.0);
    }
    return blocks;
}

/* Settings the serving engines derive from the GPU when left at 0 ("auto").
 * vLLM (vllm/engine/arg_utils.py, get_batch_defaults): GPUs of >= 70 GiB other
 * than the A100 get max_num_batched_tokens 8192 and max_num_seqs 1024 (API
 * server), others 2048 and 256.  SGLang (server_args.py,
 * _handle_gpu_memory_settings): mem_fraction_static = (mem - reserved) / mem with
 * reserved = 512 MiB + 1.5 x chunked-prefill tokens + 2 x cuda-graph batch
 * + tp x pp / 8 GiB, at least 10 GiB above 60 GiB of memory. */
typedef struct { double ubatch, seqs, fraction; } vc_auto;

static inline vc_auto vc_resolve_auto(const vc_plan *p, double gpu_bytes, double large_gpu, double tp_pp)
{
    vc_auto a;
    double mib = gpu_bytes / 1048576.0, gib = mib / 1024.0;
    a.seqs = p->max_num_seqs > 0.0 ? p->max_num_seqs : (large_gpu != 0.0 ? 1024.0 : 256.0);
    a.fraction = p->mem_fraction;
    if ((int)p->kind == VC_ENGINE_SGLANG) {
        /* chunked prefill by GPU memory unless set; the reserve follows the size in use */
        double chunk = gib < 35.0 ? 2048.0 : gib < 60.0 ? 4096.0 : gib < 160.0 ? 8192.0 : 16384.0;
        a.ubatch = p->ubatch > 0.0 ? p->ubatch : chunk;
        if (a.fraction <= 0.0) {
            double graph_bs = gib < 20.0 ? 8.0 : gib < 35.0 ? 24.0 : gib < 60.0 ? 32.0 : gib < 160.0 ? 256.0 : 512.0;
            double reserved = 512.0 + vc_max(a.ubatch, 2048.0) * 1.5 + graph_bs * 2.0 + tp_pp / 8.0 * 1024.0;
            if (gib > 60.0)
                reserved = vc_max(reserved, 10240.0);
            a.fraction = vc_max(0.05, floor((mib - reserved) / mib * 1000.0 + 0.5) / 1000.0);
        }
    } else {
        a.ubatch = p->ubatch > 0.0 ? p->ubatch : (large_gpu != 0.0 ? 8192.0 : 2048.0);
    }
    return a;
}

/* ------------------------------------------------------------------ one configuration */

/* The part of a configuration that does not depend on the GPU (transformers and
 * llama.cpp; the budgeted engines size everything from the GPU).
 *   transformers DynamicCache: full layers hold every token, sliding layers
 *   window + offset tokens; the prefill peak is one layer's activations per
 *   prompt token plus the last-position logits (or every position's). */
typedef struct {
    double kv, act, ovh, per_seq, inv_per_seq, host, capacity, total;
} vc_row;

static inline void vc_estimate_row(const vc_plan *p, double context, double batch, vc_row *q)
{
    int kind = (int)p->kind;
    if (kind == VC_ENGINE_TRANSFORMERS) {
        double kv_seq = p->kv_full * context;
        if (p->kv_sliding > 0.0)
            kv_seq += p->kv_sliding * vc_min(context, p->sliding_cap);
        double act_seq = p->full_logits != 0.0 ? context * p->act_token_full
                                               : context * p->act_token + p->logit_row;
        q->kv = batch * kv_seq;
        q->act = batch * act_seq;
        q->ovh = p->cuda_context + p->reserve * (q->kv + q->act);
        /* everything but the constant part scales with the batch */
        q->per_seq = (kv_seq + act_seq) * (1.0 + p->reserve);
        q->inv_per_seq = 1.0 / q->per_seq;
        q->host = 0.0;
        q->capacity = context * batch;
        q->total = p->weights + q->kv + q->act + q->ovh;
    } else if (kind == VC_ENGINE_LLAMACPP) {
        /* n_seq = batch sequences share one cache of n_ctx = context x batch cells */
        double cells = vc_llamacpp_cells(p, context, batch);
        double swa = p->kv_sliding > 0.0 || p->kv_sliding_host > 0.0 ? vc_llamacpp_swa_cells(p, context, batch) : 0.0;
        double ub = vc_min(p->ubatch, cells);
        q->kv = p->kv_full * cells + p->kv_sliding * swa;
        /* compute buffer of the worst-case ubatch (n_kv = the whole cache) */
        q->act = ub * vc_max(vc_max(p->gpu_vocab_row, p->layer_ubatch_token),
                             p->attn_scores_token * cells + p->attn_extra_token);
        q->ovh = p->cuda_context;
        /* host: token embeddings and layers left on the CPU with their cache, the
         * logits output buffer (n_vocab x n_seq f32) and the host compute buffer
         * (input embeddings + f32 KQ mask) */
        q->host = p->host_weights + p->kv_full_host * cells + p->kv_sliding_host * swa
                  + p->host_logit_row * batch + ub * (p->host_ubatch_token + cells * 4.0);
        q->capacity = cells;
        q->per_seq = context;
        q->inv_per_seq = 1.0 / context;
        q->total = p->weights + q->kv + q->act + q->ovh;
    } else {
        q->kv = q->act = q->ovh = q->per_seq = q->inv_per_seq = q->host = q->capacity = q->total = 0.0;
    }
}

/* Every figure of one configuration from its row part.  `large_gpu` is 1 for the
 * GPUs vLLM gives its larger batch defaults (>= 70 GiB, not an A100). */
static inline void vc_estimate_gpu(const vc_plan *p, const vc_row *q, double context, double batch,
                                   double gpu_bytes, double large_gpu, vc_result *r)
{
    int kind = (int)p->kind;
    double w = p->weights;
    double kv, act, ovh, total;
    r->weights_bytes = w;
    r->host_bytes = q->host;
    r->kv_blocks = 0.0;
    if (kind == VC_ENGINE_TRANSFORMERS) {
        kv = q->kv;
        act = q->act;
        ovh = q->ovh;
        total = q->total;
        /* sequences the memory left after the constant part holds: floor(free / per_seq),
         * by a reciprocal and one exact correction step instead of a division per GPU */
        double free_ = gpu_bytes - w - p->cuda_context;
        double n = 0.0;
        if (free_ > 0.0) {
            n = floor(free_ * q->inv_per_seq);
            if ((n + 1.0) * q->per_seq <= free_)
                n += 1.0;
            else if (n > 0.0 && n * q->per_seq > free_)
                n -= 1.0;
        }
        r->kv_capacity_tokens = q->capacity;
        r->max_concurrency = n;
        r->fits = total <= gpu_bytes;
    } else if (kind == VC_ENGINE_LLAMACPP) {
        kv = q->kv;
        act = q->act;
        ovh = q->ovh;
        total = w + kv + act + ovh;
        r->kv_capacity_tokens = q->capacity;
        r->max_concurrency = floor(q->capacity / context);
        r->fits = total <= gpu_bytes;
    } else {
        vc_auto a = vc_resolve_auto(p, gpu_bytes, large_gpu, p->tp_pp);
        double seqs = vc_min(a.seqs, a.ubatch);
        double budget, need;
        /* profiling peak: the larger of a forward pass over the scheduler's token
         * budget and the sampler over one logits row per request */
        act = vc_max(a.ubatch * p->act_token, seqs * p->vocab * p->sampler_bytes);
        ovh = p->fixed_overhead;
        if (kind == VC_ENGINE_TRTLLM) {
            /* free_gpu_memory_fraction of what is left after the profiled peak */
            budget = a.fraction * (gpu_bytes - w - act - ovh);
        } else if (kind == VC_ENGINE_SGLANG) {
            /* mem_fraction_static of the memory free before loading, minus the weights;
             * activations and graphs live in the rest */
            budget = a.fraction * (gpu_bytes - p->cuda_context - p->non_torch) - w;
        } else {
            /* gpu_memory_utilization x total - weights - peak - non-torch (vllm/v1/worker/gpu_worker.py) */
            budget = a.fraction * gpu_bytes - w - act - p->non_torch
                     - (p->graphs_in_budget != 0.0 ? p->cuda_graph : 0.0);
        }
        double unit = p->page * p->group_size;             /* bytes of one block id */
        double blocks = budget > 0.0 && unit > 0.0 ? floor(budget / unit) : 0.0;
        kv = blocks * unit;
        total = w + kv + act + ovh;
        r->kv_blocks = blocks;
        /* vLLM logs num_blocks // groups x block_size tokens (kv_cache_utils.py) */
        r->kv_capacity_tokens = floor(blocks / vc_max(p->full_groups + p->sliding_groups, 1.0)) * p->block_size;
        need = vc_blocks_per_request(p, context, a.ubatch);
        r->max_concurrency = need > 0.0 ? blocks / need : 0.0;
        r->fits = budget > 0.0 && r->max_concurrency >= batch && total <= gpu_bytes
                  && (p->max_model_len <= 0.0 || context <= p->max_model_len);
    }
    r->kv_cache_bytes = kv;
    r->activation_bytes = act;
    r->overhead_bytes = ovh;
    r->total_bytes = total;
    r->headroom_bytes = gpu_bytes - total;
}

static inline void vc_estimate(const vc_plan *p, double context, double batch, double gpu_bytes,
                               double large_gpu, vc_result *r)
{
    vc_row q;
    vc_estimate_row(p, context, batch, &q);
    vc_estimate_gpu(p, &q, context, batch, gpu_bytes, large_gpu, r);
}

/* ------------------------------------------------------------------ inverse questions */

static inline int vc_fits(const vc_plan *p, double context, double batch, double gpu_bytes, double large)
{
    int kind = (int)p->kind;
    if (kind == VC_ENGINE_TRANSFORMERS || kind == VC_ENGINE_LLAMACPP) {
        /* the same sums as vc_estimate_gpu, without the other outputs */
        vc_row q;
        vc_estimate_row(p, context, batch, &q);
        return p->weights + q.kv + q.act + q.ovh <= gpu_bytes;
    }
    vc_result r;
    vc_estimate(p, context, batch, gpu_bytes, large, &r);
    return r.fits != 0.0;
}

/* ok(x) of the monotone question: `which` 0 = context x at fixed batch,
 * 1 = batch x at fixed context; ok(0) is true by convention. */
static inline int vc_ok(const vc_plan *p, double fixed, double x, double gpu_bytes, double large, int which)
{
    if (x <= 0.0)
        return 1;
    return which == 0 ? vc_fits(p, x, fixed, gpu_bytes, large) : vc_fits(p, fixed, x, gpu_bytes, large);
}

/* Move a closed-form guess to the exact answer: the largest x in [0, cap] with
 * ok(x).  The guess is exact up to float rounding on the linear pieces, so two
 * evaluations settle it; block and padding rounding of the other engines are
 * absorbed by galloping steps (a handful of evaluations). */
static inline double vc_refine_max(const vc_plan *p, double fixed, double guess, double cap,
                                   double gpu_bytes, double large, int which)
{
    double lo, hi, step;
    guess = floor(vc_max(0.0, vc_min(guess, cap)));
    if (vc_ok(p, fixed, guess, gpu_bytes, large, which)) {
        lo = guess;
        step = 1.0;
        for (;;) {
            hi = vc_min(lo + step, cap);
            if (hi <= lo)
                return lo;
            if (!vc_ok(p, fixed, hi, gpu_bytes, large, which))
                break;
            lo = hi;
            step *= 2.0;
        }
    } else {
        hi = guess;
        step = 1.0;
        for (;;) {
            lo = vc_max(hi - step, 0.0);
            if (vc_ok(p, fixed, lo, gpu_bytes, large, which))
                break;
            hi = lo;
            step *= 2.0;
        }
    }
    while (hi - lo > 1.0) {          /* invariant: ok(lo), !ok(hi) */
        double mid = floor((lo + hi) / 2.0);
        if (vc_ok(p, fixed, mid, gpu_bytes, large, which))
            lo = mid;
        else
            hi = mid;
    }
    return lo;
}

/* The GPU-independent part of a closed-form guess, prepared once per (row,
 * engine) so that each GPU costs one multiply-add before the exact check. */
typedef struct {
    double base;        /* guess = (gpu_bytes - base) * scale - shift, then the piecewise fix */
    double scale;
    double shift;
    double hi_scale;    /* transformers context beyond the sliding cap */
    double hi_shift;
    double cap_at;      /* the sliding cap (tokens); INFINITY when none */
    double mult;        /* llama.cpp: guess cells -> padded cells / batch */
    int simple;         /* 1 when the guess needs no per-GPU estimate */
} vc_guess;

/* Closed forms of the largest context at `batch` (which = 0) or the largest
 * batch at `fixed` tokens (which = 1):
 *   transformers: weights + context + (1 + reserve) x (kv + activations) is
 *   linear in the context on each side of the sliding cap and linear in the
 *   batch -- solved directly;
 *   llama.cpp: cache, compute and host buffers linear in the (padded) cells;
 *   paged engines: the budget's blocks shared by the sequences (per GPU). */
static inline void vc_prepare_guess(const vc_plan *p, double fixed, int which, vc_guess *s)
{
    int kind = (int)p->kind;
    s->simple = 1;
    s->cap_at = INFINITY;
    s->hi_scale = s->hi_shift = s->mult = 0.0;
    if (kind == VC_ENGINE_TRANSFORMERS) {
        double per_tok = p->full_logits != 0.0 ? p->act_token_full : p->act_token;
        double logits = p->full_logits != 0.0 ? 0.0 : p->logit_row;
        double inv_res = 1.0 / (1.0 + p->reserve);
        s->base = p->weights + p->cuda_context;
        if (which == 0) {
            double batch = fixed;
            s->scale = inv_res / (batch * (p->kv_full + p->kv_sliding + per_tok));
            s->shift = logits / (p->kv_full + p->kv_sliding + per_tok);
            if (p->kv_sliding > 0.0) {
                s->cap_at = p->sliding_cap;
                s->hi_scale = inv_res / (batch * (p->kv_full + per_tok));
                s->hi_shift = (logits + p->kv_sliding * p->sliding_cap) / (p->kv_full + per_tok);
            }
        } else {
            double context = fixed;
            double kv_seq = p->kv_full * context + p->kv_sliding * vc_min(context, p->sliding_cap);
            s->scale = inv_res / (kv_seq + context * per_tok + logits);
            s->shift = 0.0;
        }
    } else if (kind == VC_ENGINE_LLAMACPP) {
        /* total = t1 + slope x (cells - c1) beyond one ubatch of cells */
        double pad = vc_max(p->ctx_pad, 1.0);
        double c1 = vc_max(vc_pad(p->ubatch, pad), pad);
        vc_row q1, q2;
        if (which == 0) {
            vc_estimate_row(p, c1 / fixed, fixed, &q1);
            vc_estimate_row(p, (c1 + pad) / fixed, fixed, &q2);
        } else {
            vc_estimate_row(p, fixed, c1 / fixed, &q1);
            vc_estimate_row(p, fixed, (c1 + pad) / fixed, &q2);
        }
        double slope = (q2.kv + q2.act - q1.kv - q1.act) / pad;
        s->base = p->weights + q1.kv + q1.act + q1.ovh;
        s->scale = slope > 0.0 ? 1.0 / slope : 0.0;
        s->shift = -c1;
        s->mult = pad;
        if (slope <= 0.0)
            s->simple = 0;
    } else {
        s->simple = 0;
        s->base = s->scale = s->shift = 0.0;
    }
}

static inline double vc_guess_at(const vc_plan *p, const vc_guess *s, double fixed, double gpu_bytes,
                                 double large, double cap, int which)
{
    int kind = (int)p->kind;
    if (!s->simple) {
        if (kind == VC_ENGINE_LLAMACPP)
            return cap;
        /* paged engines: blocks are fixed by the budget; full layers need
         * ceil(context / block) blocks each */
        vc_result r;
        vc_estimate(p, which == 0 ? 1.0 : fixed, 1.0, gpu_bytes, large, &r);
        if (which == 1)
            return r.max_concurrency;
        return p->full_groups > 0.0 ? floor(r.kv_blocks / (fixed * p->full_groups)) * p->block_size : cap;
    }
    double g = (gpu_bytes - s->base) * s->scale - s->shift;
    if (kind == VC_ENGINE_LLAMACPP) {
        /* cells rounded down to the padding, shared among the sequences */
        double cells = floor(g / s->mult) * s->mult;
        return floor(cells / fixed);     /* cells / batch = context; cells / context = batch */
    }
    if (g > s->cap_at)
        g = (gpu_bytes - s->base) * s->hi_scale - s->hi_shift;
    return g;
}

/* Largest context (which = 0, at `fixed` sequences) or batch (which = 1, at
 * `fixed` tokens) that fits, at most `cap`; 0 when nothing fits. */
static inline double vc_solve(const vc_plan *p, const vc_guess *s, double fixed, double gpu_bytes, double large,
                              double cap, int which)
{
    double guess = vc_guess_at(p, s, fixed, gpu_bytes, large, cap, which);
    if (!(guess >= 0.0))            /* also catches NaN */
        guess = 0.0;
    return vc_refine_max(p, fixed, guess, cap, gpu_bytes, large, which);
}
