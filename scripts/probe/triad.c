/* Hand-written STREAM-style bandwidth check: the cross-check for perfledger's
 * kernels::probe::bandwidth. Written for perfledger (not the STREAM sources), same conventions:
 *
 *   read : s += a[i] + b[i] + c[i] over all three arrays      bytes = 3 * n * 8
 *   triad: a[i] = b[i] + q * c[i]                              bytes = 3 * n * 8 (STREAM counting:
 *          two arrays read, one written, the write-allocate read of a[] not counted)
 *
 * usage: triad ELEMENTS_PER_ARRAY REPS          (threads: OMP_NUM_THREADS)
 *
 * f64 arrays, 4 KiB aligned, first touched in parallel with the same static schedule the timed
 * loops use. Best of REPS repetitions, GB/s = 1e9 bytes/s.
 * Build: gcc -O3 -fopenmp [-mavx2] triad.c -o triad
 */
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>

int main(int argc, char **argv) {
    if (argc != 3) {
        fprintf(stderr, "usage: %s ELEMENTS_PER_ARRAY REPS\n", argv[0]);
        return 2;
    }
    long n = atol(argv[1]);
    int reps = atoi(argv[2]);
    if (n < 1 || reps < 1) return 2;
    size_t bytes = ((size_t)n * sizeof(double) + 4095) / 4096 * 4096;
    double *a = aligned_alloc(4096, bytes), *b = aligned_alloc(4096, bytes), *c = aligned_alloc(4096, bytes);
    if (!a || !b || !c) {
        fprintf(stderr, "allocation of 3 x %zu bytes failed\n", bytes);
        return 1;
    }
#pragma omp parallel for schedule(static)
    for (long i = 0; i < n; i++) {
        a[i] = 0.0;
        b[i] = 1.0 + (double)(i % 7) * 0.25;
        c[i] = 2.0 - (double)(i % 5) * 0.125;
    }
    const double q = 3.0;
    double best_read = 1e300, best_triad = 1e300, sum = 0;
    for (int r = 0; r < reps; r++) {
        double s = 0, t = omp_get_wtime();
#pragma omp parallel for simd schedule(static) reduction(+ : s)
        for (long i = 0; i < n; i++) s += a[i] + b[i] + c[i];
        t = omp_get_wtime() - t;
        sum += s;
        if (t < best_read) best_read = t;
    }
    for (int r = 0; r < reps; r++) {
        double t = omp_get_wtime();
#pragma omp parallel for simd schedule(static)
        for (long i = 0; i < n; i++) a[i] = b[i] + q * c[i];
        t = omp_get_wtime() - t;
        if (t < best_triad) best_triad = t;
    }
    for (long i = 0; i < n; i += n / 97 + 1)
        if (a[i] != b[i] + q * c[i]) {
            fprintf(stderr, "triad wrong at %ld\n", i);
            return 1;
        }
    double moved = 3.0 * (double)n * sizeof(double);
    printf("stream threads=%d elements=%ld bytes_per_array=%ld reps=%d read_s=%.5f read_gbs=%.2f "
           "triad_s=%.5f triad_gbs=%.2f checksum=%.6g\n",
           omp_get_max_threads(), n, n * (long)sizeof(double), reps, best_read, moved / best_read / 1e9,
           best_triad, moved / best_triad / 1e9, sum + a[n / 2]);
    free(a);
    free(b);
    free(c);
    return 0;
}
