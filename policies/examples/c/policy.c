/* Target tracking with headroom, in C: the conformance twin of policies/examples/rust.
 *
 * replicas = ceil(latest load × (1 + headroom) / target per pod), the largest over the metrics
 * with a positive target and a value; headroom doubles while the p90 ready time is over 120 s.
 * Param `headroom` (number in 0..=10, default 0.1). With no usable metric: hold current.
 */
#include "leadtime.h"

static const char HEADROOM_ERROR[] = "param `headroom` must be a number in 0..=10";

static int headroom(const lt_params *params, double *out) {
    return lt_param_number(params, "headroom", 0.1, out) && *out >= 0 && *out <= 10;
}

int lt_init(const lt_params *params) {
    double h;
    if (!headroom(params, &h)) {
        lt_log_cstr(LT_ERROR, HEADROOM_ERROR);
        return 1;
    }
    return 0;
}

int lt_decide(const lt_request *req, lt_response *resp) {
    double h, p90;
    if (!headroom(&req->params, &h)) {
        lt_fail_cstr(resp, HEADROOM_ERROR);
        return 1;
    }
    int slow = lt_ready_quantile(req, 0.9, &p90) && p90 > 120;
    if (slow) h *= 2;
    const lt_metric *best = 0;
    double best_want = -1;
    for (uint32_t i = 0; i < req->n_metrics; i++) {
        const lt_metric *m = &req->metrics[i];
        double last;
        if (!(m->target_per_pod > 0 && m->target_per_pod - m->target_per_pod == 0)) continue;
        if (!lt_metric_last(m, &last)) continue;
        double load = last > 0 ? last : 0;
        double want = __builtin_ceil(load * (1 + h) / m->target_per_pod);
        if (want > best_want) {
            best_want = want;
            best = m;
        }
    }
    if (!best) {
        lt_respond(resp, req->current);
        lt_reason_cstr(resp, "no usable metric: holding ");
        lt_reason_u32(resp, req->current);
        lt_reason_cstr(resp, " replicas");
        return 0;
    }
    lt_respond(resp, best_want);
    lt_reason(resp, best->name.ptr, best->name.len);
    lt_reason_cstr(resp, ": ");
    lt_reason_u32(resp, resp->replicas);
    lt_reason_cstr(resp, " pods for the latest load");
    if (slow) lt_reason_cstr(resp, " (slow starts: headroom doubled)");
    return 0;
}
