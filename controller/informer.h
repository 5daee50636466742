/*
 * A LIST+WATCH of Deployments (client-go's reflector pattern), so a tick
 * reads spec.replicas, ready replicas and the resourceVersion from memory
 * instead of sending two GETs per target.
 *
 * - LIST in pages (limit=500, continue) gives every object and the list's
 *   resourceVersion; each item goes to item_cb.
 * - WATCH from that resourceVersion streams ADDED/MODIFIED/DELETED events
 *   (and BOOKMARKs, which only move the resourceVersion) to item_cb.
 * - A watch that ends normally (timeoutSeconds) is reopened from the last
 *   resourceVersion; a 410 Gone (an ERROR event with code 410, or a 410
 *   answer) means the history is compacted: LIST again.
 * - Every re-list and every reopen after a failure (a bad or oversized
 *   event, a watch that fails or ends at once) waits first, as client-go's
 *   reflector does: 1 s doubling to 30 s, times a jitter in [1, 1.5), and
 *   the wait only goes back to 1 s after a minute without a failure. Each
 *   re-list is logged with its reason and counted (cps_informer_relists).
 * - A watch that brings no event and no bookmark for progress_timeout_ms
 *   is closed, the cache counts as out of sync at once, and it re-lists
 *   (a silent connection must not keep an old cache trusted).
 * - cps_informer_synced() is 1 only after a complete LIST and while the
 *   watch is open or was reopened recently; the controller falls back to
 *   per-target GETs otherwise, so a broken watch never feeds stale counts.
 * - A bookmark only moves the resourceVersion: its object (no name, zeroed
 *   spec and status on a real server) never reaches the cache.
 *
 * One informer covers one path: a namespace's Deployments or all of them.
 */
#ifndef CPS_INFORMER_H
#define CPS_INFORMER_H

#include <stdint.h>

#include "kube.h"
#include "kube_json.h"

struct ev_loop;
/* Plain Deployment targets in up to this many namespaces get one informer
 * per namespace; beyond it, one informer covers every namespace
 * (watch_cache.c), which needs list and watch at the cluster scope. Over
 * HTTP/1.1 each watch holds a connection of the watch lane. */
#define CPS_INFORMER_MAX_NAMESPACES 8

struct cps_informer;

/* Why a LIST was started again (labels of cpscale_watch_relists_total). */
enum cps_informer_relist_reason {
    CPS_INFORMER_RELIST_GONE = 0,     /* 410 Gone: the history was compacted */
    CPS_INFORMER_RELIST_WATCH_ERROR,  /* an ERROR event other than 410 */
    CPS_INFORMER_RELIST_BAD_EVENT,    /* an event that does not decode */
    CPS_INFORMER_RELIST_TOO_LARGE,    /* an event over the size cap */
    CPS_INFORMER_RELIST_NO_PROGRESS,  /* no event or bookmark for the progress timeout */
    CPS_INFORMER_RELIST_LIST_FAILED,  /* the LIST itself failed */
    CPS_INFORMER_RELIST_REASON_COUNT
};

/* An object seen: `deleted` 1 for a DELETED event. During a LIST, `stamp`
 * is the list's number; list_done_cb(stamp) then says every object not
 * stamped with it is gone. */
struct cps_informer_callbacks {
    void (*item_cb)(const struct cps_kube_deployment *deployment, int deleted, uint64_t stamp,
                    void *user);
    void (*list_done_cb)(const char *namespace, uint64_t stamp, void *user);
    void *user;
};

/* Watch the Deployments of `namespace` (NULL: every namespace). Each watch
 * asks the server to end it after watch_timeout_ms (timeoutSeconds), as
 * client-go does, and is then reopened from the last resourceVersion; one
 * silent for progress_timeout_ms is closed and the cache re-listed. */
struct cps_informer *cps_informer_new(struct ev_loop *loop, struct cps_kube *kube,
                                      const char *namespace, int64_t request_timeout_ms,
                                      int64_t watch_timeout_ms, int64_t progress_timeout_ms,
                                      const struct cps_informer_callbacks *callbacks);

void cps_informer_start(struct cps_informer *informer);

/* 1 when the cache behind it can be trusted at monotonic now_ms. */
int cps_informer_synced(const struct cps_informer *informer, int64_t now_ms);

/* NULL when the informer covers every namespace. */
const char *cps_informer_namespace(const struct cps_informer *informer);

/* For /metrics: LISTs done (the first plus every re-list). */
uint64_t cps_informer_lists(const struct cps_informer *informer);

/* For /metrics: re-lists started for `reason`, and the reason's label. */
uint64_t cps_informer_relists(const struct cps_informer *informer,
                              enum cps_informer_relist_reason reason);
const char *cps_informer_relist_reason_name(enum cps_informer_relist_reason reason);

/* Cancel what is in flight and free. NULL is a no-op. */
void cps_informer_free(struct cps_informer *informer);

#endif
