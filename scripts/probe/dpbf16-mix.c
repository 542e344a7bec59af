/* What a `vdpbf16ps zmm` costs next to the operand loads and shuffles a decode score tile needs:
 * the cross-check behind the decode notes in BENCHMARKS.md ("Zen 4, ninth session").
 *
 * usage: dpbf16-mix [ITERATIONS]        (one thread; pin it with taskset for steadier numbers)
 *
 * Every variant runs 8 independent accumulator chains of `vdpbf16ps zmm` per iteration (distinct
 * starting values and all eight named in an asm barrier each iteration, so no compiler merges or
 * drops a chain; check with `objdump -d | grep -c vdpbf16ps`), and adds one kind of extra work:
 *
 *   reg         operands in registers (the floor: one instruction per cycle where the probe's
 *               vdpbf16ps ceiling is 64 FLOP per cycle)
 *   load512     each chain's K operand a full 64-byte load
 *   bcast32     a 32-bit broadcast from memory (`vpbroadcastd`)
 *   bcast128    a 128-bit broadcast from memory (`vbroadcasti32x4`)
 *   bcast256    a 256-bit broadcast from memory (`vbroadcasti64x4`)
 *   +4shufps    registers, plus 4 independent `vshufps zmm` per 8 vdpbf16ps
 *   +4unpck     registers, plus 4 `vpunpcklwd zmm`
 *   +4shuff32x4 registers, plus 4 `vshuff32x4 zmm`
 *   +8add       registers, plus 8 `vaddps zmm`
 *
 * Prints ns per vdpbf16ps; compare the variants with each other, measured in the same process.
 *
 * x86-64 with AVX512_BF16 only. Build: gcc -O2 -mavx512f -mavx512bw -mavx512vl -mavx512dq
 * -mavx512bf16 dpbf16-mix.c -o dpbf16-mix
 */
#include <immintrin.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}

/* Eight K rows of bf16 ones, L1-resident (8 x 1 KiB). */
static __attribute__((aligned(64))) uint16_t rows[8][512];

static inline int word(const uint16_t *p) {
    int x;
    memcpy(&x, p, sizeof x);
    return x;
}

enum { REG, LOAD512, BCAST32, BCAST128, BCAST256, SHUFPS, UNPCK, SHUFF, ADD8, NVAR };
static const char *names[NVAR] = {"reg",    "load512", "bcast32",    "bcast128", "bcast256",
                                  "+4shufps", "+4unpck", "+4shuff32x4", "+8add"};

#define DP8(K)                                                                                   \
    a0 = _mm512_dpbf16_ps(a0, K(0), q); a1 = _mm512_dpbf16_ps(a1, K(1), q);                      \
    a2 = _mm512_dpbf16_ps(a2, K(2), q); a3 = _mm512_dpbf16_ps(a3, K(3), q);                      \
    a4 = _mm512_dpbf16_ps(a4, K(4), q); a5 = _mm512_dpbf16_ps(a5, K(5), q);                      \
    a6 = _mm512_dpbf16_ps(a6, K(6), q); a7 = _mm512_dpbf16_ps(a7, K(7), q);

#define KREG(k) r
#define KLOAD(k) ((__m512bh)_mm512_loadu_si512(&rows[k][(i & 7) * 32]))
#define KB32(k) ((__m512bh)_mm512_set1_epi32(word(&rows[k][(i & 63) * 8])))
#define KB128(k) ((__m512bh)_mm512_broadcast_i32x4(_mm_loadu_si128((const __m128i *)&rows[k][(i & 63) * 8])))
#define KB256(k) ((__m512bh)_mm512_broadcast_i64x4(_mm256_loadu_si256((const __m256i *)&rows[k][(i & 31) * 16])))

int main(int argc, char **argv) {
    long n = argc > 1 ? atol(argv[1]) : 20000000;
    for (int k = 0; k < 8; k++)
        for (int j = 0; j < 512; j++) rows[k][j] = 0x3f80;
    __m512bh q = (__m512bh)_mm512_set1_epi16(0x3f80), r = (__m512bh)_mm512_set1_epi16(0x3f81);
    __m512 y = _mm512_set1_ps(1e-9f);
    double check = 0;
    for (int v = 0; v < NVAR; v++) {
        __m512 a0 = _mm512_set1_ps(0), a1 = _mm512_set1_ps(1), a2 = _mm512_set1_ps(2),
               a3 = _mm512_set1_ps(3), a4 = _mm512_set1_ps(4), a5 = _mm512_set1_ps(5),
               a6 = _mm512_set1_ps(6), a7 = _mm512_set1_ps(7);
        __m512 x0 = _mm512_set1_ps(1), x1 = _mm512_set1_ps(2), x2 = _mm512_set1_ps(3),
               x3 = _mm512_set1_ps(4);
        double t = now();
        for (long i = 0; i < n; i++) {
            switch (v) {
            case LOAD512: DP8(KLOAD) break;
            case BCAST32: DP8(KB32) break;
            case BCAST128: DP8(KB128) break;
            case BCAST256: DP8(KB256) break;
            default: DP8(KREG) break;
            }
            if (v == SHUFPS) {
                x0 = _mm512_shuffle_ps(x0, y, 0x1b); x1 = _mm512_shuffle_ps(x1, y, 0x1b);
                x2 = _mm512_shuffle_ps(x2, y, 0x1b); x3 = _mm512_shuffle_ps(x3, y, 0x1b);
            } else if (v == UNPCK) {
                x0 = (__m512)_mm512_unpacklo_epi16((__m512i)x0, (__m512i)y);
                x1 = (__m512)_mm512_unpacklo_epi16((__m512i)x1, (__m512i)y);
                x2 = (__m512)_mm512_unpacklo_epi16((__m512i)x2, (__m512i)y);
                x3 = (__m512)_mm512_unpacklo_epi16((__m512i)x3, (__m512i)y);
            } else if (v == SHUFF) {
                x0 = _mm512_shuffle_f32x4(x0, y, 0x39); x1 = _mm512_shuffle_f32x4(x1, y, 0x39);
                x2 = _mm512_shuffle_f32x4(x2, y, 0x39); x3 = _mm512_shuffle_f32x4(x3, y, 0x39);
            } else if (v == ADD8) {
                x0 = _mm512_add_ps(x0, y); x1 = _mm512_add_ps(x1, y);
                x2 = _mm512_add_ps(x2, y); x3 = _mm512_add_ps(x3, y);
                x0 = _mm512_add_ps(x0, y); x1 = _mm512_add_ps(x1, y);
                x2 = _mm512_add_ps(x2, y); x3 = _mm512_add_ps(x3, y);
            }
            __asm__ volatile("" ::"v"(a0), "v"(a1), "v"(a2), "v"(a3), "v"(a4), "v"(a5), "v"(a6),
                             "v"(a7), "v"(r), "v"(x0), "v"(x1), "v"(x2), "v"(x3), "v"(y));
        }
        double dt = now() - t;
        float s[16];
        __m512 sum = _mm512_add_ps(_mm512_add_ps(_mm512_add_ps(a0, a1), _mm512_add_ps(a2, a3)),
                                   _mm512_add_ps(_mm512_add_ps(a4, a5), _mm512_add_ps(a6, a7)));
        _mm512_storeu_ps(s, _mm512_add_ps(sum, _mm512_add_ps(_mm512_add_ps(x0, x1), _mm512_add_ps(x2, x3))));
        check += s[0];
        printf("%-12s %.3f ns per vdpbf16ps\n", names[v], dt / n / 8 * 1e9);
    }
    printf("(checksum %g)\n", check);
    return 0;
}
