/*
 * Fuzz target: the Kubernetes JSON decoders (lib/kube_json.h).
 *
 * Every decoder gets the same input, as any of them may be handed any
 * answer an API server (or something pretending to be one) sends. The
 * watch-event decoder also gets each newline-separated line on its own, in
 * an exactly-sized buffer, the way the controller splits a watch stream.
 * The fixed-size strings the decoders fill must always be NUL-terminated
 * inside their arrays; a failing decoder must say why.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "kube_json.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FUZZ_KUBE_SOURCE "kube: fuzz"
/* Watch lines decoded one by one per input, so a many-line input stays fast. */
#define FUZZ_KUBE_MAX_WATCH_LINES 64
/* Buffer for metadata.continue: the controller's size, and a tiny one. */
#define FUZZ_KUBE_CONTINUE_CAP 4096
#define FUZZ_KUBE_CONTINUE_SMALL_CAP 8

/* Abort unless `s` is NUL-terminated within `cap` bytes. */
static void check_terminated(const char *s, size_t cap)
{
    if (memchr(s, '\0', cap) == NULL)
        abort();
}

static void check_deployment(const struct cps_kube_deployment *d)
{
    check_terminated(d->namespace, sizeof d->namespace);
    check_terminated(d->name, sizeof d->name);
    check_terminated(d->resource_version, sizeof d->resource_version);
}

static void check_status(const struct cps_kube_status *s)
{
    check_terminated(s->reason, sizeof s->reason);
    check_terminated(s->message, sizeof s->message);
}

/* A failed decode must fill the message. */
static void check_failure(int rc, const struct cps_err *err)
{
    if (rc != 0 && !err->message[0])
        abort();
}

/* DeploymentList item callback: checks the item and counts it. */
static void list_item_cb(const struct cps_kube_deployment *item, void *user)
{
    check_deployment(item);
    (*(size_t *)user)++;
}

/* Decode one watch line from an exactly-sized copy of it. */
static void decode_watch_line(const uint8_t *line, size_t len)
{
    char *copy = malloc(len ? len : 1);
    if (!copy)
        return;
    memcpy(copy, line, len);
    enum cps_kube_watch_type type;
    struct cps_kube_deployment d;
    struct cps_kube_status status;
    struct cps_err err;
    memset(&d, 0, sizeof d);
    memset(&status, 0, sizeof status);
    cps_err_clear(&err);
    int rc = cps_kube_decode_watch_event(copy, len, FUZZ_KUBE_SOURCE, &type, &d, &status, &err);
    check_failure(rc, &err);
    if (rc == 0) {
        if (type > CPS_KUBE_WATCH_ERROR)
            abort();
        check_deployment(&d);
        check_status(&status);
    }
    free(copy);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *body = (const char *)data;
    struct cps_err err;
    int rc;

    struct cps_kube_scale scale;
    memset(&scale, 0, sizeof scale);
    cps_err_clear(&err);
    rc = cps_kube_decode_scale(body, size, FUZZ_KUBE_SOURCE, &scale, &err);
    check_failure(rc, &err);
    check_terminated(scale.resource_version, sizeof scale.resource_version);

    struct cps_kube_deployment deployment;
    memset(&deployment, 0, sizeof deployment);
    cps_err_clear(&err);
    rc = cps_kube_decode_deployment(body, size, FUZZ_KUBE_SOURCE, &deployment, &err);
    check_failure(rc, &err);
    check_deployment(&deployment);

    char rv[CPS_KUBE_RV_MAX] = "";
    size_t items = 0;
    cps_err_clear(&err);
    rc = cps_kube_decode_deployment_list(body, size, 500, FUZZ_KUBE_SOURCE, list_item_cb, &items, rv,
                                         &err);
    check_failure(rc, &err);
    check_terminated(rv, sizeof rv);
    if (rc != 0 && items != 0)
        abort(); /* a failed list made callbacks */

    char token[FUZZ_KUBE_CONTINUE_CAP];
    if (cps_kube_list_continue(body, size, token, sizeof token) == 0)
        check_terminated(token, sizeof token);
    char small[FUZZ_KUBE_CONTINUE_SMALL_CAP];
    if (cps_kube_list_continue(body, size, small, sizeof small) == 0)
        check_terminated(small, sizeof small);

    struct cps_kube_lease lease;
    memset(&lease, 0, sizeof lease);
    cps_err_clear(&err);
    rc = cps_kube_decode_lease(body, size, FUZZ_KUBE_SOURCE, &lease, &err);
    check_failure(rc, &err);
    check_terminated(lease.holder_identity, sizeof lease.holder_identity);
    check_terminated(lease.resource_version, sizeof lease.resource_version);

    struct cps_kube_status status;
    memset(&status, 0, sizeof status);
    cps_kube_decode_status(body, size, &status);
    check_status(&status);

    /* The whole input as one watch line, then each line of it. */
    decode_watch_line(data, size);
    size_t start = 0;
    for (int n = 0; n < FUZZ_KUBE_MAX_WATCH_LINES && start < size; n++) {
        const uint8_t *nl = memchr(data + start, '\n', size - start);
        size_t end = nl ? (size_t)(nl - data) : size;
        if (nl || start > 0)
            decode_watch_line(data + start, end - start);
        start = end + 1;
    }
    return 0;
}
