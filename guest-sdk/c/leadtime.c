/* leadtime.c: the ABI exports, the MessagePack codec and the helpers of leadtime.h. */
#include "leadtime.h"

__attribute__((import_module("leadtime"), import_name("log"))) void
lt_host_log(int32_t level, const char *ptr, int32_t len);

/* ---- Arena: everything of one call, reset when the host starts the next. ---- */

extern unsigned char __heap_base;
static uint32_t arena_top;

static uint32_t heap_start(void) { return ((uint32_t)(uintptr_t)&__heap_base + 15u) & ~15u; }

void *lt_arena_alloc(uint32_t len) {
    if (arena_top == 0) arena_top = heap_start();
    uint32_t start = (arena_top + 7u) & ~7u;
    uint64_t end = (uint64_t)start + len;
    uint64_t have = (uint64_t)__builtin_wasm_memory_size(0) * 65536u;
    if (end > have) {
        uint64_t pages = (end - have + 65535u) / 65536u;
        if (__builtin_wasm_memory_grow(0, (uint32_t)pages) == (uint32_t)-1) return 0;
    }
    arena_top = (uint32_t)end;
    return (void *)(uintptr_t)start;
}

static void arena_reset(void) { arena_top = heap_start(); }

/* no_builtin: clang would otherwise turn these loops into calls to memcpy and memset, which are
 * defined here in terms of them: endless recursion. */
__attribute__((no_builtin)) static void copy_bytes(void *dst, const void *src, uint32_t n) {
    unsigned char *d = dst;
    const unsigned char *s = src;
    while (n--) *d++ = *s++;
}

/* clang may emit calls to these for struct copies and zeroing. */
__attribute__((no_builtin)) void *memcpy(void *dst, const void *src, size_t n) {
    copy_bytes(dst, src, (uint32_t)n);
    return dst;
}

__attribute__((no_builtin)) void *memset(void *dst, int c, size_t n) {
    unsigned char *d = dst;
    while (n--) *d++ = (unsigned char)c;
    return dst;
}

static uint32_t cstr_len(const char *s) {
    uint32_t n = 0;
    while (s[n]) n++;
    return n;
}

/* ---- Logging and response helpers. ---- */

void lt_log(int level, const char *msg, uint32_t len) { lt_host_log(level, msg, (int32_t)len); }

void lt_log_cstr(int level, const char *msg) { lt_log(level, msg, cstr_len(msg)); }

void lt_respond(lt_response *resp, double replicas) {
    uint32_t r;
    if (!(replicas > 0)) r = 0; /* also NaN */
    else if (replicas >= 4294967295.0) r = 4294967295u;
    else r = (uint32_t)replicas;
    resp->replicas = r;
    resp->has_replicas = 1;
}

void lt_reason(lt_response *resp, const char *s, uint32_t len) {
    if (resp->reason_len + len > resp->reason_cap) {
        uint32_t cap = resp->reason_cap * 2 + len + 64;
        char *grown = lt_arena_alloc(cap);
        if (!grown) return;
        copy_bytes(grown, resp->reason, resp->reason_len);
        resp->reason = grown;
        resp->reason_cap = cap;
    }
    copy_bytes(resp->reason + resp->reason_len, s, len);
    resp->reason_len += len;
}

void lt_reason_cstr(lt_response *resp, const char *s) { lt_reason(resp, s, cstr_len(s)); }

void lt_reason_u32(lt_response *resp, uint32_t v) {
    char digits[10];
    int n = 0;
    do {
        digits[9 - n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    lt_reason(resp, digits + 10 - n, (uint32_t)n);
}

void lt_fail(lt_response *resp, const char *msg, uint32_t len) {
    char *copy = lt_arena_alloc(len);
    if (copy) copy_bytes(copy, msg, len);
    resp->error = copy ? copy : "policy failed";
    resp->error_len = copy ? len : 13;
}

void lt_fail_cstr(lt_response *resp, const char *msg) { lt_fail(resp, msg, cstr_len(msg)); }

/* ---- Request helpers. ---- */

int lt_str_eq(lt_str a, const char *b) {
    uint32_t n = cstr_len(b);
    if (n != a.len) return 0;
    for (uint32_t i = 0; i < n; i++)
        if (a.ptr[i] != b[i]) return 0;
    return 1;
}

const lt_metric *lt_metric_named(const lt_request *req, const char *name) {
    for (uint32_t i = 0; i < req->n_metrics; i++)
        if (lt_str_eq(req->metrics[i].name, name)) return &req->metrics[i];
    return 0;
}

int lt_metric_last(const lt_metric *m, double *out) {
    for (uint32_t i = m->len; i > 0; i--) {
        double v = m->values[i - 1];
        if (v == v) {
            *out = v;
            return 1;
        }
    }
    return 0;
}

int lt_metric_mean(const lt_metric *m, double *out) {
    double sum = 0;
    uint32_t n = 0;
    for (uint32_t i = 0; i < m->len; i++) {
        double v = m->values[i];
        if (v == v) {
            sum += v;
            n++;
        }
    }
    if (!n) return 0;
    *out = sum / (double)n;
    return 1;
}

/* Heap sort: O(n log n) under the fuel budget even for long ready-time lists. */
static void sift_down(double *v, uint32_t start, uint32_t n) {
    uint32_t root = start;
    for (;;) {
        uint32_t child = 2 * root + 1;
        if (child >= n) return;
        if (child + 1 < n && v[child] < v[child + 1]) child++;
        if (!(v[root] < v[child])) return;
        double t = v[root];
        v[root] = v[child];
        v[child] = t;
        root = child;
    }
}

static void sort_doubles(double *v, uint32_t n) {
    if (n < 2) return;
    for (uint32_t i = n / 2; i > 0; i--) sift_down(v, i - 1, n);
    for (uint32_t end = n - 1; end > 0; end--) {
        double t = v[0];
        v[0] = v[end];
        v[end] = t;
        sift_down(v, 0, end);
    }
}

int lt_ready_quantile(const lt_request *req, double q, double *out) {
    double *v = lt_arena_alloc(req->n_ready_times * 8u + 8u);
    if (!v) return 0;
    uint32_t n = 0;
    for (uint32_t i = 0; i < req->n_ready_times; i++) {
        double s = req->ready_times[i].ready_seconds;
        if (s - s == 0 && s >= 0) v[n++] = s; /* finite and non-negative */
    }
    if (!n) return 0;
    sort_doubles(v, n);
    if (!(q >= 0)) q = 0; /* also NaN */
    if (q > 1) q = 1;
    double pos = q * (double)(n - 1);
    uint32_t lo = (uint32_t)pos;
    uint32_t hi = lo + 1 < n ? lo + 1 : n - 1;
    double frac = pos - (double)lo;
    *out = v[lo] + (v[hi] - v[lo]) * frac;
    return 1;
}

const lt_param *lt_param_get(const lt_params *params, const char *name) {
    for (uint32_t i = 0; i < params->len; i++)
        if (lt_str_eq(params->items[i].name, name)) return &params->items[i];
    return 0;
}

int lt_param_number(const lt_params *params, const char *name, double def, double *out) {
    const lt_param *p = lt_param_get(params, name);
    if (!p) {
        *out = def;
        return 1;
    }
    if (p->kind != LT_PARAM_NUMBER || p->number - p->number != 0) return 0;
    *out = p->number;
    return 1;
}

/* ---- MessagePack reader. ---- */

typedef struct {
    const uint8_t *p;
    const uint8_t *end;
    const char *err; /* first error, with the field it happened in */
} rd;

static void rd_fail(rd *r, const char *why) {
    if (!r->err) r->err = why;
    r->p = r->end;
}

static int rd_need(rd *r, uint32_t n) {
    if ((uint32_t)(r->end - r->p) < n) {
        rd_fail(r, "truncated message");
        return 0;
    }
    return 1;
}

static uint64_t rd_be(rd *r, uint32_t n) {
    uint64_t v = 0;
    if (!rd_need(r, n)) return 0;
    for (uint32_t i = 0; i < n; i++) v = (v << 8) | r->p[i];
    r->p += n;
    return v;
}

static uint8_t rd_peek(rd *r) { return r->p < r->end ? *r->p : 0xc1; }

/* Skips any value (nested containers included). */
static void rd_skip(rd *r) {
    uint32_t pending = 1;
    while (pending-- && !r->err) {
        if (!rd_need(r, 1)) return;
        uint8_t t = *r->p++;
        uint64_t n = 0;
        if (t <= 0x7f || t >= 0xe0 || t == 0xc0 || t == 0xc2 || t == 0xc3) continue;
        if ((t & 0xe0) == 0xa0) n = t & 0x1f;
        else if ((t & 0xf0) == 0x90) { pending += t & 0x0f; continue; }
        else if ((t & 0xf0) == 0x80) { pending += (t & 0x0f) * 2u; continue; }
        else switch (t) {
            case 0xc4: case 0xd9: n = rd_be(r, 1); break;
            case 0xc5: case 0xda: n = rd_be(r, 2); break;
            case 0xc6: case 0xdb: n = rd_be(r, 4); break;
            case 0xcc: case 0xd0: n = 1; break;
            case 0xcd: case 0xd1: n = 2; break;
            case 0xca: case 0xce: case 0xd2: n = 4; break;
            case 0xcb: case 0xcf: case 0xd3: n = 8; break;
            case 0xd4: n = 2; break;
            case 0xd5: n = 3; break;
            case 0xd6: n = 5; break;
            case 0xd7: n = 9; break;
            case 0xd8: n = 17; break;
            case 0xc7: n = rd_be(r, 1) + 1; break;
            case 0xc8: n = rd_be(r, 2) + 1; break;
            case 0xc9: n = rd_be(r, 4) + 1; break;
            case 0xdc: pending += (uint32_t)rd_be(r, 2); continue;
            case 0xdd: pending += (uint32_t)rd_be(r, 4); continue;
            case 0xde: pending += (uint32_t)rd_be(r, 2) * 2u; continue;
            case 0xdf: pending += (uint32_t)rd_be(r, 4) * 2u; continue;
            default: rd_fail(r, "invalid MessagePack byte"); return;
        }
        if (!rd_need(r, (uint32_t)n)) return;
        r->p += n;
    }
}

/* A number of any MessagePack width; nil is NaN. Returns 0 if the value is not a number. */
static int rd_number(rd *r, double *out) {
    if (!rd_need(r, 1)) return 0;
    uint8_t t = *r->p;
    if (t <= 0x7f) { r->p++; *out = t; return 1; }
    if (t >= 0xe0) { r->p++; *out = (int8_t)t; return 1; }
    r->p++;
    switch (t) {
        case 0xc0: *out = __builtin_nan(""); return 1;
        case 0xcc: *out = (double)rd_be(r, 1); return 1;
        case 0xcd: *out = (double)rd_be(r, 2); return 1;
        case 0xce: *out = (double)rd_be(r, 4); return 1;
        case 0xcf: *out = (double)rd_be(r, 8); return 1;
        case 0xd0: *out = (int8_t)rd_be(r, 1); return 1;
        case 0xd1: *out = (int16_t)rd_be(r, 2); return 1;
        case 0xd2: *out = (int32_t)rd_be(r, 4); return 1;
        case 0xd3: *out = (double)(int64_t)rd_be(r, 8); return 1;
        case 0xca: { uint32_t b = (uint32_t)rd_be(r, 4); float f; copy_bytes(&f, &b, 4); *out = f; return 1; }
        case 0xcb: { uint64_t b = rd_be(r, 8); copy_bytes(out, &b, 8); return 1; }
        default: r->p--; return 0;
    }
}

/* An integer of any width (floats are truncated). */
static int rd_int(rd *r, int64_t *out) {
    if (!rd_need(r, 1)) return 0;
    uint8_t t = *r->p;
    if (t == 0xd3) { r->p++; *out = (int64_t)rd_be(r, 8); return 1; }
    if (t == 0xcf) { r->p++; *out = (int64_t)rd_be(r, 8); return 1; }
    double d;
    if (!rd_number(r, &d) || d != d) return 0;
    *out = (int64_t)d;
    return 1;
}

static int rd_u32(rd *r, uint32_t *out, const char *field) {
    int64_t v;
    if (!rd_int(r, &v) || v < 0 || v > 4294967295LL) { rd_fail(r, field); return 0; }
    *out = (uint32_t)v;
    return 1;
}

static int rd_str(rd *r, lt_str *out) {
    if (!rd_need(r, 1)) return 0;
    uint8_t t = *r->p;
    uint64_t n;
    if ((t & 0xe0) == 0xa0) { r->p++; n = t & 0x1f; }
    else if (t == 0xd9) { r->p++; n = rd_be(r, 1); }
    else if (t == 0xda) { r->p++; n = rd_be(r, 2); }
    else if (t == 0xdb) { r->p++; n = rd_be(r, 4); }
    else return 0;
    if (!rd_need(r, (uint32_t)n)) return 0;
    out->ptr = (const char *)r->p;
    out->len = (uint32_t)n;
    r->p += n;
    return 1;
}

static int rd_bin(rd *r, const uint8_t **ptr, uint32_t *len) {
    if (!rd_need(r, 1)) return 0;
    uint8_t t = *r->p;
    uint64_t n;
    if (t == 0xc4) { r->p++; n = rd_be(r, 1); }
    else if (t == 0xc5) { r->p++; n = rd_be(r, 2); }
    else if (t == 0xc6) { r->p++; n = rd_be(r, 4); }
    else if ((t & 0xf0) == 0x90 || t == 0xdc || t == 0xdd) {
        /* Some writers send bytes as an array of small integers. */
        uint32_t count;
        if ((t & 0xf0) == 0x90) { r->p++; count = t & 0x0f; }
        else { r->p++; count = (uint32_t)rd_be(r, t == 0xdc ? 2 : 4); }
        uint8_t *buf = lt_arena_alloc(count + 1);
        if (!buf) { rd_fail(r, "out of memory"); return 0; }
        for (uint32_t i = 0; i < count; i++) {
            uint32_t b;
            if (!rd_u32(r, &b, "state: not bytes")) return 0;
            buf[i] = (uint8_t)b;
        }
        *ptr = buf;
        *len = count;
        return 1;
    } else return 0;
    if (!rd_need(r, (uint32_t)n)) return 0;
    *ptr = r->p;
    *len = (uint32_t)n;
    r->p += n;
    return 1;
}

static int rd_array(rd *r, uint32_t *n) {
    if (!rd_need(r, 1)) return 0;
    uint8_t t = *r->p;
    if ((t & 0xf0) == 0x90) { r->p++; *n = t & 0x0f; return 1; }
    if (t == 0xdc) { r->p++; *n = (uint32_t)rd_be(r, 2); return 1; }
    if (t == 0xdd) { r->p++; *n = (uint32_t)rd_be(r, 4); return 1; }
    return 0;
}

static int rd_map(rd *r, uint32_t *n) {
    if (!rd_need(r, 1)) return 0;
    uint8_t t = *r->p;
    if ((t & 0xf0) == 0x80) { r->p++; *n = t & 0x0f; return 1; }
    if (t == 0xde) { r->p++; *n = (uint32_t)rd_be(r, 2); return 1; }
    if (t == 0xdf) { r->p++; *n = (uint32_t)rd_be(r, 4); return 1; }
    return 0;
}

static int rd_nil(rd *r) {
    if (rd_peek(r) == 0xc0) { r->p++; return 1; }
    return 0;
}

static void *rd_alloc_array(rd *r, uint32_t count, uint32_t size) {
    /* Each element takes at least one byte on the wire: a larger count is a lie. */
    if (count > (uint32_t)(r->end - r->p)) { rd_fail(r, "array longer than the message"); return 0; }
    void *p = lt_arena_alloc(count * size + 1);
    if (!p) rd_fail(r, "out of memory");
    return p;
}

static void rd_params(rd *r, lt_params *out) {
    uint32_t n;
    if (!rd_map(r, &n)) { rd_fail(r, "params: not a map"); return; }
    lt_param *items = rd_alloc_array(r, n, sizeof(lt_param));
    if (!items) return;
    for (uint32_t i = 0; i < n && !r->err; i++) {
        lt_param *p = &items[i];
        if (!rd_str(r, &p->name)) { rd_fail(r, "params: a name is not a string"); return; }
        uint8_t t = rd_peek(r);
        if (t == 0xc2 || t == 0xc3) { p->kind = LT_PARAM_BOOL; p->boolean = t == 0xc3; r->p++; }
        else if (rd_str(r, &p->text)) p->kind = LT_PARAM_TEXT;
        else if (t != 0xc0 && rd_number(r, &p->number)) p->kind = LT_PARAM_NUMBER;
        else { rd_fail(r, "params: a value is not a bool, number or string"); return; }
    }
    out->items = items;
    out->len = n;
}

static void rd_metric(rd *r, lt_metric *m) {
    uint32_t n;
    if (!rd_map(r, &n)) { rd_fail(r, "metrics: an item is not a map"); return; }
    for (uint32_t i = 0; i < n && !r->err; i++) {
        lt_str key;
        if (!rd_str(r, &key)) { rd_fail(r, "metric: a key is not a string"); return; }
        if (lt_str_eq(key, "name")) {
            if (!rd_str(r, &m->name)) rd_fail(r, "metric.name: not a string");
        } else if (lt_str_eq(key, "target_per_pod")) {
            if (!rd_number(r, &m->target_per_pod)) rd_fail(r, "metric.target_per_pod: not a number");
        } else if (lt_str_eq(key, "interval_seconds")) {
            if (!rd_number(r, &m->interval_seconds)) rd_fail(r, "metric.interval_seconds: not a number");
        } else if (lt_str_eq(key, "end")) {
            if (!rd_int(r, &m->end)) rd_fail(r, "metric.end: not an integer");
        } else if (lt_str_eq(key, "values")) {
            uint32_t count;
            if (!rd_array(r, &count)) { rd_fail(r, "metric.values: not an array"); return; }
            double *v = rd_alloc_array(r, count, sizeof(double));
            if (!v) return;
            for (uint32_t j = 0; j < count; j++)
                if (!rd_number(r, &v[j])) { rd_fail(r, "metric.values: not a number"); return; }
            m->values = v;
            m->len = count;
        } else rd_skip(r);
    }
}

static void rd_request(rd *r, lt_request *req) {
    uint32_t n;
    if (!rd_map(r, &n)) { rd_fail(r, "request: not a map"); return; }
    for (uint32_t i = 0; i < n && !r->err; i++) {
        lt_str key;
        if (!rd_str(r, &key)) { rd_fail(r, "request: a key is not a string"); return; }
        if (lt_str_eq(key, "abi_version")) rd_u32(r, &req->abi_version, "abi_version: not a uint");
        else if (lt_str_eq(key, "now")) { if (!rd_int(r, &req->now)) rd_fail(r, "now: not an integer"); }
        else if (lt_str_eq(key, "workload")) {
            uint32_t m;
            if (!rd_map(r, &m)) { rd_fail(r, "workload: not a map"); return; }
            for (uint32_t j = 0; j < m && !r->err; j++) {
                lt_str k;
                if (!rd_str(r, &k)) { rd_fail(r, "workload: a key is not a string"); return; }
                if (lt_str_eq(k, "namespace")) { if (!rd_str(r, &req->namespace_)) rd_fail(r, "workload.namespace: not a string"); }
                else if (lt_str_eq(k, "name")) { if (!rd_str(r, &req->name)) rd_fail(r, "workload.name: not a string"); }
                else rd_skip(r);
            }
        } else if (lt_str_eq(key, "replicas")) {
            uint32_t m;
            if (!rd_map(r, &m)) { rd_fail(r, "replicas: not a map"); return; }
            for (uint32_t j = 0; j < m && !r->err; j++) {
                lt_str k;
                if (!rd_str(r, &k)) { rd_fail(r, "replicas: a key is not a string"); return; }
                if (lt_str_eq(k, "current")) rd_u32(r, &req->current, "replicas.current: not a uint");
                else if (lt_str_eq(k, "ready")) rd_u32(r, &req->ready, "replicas.ready: not a uint");
                else if (lt_str_eq(k, "min")) rd_u32(r, &req->min, "replicas.min: not a uint");
                else if (lt_str_eq(k, "max")) rd_u32(r, &req->max, "replicas.max: not a uint");
                else rd_skip(r);
            }
        } else if (lt_str_eq(key, "metrics")) {
            uint32_t count;
            if (!rd_array(r, &count)) { rd_fail(r, "metrics: not an array"); return; }
            lt_metric *ms = rd_alloc_array(r, count, sizeof(lt_metric));
            if (!ms) return;
            for (uint32_t j = 0; j < count && !r->err; j++) {
                lt_metric zero = {0};
                ms[j] = zero;
                rd_metric(r, &ms[j]);
            }
            req->metrics = ms;
            req->n_metrics = count;
        } else if (lt_str_eq(key, "ready_times")) {
            uint32_t count;
            if (!rd_array(r, &count)) { rd_fail(r, "ready_times: not an array"); return; }
            lt_ready_time *rt = rd_alloc_array(r, count, sizeof(lt_ready_time));
            if (!rt) return;
            for (uint32_t j = 0; j < count && !r->err; j++) {
                uint32_t m;
                rt[j].started_at = 0;
                rt[j].ready_seconds = __builtin_nan("");
                if (!rd_map(r, &m)) { rd_fail(r, "ready_times: an item is not a map"); return; }
                for (uint32_t k = 0; k < m && !r->err; k++) {
                    lt_str f;
                    if (!rd_str(r, &f)) { rd_fail(r, "ready_times: a key is not a string"); return; }
                    if (lt_str_eq(f, "started_at")) { if (!rd_int(r, &rt[j].started_at)) rd_fail(r, "ready_times.started_at: not an integer"); }
                    else if (lt_str_eq(f, "ready_seconds")) { if (!rd_number(r, &rt[j].ready_seconds)) rd_fail(r, "ready_times.ready_seconds: not a number"); }
                    else rd_skip(r);
                }
            }
            req->ready_times = rt;
            req->n_ready_times = count;
        } else if (lt_str_eq(key, "params")) rd_params(r, &req->params);
        else if (lt_str_eq(key, "state")) {
            if (rd_nil(r)) continue;
            if (!rd_bin(r, &req->state, &req->state_len)) rd_fail(r, "state: not bytes");
            else if (!req->state) req->state = (const uint8_t *)"";
        } else rd_skip(r);
    }
}

/* ---- MessagePack writer. ---- */

typedef struct {
    uint8_t *buf;
    uint32_t len, cap;
} wr;

static void wr_bytes(wr *w, const void *src, uint32_t n) {
    if (w->len + n > w->cap) {
        uint32_t cap = w->cap * 2 + n + 256;
        uint8_t *grown = lt_arena_alloc(cap);
        if (!grown) return;
        copy_bytes(grown, w->buf, w->len);
        w->buf = grown;
        w->cap = cap;
    }
    copy_bytes(w->buf + w->len, src, n);
    w->len += n;
}

static void wr_u8(wr *w, uint8_t b) { wr_bytes(w, &b, 1); }

static void wr_be(wr *w, uint64_t v, uint32_t n) {
    uint8_t b[8];
    for (uint32_t i = 0; i < n; i++) b[i] = (uint8_t)(v >> (8 * (n - 1 - i)));
    wr_bytes(w, b, n);
}

static void wr_uint(wr *w, uint64_t v) {
    if (v < 128) wr_u8(w, (uint8_t)v);
    else if (v < 256) { wr_u8(w, 0xcc); wr_be(w, v, 1); }
    else if (v < 65536) { wr_u8(w, 0xcd); wr_be(w, v, 2); }
    else if (v <= 0xffffffffu) { wr_u8(w, 0xce); wr_be(w, v, 4); }
    else { wr_u8(w, 0xcf); wr_be(w, v, 8); }
}

static void wr_int(wr *w, int64_t v) {
    if (v >= 0) wr_uint(w, (uint64_t)v);
    else { wr_u8(w, 0xd3); wr_be(w, (uint64_t)v, 8); }
}

static void wr_f64(wr *w, double d) {
    uint64_t b;
    copy_bytes(&b, &d, 8);
    wr_u8(w, 0xcb);
    wr_be(w, b, 8);
}

static void wr_str(wr *w, const char *s, uint32_t n) {
    if (n < 32) wr_u8(w, (uint8_t)(0xa0 | n));
    else if (n < 256) { wr_u8(w, 0xd9); wr_be(w, n, 1); }
    else if (n < 65536) { wr_u8(w, 0xda); wr_be(w, n, 2); }
    else { wr_u8(w, 0xdb); wr_be(w, n, 4); }
    wr_bytes(w, s, n);
}

static void wr_key(wr *w, const char *key) { wr_str(w, key, cstr_len(key)); }

static void wr_response(wr *w, const lt_response *resp) {
    if (resp->error) {
        wr_u8(w, 0x81);
        wr_key(w, "error");
        wr_str(w, resp->error, resp->error_len);
        return;
    }
    wr_u8(w, (uint8_t)(0x80 | (2 + (resp->has_state ? 1 : 0) + (resp->has_forecast ? 1 : 0))));
    wr_key(w, "replicas");
    wr_uint(w, resp->replicas);
    wr_key(w, "reason");
    wr_str(w, resp->reason ? resp->reason : "", resp->reason_len);
    if (resp->has_state) {
        uint32_t n = resp->state_len;
        wr_key(w, "state");
        if (n < 256) { wr_u8(w, 0xc4); wr_be(w, n, 1); }
        else if (n < 65536) { wr_u8(w, 0xc5); wr_be(w, n, 2); }
        else { wr_u8(w, 0xc6); wr_be(w, n, 4); }
        wr_bytes(w, resp->state, n);
    }
    if (resp->has_forecast) {
        wr_key(w, "forecast");
        wr_u8(w, 0x83);
        wr_key(w, "start");
        wr_int(w, resp->forecast_start);
        wr_key(w, "interval_seconds");
        wr_f64(w, resp->forecast_interval_seconds);
        wr_key(w, "values");
        uint32_t n = resp->forecast_len;
        if (n < 16) wr_u8(w, (uint8_t)(0x90 | n));
        else if (n < 65536) { wr_u8(w, 0xdc); wr_be(w, n, 2); }
        else { wr_u8(w, 0xdd); wr_be(w, n, 4); }
        for (uint32_t i = 0; i < n; i++) wr_f64(w, resp->forecast_values[i]);
    }
}

/* ---- The ABI exports. ---- */

static uint8_t *input;
static uint32_t input_len;

__attribute__((weak)) int lt_init(const lt_params *params) {
    (void)params;
    return 0;
}

__attribute__((export_name("leadtime_abi_version"))) int32_t leadtime_abi_version(void) {
    return LT_ABI_VERSION;
}

__attribute__((export_name("leadtime_alloc"))) int32_t leadtime_alloc(int32_t len) {
    arena_reset();
    input_len = len > 0 ? (uint32_t)len : 0;
    input = lt_arena_alloc(input_len);
    return (int32_t)(uintptr_t)input;
}

__attribute__((export_name("leadtime_init"))) int32_t leadtime_init(int32_t ptr, int32_t len) {
    rd r = {(const uint8_t *)(uintptr_t)ptr, (const uint8_t *)(uintptr_t)ptr + len, 0};
    lt_params params = {0, 0};
    rd_params(&r, &params);
    if (r.err) {
        lt_log_cstr(LT_ERROR, r.err);
        return 1;
    }
    return lt_init(&params);
}

static int64_t finish(wr *w) { return ((int64_t)(uintptr_t)w->buf << 32) | (int64_t)w->len; }

__attribute__((export_name("leadtime_decide"))) int64_t leadtime_decide(int32_t ptr, int32_t len) {
    rd r = {(const uint8_t *)(uintptr_t)ptr, (const uint8_t *)(uintptr_t)ptr + len, 0};
    lt_request req;
    memset(&req, 0, sizeof req);
    rd_request(&r, &req);
    lt_response resp;
    memset(&resp, 0, sizeof resp);
    wr w = {0, 0, 0};
    if (r.err) {
        /* Build "request: <why>" in the reason buffer, then send it as the error. */
        lt_reason_cstr(&resp, "request: ");
        lt_reason_cstr(&resp, r.err);
        resp.error = resp.reason;
        resp.error_len = resp.reason_len;
    } else if (lt_decide(&req, &resp) != 0 && !resp.error) {
        lt_fail_cstr(&resp, "policy failed");
    } else if (!resp.error && !resp.has_replicas) {
        lt_fail_cstr(&resp, "the policy set no replicas");
    }
    wr_response(&w, &resp);
    return finish(&w);
}
