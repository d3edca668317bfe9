/* {{name}}: a leadtime scaling policy in C.
 *
 * replicas = ceil(latest load × (1 + headroom) / target per pod), the largest over the metrics.
 * Param `headroom` (fraction, default 0). Change lt_decide to make it yours.
 */
#include "leadtime.h"

static const char HEADROOM_ERROR[] = "param `headroom` must be a number in 0..=10";

static int headroom(const lt_params *params, double *out) {
    return lt_param_number(params, "headroom", 0, out) && *out >= 0 && *out <= 10;
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
    double h;
    if (!headroom(&req->params, &h)) {
        lt_fail_cstr(resp, HEADROOM_ERROR);
        return 1;
    }
    const lt_metric *best = 0;
    double best_want = -1;
    for (uint32_t i = 0; i < req->n_metrics; i++) {
        const lt_metric *m = &req->metrics[i];
        double last;
        if (!(m->target_per_pod > 0 && m->target_per_pod - m->target_per_pod == 0)) {
            lt_fail_cstr(resp, "a metric's target_per_pod must be positive");
            return 1;
        }
        if (!lt_metric_last(m, &last)) continue;
        double want = __builtin_ceil((last > 0 ? last : 0) * (1 + h) / m->target_per_pod);
        if (want > best_want) {
            best_want = want;
            best = m;
        }
    }
    if (!best) {
        lt_respond(resp, req->current);
        lt_reason_cstr(resp, "no metric has a value: holding current replicas");
        return 0;
    }
    lt_respond(resp, best_want);
    lt_reason(resp, best->name.ptr, best->name.len);
    lt_reason_cstr(resp, ": ");
    lt_reason_u32(resp, resp->replicas);
    lt_reason_cstr(resp, " pods for the latest load");
    return 0;
}
