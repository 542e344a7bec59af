/* Hand-written FMA throughput loop: the cross-check for perfledger's kernels::probe::fma_throughput.
 *
 * usage: fma KIND THREADS ITERATIONS REPS      KIND = zmm | ymm | xmm
 *
 *   zmm: 12 chains of `vfmadd213ps zmm` (AVX-512F), 16 lanes
 *   ymm: 12 chains of `vfmadd213ps ymm` (AVX2+FMA), 8 lanes
 *   xmm: 14 chains of SSE2 `mulps` + `addps`, 4 lanes (the x86-64 baseline has no FMA)
 *
 * Each loop iteration runs 4 rounds over all chains, then `dec`/`jnz`. Every chain is a named
 * register in the asm text, so no compiler can merge or drop them. a = a*m + c with m just below 1
 * keeps the values normal. THREADS pthreads start together at a barrier; a repetition's time runs
 * from the earliest start to the latest end; the best of REPS repetitions is reported.
 * FLOPs = threads * iterations * 4 * chains * lanes * 2.
 *
 * x86-64 only. Build: gcc -O2 -pthread fma.c -o fma
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#if !defined(__x86_64__)
int main(void) {
    fprintf(stderr, "fma.c: x86-64 only\n");
    return 2;
}
#else

/* One FMA on accumulator register R: R = R * v12 + v13 (AT&T operand order is reversed). */
#define F(V, R) "vfmadd213ps %%" V "13, %%" V "12, %%" V #R "\n\t"
#define ROUND12(V) F(V, 0) F(V, 1) F(V, 2) F(V, 3) F(V, 4) F(V, 5) F(V, 6) F(V, 7) F(V, 8) F(V, 9) F(V, 10) F(V, 11)
/* One SSE2 mul+add pair on accumulator register R: R = R * xmm14; R = R + xmm15. */
#define MA(R) "mulps %%xmm14, %%xmm" #R "\n\taddps %%xmm15, %%xmm" #R "\n\t"
#define ROUND14 MA(0) MA(1) MA(2) MA(3) MA(4) MA(5) MA(6) MA(7) MA(8) MA(9) MA(10) MA(11) MA(12) MA(13)

#define BCAST(V, K) "vbroadcastss " #K "*4(%[init]), %%" V #K "\n\t"
#define INIT12(V) BCAST(V, 0) BCAST(V, 1) BCAST(V, 2) BCAST(V, 3) BCAST(V, 4) BCAST(V, 5) \
    BCAST(V, 6) BCAST(V, 7) BCAST(V, 8) BCAST(V, 9) BCAST(V, 10) BCAST(V, 11)
#define STORE(V, K, W) "vmovups %%" V #K ", " #K "*" #W "(%[out])\n\t"
#define STORE12(V, W) STORE(V, 0, W) STORE(V, 1, W) STORE(V, 2, W) STORE(V, 3, W) STORE(V, 4, W) \
    STORE(V, 5, W) STORE(V, 6, W) STORE(V, 7, W) STORE(V, 8, W) STORE(V, 9, W) STORE(V, 10, W) STORE(V, 11, W)

static const float M = 0.999999f, C = 1e-6f;

__attribute__((target("avx512f"), noinline)) static void loop_zmm(long n, const float *init, float *out) {
    __asm__ volatile(
        "vbroadcastss %[m], %%zmm12\n\t"
        "vbroadcastss %[c], %%zmm13\n\t"
        INIT12("zmm")
        "1:\n\t"
        ROUND12("zmm") ROUND12("zmm") ROUND12("zmm") ROUND12("zmm")
        "dec %[n]\n\t"
        "jnz 1b\n\t"
        STORE12("zmm", 64)
        "vzeroupper\n\t"
        : [n] "+r"(n)
        : [m] "m"(M), [c] "m"(C), [init] "r"(init), [out] "r"(out)
        : "memory", "cc", "xmm0", "xmm1", "xmm2", "xmm3", "xmm4", "xmm5", "xmm6", "xmm7", "xmm8",
          "xmm9", "xmm10", "xmm11", "xmm12", "xmm13");
}

__attribute__((target("avx2,fma"), noinline)) static void loop_ymm(long n, const float *init, float *out) {
    __asm__ volatile(
        "vbroadcastss %[m], %%ymm12\n\t"
        "vbroadcastss %[c], %%ymm13\n\t"
        INIT12("ymm")
        "1:\n\t"
        ROUND12("ymm") ROUND12("ymm") ROUND12("ymm") ROUND12("ymm")
        "dec %[n]\n\t"
        "jnz 1b\n\t"
        STORE12("ymm", 32)
        "vzeroupper\n\t"
        : [n] "+r"(n)
        : [m] "m"(M), [c] "m"(C), [init] "r"(init), [out] "r"(out)
        : "memory", "cc", "xmm0", "xmm1", "xmm2", "xmm3", "xmm4", "xmm5", "xmm6", "xmm7", "xmm8",
          "xmm9", "xmm10", "xmm11", "xmm12", "xmm13");
}

/* SSE2: init holds 4 copies per chain (16 bytes each), m and c 4 copies each at init[56..64]. */
#define LD(K) "movups " #K "*16(%[init]), %%xmm" #K "\n\t"
#define ST(K) "movups %%xmm" #K ", " #K "*16(%[out])\n\t"
__attribute__((noinline)) static void loop_xmm(long n, const float *init, float *out) {
    __asm__ volatile(
        LD(0) LD(1) LD(2) LD(3) LD(4) LD(5) LD(6) LD(7) LD(8) LD(9) LD(10) LD(11) LD(12) LD(13)
        LD(14) LD(15)
        "1:\n\t"
        ROUND14 ROUND14 ROUND14 ROUND14
        "dec %[n]\n\t"
        "jnz 1b\n\t"
        ST(0) ST(1) ST(2) ST(3) ST(4) ST(5) ST(6) ST(7) ST(8) ST(9) ST(10) ST(11) ST(12) ST(13)
        : [n] "+r"(n)
        : [init] "r"(init), [out] "r"(out)
        : "memory", "cc", "xmm0", "xmm1", "xmm2", "xmm3", "xmm4", "xmm5", "xmm6", "xmm7", "xmm8",
          "xmm9", "xmm10", "xmm11", "xmm12", "xmm13", "xmm14", "xmm15");
}

struct job {
    int kind; /* 0 zmm, 1 ymm, 2 xmm */
    long iterations;
    pthread_barrier_t *barrier;
    struct timespec start, end;
    double checksum;
};

static void *worker(void *arg) {
    struct job *j = arg;
    float init[64], out[16 * 14];
    for (int k = 0; k < 14; k++)
        for (int l = 0; l < 4; l++) init[k * 4 + l] = 1.0f + (float)k / 16.0f;
    if (j->kind != 2) /* vbroadcastss layout: one float per chain */
        for (int k = 0; k < 12; k++) init[k] = 1.0f + (float)k / 16.0f;
    for (int l = 0; l < 4; l++) { init[56 + l] = M; init[60 + l] = C; }
    memset(out, 0, sizeof out);
    pthread_barrier_wait(j->barrier);
    clock_gettime(CLOCK_MONOTONIC, &j->start);
    if (j->kind == 0) loop_zmm(j->iterations, init, out);
    else if (j->kind == 1) loop_ymm(j->iterations, init, out);
    else loop_xmm(j->iterations, init, out);
    clock_gettime(CLOCK_MONOTONIC, &j->end);
    double s = 0;
    for (int i = 0; i < 16 * 14; i++) s += out[i];
    j->checksum = s;
    return NULL;
}

static double secs(struct timespec t) { return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec; }

int main(int argc, char **argv) {
    if (argc != 5) {
        fprintf(stderr, "usage: %s zmm|ymm|xmm THREADS ITERATIONS REPS\n", argv[0]);
        return 2;
    }
    int kind = !strcmp(argv[1], "zmm") ? 0 : !strcmp(argv[1], "ymm") ? 1 : !strcmp(argv[1], "xmm") ? 2 : -1;
    int threads = atoi(argv[2]), reps = atoi(argv[4]);
    long iterations = atol(argv[3]);
    if (kind < 0 || threads < 1 || iterations < 1 || reps < 1) {
        fprintf(stderr, "bad arguments\n");
        return 2;
    }
    if ((kind == 0 && !__builtin_cpu_supports("avx512f")) ||
        (kind == 1 && !(__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")))) {
        printf("fma kind=%s unsupported on this CPU\n", argv[1]);
        return 0;
    }
    int chains = kind == 2 ? 14 : 12, lanes = kind == 0 ? 16 : kind == 1 ? 8 : 4;
    double flops = (double)threads * (double)iterations * 4.0 * chains * lanes * 2.0;
    pthread_t *tid = calloc(threads, sizeof *tid);
    struct job *jobs = calloc(threads, sizeof *jobs);
    pthread_barrier_t barrier;
    double best = 1e300, checksum = 0;
    for (int r = 0; r < reps; r++) {
        pthread_barrier_init(&barrier, NULL, threads);
        for (int t = 0; t < threads; t++) {
            jobs[t] = (struct job){.kind = kind, .iterations = iterations, .barrier = &barrier};
            pthread_create(&tid[t], NULL, worker, &jobs[t]);
        }
        double t0 = 1e300, t1 = 0;
        for (int t = 0; t < threads; t++) {
            pthread_join(tid[t], NULL);
            if (secs(jobs[t].start) < t0) t0 = secs(jobs[t].start);
            if (secs(jobs[t].end) > t1) t1 = secs(jobs[t].end);
            checksum += jobs[t].checksum;
        }
        pthread_barrier_destroy(&barrier);
        printf("  rep %d: %.4f s  %.1f GFLOP/s\n", r, t1 - t0, flops / (t1 - t0) / 1e9);
        if (t1 - t0 < best) best = t1 - t0;
    }
    printf("fma kind=%s threads=%d chains=%d lanes=%d iterations=%ld reps=%d best_s=%.4f gflops=%.2f checksum=%.6g\n",
           argv[1], threads, chains, lanes, iterations, reps, best, flops / best / 1e9, checksum);
    free(tid);
    free(jobs);
    return 0;
}
#endif
