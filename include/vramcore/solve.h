/*
 * vramcore/solve.h -- the inverse questions (largest context, largest batch) in
 * the kernel: a closed-form guess per engine (engines/<kind>.h), moved to the
 * exact integer answer by evaluating the forward formulas.
 */
#pragma once

#include <stddef.h>

#include "vramcore/engines.h"

VC_INLINE int vc_fits(const vc_plan *p, double context, double batch, double gpu_bytes, double large)
{
    int kind = (int)p->kind;
    if (kind == VC_ENGINE_TRANSFORMERS || kind == VC_ENGINE_LLAMACPP || kind == VC_ENGINE_TRAIN) {
        /* the same sums as vc_estimate_gpu, without the other outputs */
        vc_row q;
        vc_estimate_row(p, context, batch, &q);
        return q.total <= gpu_bytes
               && (p->max_model_len <= 0.0 || context <= p->max_model_len);
    }
    vc_result r;
    vc_estimate(p, context, batch, gpu_bytes, large, &r);
    return r.fits != 0.0;
}

/* ok(x) of the monotone question: `which` 0 = context x at fixed batch,
 * 1 = batch x at fixed context; ok(0) is true by convention. */
VC_INLINE int vc_ok(const vc_plan *p, double fixed, double x, double gpu_bytes, double large, int which)
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
    guess = vc_floor(vc_max(0.0, vc_min(guess, cap)));
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
        double mid = vc_floor((lo + hi) / 2.0);
        if (vc_ok(p, fixed, mid, gpu_bytes, large, which))
            lo = mid;
        else
            hi = mid;
    }
    return lo;
}

/* Closed forms of the largest context at `fixed` sequences (which = 0) or the
 * largest batch at `fixed` tokens (which = 1), prepared once per (row, engine). */
static inline void vc_prepare_guess(const vc_plan *p, double fixed, int which, vc_guess *s)
{
    int kind = (int)p->kind;
    s->simple = 1;
    s->cap_at = INFINITY;
    s->hi_scale = s->hi_shift = s->mult = s->slack = s->quad = s->hi_quad = 0.0;
    if (kind == VC_ENGINE_TRANSFORMERS) {
        vc_transformers_prepare_guess(p, fixed, which, s);
    } else if (kind == VC_ENGINE_LLAMACPP) {
        vc_llamacpp_prepare_guess(p, fixed, which, s);
    } else if (kind == VC_ENGINE_TRAIN) {
        vc_train_prepare_guess(p, fixed, which, s);
    } else {
        s->simple = 0;
        s->base = s->scale = s->shift = 0.0;
    }
}

/* The closed-form guess of transformers and training (llama.cpp's and the
 * budgeted engines' are made in vc_solve, where their exact forms cannot decide). */
VC_INLINE double vc_guess_at(const vc_plan *p, const vc_guess *s, double gpu_bytes)
{
    if ((int)p->kind == VC_ENGINE_TRANSFORMERS)
        return vc_transformers_guess_at(s, gpu_bytes);
    return vc_train_guess_at(s, gpu_bytes);
}

/* What a budgeted engine's pool is on one GPU, whatever the request: its
 * blocks, the verdict's bits that do not depend on the request (weights,
 * budget, max_model_len at start-up; vc_paged_request) and the scheduler's
 * token budget.  Prepared once per (plan, GPU) so that each context or batch
 * asked costs a few operations (vc_paged_answer). */
typedef struct {
    double blocks, reasons, ubatch, seq_cap;
} vc_pool;

/* the kernel lays pools out as 4 doubles each (_kernel.pyx, _POOL) */
typedef char vc_pool_is_4_doubles[sizeof(vc_pool) == 4 * sizeof(double) ? 1 : -1];

VC_INLINE void vc_paged_pool(const vc_plan *p, double gpu_bytes, double large, vc_pool *o)
{
    vc_cut c;
    vc_result r;
    vc_row q;
    vc_budgeted_cut(p, gpu_bytes, large, &c);
    vc_estimate_row(p, 1.0, 1.0, &q);
    vc_estimate_gpu_cut(p, &q, &c, 1.0, 1.0, gpu_bytes, &r);
    o->blocks = c.blocks;
    o->reasons = r.reasons;
    o->ubatch = c.a.ubatch;
    o->seq_cap = c.seq_cap;
}

/* The budgeted engines: the pool's blocks do not depend on the context or the
 * batch, and nothing else the verdict looks at changes with them, so the pool
 * gives the exact answer.  A request of x tokens takes need(x) = full_groups x
 * ceil(x / B) + sliding_groups x (ceil(min(W, x) / B) + 1) + its states'
 * blocks (vLLM's recurrent groups: state_blocks each, or max_model_len's, which
 * no answer exceeds) blocks, W = window - 1 + the scheduler's tokens
 * (vc_blocks_per_request); the forward's test blocks / need >= batch is need
 * <= floor(blocks / batch) while the blocks stay below 2^40 (the doubles'
 * quotients are then exact enough), and a hybrid model's state slots bound the
 * batch apart (vc_cut's seq_cap).  The answer is the largest x with need(x)
 * <= K on each side of W, or the largest batch floor(blocks / need(fixed)) (0
 * beyond max_model_len).  Returns -1 where this does not apply. */
VC_INLINE double vc_paged_answer(const vc_plan *p, const vc_pool *o, double fixed, double cap, int which)
{
    if (!(o->blocks < 1099511627776.0))
        return -1.0;
    if (((int)o->reasons & VC_WHY_BLOCKING & ~VC_WHY_KV_BELOW_BATCH) != 0)
        return 0.0;                 /* the weights, the budget or max_model_len: nothing fits */
    double B = p->block_size, fg = p->full_groups, sg = p->sliding_groups;
    double mml = p->max_model_len;
    if (which == 1) {
        if (mml > 0.0 && fixed > mml)
            return 0.0;             /* VC_WHY_CONTEXT_BEYOND_MAX_MODEL_LEN at any batch */
        double need = vc_blocks_per_request(p, fixed, o->ubatch);
        return need > 0.0 ? vc_min(vc_min(vc_floor(o->blocks / need), o->seq_cap), cap) : -1.0;
    }
    if (fixed > o->seq_cap)
        return 0.0;                 /* more sequences than the state slots */
    double cst = 0.0;               /* the states' blocks, the same for every answer */
    if (p->state_groups > 0.0) {
        if (p->state_blocks > 0.0)
            cst = p->state_groups * p->state_blocks;
        else if (mml > 0.0)
            cst = p->state_groups * vc_ceil_div(mml, B);
        else
            fg += p->state_groups;  /* ceil(x / B) each, as a full group's */
    }
    if (fg <= 0.0 && sg <= 0.0 && cst <= 0.0)
        return -1.0;
    double limit = vc_floor(mml > 0.0 ? vc_min(cap, mml) : cap);
    double K = vc_floor(o->blocks / fixed) - cst;
    if (K < 0.0)
        return 0.0;
    if (sg <= 0.0)                  /* full groups only: need = fg x ceil(x / B) */
        return fg > 0.0 ? vc_min(vc_floor(K / fg) * B, limit) : limit;
    double W = p->window - 1.0 + o->ubatch;
    double S = sg * (vc_ceil_div(W, B) + 1.0);     /* the sliding groups' blocks beyond W */
    if (fg <= 0.0 && S <= K)
        return limit;               /* the sliding groups saturate within the pool */
    double c = fg > 0.0 ? vc_floor((K - S) / fg) : -1.0;
    if (c >= 1.0 && c * B > W)
        return vc_min(c * B, limit);
    c = vc_floor((K - sg) / (fg + sg));            /* x <= W: need = (fg + sg) x ceil(x / B) + sg */
    return c >= 1.0 ? vc_min(vc_min(c * B, W), limit) : 0.0;
}

/* Largest context (which = 0, at `fixed` sequences) or batch (which = 1, at
 * `fixed` tokens) that fits, at most `cap`; 0 when nothing fits.  `pool`: the
 * budgeted engines' pool on this GPU (vc_paged_pool), or NULL. */
static inline double vc_solve(const vc_plan *p, const vc_guess *s, const vc_pool *pool, double fixed,
                              double gpu_bytes, double large, double cap, int which)
{
    double guess;
    if (vc_budgeted(p)) {
        /* the budgeted engines: the pool (prepared per GPU, else made here), maybe the answer itself */
        vc_pool own;
        if (pool == NULL) {
            vc_paged_pool(p, gpu_bytes, large, &own);
            pool = &own;
        }
        double answer = vc_paged_answer(p, pool, fixed, cap, which);
        if (answer >= 0.0)
            return answer;
        vc_result r;
        vc_estimate(p, which == 0 ? 1.0 : fixed, 1.0, gpu_bytes, large, &r);
        guess = vc_paged_guess_from(p, &r, fixed, cap, which);
    } else {
        /* the engines that refuse a context beyond max_model_len: nothing fits at such a fixed context, and no
         * answer goes beyond it */
        double mml = p->max_model_len > 0.0 ? p->max_model_len : INFINITY;
        if (which == 1 && fixed > mml)
            return 0.0;
        double limit = which == 0 ? vc_min(cap, mml) : cap;
        int kind = (int)p->kind;
        /* the exact answers from the closed forms alone, where the roundings cannot decide them */
        if (kind == VC_ENGINE_LLAMACPP && which == 0) {
            double exact = vc_llamacpp_exact(p, s, fixed, gpu_bytes, limit);
            if (exact >= 0.0)
                return exact;
        } else if (kind == VC_ENGINE_TRAIN) {
            double exact = vc_train_exact(s, gpu_bytes, limit);
            if (exact >= 0.0)
                return exact;
        }
        if (kind == VC_ENGINE_LLAMACPP && which == 1) {
            int undecided = 0;
            double n = vc_llamacpp_batch_at(p, s, s->bcfg, fixed, gpu_bytes, limit, &undecided);
            /* undecided: n fits and n + 2 does not, so one evaluation at n + 1 decides, as the search would */
            if (n >= 0.0)
                return undecided && vc_ok(p, fixed, n + 1.0, gpu_bytes, large, which) ? n + 1.0 : n;
        }
        if (kind == VC_ENGINE_LLAMACPP) {
            vc_guess lin = *s;          /* the linear guess, made here: the exact forms decide most cells */
            vc_llamacpp_prepare_linear(p, fixed, which, &lin);
            guess = vc_llamacpp_guess_at(&lin, fixed, gpu_bytes, cap);
            if (!(guess >= 0.0))
                guess = 0.0;
            if (which == 1 && lin.simple) {
                double exact = vc_llamacpp_exact_batch(p, s, fixed, gpu_bytes, limit, guess);
                if (exact >= 0.0)
                    return exact;
            }
        } else {
            guess = vc_guess_at(p, s, gpu_bytes);
        }
        if (!(guess >= 0.0))            /* also catches NaN */
            guess = 0.0;
        if (kind == VC_ENGINE_TRANSFORMERS && s->slack > 0.0) {
            /* the exact answer without evaluating the formulas: 0 when the line is above the memory at 1 by
             * more than the roundings; floor(guess) when the guess is further than the roundings (and its own
             * float error) from an integer, from the sliding cap and from the limits */
            double margin = s->slack + 1e-12 * (guess + s->shift + s->hi_shift + 1.0);
            if (guess < 1.0 - margin && s->cap_at > 2.0)
                return 0.0;
            double n = vc_floor(guess), frac = guess - n;
            if (guess > 1.0 && frac > margin && 1.0 - frac > margin && n + 1.0 < limit
                    && !(fabs(guess - s->cap_at) <= 1.0 + margin) && n < 4503599627370496.0)
                return n;
        }
    }
    if (!(guess >= 0.0))            /* also catches NaN */
        guess = 0.0;
    return vc_refine_max(p, fixed, guess, cap, gpu_bytes, large, which);
}

