/* The compiled phase of integrate-and-fire units: see spike_kernel.py.
 *
 * This file instantiates its body twice, for float (suffix _f32) and double
 * (_f64), by including itself.  Arrays are sample-major, (batch, n) in row order.
 */
#ifndef REAL

#include <stdint.h>
#include <string.h>
#if defined(__AVX512F__)
#include <immintrin.h>
#define COMPRESS 1
#endif

typedef struct {
    int64_t pre_start, pre_end, post_start, post_end, offset;
} pathway;

#define REAL float
#define NAME(x) x##_f32
#define SINGLE 1
#include "spike_kernel.c"
#undef REAL
#undef NAME
#undef SINGLE

#define REAL double
#define NAME(x) x##_f64
#define SINGLE 0
#include "spike_kernel.c"
#undef REAL
#undef NAME
#undef SINGLE

#else /* the body, once per REAL */

#ifdef COMPRESS
#if SINGLE
#define LANES 16
#define VEC __m512
#define MASK __mmask16
#define LOAD(m, p) _mm512_maskz_loadu_ps(m, p)
#define STORE(p, m, v) _mm512_mask_storeu_ps(p, m, v)
#define ADD(a, b) _mm512_add_ps(a, b)
#define MUL(a, b) _mm512_mul_ps(a, b)
#define MAX(a, b) _mm512_max_ps(a, b)
#define MIN(a, b) _mm512_min_ps(a, b)
#define SET1(x) _mm512_set1_ps(x)
#define AT_LEAST(a, b) _mm512_cmp_ps_mask(a, b, _CMP_GE_OQ)
#define MASK_SUB(a, m, b, c) _mm512_mask_sub_ps(a, m, b, c)
#define MASK_ADD(a, m, b, c) _mm512_mask_add_ps(a, m, b, c)
#define ONES_AT(m, one) _mm512_maskz_mov_ps(m, one)
#define NONZERO(m, p) \
    _mm512_mask_cmp_ps_mask(m, _mm512_maskz_loadu_ps(m, p), _mm512_setzero_ps(), _CMP_NEQ_UQ)
#else
#define LANES 8
#define VEC __m512d
#define MASK __mmask8
#define LOAD(m, p) _mm512_maskz_loadu_pd(m, p)
#define STORE(p, m, v) _mm512_mask_storeu_pd(p, m, v)
#define ADD(a, b) _mm512_add_pd(a, b)
#define MUL(a, b) _mm512_mul_pd(a, b)
#define MAX(a, b) _mm512_max_pd(a, b)
#define MIN(a, b) _mm512_min_pd(a, b)
#define SET1(x) _mm512_set1_pd(x)
#define AT_LEAST(a, b) _mm512_cmp_pd_mask(a, b, _CMP_GE_OQ)
#define MASK_SUB(a, m, b, c) _mm512_mask_sub_pd(a, m, b, c)
#define MASK_ADD(a, m, b, c) _mm512_mask_add_pd(a, m, b, c)
#define ONES_AT(m, one) _mm512_maskz_mov_pd(m, one)
#define NONZERO(m, p) \
    _mm512_mask_cmp_pd_mask(m, _mm512_maskz_loadu_pd(m, p), _mm512_setzero_pd(), _CMP_NEQ_UQ)
#endif
/* the lanes of a block that holds `left` more elements: all, or the first `left` */
#define FIRST(left) ((left) >= LANES ? (MASK)-1 : (MASK)((1u << (left)) - 1))
#endif

/* The indices of the units of pre[0:n] that fired, into idx (room for n + 16). */
static int64_t NAME(spiking_units)(const REAL *restrict pre, int64_t n, int32_t *restrict idx)
{
    int64_t m = 0, j = 0;
#ifdef COMPRESS
    /* a mask of the units that fired, and their indices packed to the front of a
     * vector: no branch per unit, where a branch per spike costs a misprediction
     * (doubles: 8 lanes, the mask's upper half 0) */
    __m512i ids = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
    const __m512i step = _mm512_set1_epi32(LANES);
    for (; j < n; j += LANES) {
        const MASK valid = FIRST(n - j);  /* the last block reads only units that exist */
        const MASK k = NONZERO(valid, pre + j);
        _mm512_storeu_si512((void *)(idx + m), _mm512_maskz_compress_epi32((__mmask16)k, ids));
        m += __builtin_popcount((unsigned)k);
        ids = _mm512_add_epi32(ids, step);
    }
#else
    for (; j < n; j++) {
        idx[m] = (int32_t)j;
        m += pre[j] != 0;
    }
#endif
    return m;
}

/* Step 5 for one sample: each spike adds its row of weights to the currents it reaches,
 * in the order of the units that fired (Brian2's order: the same roundings). */
static void NAME(propagate_sample)(REAL *restrict current, const REAL *restrict fired,
                                   int64_t n_pathways, const pathway *pathways,
                                   const REAL *restrict weights, int32_t *restrict idx)
{
    for (int64_t k = 0; k < n_pathways; k++) {
        const pathway p = pathways[k];
        const int64_t n_post = p.post_end - p.post_start;
        const int64_t m = NAME(spiking_units)(fired + p.pre_start, p.pre_end - p.pre_start, idx);
        if (m == 0)
            continue;
        REAL *restrict post = current + p.post_start;
        const REAL *restrict block = weights + p.offset;
#ifdef COMPRESS
        /* a vector of currents stays in a register while every spike adds to it */
        for (int64_t c = 0; c < n_post; c += LANES) {
            const MASK lanes = FIRST(n_post - c);
            VEC sum = LOAD(lanes, post + c);
            for (int64_t q = 0; q < m; q++)
                sum = ADD(sum, LOAD(lanes, block + (int64_t)idx[q] * n_post + c));
            STORE(post + c, lanes, sum);
        }
#else
        for (int64_t q = 0; q < m; q++) {
            /* a unit fires at most once per step: its row enters once */
            const REAL *restrict row = block + (int64_t)idx[q] * n_post;
            for (int64_t i = 0; i < n_post; i++)
                post[i] += row[i];
        }
#endif
    }
}

void NAME(propagate)(int64_t batch, int64_t n, REAL *current, const REAL *fired,
                     int64_t n_pathways, const int64_t *pathways, const REAL *weights)
{
    int32_t idx[n + 16];
    for (int64_t b = 0; b < batch; b++)
        NAME(propagate_sample)(current + b * n, fired + b * n, n_pathways,
                               (const pathway *)pathways, weights, idx);
}

/* Steps 1-3 of one sample without leak or refractoriness. */
static void NAME(advance_plain)(int64_t n, REAL *restrict s, REAL *restrict current,
                                REAL *restrict membrane, REAL *restrict fired,
                                REAL *restrict count, const REAL *restrict drive,
                                const REAL *restrict decay, REAL h, REAL current_decay,
                                REAL membrane_drive, REAL threshold)
{
#ifdef COMPRESS
    /* the loop below by hand: the compiler's version blends where these take a max,
     * a min and masked operations; the same operations in the same order */
    const VEC h_ = SET1(h), decay_c = SET1(current_decay), drive_v = SET1(membrane_drive);
    const VEC theta = SET1(threshold), zero = SET1(0), one = SET1(1);
    for (int64_t i = 0; i < n; i += LANES) {
        const MASK in = FIRST(n - i);
        const VEC old = LOAD(in, s + i), c = LOAD(in, current + i);
        VEC next = ADD(LOAD(in, drive + i), MUL(h_, c));
        next = ADD(next, MUL(LOAD(in, decay + i), old));
        /* max(0, x) and min(1, x) return x where x is NaN or a zero of either sign,
         * as the ternaries of the portable loop do */
        STORE(s + i, in, MIN(one, MAX(zero, next)));
        STORE(current + i, in, MUL(c, decay_c));
        const VEC v = ADD(LOAD(in, membrane + i), MUL(drive_v, old));
        const MASK z = AT_LEAST(v, theta) & in;
        STORE(membrane + i, in, MASK_SUB(v, z, v, theta));
        STORE(fired + i, in, ONES_AT(z, one));
        if (count) {
            const VEC k = LOAD(in, count + i);
            STORE(count + i, in, MASK_ADD(k, z, k, one));
        }
    }
#else
    for (int64_t i = 0; i < n; i++) {
        const REAL old = s[i];
        REAL next = drive[i] + h * current[i];
        next = next + decay[i] * old;
        next = next < 0 ? 0 : next;
        s[i] = next > 1 ? 1 : next;
        current[i] = current[i] * current_decay;
        const REAL v = membrane[i] + membrane_drive * old;
        const REAL z = v >= threshold ? 1 : 0;
        membrane[i] = v - threshold * z;
        fired[i] = z;
        if (count)
            count[i] += z;
    }
#endif
}

/* Steps 1-3 of one sample with leak and refractoriness. */
static void NAME(advance)(int64_t n, REAL *restrict s, REAL *restrict current,
                          REAL *restrict membrane, REAL *restrict left, REAL *restrict fired,
                          REAL *restrict count, const REAL *restrict drive,
                          const REAL *restrict decay, REAL h, REAL current_decay,
                          REAL membrane_drive, REAL leak, REAL refractory_steps,
                          REAL threshold)
{
    for (int64_t i = 0; i < n; i++) {
        const REAL old = s[i];
        REAL next = drive[i] + h * current[i];
        next = next + decay[i] * old;
        next = next < 0 ? 0 : next;
        s[i] = next > 1 ? 1 : next;
        current[i] = current[i] * current_decay;
        REAL change = old * membrane_drive;
        change = change - leak * membrane[i];
        REAL v, z;
        if (left) {
            /* Brian2 holds the membrane until the period's steps have passed since the
             * spike, which set `left` to that number */
            if (left[i] > 1)
                change = 0;
            const REAL rest = left[i] - 1;
            left[i] = rest > 0 ? rest : 0;
        }
        v = membrane[i] + change;
        v = v > 0 ? v : 0;
        z = v >= threshold ? 1 : 0;
        if (left) {
            if (left[i] > 0)
                z = 0;
            left[i] = left[i] + refractory_steps * z;
        }
        membrane[i] = v - threshold * z;
        fired[i] = z;
        if (count)
            count[i] += z;
    }
}

void NAME(phase)(int64_t batch, int64_t n, REAL *s, REAL *current, REAL *membrane, REAL *count,
                 REAL *trace, REAL *left, REAL *fired, const REAL *drive, const REAL *decay,
                 int64_t n_pathways, const int64_t *pathways, const REAL *weights, double h,
                 double current_decay, double trace_decay, double trace_jump,
                 double membrane_drive, double leak, double refractory_steps,
                 double threshold, int64_t steps, int64_t window_at, int64_t propagate_last)
{
    const REAL h_ = (REAL)h, current_decay_ = (REAL)current_decay;
    const REAL trace_decay_ = (REAL)trace_decay, trace_jump_ = (REAL)trace_jump;
    const REAL membrane_drive_ = (REAL)membrane_drive, leak_ = (REAL)leak;
    const REAL refractory_ = (REAL)refractory_steps, threshold_ = (REAL)threshold;
    const int plain = leak == 0 && !left;
    int32_t idx[n + 16];
    for (int64_t b = 0; b < batch; b++) {
        const int64_t o = b * n;
        REAL *s_b = s + o, *c_b = current + o, *v_b = membrane + o, *z_b = fired + o;
        REAL *count_b = count ? count + o : 0, *trace_b = trace ? trace + o : 0;
        REAL *left_b = left ? left + o : 0;
        for (int64_t step = 0; step < steps; step++) {
            if (count_b && step == window_at)
                memset(count_b, 0, (size_t)n * sizeof(REAL));
            if (plain)
                NAME(advance_plain)(n, s_b, c_b, v_b, z_b, count_b, drive + o, decay + o, h_,
                                    current_decay_, membrane_drive_, threshold_);
            else
                NAME(advance)(n, s_b, c_b, v_b, left_b, z_b, count_b, drive + o, decay + o,
                              h_, current_decay_, membrane_drive_, leak_, refractory_,
                              threshold_);
            if (trace_b)
                for (int64_t i = 0; i < n; i++)
                    trace_b[i] = trace_b[i] * trace_decay_ + trace_jump_ * z_b[i];
            if (propagate_last || step < steps - 1)
                NAME(propagate_sample)(c_b, z_b, n_pathways, (const pathway *)pathways,
                                       weights, idx);
        }
    }
}

#ifdef COMPRESS
#undef LANES
#undef VEC
#undef MASK
#undef LOAD
#undef STORE
#undef ADD
#undef MUL
#undef MAX
#undef MIN
#undef SET1
#undef AT_LEAST
#undef MASK_SUB
#undef MASK_ADD
#undef ONES_AT
#undef NONZERO
#undef FIRST
#endif

#endif
