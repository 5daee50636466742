/*
 * The LIST+WATCH cache of Deployments (client-go's informer pattern): one
 * informer per namespace with plain Deployment targets, their items stored
 * on the matching target so a tick can skip the two GETs.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "controller.h"



static int is_plain_deployment(const struct cps_target *target)
{
    return strcmp(target->kind, "Deployment") == 0 && strcmp(target->api_version, "apps/v1") == 0;
}

/* informer: an object was listed or changed. */
static void cache_item_cb(const struct cps_kube_deployment *deployment, int deleted,
                          uint64_t stamp, void *user)
{
    struct cps_controller *ctl = user;
    long t = cps_targets_find(ctl, deployment->namespace, deployment->name);
    if (t < 0 || ctl->targets[t].informer_index < 0)
        return;
    struct cps_target_runtime *rt = &ctl->targets[t];
    rt->cached.spec_replicas = deployment->spec_replicas;
    rt->cached.status_replicas = deployment->status_replicas;
    rt->cached.ready_replicas = deployment->ready_replicas;
    memcpy(rt->cached.resource_version, deployment->resource_version,
           sizeof rt->cached.resource_version);
    memcpy(rt->cached.uid, deployment->uid, sizeof rt->cached.uid);
    rt->cached_present = !deleted;
    if (stamp)
        rt->cached_stamp = stamp;
}

/* informer: a LIST is complete; what it did not contain is gone. */
static void cache_list_done_cb(const char *namespace, uint64_t stamp, void *user)
{
    struct cps_controller *ctl = user;
    for (size_t t = 0; t < ctl->n_targets; t++) {
        struct cps_target_runtime *rt = &ctl->targets[t];
        if (rt->informer_index < 0 || (namespace && strcmp(namespace, rt->target->namespace)))
            continue;
        if (rt->cached_stamp != stamp)
            rt->cached_present = 0;
    }
}

void cps_watch_cache_free(struct cps_controller *ctl)
{
    for (size_t i = 0; i < ctl->n_informers; i++)
        cps_informer_free(ctl->informers[i]);
    free(ctl->informers);
    ctl->informers = NULL;
    ctl->n_informers = 0;
}

/* One LIST+WATCH per namespace that has Deployment targets (one for all
 * namespaces past CPS_INFORMER_MAX_NAMESPACES), started now; each target
 * learns which informer covers it. Rebuilt on every accepted reload. */
int cps_watch_cache_start(struct cps_controller *ctl)
{
    cps_watch_cache_free(ctl);
    for (size_t t = 0; t < ctl->n_targets; t++)
        ctl->targets[t].informer_index = -1;
    if (!ctl->options.watch)
        return 0;
    const char *namespaces[CPS_INFORMER_MAX_NAMESPACES];
    size_t n = 0;
    int cluster_wide = 0;
    for (size_t t = 0; t < ctl->n_targets && !cluster_wide; t++) {
        if (!is_plain_deployment(ctl->targets[t].target))
            continue;
        size_t i = 0;
        while (i < n && strcmp(namespaces[i], ctl->targets[t].target->namespace) != 0)
            i++;
        if (i == n) {
            if (n == CPS_INFORMER_MAX_NAMESPACES)
                cluster_wide = 1;
            else
                namespaces[n++] = ctl->targets[t].target->namespace;
        }
    }
    size_t count = cluster_wide ? 1 : n;
    if (count == 0)
        return 0;
    ctl->informers = calloc(count, sizeof *ctl->informers);
    if (!ctl->informers)
        return -1;
    struct cps_informer_callbacks callbacks = {cache_item_cb, cache_list_done_cb, ctl};
    for (size_t i = 0; i < count; i++) {
        ctl->informers[i] = cps_informer_new(ctl->loop, ctl->kube,
                                             cluster_wide ? NULL : namespaces[i],
                                             ctl->options.kube_timeout_ms,
                                             ctl->options.watch_timeout_ms,
                                             ctl->options.watch_progress_timeout_ms, &callbacks);
        if (!ctl->informers[i])
            return -1;
        ctl->n_informers++;
    }
    for (size_t t = 0; t < ctl->n_targets; t++) {
        struct cps_target_runtime *rt = &ctl->targets[t];
        if (!is_plain_deployment(rt->target))
            continue;
        for (size_t i = 0; i < count; i++)
            if (cluster_wide || strcmp(namespaces[i], rt->target->namespace) == 0)
                rt->informer_index = (int)i;
    }
    for (size_t i = 0; i < count; i++)
        cps_informer_start(ctl->informers[i]);
    return 0;
}

int cps_watch_cache_synced(const struct cps_controller *ctl, int64_t now_ms)
{
    for (size_t i = 0; i < ctl->n_informers; i++)
        if (!cps_informer_synced(ctl->informers[i], now_ms))
            return 0;
    return 1;
}

/* Fill this tick's reads from the watch cache when it can be trusted.
 * 1 when it did (no GETs needed), 0 when the target must be read. */
int cps_watch_cache_read(struct cps_controller *ctl, struct cps_target_runtime *rt,
                         int64_t now_ms)
{
    if (rt->informer_index < 0 ||
        !cps_informer_synced(ctl->informers[rt->informer_index], now_ms))
        return 0;
    rt->read_from_cache = 1;
    if (!rt->cached_present) {
        cps_target_note_error(rt, "%s not found (watch cache)",
                 rt->target->kind);
        return 1;
    }
    /* the scale subresource shares the Deployment's resourceVersion */
    rt->scale.spec_replicas = rt->cached.spec_replicas;
    rt->scale.status_replicas = rt->cached.status_replicas;
    memcpy(rt->scale.resource_version, rt->cached.resource_version,
           sizeof rt->scale.resource_version);
    rt->object_ready = rt->cached.ready_replicas;
    rt->have_scale = rt->have_object = 1;
    return 1;
}
