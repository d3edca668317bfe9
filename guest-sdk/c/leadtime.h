/* leadtime.h: write a leadtime scaling policy in C (ABI v1, docs/ABI.md).
 *
 * Freestanding: no libc, no WASI. Compile your policy together with leadtime.c:
 *
 *   clang --target=wasm32 -O2 -nostdlib -ffreestanding -I guest-sdk/c \
 *     -Wl,--no-entry -Wl,--export=leadtime_abi_version -Wl,--export=leadtime_alloc \
 *     -Wl,--export=leadtime_decide -Wl,--export=leadtime_init \
 *     -o policy.wasm policy.c guest-sdk/c/leadtime.c
 *
 * Your file defines `lt_decide` (and `lt_init`); leadtime.c defines the ABI exports, decodes the
 * request and encodes the response. Everything it hands you lives in an arena that is reset when
 * the host starts the next call, so there is nothing to free.
 */
#ifndef LEADTIME_H
#define LEADTIME_H

#include <stddef.h>
#include <stdint.h>

#define LT_ABI_VERSION 1

/* Log levels of the host's `leadtime.log` import. */
enum { LT_DEBUG = 0, LT_INFO = 1, LT_WARN = 2, LT_ERROR = 3 };

/* A UTF-8 string inside the request (not NUL-terminated). */
typedef struct {
    const char *ptr;
    uint32_t len;
} lt_str;

/* A window of one metric: the workload's total per interval, oldest first; NaN is missing. */
typedef struct {
    lt_str name;
    double target_per_pod;
    double interval_seconds;
    int64_t end;
    const double *values;
    uint32_t len;
} lt_metric;

/* How long one recent pod took to become Ready. */
typedef struct {
    int64_t started_at;
    double ready_seconds;
} lt_ready_time;

/* Kind of a parameter value. */
typedef enum { LT_PARAM_BOOL, LT_PARAM_NUMBER, LT_PARAM_TEXT } lt_param_kind;

/* One parameter: name and value. */
typedef struct {
    lt_str name;
    lt_param_kind kind;
    int boolean;
    double number;
    lt_str text;
} lt_param;

/* The policy's parameters. */
typedef struct {
    const lt_param *items;
    uint32_t len;
} lt_params;

/* One call's input. */
typedef struct {
    uint32_t abi_version;
    int64_t now;
    lt_str namespace_;
    lt_str name;
    uint32_t current, ready, min, max;
    const lt_metric *metrics;
    uint32_t n_metrics;
    const lt_ready_time *ready_times;
    uint32_t n_ready_times;
    lt_params params;
    const uint8_t *state; /* NULL when the request has no state */
    uint32_t state_len;
} lt_request;

/* One call's output; fill it with the lt_respond_* / lt_reason_* helpers. */
typedef struct {
    uint32_t replicas;
    int has_replicas;
    char *reason;
    uint32_t reason_len, reason_cap;
    const uint8_t *state;
    uint32_t state_len;
    int has_state;
    const char *error;
    uint32_t error_len;
    int has_forecast;
    int64_t forecast_start;
    double forecast_interval_seconds;
    const double *forecast_values;
    uint32_t forecast_len;
} lt_response;

/* ---- You write these. ---- */

/* Decide: fill `resp` (lt_respond / lt_fail) and return 0. A non-zero return without an error
 * set becomes the error "policy failed". */
int lt_decide(const lt_request *req, lt_response *resp);

/* Check the parameters once at load; return 0 to accept, after logging why not at LT_ERROR.
 * Optional: leadtime.c has a weak default that accepts any parameters. */
int lt_init(const lt_params *params);

/* ---- Helpers. ---- */

/* Sends a line to the host's log. */
void lt_log(int level, const char *msg, uint32_t len);
/* Same, for a NUL-terminated string. */
void lt_log_cstr(int level, const char *msg);

/* Sets the replica target (saturates at 4294967295; NaN and negatives become 0). */
void lt_respond(lt_response *resp, double replicas);
/* Appends bytes to the reason. */
void lt_reason(lt_response *resp, const char *s, uint32_t len);
/* Appends a NUL-terminated string to the reason. */
void lt_reason_cstr(lt_response *resp, const char *s);
/* Appends a decimal unsigned integer to the reason. */
void lt_reason_u32(lt_response *resp, uint32_t v);
/* Marks the call failed with this message (copied). */
void lt_fail(lt_response *resp, const char *msg, uint32_t len);
/* Same, for a NUL-terminated string. */
void lt_fail_cstr(lt_response *resp, const char *msg);

/* The metric called `name` (NUL-terminated), or NULL. */
const lt_metric *lt_metric_named(const lt_request *req, const char *name);
/* The most recent value that is not missing; returns 0 when every value is missing. */
int lt_metric_last(const lt_metric *m, double *out);
/* Mean of the values that are not missing; returns 0 when there are none. */
int lt_metric_mean(const lt_metric *m, double *out);
/* The q quantile (0..=1, linear interpolation) of finite, non-negative ready times; 0 if none. */
int lt_ready_quantile(const lt_request *req, double q, double *out);

/* The parameter called `name`, or NULL. */
const lt_param *lt_param_get(const lt_params *params, const char *name);
/* A number parameter or `def` when absent; returns 0 when present but not a finite number. */
int lt_param_number(const lt_params *params, const char *name, double def, double *out);

/* Whether two strings are equal; `b` is NUL-terminated. */
int lt_str_eq(lt_str a, const char *b);
/* Arena memory valid until the next call; NULL when the memory cap is reached. */
void *lt_arena_alloc(uint32_t len);

#endif
