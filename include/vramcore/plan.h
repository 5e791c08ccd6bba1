/*
 * vramcore/plan.h -- the per-(model, dtype, engine) constants every cell reuses,
 * and the rows the engines fill.  The engine headers (engines/<kind>.h) fill
 * their own fields; engines.h builds the plan and dispatches on the kind.
 */
#pragma once

#include "vramcore/activations.h"
#include "vramcore/cache.h"
#include "vramcore/weights.h"

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
    double full_share;           /* full layers on this GPU (count) */
    double sliding_share;        /* sliding layers on this GPU (count) */
    double layers;               /* decoder layers on this GPU */
    double max_model_len;        /* longest sequence the engine accepts; 0 = any */
    double max_context;          /* the model's trained context; 0 = unknown */
    double kv_frac;              /* 1 when a KV rate per token is fractional (sub-byte caches, stage shares):
                                    the cache bytes need rounding up; 0: they are whole already */
    double act_frac;             /* the same for the activation rates */
    double host_frac;            /* the same for the host-side cache rates (llama.cpp) */
    double unit_frac;            /* paged engines: 1 when a block id's bytes are fractional */
    double need_max_len;         /* vLLM without sliding layers: blocks of one max_model_len request (else -1) */
    double sampler_bytes;        /* budgeted: bytes per sampler logit */
    double graphs_in_budget;
    double cuda_graph;
    double group_size;           /* vLLM: layers sharing one block id (hybrid KV groups) */
    double full_groups;          /* vLLM: KV groups of full-attention layers */
    double sliding_groups;       /* vLLM: KV groups of sliding-window layers */
    double page;                 /* bytes of one block of one layer */
    double attn_scores_token;    /* llama.cpp without flash attention: bytes per (ubatch token x cache cell) */
    double layer_ubatch_token;   /* llama.cpp: f32 FFN compute per ubatch token */
    double attn_extra_token;     /* llama.cpp without flash attention: f32 rows beside the scores */
    double host_ubatch_token;    /* llama.cpp host compute per ubatch token (input embeddings) */
    double vocab;
    double tp_pp;                /* GPUs of one model replica */
    /* training (engines/train.h): model states per GPU and the activation terms */
    double grads, optim, master; /* gradients, optimizer states, master weights on this GPU */
    double host_states;          /* offloaded states and parameters on the host */
    double t_tok, t_pos, t_sq, t_cst; /* saved for backward: x b s, x s, x b s^2, constant */
    double t_chunk;              /* ... x b ceil(s / VC_SCAN_CHUNK): Mamba1's scan states, per sequence and chunk */
    double tl_tok, tl_sq;        /* one layer's backward: x b s, x b s^2 */
    double tr_tok;               /* the loss's backward: x b s */
    double dequant;              /* QLoRA: one weight dequantized at a time */
    double trainable;            /* trainable parameters of the whole model */
    double state_seq;            /* hybrid models: recurrent-state bytes of one sequence on this GPU */
    double state_seq_host;       /* llama.cpp: ... of the recurrent layers left on the host */
    double state_page;           /* paged engines: bytes of one recurrent layer's state page (padded) */
    double state_groups;         /* vLLM: KV groups of recurrent layers */
    double state_blocks;         /* vLLM: blocks a request takes in each recurrent group (0: max_model_len's) */
    double mm_features;          /* vLLM multimodal profile: embeddings of the largest image (0: none) */
    double mm_enc_item;          /* ... the encoder's peak bytes for it on this GPU */
    double mm_held_token;        /* ... bytes of one embedding held for the decoder */
    double mm_limit;             /* ... images per prompt */
    double sampler_hidden;       /* budgeted: bytes of one hidden state held beside the sampler (0: none) */
    double profile_workspace;    /* budgeted: bytes the profile's peak holds besides its tensors */
    double mm_pad;               /* vLLM 0.11.0 / 0.11.1 multimodal profile: 1 = encoder outputs padded */
    double mm_image;             /* bytes of one dummy image in the compute dtype (vLLM's profile) */
    double mm_rope;              /* ... bytes of the encoder's rotary table */
    double cross_seq;            /* cross-attention layers on this GPU: K and V of one sequence's vision tokens */
    double enc_seq;              /* transformers with images: the vision tower's peak for one sequence's images,
                                    beside what they hold (0: no encoder phase) */
    double enc_embed_token;      /* ... the prompt's inputs_embeds, per token, live beside it */
    double enc_held_seq;         /* ... what the tower leaves held through the decoder's prefill, per sequence */
    double enc_pair;             /* ... bytes per pair of sequences in the tower's one call (Pixtral's mask over
                                    every patch of the batch: batch^2 x this; 0 for the other towers) */
    double act_pair;             /* transformers prefill: bytes per (query x key) pair of one sequence at the
                                    attention's peak, eager scores and masks (0: sdpa / flash) */
    double mask_pair;            /* ... a sliding layer's sdpa mask per pair, from mask_from tokens on */
    double mask_from;            /* ... the prompt length that mask appears at (the window; INFINITY: never) */
} vc_plan;

#define VC_PLAN_NFIELDS (sizeof(vc_plan) / sizeof(double))

/* The part of a configuration that does not depend on the GPU (transformers and
 * llama.cpp; the budgeted engines size everything from the GPU). */
typedef struct {
    double kv, act, ovh, per_seq, inv_per_seq, host, capacity, total, state;
    double pair_enc;             /* transformers with a quadratic tower phase (enc_pair > 0): the tower
                                    phase's cost per sequence beside the pairs (per_seq then the decoder's) */
} vc_row;

/* The four parts of one configuration, as an engine computes them, with the
 * engine's own reasons (VC_WHY_*) and the memory its cache has to spare beyond
 * the request (INFINITY for engines whose cache is sized by the request). */
typedef struct {
    double kv, act, ovh, total, spare, state;
    int why;
} vc_parts;

/* The GPU-independent part of a closed-form guess, prepared once per (row,
 * engine) so that each GPU costs one multiply-add before the exact check. */
typedef struct {
    double base;        /* guess = (gpu_bytes - base) * scale - shift, then the piecewise fix */
    double scale;
    double shift;
    double hi_scale;    /* transformers context beyond the sliding cap */
    double hi_shift;
    double cap_at;      /* the sliding cap (tokens); INFINITY when none */
    double quad;        /* transformers: the pairs' quadratic over the line's rate, below and beyond the cap */
    double hi_quad;
    double mult;        /* llama.cpp: guess cells -> padded cells / batch */
    double slack;       /* > 0: the guess is the exact boundary of a total linear in the answer but for
                         * whole-byte roundings of at most this many units of the answer (transformers) */
    int simple;         /* 1 when the guess needs no per-GPU estimate */
    /* llama.cpp at a fixed batch: the total over the cells beyond one ubatch is piecewise linear, up to three
     * pieces (the compute buffer's max, the sliding layers' saturation): piece i from start[i] is
     * line_a[i] + line_b[i] x cells (vc_llamacpp_exact) */
    int pieces;
    double start[3], line_a[3], line_b[3];
    /* llama.cpp at a fixed context: the total as a line in the batch per (scores, saturated) configuration,
     * below the padding's and the ceilings' bytes (gap) of the truth (vc_llamacpp_exact_batch) */
    double bl0[4], bl1[4], bgap[4], binv[4];
    double bkink;       /* cells where the scores overtake the other compute rows (INFINITY: never) */
    int bcfg;           /* the configuration of large batches, tried first */
} vc_guess;
