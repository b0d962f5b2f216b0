/* rt3lab's native block-column kernel: y = x W^T + b for a weight pruned in blocks of 32
 * output rows ("block-rows") that each keep their own subset of input columns.
 *
 * Block-row b multiplies the entries start[b] .. end[b]-1 of a packed weight w (one row of
 * 32 floats per kept (block-row, column) pair; cols[j] is that pair's input column) with the
 * matching input columns. The input column is read inside the multiply loop, so nothing is
 * gathered beforehand, and every block-row writes its 32 outputs straight into row-major y:
 * no padding to a bucket's widest block-row, no gathered copies, no reordering afterwards.
 * Several pattern sets can share one packed weight: each passes its own cols (an index equal
 * to the input width reads a zero column the caller appends) and end.
 *
 * Registers hold a tile of ROWS tokens x 32 outputs; the tile height suits the register file
 * (32 vector registers with AVX-512, 16 otherwise). Built by lab/runtime/native.py with the
 * host's compiler (-O3 -march=native); the Python side checks every shape and dtype first.
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

typedef float v8 __attribute__((vector_size(32)));

static inline v8 load8(const float *p) {
    v8 v;
    memcpy(&v, p, sizeof v);
    return v;
}

static inline void store8(float *p, v8 v) { memcpy(p, &v, sizeof v); }

/* One tile: R consecutive tokens (rows of x and y) of one block-row. */
#define TILE(R)                                                                              \
    static void tile_##R(const float *x, int64_t ldx, const int32_t *cols, const float *w,   \
                         int64_t j0, int64_t j1, const float *bias, float *y, int64_t ldy) { \
        v8 acc[R][4];                                                                        \
        for (int r = 0; r < R; r++)                                                          \
            for (int q = 0; q < 4; q++)                                                      \
                acc[r][q] = bias ? load8(bias + 8 * q) : (v8){0};                            \
        for (int64_t j = j0; j < j1; j++) {                                                  \
            const float *wj = w + 32 * j;                                                    \
            const v8 w0 = load8(wj), w1 = load8(wj + 8), w2 = load8(wj + 16),                \
                     w3 = load8(wj + 24);                                                    \
            const int64_t c = cols[j];                                                       \
            for (int r = 0; r < R; r++) {                                                    \
                const float s = x[r * ldx + c];                                              \
                const v8 xs = {s, s, s, s, s, s, s, s};                                      \
                acc[r][0] += xs * w0;                                                        \
                acc[r][1] += xs * w1;                                                        \
                acc[r][2] += xs * w2;                                                        \
                acc[r][3] += xs * w3;                                                        \
            }                                                                                \
        }                                                                                    \
        for (int r = 0; r < R; r++)                                                          \
            for (int q = 0; q < 4; q++) store8(y + r * ldy + 8 * q, acc[r][q]);              \
    }

TILE(6)
TILE(2)

/* One token: four accumulators alone would wait on the FMA latency, so even and odd
 * entries accumulate apart and are summed at the end. */
static void tile_1(const float *x, int64_t ldx, const int32_t *cols, const float *w, int64_t j0,
                   int64_t j1, const float *bias, float *y, int64_t ldy) {
    (void)ldx;
    (void)ldy;
    v8 a[4], e[4];
    for (int q = 0; q < 4; q++) {
        a[q] = bias ? load8(bias + 8 * q) : (v8){0};
        e[q] = (v8){0};
    }
    int64_t j = j0;
    for (; j + 1 < j1; j += 2) {
        const float *wa = w + 32 * j, *wb = wa + 32;
        const float sa = x[cols[j]], sb = x[cols[j + 1]];
        const v8 xa = {sa, sa, sa, sa, sa, sa, sa, sa}, xb = {sb, sb, sb, sb, sb, sb, sb, sb};
        for (int q = 0; q < 4; q++) {
            a[q] += xa * load8(wa + 8 * q);
            e[q] += xb * load8(wb + 8 * q);
        }
    }
    if (j < j1) {
        const float s = x[cols[j]];
        const v8 xs = {s, s, s, s, s, s, s, s};
        for (int q = 0; q < 4; q++) a[q] += xs * load8(w + 32 * j + 8 * q);
    }
    for (int q = 0; q < 4; q++) store8(y + 8 * q, a[q] + e[q]);
}

#if defined(__AVX512F__)
#define MAIN_ROWS 6
#define tile_main tile_6
#else
#define MAIN_ROWS 2
#define tile_main tile_2
#endif

/* x: (T, ldx) row-major; y: (T, ldy) row-major with ldy >= 32 * n_block_rows; bias: 32 per
 * block-row, or NULL. Block-rows are split over `threads` OpenMP threads when built with it. */
void rt3lab_block_column_forward(const float *x, int64_t T, int64_t ldx, const int64_t *start,
                                 const int64_t *end, const int32_t *cols, const float *w,
                                 const float *bias, float *y, int64_t ldy, int64_t n_block_rows,
                                 int64_t threads) {
    (void)threads;
#pragma omp parallel for num_threads(threads) schedule(static) if (threads > 1)
    for (int64_t b = 0; b < n_block_rows; b++) {
        const float *bb = bias ? bias + 32 * b : NULL;
        const int64_t j0 = start[b], j1 = end[b];
        int64_t t = 0;
        for (; t + MAIN_ROWS <= T; t += MAIN_ROWS)
            tile_main(x + t * ldx, ldx, cols, w, j0, j1, bb, y + t * ldy + 32 * b, ldy);
        for (; t + 2 <= T; t += 2)
            tile_2(x + t * ldx, ldx, cols, w, j0, j1, bb, y + t * ldy + 32 * b, ldy);
        if (t < T) tile_1(x + t * ldx, ldx, cols, w, j0, j1, bb, y + t * ldy + 32 * b, ldy);
    }
}

int rt3lab_block_column_abi(void) { return 1; }
