/* rt3lab's native engine: the whole forward pass of RT3's Transformer LM, every pattern set of
 * a bundle in one process, loaded from an export directory (lab/runtime/export.py).
 *
 * Portable C99 plus GCC/Clang vector types (no intrinsics), fp32. The same source runs on the
 * host through ctypes (lab/runtime/engine.py) and, with runner_main.c, as the standalone
 * runner cross-built for phones and boards.
 *
 * Where the time goes (quick demo bundle, 35 tokens, 1 thread): the block-row kernel
 * (tile32) is most of it; a sparse block-row costs what a dense one does per kept column
 * (its stores, one tile's fixed cost, are whole registers). What does not shrink with
 * sparsity (attention, its softmax, residual adds, layer norms, embedding) is under a
 * tenth of the dense forward pass; it bounds a set's speedup (Amdahl) below its FLOP limit.
 *
 * Layout: every Linear's weight is stored once, blocked by its block height B: block-row b
 * holds, for each input column c, the B weights of output rows bB..bB+B-1 (zero-padded past
 * the last row). A pattern set is, per layer, an index table: offsets (one per block-row,
 * plus one) into a list of kept input columns. Block-row b multiplies only its kept columns;
 * a layer a set does not prune runs every column ("dense"). Switching sets selects another
 * set's tables: no weight is copied or touched.
 *
 * The export is untrusted: the loader checks the header's fields, every array's dtype, shape,
 * size, offset and SHA-256, every index against its layer, before anything runs.
 *
 * The SHA-256 of the data file is checked once per export, not on every start (a runner
 * process per measurement re-hashed 170 MB at DistilBERT size): after a full check, the
 * loader writes `arrays.bin.verified` beside it, naming the header's own SHA-256 and the
 * data file's identity (size, mtime, ctime, inode, device, from fstat of the descriptor it
 * read, before and after reading). A later open whose header and identity match skips the
 * hashing; everything else (fields, shapes, offsets, indices) is checked every time. ctime
 * cannot be set by user code: any write to the file, and any utime that puts its mtime back,
 * sets it to the current time, so changed bytes never match the stamp. The stamp is written
 * only once the file's ctime is STAMP_MIN_AGE_S old: file times come from a coarse clock
 * (one tick, up to 10 ms), and a write within the same tick as the one stamped could keep
 * ctime (git's "racily clean" problem). Linux only; elsewhere every open hashes. A stamp
 * guards against changed or corrupt bytes, not against a writer of the directory, who can
 * rewrite the header's digests as well.
 *
 * Threads (rt3e_set_threads): a pool of n - 1 worker threads, created once per engine (and
 * again only when the count changes); the caller is the n-th. A library caller (Python) is
 * a thread the engine does not place, so its workers are left to the scheduler too: pinned
 * to CPUs of their own, a worker kept its CPU while the scheduler put the caller on that
 * same CPU (woken there by the worker's signal) for about a third of a 2-thread bench, and
 * two threads ran as one. rt3e_pin_caller (the runner, a process of its own) pins all of
 * them where the OS allows: the caller to the first CPU of the affinity mask, each worker
 * to one of the others. Every Linear's block-rows are split into
 * PARTS_PER_THREAD x n contiguous runs of about equal cost (kept columns, from the set's
 * offsets), attention into runs of heads; the rest (embedding, layer norms, ReLU) stays on
 * the caller. Each thread owns a contiguous run of a job's parts, the same every call, and
 * claims them one at a time from its own counter, so the weights it reads stay in its
 * core's cache from one inference to the next (the sets of the default budget's shape fit
 * in a core's L2, and parts claimed by whichever thread came first moved them between cores
 * on every call); a thread done with its run claims what is left of the others', and the
 * caller waits only for parts already claimed: a worker the OS has not scheduled (a shared
 * machine, other processes on every core) claims nothing, and its run is taken by the
 * threads that are running, so a job never waits for a sleeping worker to wake up (a static
 * split of n runs took 4x the one-thread time on a loaded 2-core host). A job of fewer
 * than PARALLEL_MACS multiply-adds (a sparse set's Linear, attention at a short sequence)
 * runs on the caller alone: waking a worker and waiting for it costs more than the half of
 * it the worker would take (with every job split, the quick bundle's sparsest set ran
 * slower on 2 threads than on 1); the environment's RT3E_SPLIT_MACS sets another bound (0:
 * split every job). Each output is computed by the same code whichever thread runs it,
 * so the logits are bit-identical at any thread count; one thread runs no pool at all.
 * Between jobs a worker spins for SPIN_NS, then sleeps on a condition variable (a shared
 * machine gets its CPU back between inferences). A forked child has no workers: it runs
 * every part itself.
 *
 * Exits (the depth and early-exit schemes): the model may carry exit heads (decoders of
 * their own after k layers, `exit_heads.k`), and a set may list `exits` (layer counts,
 * increasing) with the decoder each reads (`heads`) and a `threshold`. A forward pass runs
 * the layers up to each exit in turn, its decoder's logits into the output, and stops at
 * the first exit whose confidence (the mean over positions of the largest softmax
 * probability, in double) reaches the threshold; the last exit always stops. A set without
 * exits runs every layer and the decoder. rt3e_last_exit says which exit the last pass
 * took; rt3e_force_exit makes every pass stop at one exit (still scoring the earlier ones:
 * the time an input exiting there takes), to measure each exit's latency.
 */
#if !defined(_GNU_SOURCE)
#define _GNU_SOURCE /* sched_setaffinity, CPU_SET */
#endif
#include <math.h>
#include <pthread.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#if defined(__linux__)
#include <sched.h>
#include <sys/mman.h>
#include <sys/stat.h>
#endif

#define RT3E_ABI 3
#define MAX_THREADS 256
#define SPIN_NS 100000 /* a worker's (and the caller's) busy wait before it sleeps */
#define PARTS_PER_THREAD 4 /* parts of a Linear per thread: the free threads take a late one's */
#define PARALLEL_MACS 524288 /* a job's multiply-adds below which the caller runs it alone */
#define MAX_BLOCK 256
#define MAX_HEADER (16 << 20)
#define STAMP_FILE "arrays.bin.verified"
#define STAMP_MIN_AGE_S 2 /* a data file's ctime this old, or older, before it is stamped */

/* ---------------------------------------------------------------- SHA-256 (FIPS 180-4) */
typedef struct {
    uint32_t h[8];
    uint64_t len;
    unsigned char buf[64];
    size_t n;
} sha256_ctx;

static const uint32_t K256[64] = {
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4,
    0xab1c5ed5, 0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe,
    0x9bdc06a7, 0xc19bf174, 0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f,
    0x4a7484aa, 0x5cb0a9dc, 0x76f988da, 0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7,
    0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967, 0x27b70a85, 0x2e1b2138, 0x4d2c6dfc,
    0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85, 0xa2bfe8a1, 0xa81a664b,
    0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070, 0x19a4c116,
    0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
    0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7,
    0xc67178f2};

#define ROR(x, n) (((x) >> (n)) | ((x) << (32 - (n))))

static void sha256_block(sha256_ctx *c, const unsigned char *p) {
    uint32_t w[64], a, b, d, e, f, g, h, cc;
    for (int i = 0; i < 16; i++)
        w[i] = (uint32_t)p[4 * i] << 24 | (uint32_t)p[4 * i + 1] << 16 |
               (uint32_t)p[4 * i + 2] << 8 | p[4 * i + 3];
    for (int i = 16; i < 64; i++) {
        uint32_t s0 = ROR(w[i - 15], 7) ^ ROR(w[i - 15], 18) ^ (w[i - 15] >> 3);
        uint32_t s1 = ROR(w[i - 2], 17) ^ ROR(w[i - 2], 19) ^ (w[i - 2] >> 10);
        w[i] = w[i - 16] + s0 + w[i - 7] + s1;
    }
    a = c->h[0], b = c->h[1], cc = c->h[2], d = c->h[3];
    e = c->h[4], f = c->h[5], g = c->h[6], h = c->h[7];
    for (int i = 0; i < 64; i++) {
        uint32_t t1 = h + (ROR(e, 6) ^ ROR(e, 11) ^ ROR(e, 25)) + ((e & f) ^ (~e & g)) + K256[i] + w[i];
        uint32_t t2 = (ROR(a, 2) ^ ROR(a, 13) ^ ROR(a, 22)) + ((a & b) ^ (a & cc) ^ (b & cc));
        h = g, g = f, f = e, e = d + t1, d = cc, cc = b, b = a, a = t1 + t2;
    }
    c->h[0] += a, c->h[1] += b, c->h[2] += cc, c->h[3] += d;
    c->h[4] += e, c->h[5] += f, c->h[6] += g, c->h[7] += h;
}

static void sha256_hex(const unsigned char *data, size_t len, char out[65]) {
    sha256_ctx c = {{0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c,
                     0x1f83d9ab, 0x5be0cd19},
                    0, {0}, 0};
    size_t i = 0;
    for (; i + 64 <= len; i += 64) sha256_block(&c, data + i);
    unsigned char tail[128] = {0};
    size_t rest = len - i;
    memcpy(tail, data + i, rest);
    tail[rest] = 0x80;
    size_t total = rest + 9 <= 64 ? 64 : 128;
    uint64_t bits = (uint64_t)len * 8;
    for (int k = 0; k < 8; k++) tail[total - 1 - k] = (unsigned char)(bits >> (8 * k));
    sha256_block(&c, tail);
    if (total == 128) sha256_block(&c, tail + 64);
    for (int k = 0; k < 8; k++) snprintf(out + 8 * k, 9, "%08x", c.h[k]);
}

/* ---------------------------------------------------------------- a small JSON reader */
enum { J_NULL, J_BOOL, J_NUM, J_STR, J_ARR, J_OBJ };

typedef struct jv {
    int type;
    double num;
    char *str;       /* J_STR */
    int n;           /* J_ARR / J_OBJ: items */
    struct jv *items;
    char **keys;     /* J_OBJ */
} jv;

typedef struct {
    const char *p, *end;
    int depth;
    int bad;
} jp;

static void jv_free(jv *v) {
    if (!v) return;
    free(v->str);
    for (int i = 0; i < v->n; i++) {
        jv_free(&v->items[i]);
        if (v->keys) free(v->keys[i]);
    }
    free(v->items);
    free(v->keys);
}

static void ws(jp *s) {
    while (s->p < s->end && (*s->p == ' ' || *s->p == '\n' || *s->p == '\r' || *s->p == '\t'))
        s->p++;
}

static char *jstring(jp *s) {
    if (s->p >= s->end || *s->p != '"') return s->bad = 1, NULL;
    s->p++;
    size_t cap = 16, n = 0;
    char *out = malloc(cap);
    if (!out) return s->bad = 1, NULL;
    while (s->p < s->end && *s->p != '"') {
        char ch = *s->p++;
        if ((unsigned char)ch < 0x20) return free(out), s->bad = 1, NULL;
        if (ch == '\\') {
            if (s->p >= s->end) return free(out), s->bad = 1, NULL;
            char e = *s->p++;
            switch (e) {
            case '"': case '\\': case '/': ch = e; break;
            case 'n': ch = '\n'; break;
            case 't': ch = '\t'; break;
            case 'r': ch = '\r'; break;
            case 'b': ch = '\b'; break;
            case 'f': ch = '\f'; break;
            case 'u': /* names are ASCII: keep the escape's low byte when it is one */
                if (s->end - s->p < 4) return free(out), s->bad = 1, NULL;
                {
                    unsigned v = 0;
                    for (int k = 0; k < 4; k++) {
                        char h = *s->p++;
                        v = v * 16 + (h >= '0' && h <= '9'   ? (unsigned)(h - '0')
                                      : h >= 'a' && h <= 'f' ? (unsigned)(h - 'a' + 10)
                                      : h >= 'A' && h <= 'F' ? (unsigned)(h - 'A' + 10)
                                                             : (s->bad = 1, 0u));
                    }
                    ch = v < 0x80 ? (char)v : '?';
                }
                break;
            default: return free(out), s->bad = 1, NULL;
            }
        }
        if (n + 2 > cap) {
            char *grown = realloc(out, cap *= 2);
            if (!grown) return free(out), s->bad = 1, NULL;
            out = grown;
        }
        out[n++] = ch;
    }
    if (s->p >= s->end || s->bad) return free(out), s->bad = 1, NULL;
    s->p++;
    out[n] = 0;
    return out;
}

static int jvalue(jp *s, jv *v);

static int jlist(jp *s, jv *v, int obj) {
    char close = obj ? '}' : ']';
    int cap = 0;
    s->p++;
    ws(s);
    if (s->p < s->end && *s->p == close) return s->p++, 0;
    for (;;) {
        if (v->n == cap) {
            cap = cap ? 2 * cap : 8;
            jv *items = realloc(v->items, sizeof(jv) * (size_t)cap);
            if (!items) return s->bad = 1, -1;
            v->items = items;
            if (obj) {
                char **keys = realloc(v->keys, sizeof(char *) * (size_t)cap);
                if (!keys) return s->bad = 1, -1;
                v->keys = keys;
            }
        }
        memset(&v->items[v->n], 0, sizeof(jv));
        if (obj) {
            ws(s);
            char *key = jstring(s);
            if (!key) return -1;
            v->keys[v->n] = key;
            ws(s);
            if (s->p >= s->end || *s->p != ':') {
                v->n++;
                return s->bad = 1, -1;
            }
            s->p++;
        }
        v->n++;
        if (jvalue(s, &v->items[v->n - 1])) return -1;
        ws(s);
        if (s->p < s->end && *s->p == ',') {
            s->p++;
            continue;
        }
        if (s->p < s->end && *s->p == close) return s->p++, 0;
        return s->bad = 1, -1;
    }
}

static int jvalue(jp *s, jv *v) {
    ws(s);
    memset(v, 0, sizeof *v);
    if (s->p >= s->end || ++s->depth > 32) return s->bad = 1, -1;
    int rc = 0;
    char ch = *s->p;
    if (ch == '{' || ch == '[') {
        v->type = ch == '{' ? J_OBJ : J_ARR;
        rc = jlist(s, v, ch == '{');
    } else if (ch == '"') {
        v->type = J_STR;
        v->str = jstring(s);
        rc = v->str ? 0 : -1;
    } else if (s->end - s->p >= 4 && !memcmp(s->p, "null", 4)) {
        v->type = J_NULL, s->p += 4;
    } else if (s->end - s->p >= 4 && !memcmp(s->p, "true", 4)) {
        v->type = J_BOOL, v->num = 1, s->p += 4;
    } else if (s->end - s->p >= 5 && !memcmp(s->p, "false", 5)) {
        v->type = J_BOOL, s->p += 5;
    } else if (ch == '-' || (ch >= '0' && ch <= '9')) {
        char tmp[64];
        size_t n = 0;
        while (s->p + n < s->end && n < sizeof tmp - 1 && strchr("+-.eE0123456789", s->p[n]))
            n++;
        memcpy(tmp, s->p, n);
        tmp[n] = 0;
        char *stop;
        v->type = J_NUM;
        v->num = strtod(tmp, &stop);
        if (stop != tmp + n) rc = -1, s->bad = 1;
        s->p += n;
    } else {
        rc = -1, s->bad = 1;
    }
    s->depth--;
    return rc;
}

static const jv *jget(const jv *o, const char *key) {
    if (!o || o->type != J_OBJ) return NULL;
    for (int i = 0; i < o->n; i++)
        if (!strcmp(o->keys[i], key)) return &o->items[i];
    return NULL;
}

static int jint(const jv *v, int64_t lo, int64_t hi, int64_t *out) {
    if (!v || v->type != J_NUM || v->num != floor(v->num) || v->num < (double)lo ||
        v->num > (double)hi)
        return -1;
    *out = (int64_t)v->num;
    return 0;
}

/* ---------------------------------------------------------------- the model */
typedef struct {
    int64_t in, out, B, nbr;
    const float *pool; /* (nbr, in, B) */
    const float *bias; /* nbr * B */
} linear_t;

typedef struct {
    int64_t B;           /* 0: the layer runs dense in this set */
    const int32_t *off;  /* n_block_rows + 1 */
    const int32_t *cols;
} table_t;

#define MAX_EXITS 64

typedef struct {
    int n;                 /* 0: every layer, then the decoder */
    int64_t at[MAX_EXITS]; /* layers run before exit i */
    int lin[MAX_EXITS];    /* the decoder of exit i: its index in lin */
    double threshold;
} exits_t;

typedef struct {
    char name[128];
    const char *dtype;
    int64_t shape[4];
    int ndim;
    const void *data;
} array_t;

/* ---------------------------------------------------------------- the thread pool */
typedef void (*part_fn)(void *ctx, int part, int nparts, int tid); /* tid: the thread */

typedef struct pool_t pool_t;

/* Thread t's run of a job's parts: its number << 40 | end << 20 | next unclaimed part, on a
 * cache line of its own (the threads claim from their own runs, then from the others'). */
typedef struct {
    uint64_t word;
    char pad[56];
} slot_t;

typedef struct {
    pool_t *pool;
    int w;
} worker_t;

struct pool_t {
    int n;                /* threads, the caller included; 1 (or 0 before set): no workers */
    pthread_t *tid;       /* n - 1 workers */
    worker_t *args;
    pthread_mutex_t mu;
    pthread_cond_t go, done;
    unsigned gen;         /* bumped for each job (and to stop): workers wait for a change */
    slot_t *slots;        /* n: thread t's run of the job's parts */
    unsigned busy;        /* workers inside a job: claiming, or running a claimed part */
    unsigned job;
    int stop;
    part_fn fn;
    void *ctx;
    int nparts;
    pid_t pid;            /* the process whose workers these are (a fork has none) */
    int cpus[MAX_THREADS]; /* the affinity mask's CPUs, in order */
    int ncpus;            /* 0: no pinning (not asked for, or no affinity on this OS) */
};

static inline void cpu_relax(void) {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__) || (defined(__arm__) && __ARM_ARCH >= 7)
    __asm__ __volatile__("yield");
#endif
}

static int64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* Spin until *word != seen (want_change) or *word == 0 (!want_change), for up to SPIN_NS;
 * returns whether that happened. */
static int spin_for(const void *word, unsigned seen, int want_change) {
    const int64_t t0 = now_ns();
    for (unsigned k = 1;; k++) {
        const unsigned v = __atomic_load_n((const unsigned *)word, __ATOMIC_ACQUIRE);
        if (want_change ? v != seen : v == 0) return 1;
        cpu_relax();
        if (!(k & 255) && now_ns() - t0 > SPIN_NS) return 0;
    }
}

static void pin_to(const pool_t *p, int w) {
#if defined(__linux__) && defined(CPU_SET)
    if (p->ncpus > 0) { /* failure (a CPU taken away since) leaves the thread unpinned */
        cpu_set_t set;
        CPU_ZERO(&set);
        CPU_SET(p->cpus[w % p->ncpus], &set);
        (void)sched_setaffinity(0, sizeof set, &set);
    }
#else
    (void)p, (void)w;
#endif
}

/* Claim one part of thread t's run (its index in *part); 0 when the run is used up. */
static int claim(pool_t *p, int t, int *part) {
    uint64_t w = __atomic_load_n(&p->slots[t].word, __ATOMIC_SEQ_CST);
    for (;;) {
        const unsigned next = (unsigned)(w & 0xfffff), end = (unsigned)((w >> 20) & 0xfffff);
        if (next >= end) return 0;
        if (__atomic_compare_exchange_n(&p->slots[t].word, &w, w + 1, 0, __ATOMIC_SEQ_CST,
                                        __ATOMIC_SEQ_CST)) {
            *part = (int)next;
            return 1;
        } /* else w holds the run's new value */
    }
}

/* Run the current job's parts on thread tid: its own run first, in order (the same
 * block-rows every call, so their weights stay in this core's cache), then what is left of
 * the other threads' runs, until none is left. A worker calls it holding `busy`, so the job
 * (fn, ctx, nparts) stays the one it claimed from until it lets go: the caller publishes the
 * next job only when `busy` is 0. */
static void run_parts(pool_t *p, int tid) {
    const int n = p->n;
    for (int k = 0; k < n; k++) {
        const int t = (tid + k) % n;
        int part;
        while (claim(p, t, &part)) p->fn(p->ctx, part, p->nparts, tid);
    }
}

static void *worker_main(void *arg) {
    const worker_t *a = arg;
    pool_t *p = a->pool;
    pin_to(p, a->w);
    unsigned seen = 0;
    for (;;) {
        if (!spin_for(&p->gen, seen, 1)) {
            pthread_mutex_lock(&p->mu);
            while (__atomic_load_n(&p->gen, __ATOMIC_ACQUIRE) == seen)
                pthread_cond_wait(&p->go, &p->mu);
            pthread_mutex_unlock(&p->mu);
        }
        seen = __atomic_load_n(&p->gen, __ATOMIC_ACQUIRE);
        if (__atomic_load_n(&p->stop, __ATOMIC_ACQUIRE)) return NULL;
        __atomic_add_fetch(&p->busy, 1, __ATOMIC_SEQ_CST);
        run_parts(p, a->w);
        if (__atomic_sub_fetch(&p->busy, 1, __ATOMIC_SEQ_CST) == 0) {
            pthread_mutex_lock(&p->mu);
            pthread_cond_signal(&p->done);
            pthread_mutex_unlock(&p->mu);
        }
    }
}

/* Wake the workers for a new job (or to stop): the increment is published before the
 * broadcast, under the mutex a sleeping worker checked it under, so no wake-up is lost. */
static void pool_kick(pool_t *p) {
    __atomic_add_fetch(&p->gen, 1, __ATOMIC_RELEASE);
    pthread_mutex_lock(&p->mu);
    pthread_cond_broadcast(&p->go);
    pthread_mutex_unlock(&p->mu);
}

/* Stop and join the workers (none: nothing to do); the pool is back to one thread. A
 * forked child leaves the copied mutex and condition variables alone: they record the
 * parent's sleeping workers, and destroying a condition variable waits for its waiters. */
static void pool_stop(pool_t *p) {
    if (p->tid && p->pid == getpid()) {
        __atomic_store_n(&p->stop, 1, __ATOMIC_RELEASE);
        pool_kick(p);
        for (int w = 0; w < p->n - 1; w++) pthread_join(p->tid[w], NULL);
        pthread_mutex_destroy(&p->mu);
        pthread_cond_destroy(&p->go);
        pthread_cond_destroy(&p->done);
    }
    free(p->tid);
    free(p->args);
    free(p->slots);
    p->tid = NULL, p->args = NULL, p->slots = NULL, p->n = 1, p->stop = 0;
}

/* Start n - 1 workers; `pin`: each pinned to a CPU of the caller's affinity mask (worker w
 * to the w-th, modulo their number), else left to the scheduler. 0, or -1 (none started) if
 * a thread cannot be created. */
static int pool_start(pool_t *p, int n, int pin) {
    p->n = 1;
    if (n <= 1) return 0;
    p->ncpus = 0;
#if defined(__linux__) && defined(CPU_SET)
    cpu_set_t set;
    CPU_ZERO(&set);
    if (pin && sched_getaffinity(0, sizeof set, &set) == 0)
        for (int c = 0; c < CPU_SETSIZE && p->ncpus < MAX_THREADS; c++)
            if (CPU_ISSET(c, &set)) p->cpus[p->ncpus++] = c;
#endif
    p->tid = calloc((size_t)n, sizeof(pthread_t));
    p->args = calloc((size_t)n, sizeof(worker_t));
    p->slots = aligned_alloc(64, sizeof(slot_t) * (size_t)n);
    if (!p->tid || !p->args || !p->slots) {
        free(p->tid), free(p->args), free(p->slots);
        p->tid = NULL, p->args = NULL, p->slots = NULL;
        return -1;
    }
    memset(p->slots, 0, sizeof(slot_t) * (size_t)n); /* every run used up until a job */
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->go, NULL);
    pthread_cond_init(&p->done, NULL);
    p->gen = 0, p->stop = 0, p->busy = 0, p->job = 0, p->pid = getpid();
    for (int w = 1; w < n; w++) {
        p->args[w - 1] = (worker_t){p, w};
        if (pthread_create(&p->tid[w - 1], NULL, worker_main, &p->args[w - 1])) {
            p->n = w; /* the w - 1 started so far are joined */
            pool_stop(p);
            return -1;
        }
    }
    p->n = n;
    return 0;
}

/* Run parts 0..nparts-1 of a job on the pool's threads, the caller claiming parts with
 * them; returns when every part is done. One thread, or a forked child (whose workers
 * stayed in the parent): every part on the caller, in order. */
static void pool_run(pool_t *p, part_fn fn, void *ctx, int nparts) {
    if (nparts < 1) nparts = 1;
    if (nparts > 0xfffff) nparts = 0xfffff;
    if (p->n <= 1 || nparts == 1 || p->pid != getpid()) {
        for (int k = 0; k < nparts; k++) fn(ctx, k, nparts, 0);
        return;
    }
    p->fn = fn, p->ctx = ctx, p->nparts = nparts; /* no worker is inside a job: `busy` was 0 */
    p->job++;
    for (int t = 0; t < p->n; t++) { /* thread t's run: parts t nparts / n .. (t + 1) nparts / n */
        const uint64_t lo = (uint64_t)t * (uint64_t)nparts / (uint64_t)p->n;
        const uint64_t hi = (uint64_t)(t + 1) * (uint64_t)nparts / (uint64_t)p->n;
        __atomic_store_n(&p->slots[t].word, (uint64_t)(p->job & 0xffffff) << 40 | hi << 20 | lo,
                         __ATOMIC_SEQ_CST); /* publishes fn, ctx and nparts with it */
    }
    pool_kick(p);
    run_parts(p, 0);
    /* every part is claimed; wait for the workers still running one */
    if (!spin_for(&p->busy, 0, 0)) {
        pthread_mutex_lock(&p->mu);
        while (__atomic_load_n(&p->busy, __ATOMIC_SEQ_CST))
            pthread_cond_wait(&p->done, &p->mu);
        pthread_mutex_unlock(&p->mu);
    }
}

typedef struct rt3e_model {
    int64_t V, E, F, L, H;
    const float *emb;
    linear_t *lin;        /* 4 per layer (in_proj, out_proj, linear1, linear2), decoder, heads */
    int nheads;           /* exit heads: lin[4 L + 1 + j] reads the state after head_at[j] */
    int64_t head_at[MAX_EXITS];
    exits_t *exits;       /* nsets */
    int last_exit;        /* the exit the last forward pass took */
    int force_exit;       /* -1, or every pass stops at this exit */
    double confidence;    /* of the last exit scored, -1 if none */
    const float **norms;  /* 4 per layer: norm1 weight, bias, norm2 weight, bias */
    int nsets;
    char (*names)[128];
    table_t *tables;      /* nsets x slots: slot 0 embedding, 1 + k the k-th Linear */
    int slots;
    int32_t *att_heads;   /* nsets x L x H: per set and layer, the heads attention computes */
    int32_t *att_n;       /* nsets x L: how many (a head out_proj reads no column of is not) */
    volatile int active;  /* -1: dense; volatile: a timed switch is a real store */
    int32_t *iota;        /* 0 .. max in - 1: the dense table's columns */
    unsigned char *blob;  /* the data file */
    array_t *arrays;
    int narrays;
    float *work;
    int64_t work_T;       /* the workspace holds work_T tokens for work_n threads */
    int work_n;
    float *pe;            /* sinusoidal positions (pe_T, E), grown with the longest sequence */
    int64_t pe_T;
    int64_t split_macs;   /* a job below this many multiply-adds runs on the caller alone */
    pool_t pool;
} rt3e_model;

static const char *LIN_NAMES[4] = {"self_attn.in_proj", "self_attn.out_proj", "linear1",
                                   "linear2"};

static void fail(char *err, int errlen, const char *fmt, const char *a, const char *b) {
    if (err && errlen > 0) snprintf(err, (size_t)errlen, fmt, a, b);
}

static const array_t *find(const rt3e_model *m, const char *name) {
    for (int i = 0; i < m->narrays; i++)
        if (!strcmp(m->arrays[i].name, name)) return &m->arrays[i];
    return NULL;
}

/* The array `name`, float32 or int32 as `dtype`, of the given shape (-1: any extent). */
static const void *want(const rt3e_model *m, const char *name, const char *dtype, int ndim,
                        const int64_t *shape, char *err, int errlen) {
    const array_t *a = find(m, name);
    if (!a) return fail(err, errlen, "array '%s': missing from the export%s", name, ""), NULL;
    int ok = !strcmp(a->dtype, dtype) && a->ndim == ndim;
    for (int d = 0; ok && d < ndim; d++) ok = shape[d] < 0 || shape[d] == a->shape[d];
    if (!ok)
        return fail(err, errlen, "array '%s': expected dtype %s and the model's shape", name,
                    dtype),
               NULL;
    return a->data;
}

void rt3e_close(rt3e_model *m) {
    if (!m) return;
    pool_stop(&m->pool); /* joins the workers first: none is left running on freed memory */
    free(m->lin);
    free(m->exits);
    free(m->norms);
    free(m->names);
    free(m->tables);
    free(m->att_heads);
    free(m->att_n);
    free(m->iota);
    free(m->blob);
    free(m->arrays);
    free(m->work);
    free(m->pe);
    free(m);
}

/* n bytes for the weights: on Linux in 2 MiB pages where the kernel grants them (advice
 * only). A set reads its kept weight rows scattered over the whole blob; with 4 KiB pages
 * that is a TLB miss per row once the blob outgrows the TLB's reach, and the prefetches in
 * linear() then do not arrive in time (synthetic emb-256 model: a 20 % set at ~0.45 of its
 * FLOP limit against engine dense; ~0.8 with both). */
static void *alloc_blob(size_t n, int huge) {
#if defined(__linux__) && defined(MADV_HUGEPAGE)
    const size_t page = (size_t)2 << 20;
    if (huge && n >= page) {
        const size_t cap = (n + page - 1) / page * page;
        void *p = aligned_alloc(page, cap);
        if (p) madvise(p, cap, MADV_HUGEPAGE);
        if (p) return p;
    }
#endif
    (void)huge;
    return malloc(n);
}

/* ------------------------------------------------ the verified stamp (see the header) */
typedef struct {
    int known; /* the identity was read, and the same before and after reading */
    long long size, mtime_s, mtime_ns, ctime_s, ctime_ns;
    unsigned long long ino, dev;
} file_id;

#if defined(__linux__)
static int stat_id(FILE *f, file_id *id) {
    struct stat st;
    if (fstat(fileno(f), &st)) return -1;
    id->size = (long long)st.st_size;
    id->mtime_s = (long long)st.st_mtim.tv_sec, id->mtime_ns = (long long)st.st_mtim.tv_nsec;
    id->ctime_s = (long long)st.st_ctim.tv_sec, id->ctime_ns = (long long)st.st_ctim.tv_nsec;
    id->ino = (unsigned long long)st.st_ino, id->dev = (unsigned long long)st.st_dev;
    return 0;
}

static int same_file(const file_id *a, const file_id *b) {
    return a->size == b->size && a->mtime_s == b->mtime_s && a->mtime_ns == b->mtime_ns &&
           a->ctime_s == b->ctime_s && a->ctime_ns == b->ctime_ns && a->ino == b->ino &&
           a->dev == b->dev;
}
#endif

/* What the stamp says for this header and data file (NUL-terminated). */
static void stamp_text(char *out, size_t n, const char *header_hex, const file_id *id) {
    snprintf(out, n,
             "rt3lab-verified 1\nheader sha256 %s\narrays.bin size %lld mtime %lld.%09lld "
             "ctime %lld.%09lld inode %llu device %llu\n",
             header_hex, id->size, id->mtime_s, id->mtime_ns, id->ctime_s, id->ctime_ns, id->ino,
             id->dev);
}

static unsigned char *read_file(const char *path, size_t max, size_t *len, int huge,
                                file_id *id);

/* Whether `dir`'s stamp names this header and this data file. */
static int stamp_matches(const char *dir, const char *header_hex, const file_id *id) {
    if (!id->known) return 0;
    char path[4096], want[512];
    size_t n = 0;
    snprintf(path, sizeof path, "%s/" STAMP_FILE, dir);
    unsigned char *got = read_file(path, sizeof want, &n, 0, NULL);
    if (!got) return 0;
    stamp_text(want, sizeof want, header_hex, id);
    int same = n == strlen(want) && !memcmp(got, want, n);
    free(got);
    return same;
}

/* After a full check: stamp `dir`, where the data file's ctime is old enough (see the
 * header) and the directory writable (else nothing: the next open hashes again). */
static void write_stamp(const char *dir, const char *header_hex, const file_id *id) {
#if defined(__linux__)
    struct timespec now;
    if (!id->known || clock_gettime(CLOCK_REALTIME, &now) ||
        (long long)now.tv_sec - id->ctime_s < STAMP_MIN_AGE_S)
        return;
    char path[4096], tmp[4160], text[512];
    snprintf(path, sizeof path, "%s/" STAMP_FILE, dir);
    snprintf(tmp, sizeof tmp, "%s.%ld", path, (long)getpid());
    stamp_text(text, sizeof text, header_hex, id);
    FILE *f = fopen(tmp, "wb");
    if (!f) return;
    int ok = fputs(text, f) >= 0;
    ok = !fclose(f) && ok;
    if (!ok || rename(tmp, path)) remove(tmp);
#else
    (void)dir, (void)header_hex, (void)id;
#endif
}

/* The file's bytes (and a NUL after them), at most `max`; with `id`, the identity of what
 * was read (`id->known` 0 where it could not be read or changed while reading). */
static unsigned char *read_file(const char *path, size_t max, size_t *len, int huge,
                                file_id *id) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    unsigned char *buf = NULL;
#if defined(__linux__)
    file_id before = {0};
    int have = id && !stat_id(f, &before);
#endif
    if (fseek(f, 0, SEEK_END) == 0) {
        long n = ftell(f);
        if (n >= 0 && (size_t)n <= max && fseek(f, 0, SEEK_SET) == 0) {
            buf = alloc_blob((size_t)n + 1, huge);
            if (buf && fread(buf, 1, (size_t)n, f) != (size_t)n) {
                free(buf);
                buf = NULL;
            }
            if (buf) buf[n] = 0, *len = (size_t)n;
        }
    }
#if defined(__linux__)
    if (id) {
        *id = (file_id){0};
        if (have && !stat_id(f, id))
            id->known = same_file(&before, id) && id->size == (long long)*len;
    }
#else
    if (id) *id = (file_id){0};
#endif
    fclose(f);
    return buf;
}

/* The header's array list into m->arrays; `verify`: each array's SHA-256 against its
 * bytes too (0 only where the export's stamp matches: see the header). */
static int load_arrays(rt3e_model *m, const jv *list, size_t blob_len, int verify, char *err,
                       int errlen) {
    if (!list || list->type != J_ARR)
        return fail(err, errlen, "header field '%s': expected a list%s", "arrays", ""), -1;
    m->arrays = calloc((size_t)list->n + 1, sizeof(array_t));
    if (!m->arrays) return fail(err, errlen, "out of memory%s%s", "", ""), -1;
    for (int i = 0; i < list->n; i++) {
        const jv *a = &list->items[i];
        const jv *name = jget(a, "name"), *dtype = jget(a, "dtype"), *shape = jget(a, "shape");
        const jv *sha = jget(a, "sha256");
        int64_t offset, nbytes;
        if (!name || name->type != J_STR || strlen(name->str) >= 128)
            return fail(err, errlen, "header field '%s': an entry without a usable name%s",
                        "arrays", ""), -1;
        const char *nm = name->str;
        array_t *out = &m->arrays[m->narrays];
        snprintf(out->name, sizeof out->name, "%s", nm);
        if (find(m, nm)) return fail(err, errlen, "array '%s': listed twice%s", nm, ""), -1;
        if (!dtype || dtype->type != J_STR ||
            (strcmp(dtype->str, "float32") && strcmp(dtype->str, "int32")))
            return fail(err, errlen, "array '%s': dtype must be float32 or int32%s", nm, ""), -1;
        out->dtype = !strcmp(dtype->str, "float32") ? "float32" : "int32";
        if (!shape || shape->type != J_ARR || shape->n < 1 || shape->n > 4)
            return fail(err, errlen, "array '%s': shape must be a list of 1 to 4 sizes%s", nm,
                        ""), -1;
        uint64_t count = 1;
        out->ndim = shape->n;
        for (int d = 0; d < shape->n; d++) {
            if (jint(&shape->items[d], 0, (int64_t)1 << 40, &out->shape[d]))
                return fail(err, errlen, "array '%s': shape entries must be sizes%s", nm, ""), -1;
            count *= (uint64_t)out->shape[d];
            if (count > ((uint64_t)1 << 40))
                return fail(err, errlen, "array '%s': too large%s", nm, ""), -1;
        }
        if (jint(jget(a, "offset"), 0, (int64_t)1 << 50, &offset) ||
            jint(jget(a, "nbytes"), 0, (int64_t)1 << 50, &nbytes))
            return fail(err, errlen, "array '%s': offset and nbytes must be sizes%s", nm, ""), -1;
        if ((uint64_t)nbytes != 4 * count)
            return fail(err, errlen, "array '%s': nbytes does not match its shape%s", nm, ""), -1;
        if (offset % 4 || (uint64_t)offset + (uint64_t)nbytes > blob_len)
            return fail(err, errlen, "array '%s': lies outside the data file (truncated?)%s", nm,
                        ""), -1;
        char hex[65] = "";
        if (verify) sha256_hex(m->blob + offset, (size_t)nbytes, hex);
        if (!sha || sha->type != J_STR || (verify && strcmp(sha->str, hex)))
            return fail(err, errlen, "array '%s': sha256 does not match its bytes (tampered?)%s",
                        nm, ""), -1;
        out->data = m->blob + offset;
        m->narrays++;
    }
    return 0;
}

/* Per set and layer, the heads whose attention is computed: those out_proj reads at least
 * one column of (every head where the set leaves out_proj dense). A head no kept out_proj
 * weight reads contributes nothing to the output, so its attention is skipped (a width
 * variant's removed heads); its columns of the attention output are left unwritten, and
 * nothing reads them. Attention splits the heads it computes evenly over the threads. 0, or
 * -1 out of memory. */
static int live_heads(rt3e_model *m) {
    const int64_t L = m->L, H = m->H, d = m->E / m->H;
    m->att_heads = malloc(sizeof(int32_t) * (size_t)((m->nsets + 1) * L * H));
    m->att_n = malloc(sizeof(int32_t) * (size_t)((m->nsets + 1) * L));
    unsigned char *read = malloc((size_t)H);
    if (!m->att_heads || !m->att_n || !read) return free(read), -1;
    for (int s = 0; s < m->nsets; s++)
        for (int64_t l = 0; l < L; l++) {
            const table_t *t = &m->tables[s * m->slots + 1 + 4 * l + 1]; /* out_proj */
            memset(read, t->B ? 0 : 1, (size_t)H);
            const int64_t kept = t->B ? t->off[(m->E + t->B - 1) / t->B] : 0;
            for (int64_t j = 0; j < kept; j++) read[t->cols[j] / d] = 1;
            int32_t *list = m->att_heads + (s * L + l) * H, n = 0;
            for (int64_t h = 0; h < H; h++)
                if (read[h]) list[n++] = (int32_t)h;
            m->att_n[s * L + l] = n;
        }
    free(read);
    return 0;
}

static int check_table(const rt3e_model *m, table_t *t, const char *prefix, int64_t rows,
                       int64_t in, int64_t need_B, char *err, int errlen) {
    char name[320];
    int64_t nbr = (rows + t->B - 1) / t->B;
    if (need_B && t->B != need_B)
        return fail(err, errlen, "array '%s.offsets': block_rows differs from the layer's pool%s",
                    prefix, ""), -1;
    snprintf(name, sizeof name, "%s.offsets", prefix);
    int64_t shape[1] = {nbr + 1};
    t->off = want(m, name, "int32", 1, shape, err, errlen);
    if (!t->off) return -1;
    snprintf(name, sizeof name, "%s.cols", prefix);
    const array_t *c = find(m, name);
    int64_t any[1] = {-1};
    t->cols = want(m, name, "int32", 1, any, err, errlen);
    if (!t->cols) return -1;
    if (t->off[0] != 0 || t->off[nbr] != c->shape[0])
        return fail(err, errlen, "array '%s.offsets': must run from 0 to the length of cols%s",
                    prefix, ""), -1;
    for (int64_t b = 0; b < nbr; b++)
        if (t->off[b + 1] < t->off[b] || t->off[b + 1] - t->off[b] > in)
            return fail(err, errlen, "array '%s.offsets': must not decrease%s", prefix, ""), -1;
    for (int64_t j = 0; j < c->shape[0]; j++)
        if (t->cols[j] < 0 || t->cols[j] >= in)
            return fail(err, errlen, "array '%s': a column index is out of range%s", name, ""), -1;
    return 0;
}

/* The name of Linear k: layer k / 4's k % 4-th, then the decoder, then the exit heads. */
static void lin_name(const rt3e_model *m, int k, char *out, size_t n) {
    if (k < 4 * m->L)
        snprintf(out, n, "layers.%d.%s", k / 4, LIN_NAMES[k % 4]);
    else if (k == 4 * m->L)
        snprintf(out, n, "decoder");
    else
        snprintf(out, n, "exit_heads.%lld", (long long)m->head_at[k - 4 * m->L - 1]);
}

/* model.exit_heads (optional): increasing layer counts below model.layers, at most 64. */
static int load_heads(rt3e_model *m, const jv *model, char *err, int errlen) {
    const jv *h = jget(model, "exit_heads");
    m->nheads = 0;
    if (!h) return 0;
    if (h->type != J_ARR || h->n > MAX_EXITS)
        return fail(err, errlen, "header field '%s': expected a list of at most 64 layer "
                    "counts%s", "model.exit_heads", ""), -1;
    for (int i = 0; i < h->n; i++) {
        int64_t k;
        if (jint(&h->items[i], 0, m->L - 1, &k) || (i && k <= m->head_at[i - 1]))
            return fail(err, errlen, "header field '%s': expected increasing layer counts "
                        "below model.layers%s", "model.exit_heads", ""), -1;
        m->head_at[m->nheads++] = k;
    }
    return 0;
}

/* A set's exits, heads and threshold (all absent: every layer, then the decoder). */
static int load_exits(rt3e_model *m, const jv *e, const char *name, exits_t *x, char *err,
                      int errlen) {
    const jv *at = jget(e, "exits"), *heads = jget(e, "heads"), *thr = jget(e, "threshold");
    x->n = 0;
    if (!at && !heads && !thr) return 0;
    if (!at || !heads || at->type != J_ARR || heads->type != J_ARR || at->n < 1 ||
        at->n > MAX_EXITS || heads->n != at->n)
        return fail(err, errlen, "header field 'sets.%s.exits': expected 1 to 64 layer counts "
                    "and 'heads' of the same length%s", name, ""), -1;
    for (int i = 0; i < at->n; i++) /* every count, then every head (read_export's order) */
        if (jint(&at->items[i], 0, m->L, &x->at[i]) || (i && x->at[i] <= x->at[i - 1]))
            return fail(err, errlen, "header field 'sets.%s.exits': expected increasing layer "
                        "counts up to model.layers%s", name, ""), -1;
    for (int i = 0; i < at->n; i++) {
        const jv *hd = &heads->items[i];
        x->lin[i] = -1;
        if (hd->type == J_STR && !strcmp(hd->str, "decoder")) x->lin[i] = (int)(4 * m->L);
        for (int j = 0; j < m->nheads && hd->type == J_STR; j++) {
            char want[64];
            snprintf(want, sizeof want, "exit_heads.%lld", (long long)m->head_at[j]);
            if (!strcmp(hd->str, want) && m->head_at[j] == x->at[i])
                x->lin[i] = (int)(4 * m->L + 1 + j);
        }
        if (x->lin[i] < 0)
            return fail(err, errlen, "header field 'sets.%s.heads': expected 'decoder' or the "
                        "exit head at that exit (exit_heads.<layers>)%s", name, ""), -1;
    }
    if ((at->n > 1 && !thr) ||
        (thr && (thr->type != J_NUM || !(thr->num >= 0.0 && thr->num <= 1.0))))
        return fail(err, errlen, "header field 'sets.%s.threshold': expected a number in "
                    "[0, 1] (needed with two exits or more)%s", name, ""), -1;
    x->threshold = thr ? thr->num : 1.0;
    x->n = at->n;
    return 0;
}

static int load_model(rt3e_model *m, const jv *h, char *err, int errlen) {
    const jv *model = jget(h, "model");
    const char *fields[5] = {"vocab_size", "emb", "ff", "layers", "heads"};
    int64_t *dst[5] = {&m->V, &m->E, &m->F, &m->L, &m->H};
    const jv *kind = jget(model, "kind");
    if (!kind || kind->type != J_STR || strcmp(kind->str, "rt3-transformer"))
        return fail(err, errlen, "header field '%s': the engine runs rt3-transformer models%s",
                    "model.kind", ""), -1;
    for (int i = 0; i < 5; i++)
        if (jint(jget(model, fields[i]), 1, 1 << 24, dst[i]))
            return fail(err, errlen, "header field 'model.%s': expected a positive integer%s",
                        fields[i], ""), -1;
    if (m->E % m->H)
        return fail(err, errlen, "header field '%s': emb must be divisible by heads%s",
                    "model.heads", ""), -1;
    int64_t ve[2] = {m->V, m->E};
    m->emb = want(m, "embedding.weight", "float32", 2, ve, err, errlen);
    if (!m->emb || load_heads(m, model, err, errlen)) return -1;
    int nlin = (int)(4 * m->L + 1 + m->nheads);
    m->lin = calloc((size_t)nlin, sizeof(linear_t));
    m->norms = calloc((size_t)(4 * m->L), sizeof(float *));
    if (!m->lin || !m->norms) return fail(err, errlen, "out of memory%s%s", "", ""), -1;
    int64_t max_in = m->E;
    for (int k = 0; k < nlin; k++) {
        char base[160], name[200];
        int64_t in, out;
        lin_name(m, k, base, sizeof base);
        if (k >= 4 * m->L) {
            in = m->E, out = m->V;
        } else {
            int which = k % 4;
            in = which == 3 ? m->F : m->E;
            out = which == 0 ? 3 * m->E : which == 2 ? m->F : m->E;
        }
        if (in > max_in) max_in = in;
        snprintf(name, sizeof name, "%s.pool", base);
        const array_t *pa = find(m, name);
        if (!pa || pa->ndim != 3)
            return fail(err, errlen, "array '%s': missing or not (block-rows, in, block)%s", name,
                        ""), -1;
        linear_t *l = &m->lin[k];
        l->in = in, l->out = out, l->B = pa->shape[2];
        if (l->B < 1 || l->B > MAX_BLOCK)
            return fail(err, errlen, "array '%s': block height must be 1..256%s", name, ""), -1;
        l->nbr = (out + l->B - 1) / l->B;
        int64_t shape[3] = {l->nbr, in, l->B};
        l->pool = want(m, name, "float32", 3, shape, err, errlen);
        if (!l->pool) return -1;
        snprintf(name, sizeof name, "%s.bias", base);
        int64_t bshape[1] = {l->nbr * l->B};
        l->bias = want(m, name, "float32", 1, bshape, err, errlen);
        if (!l->bias) return -1;
    }
    for (int i = 0; i < m->L; i++)
        for (int k = 0; k < 4; k++) {
            char name[200];
            snprintf(name, sizeof name, "layers.%d.norm%d.%s", i, 1 + k / 2,
                     k % 2 ? "bias" : "weight");
            int64_t shape[1] = {m->E};
            m->norms[4 * i + k] = want(m, name, "float32", 1, shape, err, errlen);
            if (!m->norms[4 * i + k]) return -1;
        }
    m->iota = malloc(sizeof(int32_t) * (size_t)max_in);
    if (!m->iota) return fail(err, errlen, "out of memory%s%s", "", ""), -1;
    for (int64_t c = 0; c < max_in; c++) m->iota[c] = (int32_t)c;
    /* the sets */
    const jv *sets = jget(h, "sets");
    if (!sets || sets->type != J_ARR || sets->n > 4096)
        return fail(err, errlen, "header field '%s': expected a list%s", "sets", ""), -1;
    m->nsets = sets->n;
    m->slots = nlin + 1;
    m->names = calloc((size_t)sets->n + 1, 128);
    m->tables = calloc((size_t)(sets->n + 1) * (size_t)m->slots, sizeof(table_t));
    m->exits = calloc((size_t)sets->n + 1, sizeof(exits_t));
    if (!m->names || !m->tables || !m->exits)
        return fail(err, errlen, "out of memory%s%s", "", ""), -1;
    for (int s = 0; s < sets->n; s++) {
        const jv *e = &sets->items[s], *nm = jget(e, "name"), *layers = jget(e, "layers");
        if (!nm || nm->type != J_STR || strlen(nm->str) >= 100 || !strcmp(nm->str, "dense"))
            return fail(err, errlen, "header field '%s': a set needs a name (not 'dense')%s",
                        "sets", ""), -1;
        for (int o = 0; o < s; o++)
            if (!strcmp(m->names[o], nm->str))
                return fail(err, errlen, "header field 'sets': set '%s' listed twice%s", nm->str,
                            ""), -1;
        for (const char *c = nm->str; *c; c++)
            if (!strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-", *c))
                return fail(err, errlen, "header field 'sets': set name '%s' has a character "
                            "outside [A-Za-z0-9._-]%s", nm->str, ""), -1;
        snprintf(m->names[s], 128, "%s", nm->str);
        if (load_exits(m, e, nm->str, &m->exits[s], err, errlen)) return -1;
        if (!layers || layers->type != J_OBJ)
            return fail(err, errlen, "header field 'sets.%s.layers': expected an object%s",
                        nm->str, ""), -1;
        for (int i = 0; i < layers->n; i++) {
            const char *layer = layers->keys[i];
            int slot = -1;
            int64_t rows = 0, in = 0, B;
            if (!strcmp(layer, "embedding")) slot = 0, rows = m->V, in = m->E;
            for (int k = 0; k < nlin && slot < 0; k++) {
                char base[160];
                lin_name(m, k, base, sizeof base);
                if (!strcmp(base, layer)) slot = 1 + k, rows = m->lin[k].out, in = m->lin[k].in;
            }
            if (slot < 0)
                return fail(err, errlen, "header field 'sets.%s.layers': unknown layer '%s'",
                            nm->str, layer), -1;
            if (jint(&layers->items[i], 1, MAX_BLOCK, &B))
                return fail(err, errlen, "header field 'sets.%s.layers.%s': expected block_rows",
                            nm->str, layer), -1;
            table_t *t = &m->tables[s * m->slots + slot];
            t->B = B;
            char prefix[300];
            snprintf(prefix, sizeof prefix, "sets.%s.%s", nm->str, layer);
            if (check_table(m, t, prefix, rows, in, slot ? m->lin[slot - 1].B : 0, err, errlen))
                return -1;
        }
    }
    if (live_heads(m)) return fail(err, errlen, "out of memory%s%s", "", ""), -1;
    m->active = -1;
    m->force_exit = -1;
    return 0;
}

int rt3e_abi(void) { return RT3E_ABI; }

/* RT3E_SPLIT_MACS (unset or empty: PARALLEL_MACS) into *out; -1 if not a decimal integer
 * 0..2^40 (0: every job is split, as the tests of the pool ask). */
static int split_macs(const char *s, int64_t *out) {
    *out = PARALLEL_MACS;
    if (!s || !*s) return 0;
    int64_t v = 0;
    for (const char *c = s; *c; c++) {
        if (*c < '0' || *c > '9' || v > ((int64_t)1 << 40)) return -1;
        v = v * 10 + (*c - '0');
    }
    if (v > ((int64_t)1 << 40)) return -1;
    *out = v;
    return 0;
}

/* Load the export in `dir` (header.json and its data file); NULL with `err` filled on
 * failure, naming the array or header field. */
rt3e_model *rt3e_open(const char *dir, char *err, int errlen) {
    char path[4096], header_hex[65];
    size_t hlen = 0, blen = 0;
    file_id id = {0};
    snprintf(path, sizeof path, "%s/header.json", dir);
    unsigned char *text = read_file(path, MAX_HEADER, &hlen, 0, NULL);
    if (!text) return fail(err, errlen, "%s: cannot read (or over 16 MiB)%s", path, ""), NULL;
    sha256_hex(text, hlen, header_hex);
    jv h;
    jp s = {(const char *)text, (const char *)text + hlen, 0, 0};
    int bad = jvalue(&s, &h);
    ws(&s);
    free(text);
    if (bad || s.bad || s.p != s.end || h.type != J_OBJ) {
        jv_free(&h);
        return fail(err, errlen, "%s: not a JSON object%s", path, ""), NULL;
    }
    rt3e_model *m = calloc(1, sizeof *m);
    int64_t version;
    const jv *fmt = jget(&h, "format"), *data = jget(&h, "data");
    const char *split = getenv("RT3E_SPLIT_MACS");
    if (!m) {
        fail(err, errlen, "out of memory%s%s", "", "");
    } else if (split_macs(split, &m->split_macs)) {
        fail(err, errlen, "RT3E_SPLIT_MACS is '%.40s': expected an integer 0..2^40%s", split, "");
    } else if (!fmt || fmt->type != J_STR || strcmp(fmt->str, "rt3lab-export")) {
        fail(err, errlen, "header field '%s': expected \"rt3lab-export\"%s", "format", "");
    } else if (jint(jget(&h, "version"), 0, 1 << 30, &version) || version != 1) {
        fail(err, errlen, "header field '%s': expected version 1%s", "version", "");
    } else if (!data || data->type != J_STR || strcmp(data->str, "arrays.bin")) {
        fail(err, errlen, "header field '%s': expected \"arrays.bin\"%s", "data", "");
    } else {
        snprintf(path, sizeof path, "%s/arrays.bin", dir);
        m->blob = read_file(path, (size_t)1 << 40, &blen, 1, &id);
        int verify = !stamp_matches(dir, header_hex, &id);
        if (!m->blob)
            fail(err, errlen, "%s: cannot read%s", path, "");
        else if (!load_arrays(m, jget(&h, "arrays"), blen, verify, err, errlen) &&
                 !load_model(m, &h, err, errlen)) {
            jv_free(&h);
            if (verify) write_stamp(dir, header_hex, &id);
            return m;
        }
    }
    jv_free(&h);
    rt3e_close(m);
    return NULL;
}

int rt3e_num_sets(const rt3e_model *m) { return m->nsets; }
const char *rt3e_set_name(const rt3e_model *m, int i) {
    return i >= 0 && i < m->nsets ? m->names[i] : NULL;
}
int64_t rt3e_vocab(const rt3e_model *m) { return m->V; }

/* Make set `i` active (-1: every layer dense); returns 0, or -1 for no such set. Selecting
 * is one integer store: the tables and weights stay where they are. */
int rt3e_select(rt3e_model *m, int i) {
    if (i < -1 || i >= m->nsets) return -1;
    m->active = i;
    return 0;
}

/* The exit the last forward pass took (0 for a set without exits). */
int rt3e_last_exit(const rt3e_model *m) { return m->last_exit; }

/* The confidence of the last exit scored (see the header), or -1 if none was. */
double rt3e_last_confidence(const rt3e_model *m) { return m->confidence; }

/* Every forward pass stops at exit i (its index in the set's exits; past the last: the
 * last), scoring the earlier ones as usual; -1: the threshold decides again. */
void rt3e_force_exit(rt3e_model *m, int i) { m->force_exit = i < 0 ? -1 : i; }

/* The threads a forward pass runs on (the caller included). */
int rt3e_threads(const rt3e_model *m) { return m->pool.n > 1 ? m->pool.n : 1; }

/* Run on n threads (1..MAX_THREADS; the caller is one of them): the old workers are
 * joined and n - 1 new ones started, pinned as the old ones were. 0, or -1 with `err`
 * filled (n out of range: nothing changes; a thread that cannot be created: one thread). */
int rt3e_set_threads(rt3e_model *m, int n, char *err, int errlen) {
    char num[16];
    snprintf(num, sizeof num, "%d", n);
    if (n < 1 || n > MAX_THREADS)
        return fail(err, errlen, "threads: expected 1..256, got %s%s", num, ""), -1;
    if (n == rt3e_threads(m)) return 0;
    const int pin = m->pool.ncpus > 0;
    pool_stop(&m->pool);
    if (pool_start(&m->pool, n, pin))
        return fail(err, errlen, "threads: cannot start %s (running on one)%s", num, ""), -1;
    return 0;
}

/* Pin the calling thread and the workers, one to a CPU of the calling thread's affinity mask
 * (the caller to the first; the workers restarted, pinned to the others): for a process of
 * its own, the runner. A library caller leaves every thread to the scheduler (see Threads).
 * Nothing without workers; a thread the OS refuses stays where it is. 0, or -1 if the
 * workers cannot be restarted (one thread, unpinned, as rt3e_set_threads leaves it). */
int rt3e_pin_caller(rt3e_model *m) {
    const int n = m->pool.n;
    if (n <= 1) return 0;
    pool_stop(&m->pool);
    if (pool_start(&m->pool, n, 1)) return -1;
    pin_to(&m->pool, 0);
    return 0;
}

/* The set named `name` ("dense" for none), or -2 if there is none. */
int rt3e_find(const rt3e_model *m, const char *name) {
    if (!strcmp(name, "dense")) return -1;
    for (int i = 0; i < m->nsets; i++)
        if (!strcmp(m->names[i], name)) return i;
    return -2;
}

/* ---------------------------------------------------------------- kernels */
/* R tokens x one block-row of B outputs over n kept columns: the generic form (any B). */
static void tile(const float *restrict x, int64_t ldx, int R, const int32_t *restrict cols,
                 int64_t n, const float *restrict wb, int64_t B, const float *restrict bias,
                 float *restrict y, int64_t ldy, int64_t nr) {
    float acc[4][MAX_BLOCK];
    for (int r = 0; r < R; r++)
        for (int64_t i = 0; i < B; i++) acc[r][i] = bias[i];
    for (int64_t j = 0; j < n; j++) {
        const int64_t c = cols[j];
        const float *restrict w = wb + c * B;
        for (int r = 0; r < R; r++) {
            const float s = x[r * ldx + c];
            for (int64_t i = 0; i < B; i++) acc[r][i] += s * w[i];
        }
    }
    for (int r = 0; r < R; r++)
        for (int64_t i = 0; i < nr; i++) y[r * ldy + i] = acc[r][i];
}

/* The same for B = 32 and TILE_R tokens, with every accumulator a named variable of a
 * GCC/Clang vector type of the target's register width (no intrinsics). Named variables, not
 * arrays, and native widths: otherwise GCC 12 keeps the accumulators in memory.
 *
 * Stores are whole registers of a constant size: a variable-size memcpy per register (as for
 * the last, partial block-row) made GCC spill every accumulator and branch on the size, a
 * fixed cost per tile that outweighed the multiply-adds of a sparse block-row (~20 kept
 * columns). The partial block-row goes through a small buffer instead. */
#if defined(__AVX512F__)
#define TILE_R 8 /* 8 rows x 2 registers of 16: half of AVX-512's 32 registers */
typedef float vf __attribute__((vector_size(64), aligned(4), may_alias));
#define ROW(r) vf r##0 = b0, r##1 = b1
#define FMA(r, s) (r##0 += (s) * w0, r##1 += (s) * w1)
#define STORE(r, dst) (storev((dst), r##0), storev((dst) + 16, r##1))
#else
#define TILE_R 2 /* 2 rows x 4 registers of 8 (AVX2: 8 of 16; NEON pairs them: 16 of 32) */
typedef float vf __attribute__((vector_size(32), aligned(4), may_alias));
#define ROW(r) vf r##0 = b0, r##1 = b1, r##2 = b2, r##3 = b3
#define FMA(r, s) (r##0 += (s) * w0, r##1 += (s) * w1, r##2 += (s) * w2, r##3 += (s) * w3)
#define STORE(r, dst)                                                                     \
    (storev((dst), r##0), storev((dst) + 8, r##1), storev((dst) + 16, r##2),               \
     storev((dst) + 24, r##3))
#endif
#define VW ((int64_t)(sizeof(vf) / sizeof(float)))

/* Loads and stores through the under-aligned, may-alias vector type itself, not memcpy:
 * GCC 12 at -march=native on an AVX-512 Xeon (KVM guest, family 6 model 167, tuned for
 * 256-bit moves) expanded each 64-byte memcpy into two 32-byte moves through the stack,
 * reloaded them as one 64-byte register (a store-forwarding stall) and kept the
 * accumulators in memory: the quick bundle's dense ran 3.4x slower than the same source
 * built without AVX-512 (2.1 ms against 0.62), and 0.43 ms with these. */
static inline vf loadv(const float *p) { return *(const vf *)p; }
static inline void storev(float *p, vf v) { *(vf *)p = v; }

/* R (TILE_R or TILE_R / 2) rows of 32 outputs into y (row stride ldy), all 32 written. R is
 * a constant after inlining: the unused rows' accumulators and loads disappear. */
static inline __attribute__((always_inline)) void tile32_rows(
    const int R, const float *restrict x, int64_t ldx, const int32_t *restrict cols, int64_t n,
    const float *restrict wb, const float *restrict bias, float *restrict y, int64_t ldy) {
    const vf b0 = loadv(bias), b1 = loadv(bias + VW);
#if TILE_R == 8
    ROW(a); ROW(c); ROW(d); ROW(e); ROW(f); ROW(g); ROW(h); ROW(k);
    for (int64_t j = 0; j < n; j++) {
        const float *w = wb + (int64_t)cols[j] * 32, *xc = x + cols[j];
        const vf w0 = loadv(w), w1 = loadv(w + 16);
        FMA(a, xc[0]); FMA(c, xc[ldx]); FMA(d, xc[2 * ldx]); FMA(e, xc[3 * ldx]);
        if (R == 8) {
            FMA(f, xc[4 * ldx]); FMA(g, xc[5 * ldx]); FMA(h, xc[6 * ldx]); FMA(k, xc[7 * ldx]);
        }
    }
    STORE(a, y); STORE(c, y + ldy); STORE(d, y + 2 * ldy); STORE(e, y + 3 * ldy);
    if (R == 8) {
        STORE(f, y + 4 * ldy); STORE(g, y + 5 * ldy); STORE(h, y + 6 * ldy);
        STORE(k, y + 7 * ldy);
    }
#else
    const vf b2 = loadv(bias + 16), b3 = loadv(bias + 24);
    ROW(a); ROW(c);
    for (int64_t j = 0; j < n; j++) {
        const float *w = wb + (int64_t)cols[j] * 32, *xc = x + cols[j];
        const vf w0 = loadv(w), w1 = loadv(w + 8), w2 = loadv(w + 16), w3 = loadv(w + 24);
        FMA(a, xc[0]);
        if (R == 2) FMA(c, xc[ldx]);
    }
    STORE(a, y);
    if (R == 2) STORE(c, y + ldy);
#endif
}

static void tile32(const int R, const float *restrict x, int64_t ldx,
                   const int32_t *restrict cols, int64_t n, const float *restrict wb,
                   const float *restrict bias, float *restrict y, int64_t ldy) {
    if (R == TILE_R)
        tile32_rows(TILE_R, x, ldx, cols, n, wb, bias, y, ldy);
    else
        tile32_rows(TILE_R / 2, x, ldx, cols, n, wb, bias, y, ldy);
}

/* Block-rows b0..b1-1 of y = x W^T + bias over T tokens (every row the set keeps). */
static void linear_rows(const linear_t *l, const table_t *t, const int32_t *iota,
                        const float *x, int64_t T, float *y, int64_t b0, int64_t b1) {
    const int64_t B = l->B, in = l->in;
    for (int64_t b = b0; b < b1; b++) {
        const int32_t *cols = iota;
        int64_t n = in;
        if (t && t->B) cols = t->cols + t->off[b], n = t->off[b + 1] - t->off[b];
        const float *wb = l->pool + b * in * B, *bias = l->bias + b * B;
        const int64_t nr = l->out - b * B < B ? l->out - b * B : B;
        float *yb = y + b * B;
        int64_t tk = 0;
        if (t && t->B && b + 1 < b1 && t->off[b + 2] - t->off[b + 1] < in) {
            /* a set's kept weight rows are scattered, which the hardware's stream
             * prefetcher does not follow: fetch the next block-row's into L2 now (not when
             * it keeps every row: read in order, the stream prefetcher has them) */
            const float *wn = wb + in * B;
            const int32_t *cn = t->cols + t->off[b + 1];
            const int64_t nn = t->off[b + 2] - t->off[b + 1];
            for (int64_t j = 0; j < nn; j++)
                for (int64_t k = 0; k < B; k += 16) __builtin_prefetch(wn + cn[j] * B + k, 0, 1);
        }
        if (B == 32 && T >= TILE_R) {
            /* whole tiles, then the rest in one tile of TILE_R / 2 or TILE_R rows placed to
             * end at T: it overlaps the tile before (those rows are recomputed to the same
             * values) rather than falling back to single tokens */
            for (int R = TILE_R; tk < T; tk += R) {
                if (tk + R > T) {
                    R = T - tk <= TILE_R / 2 ? TILE_R / 2 : TILE_R;
                    tk = T - R;
                }
                if (nr == 32) {
                    tile32(R, x + tk * in, in, cols, n, wb, bias, yb + tk * l->out, l->out);
                } else { /* the last block-row: through a buffer, nr of its 32 kept */
                    float buf[TILE_R * 32];
                    tile32(R, x + tk * in, in, cols, n, wb, bias, buf, 32);
                    for (int r = 0; r < R; r++)
                        memcpy(yb + (tk + r) * l->out, buf + r * 32, sizeof(float) * (size_t)nr);
                }
            }
        } else {
            for (; tk < T; tk++)
                tile(x + tk * in, in, 1, cols, n, wb, B, bias, yb + tk * l->out, l->out, nr);
        }
    }
}

#define ROW_COST 16 /* a block-row's fixed cost (its tiles' stores), in kept columns */

/* Block-rows 0..b-1's cost: their kept columns (every column for a dense layer) plus
 * ROW_COST each; non-decreasing in b (the loader checked the offsets). */
static int64_t rows_cost(const linear_t *l, const table_t *t, int64_t b) {
    return (t && t->B ? (int64_t)t->off[b] : b * l->in) + b * ROW_COST;
}

/* The first block-row of part w of n: n contiguous runs of about equal cost. */
static int64_t part_start(const linear_t *l, const table_t *t, int w, int n) {
    if (w <= 0) return 0;
    if (w >= n) return l->nbr;
    const int64_t goal = rows_cost(l, t, l->nbr) * w / n;
    int64_t lo = 0, hi = l->nbr; /* the first b whose cost reaches the goal */
    while (lo < hi) {
        const int64_t mid = lo + (hi - lo) / 2;
        if (rows_cost(l, t, mid) < goal)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

typedef struct {
    const linear_t *l;
    const table_t *t;
    const int32_t *iota;
    const float *x;
    int64_t T;
    float *y;
} linear_job;

static void linear_part(void *ctx, int w, int n, int tid) {
    (void)tid;
    const linear_job *j = ctx;
    linear_rows(j->l, j->t, j->iota, j->x, j->T, j->y, part_start(j->l, j->t, w, n),
                part_start(j->l, j->t, w + 1, n));
}

/* y = x W^T + bias for T tokens under table t (NULL or B 0: dense), on the pool's threads. */
static void linear(rt3e_model *m, const linear_t *l, const table_t *t, const float *x,
                   int64_t T, float *y) {
    linear_job j = {l, t, m->iota, x, T, y};
    const int split = m->pool.n > 1 && rows_cost(l, t, l->nbr) * l->B * T >= m->split_macs;
    pool_run(&m->pool, linear_part, &j, split ? PARTS_PER_THREAD * m->pool.n : 1);
}

static inline float hsum(vf v) {
    float s = 0;
    for (int64_t l = 0; l < VW; l++) s += v[l];
    return s;
}

/* x = LayerNorm(x + o) row by row, the residual add in the same pass as
 * the mean; sums in register lanes (the compiler may not reassociate one float sum). */
static void add_norm(float *restrict x, const float *restrict o, int64_t T, int64_t E,
                     const float *restrict w, const float *restrict b) {
    const int64_t Ev = E / VW * VW;
    for (int64_t t = 0; t < T; t++) {
        float *r = x + t * E;
        const float *ro = o + t * E;
        vf vs = {0};
        int64_t i = 0;
        for (; i < Ev; i += VW) {
            const vf v = loadv(r + i) + loadv(ro + i);
            storev(r + i, v);
            vs += v;
        }
        float sum = hsum(vs);
        for (; i < E; i++) sum += (r[i] += ro[i]);
        const float mu = sum / (float)E;
        vf vq = {0};
        for (i = 0; i < Ev; i += VW) {
            const vf dv = loadv(r + i) - mu;
            vq += dv * dv;
        }
        float var = hsum(vq);
        for (; i < E; i++) var += (r[i] - mu) * (r[i] - mu);
        const float inv = 1.0f / sqrtf(var / (float)E + 1e-5f);
        for (i = 0; i < E; i++) r[i] = (r[i] - mu) * inv * w[i] + b[i];
    }
}

typedef int32_t vi __attribute__((vector_size(sizeof(vf)), aligned(4)));

static const float IOTA[16] = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15}; /* VW <= 16 */

/* e^x in every lane where `keep` is set, 0 elsewhere and below -87 (where expf is under
 * 2^-125): Cephes' expf (x = n ln 2 + r, |r| <= ln 2 / 2, a degree-6 polynomial in r, 2^n
 * written into the exponent bits) in vector operations only, VW lanes at a time where
 * libm's expf does one. For x <= 88. */
static inline vf expv(vf x, vi keep) {
    const vf zero = {0}, magic = zero + 12582912.0f; /* 1.5 * 2^23: adding it rounds to an int */
    keep &= x >= zero - 87.0f;
    x = (vf)(((vi)x & keep) | ((vi)(zero - 87.0f) & ~keep)); /* no NaN or -inf past here */
    const vf t = x * 1.44269504088896341f + magic, n = t - magic;
    const vf r = x - n * 0.693359375f - n * -2.12194440e-4f;
    vf y = zero + 1.9875691500e-4f;
    y = y * r + 1.3981999507e-3f;
    y = y * r + 8.3334519073e-3f;
    y = y * r + 4.1665795894e-2f;
    y = y * r + 1.6666665459e-1f;
    y = y * r + 5.0000001201e-1f;
    y = y * r * r + r + 1.0f;
    const vi two_n = ((vi)t - (vi)magic + 127) << 23; /* t's low bits hold n */
    return (vf)((vi)(y * (vf)two_n) & keep);
}

/* Causal multi-head attention, heads hl[k0..k1-1] (hl NULL: heads k0..k1-1): qkv (T, 3E) ->
 * their columns of out (T, E).
 * Scratch: p (Tp floats, one per thread) and kt (E x Tp, shared: each head its own columns),
 * Tp = T rounded up to VW. The keys are transposed once into kt (kt[c Tp + s] = key s,
 * column c) so that a query's scores, its softmax and the exponentials run along s in whole
 * registers. */
static void attention_heads(const float *qkv, int64_t T, int64_t E, int64_t H, float *out,
                            float *p, float *kt, const int32_t *hl, int64_t k0, int64_t k1) {
    const int64_t d = E / H, ld = 3 * E, Tp = (T + VW - 1) / VW * VW;
    const float scale = (float)(1.0 / sqrt((double)d));
    for (int64_t hk = k0; hk < k1; hk++) /* these heads' key columns */
        for (int64_t c = (hl ? hl[hk] : hk) * d; c < ((hl ? hl[hk] : hk) + 1) * d; c++) {
            for (int64_t s = 0; s < T; s++) kt[c * Tp + s] = qkv[s * ld + E + c];
            for (int64_t s = T; s < Tp; s++) kt[c * Tp + s] = 0;
        }
    for (int64_t hk = k0; hk < k1; hk++)
        for (int64_t t = 0; t < T; t++) {
            const int64_t h = hl ? hl[hk] : hk;
            const float *q = qkv + t * ld + h * d, *kh = kt + h * d * Tp;
            const int64_t nv = t / VW + 1; /* registers covering keys 0..t */
            for (int64_t k = 0; k < nv; k++) {
                vf s0 = {0}, s1 = {0};
                int64_t i = 0;
                for (; i + 2 <= d; i += 2) {
                    s0 += q[i] * loadv(kh + i * Tp + k * VW);
                    s1 += q[i + 1] * loadv(kh + (i + 1) * Tp + k * VW);
                }
                if (i < d) s0 += q[i] * loadv(kh + i * Tp + k * VW);
                s0 = (s0 + s1) * scale;
                storev(p + k * VW, s0);
            }
            float mx = -INFINITY;
            for (int64_t s = 0; s <= t; s++) mx = p[s] > mx ? p[s] : mx;
            vf vsum = {0};
            for (int64_t k = 0; k < nv; k++) {
                const vi live = loadv(IOTA) + (float)(k * VW) <= (float)t; /* keys 0..t */
                const vf e = expv(loadv(p + k * VW) - mx, live);
                storev(p + k * VW, e);
                vsum += e;
            }
            const float inv = 1.0f / hsum(vsum);
            float *o = out + t * E + h * d;
            const float *v = qkv + 2 * E + h * d;
            int64_t i = 0;
            for (; i + 2 * VW <= d; i += 2 * VW) { /* two register accumulators per chunk */
                vf o0 = {0}, o1 = {0};
                for (int64_t s = 0; s <= t; s++) {
                    const float ps = p[s] * inv;
                    o0 += ps * loadv(v + s * ld + i);
                    o1 += ps * loadv(v + s * ld + i + VW);
                }
                storev(o + i, o0);
                storev(o + i + VW, o1);
            }
            for (; i < d; i++) {
                float acc = 0;
                for (int64_t s = 0; s <= t; s++) acc += p[s] * inv * v[s * ld + i];
                o[i] = acc;
            }
        }
}

typedef struct {
    const float *qkv;
    int64_t T, E, H, pstride;
    float *out, *p, *kt;
    const int32_t *heads; /* the heads computed (nh of them; NULL: all H), split evenly */
    int64_t nh;
} attention_job;

static void attention_part(void *ctx, int w, int n, int tid) {
    const attention_job *j = ctx; /* scratch p: the thread's own */
    const int64_t nh = j->heads ? j->nh : j->H;
    attention_heads(j->qkv, j->T, j->E, j->H, j->out, j->p + tid * j->pstride, j->kt, j->heads,
                    nh * w / n, nh * (w + 1) / n);
}

/* The heads the active set computes in layer l (live_heads), their count in *n; NULL (and
 * H) when every head is: the model dense. */
static const int32_t *heads_of(const rt3e_model *m, int64_t l, int64_t *n) {
    if (m->active < 0) return *n = m->H, NULL;
    const int64_t at = (int64_t)m->active * m->L + l;
    *n = m->att_n[at];
    return m->att_heads + at * m->H;
}

/* The mean over T positions of the largest softmax probability of each row of logits
 * (T, V): 1 / sum(exp(l - max)) per row, the exponentials in float lanes (expv), the rows'
 * sums and their mean in double. */
static double confidence(const float *logits, int64_t T, int64_t V) {
    const vf zero = {0};
    const vi all = zero == zero;
    double total = 0;
    for (int64_t t = 0; t < T; t++) {
        const float *r = logits + t * V;
        vf vmx = zero - INFINITY; /* the row's max in register lanes, then across them */
        int64_t v = 0;
        for (; v + VW <= V; v += VW) {
            const vf x = loadv(r + v);
            const vi up = x > vmx;
            vmx = (vf)(((vi)x & up) | ((vi)vmx & ~up));
        }
        float mx = -INFINITY;
        for (int64_t l = 0; l < VW; l++) mx = vmx[l] > mx ? vmx[l] : mx;
        for (; v < V; v++) mx = r[v] > mx ? r[v] : mx;
        vf acc = zero;
        v = 0;
        for (; v + VW <= V; v += VW) acc += expv(loadv(r + v) - mx, all);
        double sum = hsum(acc);
        for (; v < V; v++) sum += exp((double)(r[v] - mx));
        total += 1.0 / sum;
    }
    return total / (double)T;
}

typedef struct {
    float *x, *qkv, *a, *o, *hid, *p, *kt;
    int64_t T, ps;
} scratch_t;

/* Encoder layer l on the hidden state s->x (T, E) under the set's tables (NULL: dense). */
static void run_layer(rt3e_model *m, const table_t *tab, int64_t l, const scratch_t *s) {
    const int64_t T = s->T, E = m->E, F = m->F;
    const linear_t *lin = m->lin + 4 * l;
    const table_t *lt = tab ? tab + 1 + 4 * l : NULL;
    linear(m, &lin[0], lt ? &lt[0] : NULL, s->x, T, s->qkv);
    attention_job att = {s->qkv, T, E, m->H, s->ps, s->a, s->p, s->kt, NULL, 0};
    att.heads = heads_of(m, l, &att.nh); /* a width set's heads (NULL: all) */
    const int nt = rt3e_threads(m); /* scores and weighted sum: 2 T T E / H per head */
    const int split = att.nh * 2 * T * T * (E / m->H) >= m->split_macs;
    pool_run(&m->pool, attention_part, &att, split ? (int)(att.nh < nt ? nt : att.nh) : 1);
    linear(m, &lin[1], lt ? &lt[1] : NULL, s->a, T, s->o);
    add_norm(s->x, s->o, T, E, m->norms[4 * l], m->norms[4 * l + 1]);
    linear(m, &lin[2], lt ? &lt[2] : NULL, s->x, T, s->hid);
    for (int64_t i = 0; i < T * F; i++) s->hid[i] = s->hid[i] > 0 ? s->hid[i] : 0;
    linear(m, &lin[3], lt ? &lt[3] : NULL, s->hid, T, s->o);
    add_norm(s->x, s->o, T, E, m->norms[4 * l + 2], m->norms[4 * l + 3]);
}

/* The active set's layers and exits (see the header) from the embedded state s->x: the
 * logits of the exit taken, which m->last_exit records. */
static void run_exits(rt3e_model *m, const table_t *tab, const scratch_t *s, float *logits) {
    const exits_t *ex = m->active >= 0 && m->exits[m->active].n ? &m->exits[m->active] : NULL;
    const int n = ex ? ex->n : 1;
    int64_t done = 0;
    m->confidence = -1;
    for (int i = 0; i < n; i++) {
        const int64_t at = ex ? ex->at[i] : m->L;
        const int k = ex ? ex->lin[i] : (int)(4 * m->L);
        for (; done < at; done++) run_layer(m, tab, done, s);
        linear(m, &m->lin[k], tab ? tab + 1 + k : NULL, s->x, s->T, logits);
        m->last_exit = i;
        if (i + 1 == n) return;
        m->confidence = confidence(logits, s->T, m->V); /* a forced exit pays for it too */
        if (m->force_exit == i || (m->force_exit < 0 && m->confidence >= ex->threshold)) return;
    }
}

/* Logits (T, vocab) of one token sequence under the active set; 0, or -1 with `err` filled
 * (a token out of range, no memory). */
int rt3e_forward(rt3e_model *m, const int64_t *tokens, int64_t T, float *logits, char *err,
                 int errlen) {
    const int64_t E = m->E, F = m->F;
    if (T < 1) return fail(err, errlen, "tokens: expected at least one%s%s", "", ""), -1;
    for (int64_t t = 0; t < T; t++)
        if (tokens[t] < 0 || tokens[t] >= m->V)
            return fail(err, errlen, "tokens: an id is outside the vocabulary%s%s", "", ""), -1;
    const int64_t Tp = (T + VW - 1) / VW * VW; /* attention's scratch: p, keys transposed */
    const int nt = rt3e_threads(m);
    const int64_t ps = (Tp + 15) / 16 * 16; /* each thread's p on its own cache lines */
    if (T > m->work_T || nt > m->work_n) {
        const int64_t wt = T > m->work_T ? T : m->work_T, wn = nt > m->work_n ? nt : m->work_n;
        const int64_t wp = (wt + VW - 1) / VW * VW, wps = (wp + 15) / 16 * 16;
        float *w = realloc(m->work, sizeof(float) * (size_t)(wt * (6 * E + F) + wps * wn + wp * E));
        if (!w) return fail(err, errlen, "out of memory%s%s", "", ""), -1;
        m->work = w, m->work_T = wt, m->work_n = (int)wn;
    }
    float *x = m->work, *qkv = x + T * E, *a = qkv + 3 * T * E, *o = a + T * E;
    float *hid = o + T * E, *p = hid + T * F, *kt = p + ps * nt;
    const table_t *tab = m->active >= 0 ? m->tables + (int64_t)m->active * m->slots : NULL;
    const float scale = (float)sqrt((double)E);
    if (T > m->pe_T) { /* sinusoidal positions, as the model's, computed once per length */
        float *pe = realloc(m->pe, sizeof(float) * (size_t)T * (size_t)E);
        if (!pe) return fail(err, errlen, "out of memory%s%s", "", ""), -1;
        for (int64_t t = 0; t < T; t++)
            for (int64_t i = 0; i < E; i += 2) {
                const double div = exp((double)i * (-log(10000.0) / (double)E));
                pe[t * E + i] = (float)sin((double)t * (float)div);
                if (i + 1 < E) pe[t * E + i + 1] = (float)cos((double)t * (float)div);
            }
        m->pe = pe, m->pe_T = T;
    }
    for (int64_t t = 0; t < T; t++) {
        const float *row = m->emb + tokens[t] * E, *pr = m->pe + t * E;
        float *xr = x + t * E;
        if (tab && tab[0].B) {
            const int64_t b = tokens[t] / tab[0].B;
            memset(xr, 0, sizeof(float) * (size_t)E);
            for (int32_t j = tab[0].off[b]; j < tab[0].off[b + 1]; j++)
                xr[tab[0].cols[j]] = row[tab[0].cols[j]] * scale;
        } else {
            for (int64_t i = 0; i < E; i++) xr[i] = row[i] * scale;
        }
        for (int64_t i = 0; i < E; i++) xr[i] += pr[i];
    }
    const scratch_t s = {x, qkv, a, o, hid, p, kt, T, ps};
    run_exits(m, tab, &s, logits);
    return 0;
}
