/*
 * Kubernetes API objects as JSON, the pure parts of the controller's
 * Kubernetes client: decoding Scale, Deployment, DeploymentList, watch
 * events, Lease and Status answers, and encoding the scale patch, Lease
 * bodies and events.k8s.io/v1 Events.
 *
 * Decoders fill caller-owned fixed-size structs (no allocation per object),
 * and report errors as "source: json.path: message" or, for JSON syntax,
 * "source:line:col: message". Encoders return a malloc'd string the caller
 * frees, or NULL when out of memory.
 */
#ifndef CPS_KUBE_JSON_H
#define CPS_KUBE_JSON_H

#include <stddef.h>
#include <stdint.h>

#include "err.h"

#define CPS_KUBE_RV_MAX 64        /* resourceVersion, as the API server sends it */
#define CPS_KUBE_NAME_MAX 254     /* DNS subdomain names: 253 bytes + NUL */
#define CPS_KUBE_IDENTITY_MAX 256 /* Lease holderIdentity */
#define CPS_KUBE_SHARD_SCHEME_MAX 64
#define CPS_KUBE_SHARD_SCHEME_ANNOTATION "cpscale.io/shard-scheme"
#define CPS_KUBE_MESSAGE_MAX 256
#define CPS_KUBE_UID_MAX 40       /* metadata.uid: a UUID, 36 bytes; longer is refused */

/* autoscaling/v1 Scale (the scale subresource). */
struct cps_kube_scale {
    int32_t spec_replicas;
    int32_t status_replicas;
    char resource_version[CPS_KUBE_RV_MAX];
    char uid[CPS_KUBE_UID_MAX]; /* the scaled object's; "" when not sent */
};

/* The parts of an apps/v1 Deployment the controller reads. */
struct cps_kube_deployment {
    char namespace[CPS_KUBE_NAME_MAX];
    char name[CPS_KUBE_NAME_MAX];
    int32_t spec_replicas;
    int32_t status_replicas;
    int32_t ready_replicas; /* 0 when the status has none yet */
    int64_t generation;
    int64_t observed_generation;
    char resource_version[CPS_KUBE_RV_MAX];
    char uid[CPS_KUBE_UID_MAX]; /* "" when not sent */
};

/* coordination.k8s.io/v1 Lease spec, times in Unix milliseconds (0: unset). */
struct cps_kube_lease {
    char holder_identity[CPS_KUBE_IDENTITY_MAX]; /* "" when nobody holds it */
    int32_t lease_duration_s;
    int64_t acquire_time_ms;
    int64_t renew_time_ms;
    int32_t lease_transitions;
    char resource_version[CPS_KUBE_RV_MAX]; /* "" on a new Lease */
    /* metadata.annotations["cpscale.io/shard-scheme"]: the shard hash and
     * count of the fleet that wrote it ("fnv1a64-v1/6"); "" when absent */
    char shard_scheme[CPS_KUBE_SHARD_SCHEME_MAX];
};

/* A meta/v1 Status (error answers and watch ERROR events). */
struct cps_kube_status {
    int32_t code;
    char reason[64];
    char message[CPS_KUBE_MESSAGE_MAX];
};

enum cps_kube_watch_type {
    CPS_KUBE_WATCH_ADDED = 0,
    CPS_KUBE_WATCH_MODIFIED,
    CPS_KUBE_WATCH_DELETED,
    CPS_KUBE_WATCH_BOOKMARK,
    CPS_KUBE_WATCH_ERROR,
};

int cps_kube_decode_scale(const char *body, size_t len, const char *source,
                          struct cps_kube_scale *out, struct cps_err *err);

int cps_kube_decode_deployment(const char *body, size_t len, const char *source,
                               struct cps_kube_deployment *out, struct cps_err *err);

/* JSON units (json_budget.h) one listed Deployment may cost decoded: a
 * real one with managedFields is 200-600. */
#define CPS_KUBE_UNITS_PER_ITEM 1024u

/* A DeploymentList: calls item_cb for each item in order, then stores the
 * list's metadata.resourceVersion (where a watch starts) in rv. A malformed
 * item fails the whole list before any callback is made, so a consumer never
 * sees half a list. A page of more than max_items items (the LIST's
 * `limit`), or one whose JSON would cost more than max_items x
 * CPS_KUBE_UNITS_PER_ITEM units decoded, is refused before decoding. */
int cps_kube_decode_deployment_list(const char *body, size_t len, size_t max_items,
                                    const char *source,
                                    void (*item_cb)(const struct cps_kube_deployment *item,
                                                    void *user),
                                    void *user, char rv[CPS_KUBE_RV_MAX], struct cps_err *err);

/* metadata.continue of a list page into out ("" when it is the last page
 * or absent). -1 when the body is not a JSON object or the token does not
 * fit. */
int cps_kube_list_continue(const char *body, size_t len, char *out, size_t cap);

/* One line of a watch stream of Deployments. For ERROR, `status` is filled
 * (410 Expired/Gone means: list again); for BOOKMARK only
 * deployment->resource_version is meaningful. */
int cps_kube_decode_watch_event(const char *line, size_t len, const char *source,
                                enum cps_kube_watch_type *type,
                                struct cps_kube_deployment *deployment,
                                struct cps_kube_status *status, struct cps_err *err);

/* A Lease object (GET answer). */
int cps_kube_decode_lease(const char *body, size_t len, const char *source,
                          struct cps_kube_lease *out, struct cps_err *err);

/* A Status body; 0 when body is one, -1 otherwise (out then zeroed). Used
 * to name the reason of a failed call in logs; never fails loudly. */
int cps_kube_decode_status(const char *body, size_t len, struct cps_kube_status *out);

/* {"metadata":{"resourceVersion":RV},"spec":{"replicas":N}}, the merge
 * patch of the scale subresource; RV may be NULL or "" (no precondition). */
char *cps_kube_encode_scale_patch(const char *resource_version, int32_t replicas);

/* A whole Lease for POST (create, resource_version "") or PUT (update, with
 * the resourceVersion read before, so a concurrent writer gets a 409). */
char *cps_kube_encode_lease(const char *namespace, const char *name,
                            const struct cps_kube_lease *lease);

/* What an events.k8s.io/v1 Event says about a rescale. */
struct cps_kube_event {
    const char *namespace;          /* of the regarding object and the Event */
    const char *regarding_kind;     /* "Deployment" */
    const char *regarding_api_version;
    const char *regarding_name;
    const char *type;               /* "Normal" or "Warning" */
    const char *reason;             /* "SuccessfulRescale", "FailedRescale" */
    const char *action;             /* "Scale" */
    const char *note;               /* "4→7: scale_up ..." */
    const char *reporting_controller; /* "cpscale.io/controller" */
    const char *reporting_instance;   /* the pod's identity */
    int64_t event_time_us;            /* Unix microseconds */
    const char *regarding_uid; /* NULL or "": left out, and kubectl describe
                                  cannot find the Event (it selects by uid) */
};

/* The Event body; its name is cps_kube_event_name()'s. */
char *cps_kube_encode_event(const struct cps_kube_event *event);

/* An Event's metadata.name: "<regarding name>.<event time in hex
 * nanoseconds>", as client-go names events (out: CPS_KUBE_NAME_MAX). */
void cps_kube_event_name(const char *regarding_name, int64_t event_time_us, char *out,
                         size_t cap);

/* The merge patch that updates an Event's series (events.k8s.io/v1:
 * count >= 2 and lastObservedTime), as client-go's broadcaster sends for
 * an isomorphic Event. */
char *cps_kube_encode_event_series(int32_t count, int64_t last_observed_us);

/* Format Unix microseconds as RFC 3339 with microseconds ("MicroTime",
 * 2026-01-02T03:04:05.678000Z) into out (at least 32 bytes). */
void cps_kube_format_micro_time(int64_t unix_us, char *out, size_t cap);

#endif
