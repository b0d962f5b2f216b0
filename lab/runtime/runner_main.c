/* rt3lab runner: the engine (engine.c, compiled in with this file) and a command line.
 *
 *   rt3lab-runner EXPORT_DIR --set NAME [--runs N] [--warmup W] [--tokens N | --ids 1,2,3]
 *                 [--switch-to OTHER] [--logits FILE] [--threads N]
 *
 * Runs the set on a token sequence N times and prints one JSON object: per-run latency (ms),
 * median, the logits' checksum and first values, the thread count, and with --switch-to the
 * median time of a switch between the two sets. --logits writes the logits as little-endian
 * float32 (tokens x vocab). --threads N (1..256, default 1) runs the engine's pool of N
 * threads, this one included and pinned to the first CPU of the process's affinity mask (as
 * `taskset` left it), the workers to the next. A bad export or argument: one line on stderr,
 * exit 2, before any work.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef struct rt3e_model rt3e_model;
rt3e_model *rt3e_open(const char *dir, char *err, int errlen);
void rt3e_close(rt3e_model *m);
int rt3e_find(const rt3e_model *m, const char *name);
int rt3e_select(rt3e_model *m, int i);
int64_t rt3e_vocab(const rt3e_model *m);
int rt3e_forward(rt3e_model *m, const int64_t *tokens, int64_t T, float *logits, char *err,
                 int errlen);
int rt3e_set_threads(rt3e_model *m, int n, char *err, int errlen);
int rt3e_pin_caller(rt3e_model *m);

static double now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static int cmp(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median(double *v, int n) {
    qsort(v, (size_t)n, sizeof *v, cmp);
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

static int usage(const char *why) {
    fprintf(stderr, "rt3lab-runner: error: %s\n", why);
    return 2;
}

static int count(const char *s, long lo, long hi, long *out) {
    char *end;
    long v = strtol(s, &end, 10);
    if (!*s || *end || v < lo || v > hi) return -1;
    *out = v;
    return 0;
}

int main(int argc, char **argv) {
    const char *dir = NULL, *set = NULL, *other = NULL, *ids = NULL, *dump = NULL;
    long runs = 10, warmup = 2, ntok = 35, threads = 1;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (a[0] != '-') {
            if (dir) return usage("one export directory expected");
            dir = a;
            continue;
        }
        if (!v) return usage("an option lacks its value");
        i++;
        if (!strcmp(a, "--set")) set = v;
        else if (!strcmp(a, "--switch-to")) other = v;
        else if (!strcmp(a, "--ids")) ids = v;
        else if (!strcmp(a, "--logits")) dump = v;
        else if (!strcmp(a, "--runs")) {
            if (count(v, 1, 1000000, &runs)) return usage("--runs: expected 1..1000000");
        } else if (!strcmp(a, "--warmup")) {
            if (count(v, 0, 1000000, &warmup)) return usage("--warmup: expected 0..1000000");
        } else if (!strcmp(a, "--tokens")) {
            if (count(v, 1, 1 << 20, &ntok)) return usage("--tokens: expected 1..1048576");
        } else if (!strcmp(a, "--threads")) {
            if (count(v, 1, 256, &threads)) return usage("--threads: expected 1..256");
        } else {
            return usage("unknown option (see the header of runner_main.c)");
        }
    }
    if (!dir || !set) return usage("usage: rt3lab-runner EXPORT_DIR --set NAME [--runs N]");
    char err[512] = "";
    rt3e_model *m = rt3e_open(dir, err, sizeof err);
    if (!m) return usage(err);
    int si = rt3e_find(m, set), oi = other ? rt3e_find(m, other) : -2;
    if (si == -2) return rt3e_close(m), usage("--set: no such set in the export");
    if (other && oi == -2) return rt3e_close(m), usage("--switch-to: no such set in the export");
    const int64_t V = rt3e_vocab(m);
    int64_t *tokens = NULL;
    if (ids) {
        ntok = 1;
        for (const char *c = ids; *c; c++) ntok += *c == ',';
        tokens = malloc(sizeof(int64_t) * (size_t)ntok);
        const char *c = ids;
        for (long t = 0; tokens && t < ntok; t++) {
            char *end;
            long long v = strtoll(c, &end, 10);
            if (end == c || (*end && *end != ',') || v < 0 || v >= V)
                return free(tokens), rt3e_close(m), usage("--ids: expected token ids in the vocabulary");
            tokens[t] = v;
            c = *end ? end + 1 : end;
        }
    } else {
        tokens = malloc(sizeof(int64_t) * (size_t)ntok);
        for (long t = 0; tokens && t < ntok; t++) tokens[t] = (int64_t)((t * 7919 + 13) % V);
    }
    float *logits = malloc(sizeof(float) * (size_t)(ntok * V));
    double *times = malloc(sizeof(double) * (size_t)(runs > 1001 ? runs : 1001));
    if (!tokens || !logits || !times) return usage("out of memory");
    if (rt3e_set_threads(m, (int)threads, err, sizeof err)) return usage(err);
    if (threads > 1 && rt3e_pin_caller(m)) return usage("threads: cannot restart the workers pinned");
    rt3e_select(m, si);
    for (long w = 0; w < warmup; w++)
        if (rt3e_forward(m, tokens, ntok, logits, err, sizeof err)) return usage(err);
    printf("{\"set\": \"%s\", \"tokens\": %ld, \"threads\": %ld, \"runs_ms\": [", set, ntok,
           threads);
    for (long r = 0; r < runs; r++) {
        double t0 = now_ms();
        if (rt3e_forward(m, tokens, ntok, logits, err, sizeof err)) return usage(err);
        times[r] = now_ms() - t0;
        printf("%s%.6f", r ? ", " : "", times[r]);
    }
    printf("], \"median_ms\": %.6f", median(times, (int)runs));
    double sum = 0;
    for (int64_t i = 0; i < ntok * V; i++) sum += logits[i];
    printf(", \"checksum\": %.9g, \"first_logits\": [", sum);
    for (int64_t i = 0; i < (V < 8 ? V : 8); i++) printf("%s%.9g", i ? ", " : "", logits[i]);
    printf("]");
    if (dump) {
        FILE *f = fopen(dump, "wb");
        if (!f || fwrite(logits, sizeof(float), (size_t)(ntok * V), f) != (size_t)(ntok * V))
            return usage("--logits: cannot write the file");
        fclose(f);
    }
    if (other) {
        /* a switch and the first inference after it: selecting is one store, timed as pairs
         * of switches (there and back) to stay above the clock's resolution */
        const int n = 1001;
        for (int k = 0; k < n; k++) {
            double t0 = now_ms();
            rt3e_select(m, oi);
            rt3e_select(m, si);
            times[k] = (now_ms() - t0) / 2;
        }
        double sw = median(times, n);
        rt3e_select(m, oi);
        double t0 = now_ms();
        if (rt3e_forward(m, tokens, ntok, logits, err, sizeof err)) return usage(err);
        printf(", \"switch_to\": \"%s\", \"switch_ms\": %.9f, \"first_after_switch_ms\": %.6f",
               other, sw, now_ms() - t0);
    }
    printf("}\n");
    free(tokens), free(logits), free(times);
    rt3e_close(m);
    return 0;
}
