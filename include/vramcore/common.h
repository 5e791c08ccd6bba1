/*
 * vramcore/common.h -- what every formula header shares: the input rows, the
 * result row and a few helpers.
 *
 * Every byte count vramcore reports is computed by the static inline functions
 * of the headers in this folder (formulas.h includes them all, in layer order);
 * the Cython kernel (vramcore/grid/_kernel.pyx) only loops over a grid and
 * calls them.  Conventions:
 *
 *   - every quantity is a double: element and byte counts are exact integers up
 *     to 2^53 (8 PiB) and never overflow beyond that (they lose exactness, not
 *     sign), so products such as params x context x batch are safe;
 *   - sizes are in bytes; conversion to GiB (2^30) or GB (1e9) happens in Python;
 *   - every figure is per GPU: with tensor parallelism (tp) and pipeline
 *     parallelism (pp) it is the most loaded GPU's share;
 *   - no globals, no allocation, no error paths: inputs are validated in Python
 *     (vramcore/grid/validation.py) before they reach this file.
 *
 * The structs are plain rows of doubles so that a C-contiguous float64 array
 * with VC_*_NFIELDS columns can be read as an array of structs; the Python side
 * packs them in vramcore/grid/pack.py in exactly this field order.
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
    VC_PART_VISION_TOWER,
    VC_PART_MM_PROJECTOR,
    VC_PART_AUDIO_TOWER,
    VC_N_PARTS
};

/* Engine kinds: one module of vramcore/engines/ and one header of engines/ each,
 * in the order of vramcore.engines.base.ENGINE_KINDS. */
enum {
    VC_ENGINE_TRANSFORMERS = 0,  /* dynamic cache, grows with the sequences */
    VC_ENGINE_VLLM = 1,          /* paged cache sized from a memory budget after profiling */
    VC_ENGINE_SGLANG = 2,        /* token pool sized from mem_fraction_static */
    VC_ENGINE_TRTLLM = 3,        /* paged cache from a fraction of the free memory */
    VC_ENGINE_LLAMACPP = 4,      /* cache allocated for n_ctx cells up front */
    VC_ENGINE_TRAIN = 5          /* a training step: model states + activations saved for backward */
};

/* Why a configuration does not fit, or what to know about it (vramcore.grid.results.REASONS,
 * same bits).  The blocking reasons make fits 0; the advisory ones do not. */
enum {
    VC_WHY_WEIGHTS_EXCEED_GPU = 1,            /* the weights alone exceed the GPU */
    VC_WHY_TOTAL_EXCEEDS_GPU = 2,             /* weights + cache + activations + overhead exceed the GPU */
    VC_WHY_NO_KV_BUDGET = 4,                  /* budgeted engines: nothing is left for the KV cache */
    VC_WHY_KV_BELOW_BATCH = 8,                /* budgeted engines: the cache holds fewer than `batch` sequences */
    VC_WHY_KV_BELOW_MAX_MODEL_LEN = 16,       /* vLLM: the cache cannot hold one max_model_len sequence,
                                                 so vLLM refuses to start */
    VC_WHY_CONTEXT_BEYOND_MAX_MODEL_LEN = 32, /* the engine refuses a context longer than max_model_len */
    VC_WHY_FORMAT_NOT_RUNNABLE = 256,         /* the engine does not load this weight format as stored
                                                 (set in Python: vramcore/grid/run.py) */
    VC_WHY_DTYPE_UNSUPPORTED_ON_GPU = 512,    /* FP8 on a GPU without hardware FP8, under an engine that needs
                                                 it (set in Python: vramcore/grid/run.py) */
    VC_WHY_BLOCKING = 63 | 256 | 512,
    VC_WHY_CONTEXT_BEYOND_TRAINED = 64,       /* advisory: longer than the model's trained context */
    VC_WHY_APPROXIMATE = 128                  /* advisory: a byte count above 2^53, rounded to a double */
};

/* phases of a vision encoder's block vLLM's profile may peak in (vc_model.mm_phase) */
#define VC_MM_PHASES 4

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
    /* what a training step saves for backward (engines/train.h, training.h) */
    double norm_kind;            /* 0: RMSNorm in fp32, weight x its 16-bit cast (Llama, Qwen, Mistral ...);
                                    1: Gemma's fp32 x (1 + weight); 2: weight x the fp32 result (OLMo-2) */
    double norms_per_layer;      /* RMSNorms in a decoder layer (2; Gemma-2/3: 4) */
    double qk_norm;              /* 1: per-head RMSNorm on q and k (Qwen3, Gemma-3); 2: over the whole q and
                                    k projections (OLMo-2) */
    double attn_softcap;         /* 1: tanh soft-capping of the attention scores (Gemma-2) */
    double final_softcap;        /* 1: tanh soft-capping of the logits (Gemma-2) */
    double embed_scale;          /* 1: embeddings multiplied by a sqrt(hidden) scalar (Gemma) */
    double attn_kinds;           /* distinct attention masks: 1 (full or sliding only) or 2 (both) */
    /* hybrid models: layers with a recurrent mixer keep a fixed state per sequence, no KV cache */
    double n_state_layers;       /* layers with a recurrent mixer (gated DeltaNet, Mamba2) */
    double state_conv_dim;       /* channels of one layer's causal convolution */
    double state_conv_kernel;    /* its kernel width */
    double state_ssm_elems;      /* recurrent-state elements of one sequence in one layer */
    double state_ssm_fp32;       /* 1: the model's reference code keeps the recurrent state in fp32 */
    double state_groups;         /* Mamba2 n_groups: B and C are held whole-group per TP rank; 0 = no groups */
    double state_group_width;    /* conv channels of one group's B and C (2 x state size) */
    double attn_group_fraction;  /* share of attention weights in B and C rows (whole groups per TP rank) */
    double index_kv_elems;       /* DeepSeek-V3.2: the sparse-attention indexer's key per token and layer */
    /* multimodal models: the largest image, as vLLM's profiling run feeds the vision encoder */
    double mm_item_features;     /* embeddings of the largest image (0: a text-only model) */
    double mm_item_patches;      /* patches the encoder runs over for it */
    /* what vLLM's encoder holds per patch at each of up to 4 phases of a block (VisionSpec.vllm_encoder_phases,
     * one rule per tower family): per phase {act, act_tp, f32, f32_tp}, elements in the activation dtype and in
     * fp32, whole on every TP rank and split over the ranks; unused phases are zeros */
    double mm_phase[VC_MM_PHASES][4];
    double n_mixerless_layers;   /* layers with no token mixer (Nemotron-H's MLP-only blocks) */
    double mlp_rows;             /* intermediate-wide rows of an MLP at its peak: 3 gated (gate, up, product), 2 not */
    double mm_item_pixels;       /* elements of the largest dummy image (its patches x pixels a patch) */
    double mm_rope_table;        /* bytes of the rotary table the encoder builds on first use (Pixtral in vLLM) */
    /* Llama-3.2-Vision: cross-attention layers cache the images' vision tokens, a fixed count per sequence */
    double n_cross_layers;       /* decoder layers with cross-attention (no per-token cache) */
    double cross_tokens;         /* vision tokens each of them caches per sequence (0: no image, nothing cached) */
    double n_layers;             /* decoder layers: a Falcon-H1 layer counts among the full and the state
                                    layers both (attention and Mamba2 side by side), so the kinds overlap */
    /* what a Mamba2 layer saves for backward in training (training.h, vc_mamba2_saved); 0 without one */
    double mixer_proj;           /* in_proj's output width: 2 x inner + 2 x groups x state + heads */
    double mixer_inner;          /* the scan's output width: heads x head dim */
    double mixer_heads;          /* Mamba2 heads (A and its exp saved per layer) */
    double mixer_norm_groups;    /* groups of the gated RMSNorm (one fp32 rstd each per token); 0: no norm */
    double mixer_input_copies;   /* scaled copies of the normed input its projections save (Falcon-H1's
                                    ssm_in / attention_in multipliers: 2); 0 elsewhere */
    double mixer_proj_scale;     /* 1: in_proj's output is multiplied by a buffer of its width (Falcon-H1's
                                    mup_vector), which autograd saves once per layer */
    double rope;                 /* 1: rotary position embeddings (a training step saves one sequence's
                                    cos/sin); 0: none (Granite-4.0-H's position_embedding_type "nope") */
    double resident_elems;       /* per token, held through every layer beyond the residual and its normed
                                    copy (Gemma-3n: the AltUp stacks and the per-layer inputs; 0 otherwise) */
    /* transformers: the vision tower's prefill over a request's images (VisionSpec.transformers_encoder_phases;
     * zeros for the towers not modelled and for a text-only request) */
    double mm_tf_act, mm_tf_f32;      /* elements per patch at the tower's peak: activation dtype, fp32 */
    double mm_tf_fixed;               /* bytes per patch at the peak whatever the dtype (int64 indices) */
    double mm_tf_held_act, mm_tf_held_f32; /* elements per patch held through the decoder's prefill */
    double mm_tf_held_feature;        /* elements per image embedding held through it (activation dtype) */
    double mm_tf_pair;                /* elements per pair of patches of the tower call at its peak (Pixtral's
                                         sdpa block-diagonal mask over every image of the batch; 0 others) */
    double mm_tf_image;               /* elements per image at the peak beside the per-patch ones (mllama's
                                         patch_embedding output; 0 others) */
    double image_count;               /* images of one sequence (ModelSpec.image_count) */
    double image_patches;             /* patches of one sequence's images (ModelSpec.image_patches) */
    double image_features;            /* their embeddings (ModelSpec.image_features) */
    double router_kind;          /* what an MoE router saves for backward (training.h vc_moe_mlp_saved): 0 softmax
                                    over the experts then top-k, 1 top-k then softmax (Granite-4.0-H), 2 sigmoid
                                    group-limited top-k with fp32 weights (Nemotron-H) */
    double shared_gate;          /* 1: a sigmoid gate scales the shared experts' output (Qwen2-MoE, Qwen3-Next) */
    double layer_positions;      /* 1: the decoder layers take the position ids (kept as checkpoint inputs) */
    double layer_pairs;          /* the (token mixer, MLP) kinds the layers have, one bit each (VC_PAIR_BIT): the
                                    layer recomputed under checkpointing is the largest of them */
    /* what a gated-DeltaNet layer saves for backward in training (training.h, vc_deltanet_saved); 0 without one */
    double dn_key_heads;         /* key heads (q and k keep their own heads: fla's grouped value attention) */
    double dn_key_width;         /* key heads x key head dim */
    double dn_value_heads;       /* value heads */
    double dn_value_width;       /* value heads x value head dim */
    double attn_output_gate;     /* 1: q_proj also yields a sigmoid gate on the attention output (Qwen3-Next) */
    double rope_per_row;         /* 1: the rotary cos/sin are made per batch row (Qwen3.5's (3, b, s) positions) */
    /* what a Mamba1 layer saves for backward in training (training.h, vc_mamba1_saved); 0 without one */
    double m1_inner;             /* the inner width (expand x hidden) */
    double m1_state;             /* the state size per channel */
    double m1_dt_rank;           /* the time-step rank */
    double attention_sinks;      /* 1: one learned sink logit per head joins each query's softmax (gpt-oss) */
    double rotary_tables;        /* rotary (cos, sin) pairs the forward builds per token (Gemma-3: 2) */
} vc_model;

/* What a weight dtype (or quantization format) implies beyond the weights' own
 * storage, which Python computes exactly per part (vramcore/storage/) and
 * passes in as bytes. */
typedef struct {
    double act_bytes;            /* bytes per activation element (the compute dtype) */
    double kv_bits;              /* bits per cached K/V element (block formats: effective bits) */
} vc_dtype;

/* The rules one engine applies; fields, defaults and sources in vramcore/engines/. */
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
    double kv_bits;              /* engine-level K (and V) cache width (kv_cache_dtype, llama.cpp cache_type_k);
                                    0 = the dtype row's */
    double sampler_bytes;        /* profile: bytes per (sequence x vocab entry) of the sampler's buffers */
    double graphs_in_budget;     /* vLLM >= 0.21: the CUDA-graph estimate is subtracted from the KV budget */
    double flash_attn;           /* llama.cpp: 1 = fused attention (no n_head x n_kv x n_ubatch scores) */
    double rope_cache;           /* 1 = the engine holds a cos/sin cache of max_context x rotary_dim (compute
                                  * dtype, or fp32 where vc_place.rope_fp32 says) */
    double kv_bits_v;            /* engine-level V cache width (llama.cpp cache_type_v); 0 = as K */
    double state_conv_offset;    /* a recurrent layer's conv state keeps kernel + offset inputs (0 or -1) */
    double state_conv_bits;      /* conv-state width; 0 = the compute dtype */
    double state_ssm_bits;       /* recurrent-state width; 0 = the model's rule (fp32 or the compute dtype) */
    double index_bits;           /* width of the indexer's cached key (bits per element); 0 = the K cache's */
    double mm_limit;             /* vLLM limit_mm_per_prompt (images); 0: text-only mode, no tower loaded */
    double state_blocks;         /* vLLM: state blocks a request takes per recurrent KV group (mamba_cache_mode
                                    none 1, align 2; 0 = all: one per block of max_model_len) */
    /* training (vramcore/engines/train.py) */
    double grad_bytes;           /* bytes of a gradient per trainable element (the param dtype, or 4) */
    double fp32_grad_bytes;      /* DeepSpeed mixed precision: the fp32 gradient partition per element (4) */
    double master_bytes;         /* fp32 master weights per trainable element (mixed precision: 4) */
    double zero;                 /* ZeRO stage 0-3 */
    double dp;                   /* data-parallel degree (ZeRO shards over it) */
    double offload_optimizer;    /* 1: optimizer states, master weights and fp32 grads on the host */
    double offload_params;       /* 1: ZeRO-3 parameter partitions on the host */
    double recompute;            /* 0 none, 1 selective (attention scores), 2 full (gradient checkpointing) */
    double train_act_bytes;      /* bytes per activation element (0 = the dtype row's) */
    double backward_transient;   /* 1: the backward's transient peak on top of the saved tensors; 0: saved only */
    double frozen_base;          /* 1: LoRA / QLoRA: the base is frozen, so its linears and norms save less */
    double autocast;             /* 1: the forward runs under torch.autocast (the "-mixed" precisions) */
    /* vLLM's profiling run (vramcore/engines/vllm.py) */
    double hidden_states;        /* 1: (T + 2 N) hidden states are held beside the sampler */
    double profile_workspace;    /* bytes held besides the run's tensors (cuBLAS workspace) */
    double mm_padding;           /* 1: vLLM 0.11.0 / 0.11.1 multimodal profile (padded encoder outputs, images) */
} vc_engine;

/* One model under one training engine, computed per tensor in Python
 * (vramcore/engines/train.py): what is stored, what is trained and what the
 * optimizer keeps, by part, before any split. */
typedef struct {
    double weight_bytes[VC_N_PARTS]; /* every parameter as held for training (a QLoRA base in 4 bits) */
    double trainable[VC_N_PARTS];    /* trainable elements (LoRA: the adapters, by the part they adapt) */
    double optim_bytes[VC_N_PARTS];  /* optimizer state bytes */
    double gather_bytes;         /* ZeRO-3: the largest layer's parameters, gathered whole */
    double gather_grad_bytes;    /* ZeRO-3: ... and its gradients before the reduce-scatter */
    double adapter_token_layer;  /* LoRA: bytes per token per layer the adapters save (their input, A output) */
    double adapter_layer_bytes;  /* LoRA under autocast: the 16-bit copies of one layer's adapter weights */
    double dequant_bytes;        /* QLoRA: the largest weight dequantized to 16 bits at once */
    double trainable_total;      /* trainable elements of the whole model (peft's count) */
} vc_train;

/* Where one model's decoder layers sit under one engine layout, by kind, as
 * counts (vramcore/grid/pack.py, place_rows): on one GPU, and in host memory
 * (llama.cpp's layers not offloaded).  llama.cpp's -ngl n puts the last n - 1
 * layers on the GPUs, so these are the kinds of those very layers.  Under
 * pipeline parallelism there is one row per distinct stage, holding that
 * stage's own layers (each engine's partition rule, pack.py stage_layers);
 * the first stage also holds the embedding and the vision tower, the last the
 * output layer, and the figures of a configuration combine the stages'
 * (engines.h, vc_estimate_stages). */
typedef struct {
    double gpu_layers;           /* decoder layers (every kind) */
    double gpu_full;             /* ... with full attention */
    double gpu_sliding;          /* ... with sliding-window or chunked attention */
    double gpu_state;            /* ... with a recurrent mixer */
    double gpu_dense;            /* ... with a dense MLP */
    double gpu_moe;              /* ... with a mixture-of-experts MLP */
    double gpu_cross;            /* ... with cross-attention to the images' tokens */
    double host_layers, host_full, host_sliding, host_state, host_dense, host_moe, host_cross;
    double first_stage;          /* 1: the stage holds the embedding and the vision tower (and runs the encoder) */
    double last_stage;           /* 1: the stage holds the output layer (and computes logits, samples, the loss) */
    double in_flight;            /* training under 1F1B: micro-batches whose activations the stage holds */
    double group_layers;         /* paged engines: the stage's layers in its fullest KV-cache group (vLLM's
                                  * groups of the whole model, get_kv_cache_groups; one block id is a page in
                                  * each of them, get_kv_cache_config_from_groups) */
    double rope_fp32;            /* a fact of the (model, engine) pair: 1 = the engine builds this model's
                                  * rotary cos/sin cache in fp32 (vramcore.engines.rope_cache_fp32) */
    double attn_kv_extra;        /* a fact of the (model, engine) pair: the share of the attention weights as
                                  * the engine loads them that are k/v projections it adds in KV-sharing layers
                                  * (vLLM's Gemma-3n; pack.py attn_kv_extra), split like k/v; the model's
                                  * attn_kv_fraction and attn_replicated_fraction are shares of the rest */
    double attn_impl;            /* a fact of the (model, engine) pair: the attention the transformers and
                                  * training engines run (0 sdpa, 1 flash, 2 eager; engines.base.attention_code:
                                  * EngineSpec.attention "auto" is eager for a model without sdpa) */
    double n_stages;             /* distinct stage rows of this (model, engine), read from its first row */
} vc_place;

/* Everything one configuration produces (per GPU); the kernel writes the fields in
 * this order, fits (last) to its own array. */
typedef struct {
    double weights_bytes;
    double kv_cache_bytes;
    double activation_bytes;
    double overhead_bytes;
    double total_bytes;
    double headroom_bytes;
    double kv_capacity_tokens;   /* tokens of cache the engine holds per layer */
    double kv_blocks;            /* blocks (pages) of the paged engines; 0 otherwise */
    double max_concurrency;      /* sequences of `context` tokens that fit at once */
    double host_bytes;           /* memory the engine keeps on the host (llama.cpp, offloaded states) */
    double gradients_bytes;      /* training: gradients (16-bit and fp32 partition) */
    double optimizer_bytes;      /* training: optimizer states on the GPU */
    double master_weights_bytes; /* training: fp32 master weights on the GPU */
    double trainable_params;     /* training: trainable parameters of the whole model */
    double state_bytes;          /* hybrid models: the recurrent states of the sequences (not per token) */
    double reasons;              /* VC_WHY_* bits, as a whole number */
    double fits;                 /* 1 or 0: no blocking reason */
} vc_result;

#define VC_MODEL_NFIELDS (sizeof(vc_model) / sizeof(double))
#define VC_DTYPE_NFIELDS (sizeof(vc_dtype) / sizeof(double))
#define VC_ENGINE_NFIELDS (sizeof(vc_engine) / sizeof(double))
#define VC_RESULT_NFIELDS (sizeof(vc_result) / sizeof(double))
#define VC_TRAIN_NFIELDS (sizeof(vc_train) / sizeof(double))
#define VC_PLACE_NFIELDS (sizeof(vc_place) / sizeof(double))

/* The per-cell formulas (the engine headers and their dispatch) are forced inline
 * where the compiler allows it, so that one engine's path is straight code inside
 * the kernel's loops whatever the number of small functions it is written in. */
#if defined(__GNUC__) || defined(__clang__)
#define VC_INLINE static inline __attribute__((always_inline))
#else
#define VC_INLINE static inline
#endif

/* ceil and floor without a call into libm (x86-64's baseline has no rounding
 * instruction, so a plain ceil() is a function call in the kernel's hot loops):
 * exact for every double -- those of magnitude 2^52 and up are integers already. */
static inline double vc_ceil(double x)
{
    if (!(fabs(x) < 4503599627370496.0))
        return x;
    double t = (double)(long long)x;
    return t < x ? t + 1.0 : t;
}

static inline double vc_floor(double x)
{
    if (!(fabs(x) < 4503599627370496.0))
        return x;
    double t = (double)(long long)x;
    return t > x ? t - 1.0 : t;
}

static inline double vc_max(double a, double b) { return a > b ? a : b; }
static inline double vc_min(double a, double b) { return a < b ? a : b; }
static inline double vc_ceil_div(double a, double b) { return vc_ceil(a / b); }
static inline double vc_pad(double x, double to) { return to > 1.0 ? vc_ceil(x / to) * to : x; }

/* A byte figure rounded up to a whole byte.  A fraction below 2^-44 of the value
 * (and below a quarter byte) is float noise -- 0.05 x 720 lands on 36.000...04 --
 * not a byte: it is dropped, so exact integers stay exact. */
static inline double vc_whole(double x) { return vc_ceil(x - vc_min(fabs(x) * 0x1p-44, 0.25)); }

/* The largest real x >= 0 with a x^2 + b x <= free (INFINITY when neither grows). */
VC_INLINE double vc_quadratic_root(double a, double b, double free_)
{
    if (a > 0.0)
        return 2.0 * free_ / (b + sqrt(b * b + 4.0 * a * free_));   /* the stable form of (-b + sqrt) / 2a */
    return b > 0.0 ? free_ / b : INFINITY;
}

/* 1.0 when x has a fractional part, else 0.0. */
static inline double vc_is_frac(double x) { return vc_floor(x) != x ? 1.0 : 0.0; }

static inline double vc_n_layers(const vc_model *m)
{
    return m->n_layers;
}

/* Groups a Mamba2 mixer's B and C are laid out as over `tp` ranks: whole groups
 * per rank, so max(groups, tp) -- each group replicated on tp / groups ranks when
 * the ranks outnumber the groups (vLLM mamba_utils.py extra_groups_for_head_shards
 * and mamba2_state_shape, mamba_mixer2.py MambaMixer2; SGLang configs/mamba_utils.py
 * Mamba2StateShape.create; TensorRT-LLM _torch/modules/mamba/mamba2_tp.py
 * Mamba2TpShard).  0 for a mixer without groups. */
static inline double vc_state_tp_groups(const vc_model *m, double tp)
{
    return m->state_groups > 0.0 ? vc_max(m->state_groups, tp) : 0.0;
}
