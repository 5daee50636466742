#include "kube_json.h"

#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "json_budget.h"
#include "trace.h"

#define MAX_REPLICAS_ON_WIRE 2147483647LL

/* Parse body as a JSON object; on failure fill err with line:col. */
static json_t *load_object(const char *body, size_t len, const char *source, struct cps_err *err)
{
    json_error_t json_error;
    json_t *root = json_loadb(body, len, JSON_REJECT_DUPLICATES, &json_error);
    if (!root) {
        cps_err_set(err, source, json_error.line, json_error.column, "not JSON: %s",
                    json_error.text);
        return NULL;
    }
    if (!json_is_object(root)) {
        json_decref(root);
        cps_err_set(err, source, 0, 0, "expected a JSON object");
        return NULL;
    }
    return root;
}

/* Copy an optional string field into a fixed buffer. Absent is "", a
 * non-string or too long a value is an error naming the path. */
static int copy_string_field(const json_t *object, const char *key, const char *path,
                             char *out, size_t cap, const char *source, struct cps_err *err)
{
    out[0] = '\0';
    const json_t *node = json_object_get(object, key);
    if (!node || json_is_null(node))
        return 0;
    if (!json_is_string(node))
        return cps_err_set(err, source, 0, 0, "%s: expected a string", path);
    size_t n = json_string_length(node);
    if (n >= cap)
        return cps_err_set(err, source, 0, 0, "%s: longer than %zu bytes", path, cap - 1);
    memcpy(out, json_string_value(node), n + 1);
    return 0;
}

/* An optional integer field within [min, max]; absent leaves *out at
 * `absent`. */
static int int_field(const json_t *object, const char *key, const char *path, long long min,
                     long long max, long long absent, long long *out, const char *source,
                     struct cps_err *err)
{
    const json_t *node = json_object_get(object, key);
    *out = absent;
    if (!node || json_is_null(node))
        return 0;
    if (!json_is_integer(node))
        return cps_err_set(err, source, 0, 0, "%s: expected an integer", path);
    long long value = json_integer_value(node);
    if (value < min || value > max)
        return cps_err_set(err, source, 0, 0, "%s: %lld is out of range", path, value);
    *out = value;
    return 0;
}

/* An optional object member; a present non-object is an error. */
static int object_field(const json_t *object, const char *key, const char *path,
                        const json_t **out, const char *source, struct cps_err *err)
{
    const json_t *node = json_object_get(object, key);
    *out = NULL;
    if (!node || json_is_null(node))
        return 0;
    if (!json_is_object(node))
        return cps_err_set(err, source, 0, 0, "%s: expected an object", path);
    *out = node;
    return 0;
}

int cps_kube_decode_scale(const char *body, size_t len, const char *source,
                          struct cps_kube_scale *out, struct cps_err *err)
{
    memset(out, 0, sizeof *out);
    json_t *root = load_object(body, len, source, err);
    if (!root)
        return -1;
    const json_t *metadata, *spec, *status;
    long long spec_replicas, status_replicas;
    int rc = -1;
    if (object_field(root, "metadata", "metadata", &metadata, source, err) ||
        object_field(root, "spec", "spec", &spec, source, err) ||
        object_field(root, "status", "status", &status, source, err))
        goto done;
    const char *kind = json_string_value(json_object_get(root, "kind"));
    if (kind && strcmp(kind, "Scale") != 0) {
        cps_err_set(err, source, 0, 0, "kind: expected Scale, got %s", kind);
        goto done;
    }
    if (!metadata) {
        cps_err_set(err, source, 0, 0, "metadata: missing");
        goto done;
    }
    if (copy_string_field(metadata, "resourceVersion", "metadata.resourceVersion",
                          out->resource_version, sizeof out->resource_version, source, err) ||
        copy_string_field(metadata, "uid", "metadata.uid", out->uid, sizeof out->uid, source,
                          err))
        goto done;
    /* spec.replicas is omitted when it is 0 (omitempty) */
    if (int_field(spec, "replicas", "spec.replicas", 0, MAX_REPLICAS_ON_WIRE, 0, &spec_replicas,
                  source, err) ||
        int_field(status, "replicas", "status.replicas", 0, MAX_REPLICAS_ON_WIRE, 0,
                  &status_replicas, source, err))
        goto done;
    if (out->resource_version[0] == '\0') {
        cps_err_set(err, source, 0, 0, "metadata.resourceVersion: missing");
        goto done;
    }
    out->spec_replicas = (int32_t)spec_replicas;
    out->status_replicas = (int32_t)status_replicas;
    rc = 0;
done:
    json_decref(root);
    return rc;
}

/* Fill a deployment from a decoded object; shared by GET, LIST and WATCH.
 * `path` prefixes messages ("items[3]", "object"). */
static int deployment_from_json(const json_t *object, const char *path, const char *source,
                                struct cps_kube_deployment *out, struct cps_err *err)
{
    memset(out, 0, sizeof *out);
    char field[96];
    const json_t *metadata, *spec, *status;
    long long value;
    if (!json_is_object(object))
        return cps_err_set(err, source, 0, 0, "%s: expected an object", path);
#define FIELD_PATH(suffix) (snprintf(field, sizeof field, "%s%s%s", path, *path ? "." : "", suffix), field)
    if (object_field(object, "metadata", FIELD_PATH("metadata"), &metadata, source, err) ||
        object_field(object, "spec", FIELD_PATH("spec"), &spec, source, err) ||
        object_field(object, "status", FIELD_PATH("status"), &status, source, err))
        return -1;
    if (!metadata)
        return cps_err_set(err, source, 0, 0, "%s: missing", FIELD_PATH("metadata"));
    if (copy_string_field(metadata, "namespace", FIELD_PATH("metadata.namespace"),
                          out->namespace, sizeof out->namespace, source, err) ||
        copy_string_field(metadata, "name", FIELD_PATH("metadata.name"), out->name,
                          sizeof out->name, source, err) ||
        copy_string_field(metadata, "resourceVersion", FIELD_PATH("metadata.resourceVersion"),
                          out->resource_version, sizeof out->resource_version, source, err) ||
        copy_string_field(metadata, "uid", FIELD_PATH("metadata.uid"), out->uid, sizeof out->uid,
                          source, err))
        return -1;
    if (out->name[0] == '\0')
        return cps_err_set(err, source, 0, 0, "%s: missing", FIELD_PATH("metadata.name"));
    if (out->resource_version[0] == '\0')
        return cps_err_set(err, source, 0, 0, "%s: missing",
                           FIELD_PATH("metadata.resourceVersion"));
    if (int_field(metadata, "generation", FIELD_PATH("metadata.generation"), 0, INT64_MAX, 0,
                  &value, source, err))
        return -1;
    out->generation = value;
    /* apps/v1 defaults spec.replicas to 1 when it is left out */
    if (int_field(spec, "replicas", FIELD_PATH("spec.replicas"), 0, MAX_REPLICAS_ON_WIRE, 1,
                  &value, source, err))
        return -1;
    out->spec_replicas = (int32_t)value;
    if (int_field(status, "replicas", FIELD_PATH("status.replicas"), 0, MAX_REPLICAS_ON_WIRE, 0,
                  &value, source, err))
        return -1;
    out->status_replicas = (int32_t)value;
    if (int_field(status, "readyReplicas", FIELD_PATH("status.readyReplicas"), 0,
                  MAX_REPLICAS_ON_WIRE, 0, &value, source, err))
        return -1;
    out->ready_replicas = (int32_t)value;
    if (int_field(status, "observedGeneration", FIELD_PATH("status.observedGeneration"), 0,
                  INT64_MAX, 0, &value, source, err))
        return -1;
    out->observed_generation = value;
#undef FIELD_PATH
    return 0;
}

int cps_kube_decode_deployment(const char *body, size_t len, const char *source,
                               struct cps_kube_deployment *out, struct cps_err *err)
{
    json_t *root = load_object(body, len, source, err);
    if (!root) {
        memset(out, 0, sizeof *out);
        return -1;
    }
    int rc = deployment_from_json(root, "", source, out, err);
    json_decref(root);
    return rc;
}

int cps_kube_decode_deployment_list(const char *body, size_t len, size_t max_items,
                                    const char *source,
                                    void (*item_cb)(const struct cps_kube_deployment *item,
                                                    void *user),
                                    void *user, char rv[CPS_KUBE_RV_MAX], struct cps_err *err)
{
    rv[0] = '\0';
    if (cps_json_budget_check(body, len, (max_items + 1) * CPS_KUBE_UNITS_PER_ITEM, "page limit",
                              source, err) != 0)
        return -1;
    json_t *root = load_object(body, len, source, err);
    if (!root)
        return -1;
    int rc = -1;
    const json_t *metadata;
    const json_t *items = json_object_get(root, "items");
    if (object_field(root, "metadata", "metadata", &metadata, source, err))
        goto done;
    if (metadata && copy_string_field(metadata, "resourceVersion", "metadata.resourceVersion",
                                      rv, CPS_KUBE_RV_MAX, source, err))
        goto done;
    if (rv[0] == '\0') {
        cps_err_set(err, source, 0, 0, "metadata.resourceVersion: missing");
        goto done;
    }
    if (items && !json_is_null(items) && !json_is_array(items)) {
        cps_err_set(err, source, 0, 0, "items: expected a list");
        goto done;
    }
    /* validate everything first: a consumer never sees half a list */
    size_t n = json_array_size(items);
    if (n > max_items) {
        cps_err_set(err, source, 0, 0, "items: %zu, more than the page limit of %zu", n,
                    max_items);
        goto done;
    }
    struct cps_kube_deployment item;
    char path[32];
    for (size_t i = 0; i < n; i++) {
        snprintf(path, sizeof path, "items[%zu]", i);
        if (deployment_from_json(json_array_get(items, i), path, source, &item, err) != 0)
            goto done;
    }
    for (size_t i = 0; i < n; i++) {
        snprintf(path, sizeof path, "items[%zu]", i);
        deployment_from_json(json_array_get(items, i), path, source, &item, err);
        item_cb(&item, user);
    }
    rc = 0;
done:
    if (rc != 0)
        rv[0] = '\0';
    json_decref(root);
    return rc;
}

int cps_kube_list_continue(const char *body, size_t len, char *out, size_t cap)
{
    out[0] = '\0';
    json_t *root = json_loadb(body, len, 0, NULL);
    if (!json_is_object(root)) {
        json_decref(root);
        return -1;
    }
    const char *token = json_string_value(json_object_get(json_object_get(root, "metadata"),
                                                          "continue"));
    int rc = 0;
    if (token && strlen(token) >= cap)
        rc = -1;
    else if (token)
        memcpy(out, token, strlen(token) + 1);
    json_decref(root);
    return rc;
}

/* Fill a Status from its JSON object (best effort, fields may be absent). */
static void status_from_json(const json_t *object, struct cps_kube_status *out)
{
    memset(out, 0, sizeof *out);
    const json_t *code = json_object_get(object, "code");
    if (json_is_integer(code) && json_integer_value(code) >= 0 && json_integer_value(code) < 1000)
        out->code = (int32_t)json_integer_value(code);
    const char *reason = json_string_value(json_object_get(object, "reason"));
    const char *message = json_string_value(json_object_get(object, "message"));
    snprintf(out->reason, sizeof out->reason, "%s", reason ? reason : "");
    snprintf(out->message, sizeof out->message, "%s", message ? message : "");
}

int cps_kube_decode_watch_event(const char *line, size_t len, const char *source,
                                enum cps_kube_watch_type *type,
                                struct cps_kube_deployment *deployment,
                                struct cps_kube_status *status, struct cps_err *err)
{
    static const struct {
        const char *name;
        enum cps_kube_watch_type type;
    } types[] = {{"ADDED", CPS_KUBE_WATCH_ADDED},
                 {"MODIFIED", CPS_KUBE_WATCH_MODIFIED},
                 {"DELETED", CPS_KUBE_WATCH_DELETED},
                 {"BOOKMARK", CPS_KUBE_WATCH_BOOKMARK},
                 {"ERROR", CPS_KUBE_WATCH_ERROR}};
    memset(deployment, 0, sizeof *deployment);
    memset(status, 0, sizeof *status);
    json_t *root = load_object(line, len, source, err);
    if (!root)
        return -1;
    int rc = -1;
    const char *type_name = json_string_value(json_object_get(root, "type"));
    const json_t *object = json_object_get(root, "object");
    size_t t = 0;
    while (type_name && t < sizeof types / sizeof types[0] && strcmp(types[t].name, type_name))
        t++;
    if (!type_name || t == sizeof types / sizeof types[0]) {
        cps_err_set(err, source, 0, 0, "type: expected ADDED, MODIFIED, DELETED, BOOKMARK or ERROR");
        goto done;
    }
    if (!json_is_object(object)) {
        cps_err_set(err, source, 0, 0, "object: expected an object");
        goto done;
    }
    *type = types[t].type;
    if (*type == CPS_KUBE_WATCH_ERROR) {
        status_from_json(object, status);
        rc = 0;
    } else if (*type == CPS_KUBE_WATCH_BOOKMARK) {
        const json_t *metadata;
        if (object_field(object, "metadata", "object.metadata", &metadata, source, err) == 0 &&
            copy_string_field(metadata, "resourceVersion", "object.metadata.resourceVersion",
                              deployment->resource_version, sizeof deployment->resource_version,
                              source, err) == 0) {
            /* a bookmark's only content is where to resume the watch */
            if (deployment->resource_version[0] == '\0')
                cps_err_set(err, source, 0, 0, "object.metadata.resourceVersion: missing");
            else
                rc = 0;
        }
    } else {
        rc = deployment_from_json(object, "object", source, deployment, err);
    }
done:
    json_decref(root);
    return rc;
}

/* RFC 3339 text of a JSON field to Unix ms; absent or null gives 0. */
static int time_field(const json_t *object, const char *key, const char *path, int64_t *out_ms,
                      const char *source, struct cps_err *err)
{
    *out_ms = 0;
    const json_t *node = json_object_get(object, key);
    if (!node || json_is_null(node))
        return 0;
    double epoch;
    size_t bad_offset;
    if (!json_is_string(node) ||
        cps_rfc3339_parse(json_string_value(node), json_string_length(node), &epoch,
                          &bad_offset) != 0)
        return cps_err_set(err, source, 0, 0, "%s: expected an RFC 3339 time", path);
    *out_ms = (int64_t)llround(epoch * 1000.0);
    return 0;
}

int cps_kube_decode_lease(const char *body, size_t len, const char *source,
                          struct cps_kube_lease *out, struct cps_err *err)
{
    memset(out, 0, sizeof *out);
    json_t *root = load_object(body, len, source, err);
    if (!root)
        return -1;
    int rc = -1;
    const json_t *metadata, *spec;
    long long value;
    if (object_field(root, "metadata", "metadata", &metadata, source, err) ||
        object_field(root, "spec", "spec", &spec, source, err))
        goto done;
    if (!metadata) {
        cps_err_set(err, source, 0, 0, "metadata: missing");
        goto done;
    }
    if (copy_string_field(metadata, "resourceVersion", "metadata.resourceVersion",
                          out->resource_version, sizeof out->resource_version, source, err))
        goto done;
    if (out->resource_version[0] == '\0') {
        cps_err_set(err, source, 0, 0, "metadata.resourceVersion: missing");
        goto done;
    }
    const json_t *annotations = json_object_get(metadata, "annotations");
    const json_t *scheme = json_is_object(annotations)
                               ? json_object_get(annotations, CPS_KUBE_SHARD_SCHEME_ANNOTATION)
                               : NULL;
    if (json_is_string(scheme)) /* a too long value is cut: it still differs from ours */
        snprintf(out->shard_scheme, sizeof out->shard_scheme, "%s", json_string_value(scheme));
    if (copy_string_field(spec, "holderIdentity", "spec.holderIdentity", out->holder_identity,
                          sizeof out->holder_identity, source, err) ||
        time_field(spec, "acquireTime", "spec.acquireTime", &out->acquire_time_ms, source, err) ||
        time_field(spec, "renewTime", "spec.renewTime", &out->renew_time_ms, source, err))
        goto done;
    if (int_field(spec, "leaseDurationSeconds", "spec.leaseDurationSeconds", 0, 1000000000, 0,
                  &value, source, err))
        goto done;
    out->lease_duration_s = (int32_t)value;
    if (int_field(spec, "leaseTransitions", "spec.leaseTransitions", 0, MAX_REPLICAS_ON_WIRE, 0,
                  &value, source, err))
        goto done;
    out->lease_transitions = (int32_t)value;
    rc = 0;
done:
    json_decref(root);
    return rc;
}

int cps_kube_decode_status(const char *body, size_t len, struct cps_kube_status *out)
{
    memset(out, 0, sizeof *out);
    json_t *root = json_loadb(body, len, 0, NULL);
    if (!root)
        return -1;
    const char *kind = json_string_value(json_object_get(root, "kind"));
    int rc = -1;
    if (json_is_object(root) && kind && strcmp(kind, "Status") == 0) {
        status_from_json(root, out);
        rc = 0;
    }
    json_decref(root);
    return rc;
}

/* Serialize compactly and release the object; NULL when out of memory. */
static char *dump_and_free(json_t *root)
{
    if (!root)
        return NULL;
    char *text = json_dumps(root, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(root);
    return text;
}

char *cps_kube_encode_scale_patch(const char *resource_version, int32_t replicas)
{
    json_t *root = json_object();
    json_t *metadata = json_object();
    json_t *spec = json_object();
    if (!root || !metadata || !spec) {
        json_decref(root), json_decref(metadata), json_decref(spec);
        return NULL;
    }
    if (resource_version && resource_version[0])
        json_object_set_new(metadata, "resourceVersion", json_string(resource_version));
    json_object_set_new(spec, "replicas", json_integer(replicas));
    json_object_set_new(root, "metadata", metadata);
    json_object_set_new(root, "spec", spec);
    return dump_and_free(root);
}

void cps_kube_format_micro_time(int64_t unix_us, char *out, size_t cap)
{
    time_t seconds = (time_t)(unix_us / 1000000);
    long micros = (long)(unix_us % 1000000);
    if (micros < 0) {
        micros += 1000000;
        seconds -= 1;
    }
    struct tm tm;
    gmtime_r(&seconds, &tm);
    /* Formatted whole first, then cut to cap: with any int year the text
     * fits here, so no build (gcc -O3 -Wformat-truncation) sees a cut. */
    char text[64];
    snprintf(text, sizeof text, "%04d-%02d-%02dT%02d:%02d:%02d.%06ldZ", tm.tm_year + 1900,
             tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, micros);
    snprintf(out, cap, "%s", text);
}

char *cps_kube_encode_lease(const char *namespace, const char *name,
                            const struct cps_kube_lease *lease)
{
    char acquire[40], renew[40];
    cps_kube_format_micro_time(lease->acquire_time_ms * 1000, acquire, sizeof acquire);
    cps_kube_format_micro_time(lease->renew_time_ms * 1000, renew, sizeof renew);
    json_t *metadata = json_pack("{s:s, s:s}", "name", name, "namespace", namespace);
    if (metadata && lease->resource_version[0])
        json_object_set_new(metadata, "resourceVersion", json_string(lease->resource_version));
    if (metadata && lease->shard_scheme[0])
        json_object_set_new(metadata, "annotations",
                            json_pack("{s:s}", CPS_KUBE_SHARD_SCHEME_ANNOTATION,
                                      lease->shard_scheme));
    json_t *spec = json_pack("{s:s, s:i, s:i}", "holderIdentity", lease->holder_identity,
                             "leaseDurationSeconds", (int)lease->lease_duration_s,
                             "leaseTransitions", (int)lease->lease_transitions);
    if (spec && lease->acquire_time_ms > 0)
        json_object_set_new(spec, "acquireTime", json_string(acquire));
    if (spec && lease->renew_time_ms > 0)
        json_object_set_new(spec, "renewTime", json_string(renew));
    if (!metadata || !spec) {
        json_decref(metadata), json_decref(spec);
        return NULL;
    }
    return dump_and_free(json_pack("{s:s, s:s, s:o, s:o}", "apiVersion",
                                   "coordination.k8s.io/v1", "kind", "Lease", "metadata", metadata,
                                   "spec", spec));
}

void cps_kube_event_name(const char *regarding_name, int64_t event_time_us, char *out,
                         size_t cap)
{
    snprintf(out, cap, "%.200s.%llx", regarding_name,
             (unsigned long long)event_time_us * 1000ULL);
}

char *cps_kube_encode_event(const struct cps_kube_event *event)
{
    char event_name[CPS_KUBE_NAME_MAX];
    char event_time[40];
    cps_kube_event_name(event->regarding_name, event->event_time_us, event_name,
                        sizeof event_name);
    cps_kube_format_micro_time(event->event_time_us, event_time, sizeof event_time);
    json_t *root = json_pack(
        "{s:s, s:s, s:{s:s, s:s}, s:s, s:s, s:s, s:s, s:s, s:s, s:s,"
        " s:{s:s, s:s, s:s, s:s}}",
        "apiVersion", "events.k8s.io/v1", "kind", "Event", "metadata", "name", event_name,
        "namespace", event->namespace, "eventTime", event_time, "reportingController",
        event->reporting_controller, "reportingInstance", event->reporting_instance, "action",
        event->action, "reason", event->reason, "note", event->note, "type", event->type,
        "regarding", "kind", event->regarding_kind, "apiVersion", event->regarding_api_version,
        "namespace", event->namespace, "name", event->regarding_name);
    if (root && event->regarding_uid && event->regarding_uid[0])
        json_object_set_new(json_object_get(root, "regarding"), "uid",
                            json_string(event->regarding_uid));
    return dump_and_free(root);
}

char *cps_kube_encode_event_series(int32_t count, int64_t last_observed_us)
{
    char observed[40];
    cps_kube_format_micro_time(last_observed_us, observed, sizeof observed);
    return dump_and_free(json_pack("{s:{s:i, s:s}}", "series", "count", (int)count,
                                   "lastObservedTime", observed));
}
