/*
 * The controller's lifecycle: start (config, clients, targets, the HTTP
 * endpoint, the Lease, timers and signals), config reload, the tick timer,
 * leadership, signals and graceful shutdown.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config_file.h"
#include "controller.h"
#include "err.h"
#include "log.h"
#include "units.h"

/* Transfers in curl at once per lane (http.h); the rest queue. Under
 * HTTP/1.1 each is a connection, so watches (one per namespace up to 8,
 * plus one being reopened) can never take the Lease's or the writes'. */
#define HTTP_READ_SLOTS 16           /* GETs and Prometheus queries */
#define HTTP_WRITE_SLOTS 6           /* PATCHes and Events */
#define HTTP_LEASE_SLOTS 2           /* one attempt at a time, plus a release */
#define HTTP_SHARD_LEASE_SLOTS_MAX 16 /* with shards: one per Lease plus one, up to this */
#define HTTP_WATCH_SLOTS 10
#define LIVENESS_SLACK_MS 30000      /* /healthz tolerates this beyond 3 ticks */
#define LIVENESS_TICKS 3
#define FIRST_TICK_AFTER_ELECTION_S 1.0
#define FIRST_SYNC_WAIT_MS 5000      /* the first tick waits this long for the watch cache */
#define FIRST_SYNC_POLL_S 0.1
#define CONFIG_STAT_INTERVAL_S 1.0

static void shutdown_begin(struct cps_controller *ctl, const char *why);
static void tick_cb(struct ev_loop *loop, ev_timer *timer, int revents);
static void leadership_cb(int leading, void *user);
static void grace_expired_cb(struct ev_loop *loop, ev_timer *timer, int revents);
static void signal_cb(struct ev_loop *loop, ev_signal *watcher, int revents);


/* Log a config (or start-up) error with its file:line:col. */
static void log_config_error(const char *message, const struct cps_err *err)
{
    char text[CPS_ERR_SOURCE_MAX + CPS_ERR_MESSAGE_MAX + 32];
    cps_err_format(err, text, sizeof text);
    cps_log_message(CPS_LOG_ERROR, message, text);
}

/* Load the config file again; an invalid one is refused and the old one
 * stays in force. Called between ticks only. */
static void reload_config(struct cps_controller *ctl, const char *why)
{
    struct stat st;
    if (stat(ctl->options.config_path, &st) == 0)
        ctl->config_stat = st;
    struct cps_err err = {0};
    struct cps_config *config = cps_load_config_file_err(ctl->options.config_path, &err);
    if (!config) {
        cps_metrics_record_reload(&ctl->metrics, 0);
        log_config_error("config refused; the previous config stays in force", &err);
        return;
    }
    if (config->warning[0])
        cps_log_message(CPS_LOG_WARN, "deprecated config key", config->warning);
    struct cps_prom *prom = cps_prom_new(ctl->http, &config->prometheus, config->n_targets, &err);
    if (!prom || cps_targets_adopt(ctl, config) != 0) {
        if (prom) /* the targets could not be set up: memory is all that can fail */
            cps_err_set(&err, ctl->options.config_path, 0, 0,
                        "out of memory setting up its targets");
        cps_prom_free(prom);
        cps_config_free(config);
        cps_metrics_record_reload(&ctl->metrics, 0);
        log_config_error("config refused; the previous config stays in force", &err);
        return;
    }
    cps_prom_free(ctl->prom);
    ctl->prom = prom;
    if (cps_watch_cache_start(ctl) != 0)
        cps_log_message(CPS_LOG_ERROR, "cannot start the watches; reading with GETs", NULL);
    if (strcmp(config->listen, ctl->config->listen) != 0 ||
        config->leader_election.enabled != ctl->config->leader_election.enabled)
        cps_log_message(CPS_LOG_WARN,
                        "listen and leader_election changes take effect on restart", NULL);
    if (config->sharding.shards != ctl->config->sharding.shards ||
        config->sharding.warm_standby != ctl->config->sharding.warm_standby)
        cps_log_message(CPS_LOG_WARN, "sharding changes take effect on restart", NULL);
    if (config->interval_ms != ctl->config->interval_ms) {
        ev_timer_stop(ctl->loop, &ctl->tick_timer);
        ev_timer_set(&ctl->tick_timer, (double)config->interval_ms / CPS_MS_PER_S,
                     (double)config->interval_ms / CPS_MS_PER_S);
        ev_timer_start(ctl->loop, &ctl->tick_timer);
    }
    cps_config_free(ctl->config);
    ctl->config = config;
    ctl->config_generation++;
    cps_metrics_record_reload(&ctl->metrics, 1);
    struct cps_log_line line;
    cps_log_begin(&line, CPS_LOG_INFO, "config loaded");
    cps_log_str(&line, "file", ctl->options.config_path);
    cps_log_str(&line, "why", why);
    cps_log_int(&line, "generation", (long long)ctl->config_generation);
    cps_log_int(&line, "targets", (long long)ctl->n_targets);
    cps_log_end(&line);
    cps_backfill_start(ctl, "reload"); /* targets the reload added read their history */
}

/* Reload now, or after the tick in flight. */
static void request_reload(struct cps_controller *ctl, const char *why)
{
    if (ctl->tick_running) {
        ctl->reload_pending = 1;
        return;
    }
    reload_config(ctl, why);
}

/* 1 when the file behind the config path is no longer the one loaded (a
 * ConfigMap update swaps a symlink: the inode changes). */
static int config_file_changed(const struct cps_controller *ctl)
{
    struct stat st;
    if (stat(ctl->options.config_path, &st) != 0)
        return 0;
    return st.st_ino != ctl->config_stat.st_ino || st.st_dev != ctl->config_stat.st_dev ||
           st.st_size != ctl->config_stat.st_size ||
           st.st_mtim.tv_sec != ctl->config_stat.st_mtim.tv_sec ||
           st.st_mtim.tv_nsec != ctl->config_stat.st_mtim.tv_nsec;
}

static void config_changed_cb(struct ev_loop *loop, ev_stat *watcher, int revents)
{
    (void)loop;
    (void)revents;
    struct cps_controller *ctl = watcher->data;
    if (config_file_changed(ctl))
        request_reload(ctl, "file changed");
}

/* libev: the tick. Skipped (and counted) while the previous one runs. */
static void tick_cb(struct ev_loop *loop, ev_timer *timer, int revents)
{
    (void)loop;
    (void)revents;
    struct cps_controller *ctl = timer->data;
    int64_t now = cps_monotonic_ms();
    if (ctl->server)
        cps_server_heartbeat(ctl->server, now);
    if (ctl->shutting_down)
        return;
    if (ctl->ticks == 0 && !ctl->tick_running && now - ctl->started_ms < FIRST_SYNC_WAIT_MS &&
        !cps_watch_cache_synced(ctl, now)) {
        /* the first tick reads from the cache rather than sending two GETs
         * per target while the first LIST is still on its way */
        ev_timer_stop(ctl->loop, &ctl->sync_timer);
        ev_timer_set(&ctl->sync_timer, FIRST_SYNC_POLL_S, 0.0);
        ev_timer_start(ctl->loop, &ctl->sync_timer);
        return;
    }
    if (ctl->tick_running) {
        cps_metrics_record_tick_skipped(&ctl->metrics);
        cps_log_message(CPS_LOG_WARN, "tick skipped: the previous tick is still running", NULL);
        return;
    }
    if (config_file_changed(ctl))
        reload_config(ctl, "file changed");
    cps_tick_begin(ctl, now);
}

/* tick.c: a tick has reported; run what waited for it (a deferred
 * reload, shutdown, --once). */
static void tick_done_cb(struct cps_controller *ctl)
{
    if (ctl->reload_pending && !ctl->shutting_down) {
        ctl->reload_pending = 0;
        reload_config(ctl, "deferred until the tick ended");
    }
    cps_backfill_apply_finished(ctl); /* states that came back during the tick */
    if (ctl->shutting_down)
        shutdown_begin(ctl, NULL);
    else if (ctl->options.once)
        shutdown_begin(ctl, "--once: one tick done");
}

/* ---- leadership, signals and shutdown ---------------------------------- */

static void leadership_cb(int leading, void *user)
{
    struct cps_controller *ctl = user;
    ctl->leading = leading;
    if (!leading) /* queued PATCHes decided while leading go unsent */
        cps_http_recheck_queued(ctl->http, CPS_HTTP_LANE_WRITE);
    else /* a new leader with no learned state reads its history */
        cps_backfill_start(ctl, "leader");
    cps_tick_publish_metrics(ctl);
}

/* shards.c: the shards held changed. Losing one drops the queued writes
 * of its targets (their start check asks again); gaining the first reads
 * the history of targets with no learned state, as a new leader does. */
static void shards_changed_cb(uint32_t held, int lost, void *user)
{
    struct cps_controller *ctl = user;
    int was_leading = ctl->leading;
    ctl->leading = held > 0;
    if (lost)
        cps_http_recheck_queued(ctl->http, CPS_HTTP_LANE_WRITE);
    else if (!was_leading || !ctl->config->sharding.warm_standby)
        cps_backfill_start(ctl, "shard");
    cps_tick_publish_metrics(ctl);
}

static void released_cb(void *user)
{
    struct cps_controller *ctl = user;
    ev_break(ctl->loop, EVBREAK_ALL);
}


/* Stop ticking; once no tick is running, release the Lease and leave the
 * loop. Called again by tick_finish when a tick was in flight. */
static void shutdown_begin(struct cps_controller *ctl, const char *why)
{
    if (why) {
        struct cps_log_line line;
        cps_log_begin(&line, CPS_LOG_INFO, "shutting down");
        cps_log_str(&line, "why", why);
        cps_log_end(&line);
    }
    if (!ctl->shutting_down) {
        ctl->shutting_down = 1;
        ev_timer_stop(ctl->loop, &ctl->tick_timer);
        ev_timer_stop(ctl->loop, &ctl->sync_timer);
        ev_stat_stop(ctl->loop, &ctl->config_watcher);
        if (ctl->server)
            cps_server_set_ready(ctl->server, 0);
        if (ctl->tick_running) {
            ev_timer_set(&ctl->grace_timer, (double)ctl->options.shutdown_grace_ms / CPS_MS_PER_S,
                         0.0);
            ev_timer_start(ctl->loop, &ctl->grace_timer);
            return; /* tick_finish calls back */
        }
    } else if (ctl->tick_running) {
        return;
    }
    ev_timer_stop(ctl->loop, &ctl->grace_timer);
    if (ctl->shards)
        cps_shards_release(ctl->shards, released_cb, ctl);
    else if (ctl->lease)
        cps_lease_release(ctl->lease, released_cb, ctl);
    else
        ev_break(ctl->loop, EVBREAK_ALL);
}

static void grace_expired_cb(struct ev_loop *loop, ev_timer *timer, int revents)
{
    (void)loop;
    (void)revents;
    struct cps_controller *ctl = timer->data;
    cps_log_message(CPS_LOG_WARN, "shutdown grace over: cancelling the tick's requests", NULL);
    cps_tick_cancel(ctl);
    ctl->tick_running = 0;
    ctl->tick_acting = 0;
    ctl->tick_pending = 0;
    shutdown_begin(ctl, NULL);
}

static void signal_cb(struct ev_loop *loop, ev_signal *watcher, int revents)
{
    (void)loop;
    (void)revents;
    struct cps_controller *ctl = watcher->data;
    if (watcher->signum == SIGHUP) {
        request_reload(ctl, "SIGHUP");
        return;
    }
    shutdown_begin(ctl, watcher->signum == SIGTERM ? "SIGTERM" : "SIGINT");
}

/* The Lease holder identity: --identity, $POD_NAME, or the host name. */
static void choose_identity(struct cps_controller *ctl)
{
    const char *pod = getenv("POD_NAME");
    if (ctl->options.identity)
        snprintf(ctl->identity, sizeof ctl->identity, "%s", ctl->options.identity);
    else if (pod && *pod)
        snprintf(ctl->identity, sizeof ctl->identity, "%s", pod);
    else if (gethostname(ctl->identity, sizeof ctl->identity) != 0 || !ctl->identity[0])
        snprintf(ctl->identity, sizeof ctl->identity, "cpscale-%ld", (long)getpid());
    ctl->identity[sizeof ctl->identity - 1] = '\0';
}

static void controller_free(struct cps_controller *ctl)
{
    cps_backfill_free(ctl); /* cancels and joins the workers first */
    cps_watch_cache_free(ctl);
    cps_lease_free(ctl->lease);
    cps_shards_free(ctl->shards);
    if (ctl->http)
        cps_http_cancel_all(ctl->http);
    cps_targets_free_queries(ctl);
    cps_targets_release_all(ctl);
    cps_prom_free(ctl->prom);
    cps_kube_free(ctl->kube);
    cps_http_free(ctl->http);
    cps_server_stop(ctl->server);
    cps_config_free(ctl->config);
}

/* The HTTP client, Kubernetes and Prometheus clients, the targets, the
 * watch cache and the HTTP endpoint. 0, or -1 with the reason logged. */
static int open_clients(struct cps_controller *ctl)
{
    struct cps_err err = {0};
    size_t budget[CPS_HTTP_LANE_COUNT] = {0};
    budget[CPS_HTTP_LANE_READ] = HTTP_READ_SLOTS;
    budget[CPS_HTTP_LANE_WRITE] = HTTP_WRITE_SLOTS;
    int32_t shards = ctl->config->sharding.shards;
    budget[CPS_HTTP_LANE_LEASE] = shards <= 1 ? HTTP_LEASE_SLOTS
                                  : shards < HTTP_SHARD_LEASE_SLOTS_MAX ? (size_t)shards + 1
                                                                        : HTTP_SHARD_LEASE_SLOTS_MAX;
    budget[CPS_HTTP_LANE_WATCH] = HTTP_WATCH_SLOTS;
    ctl->http = cps_http_new(ctl->loop, budget);
    struct cps_kube_options kube_options = {ctl->options.kubeconfig, ctl->options.context,
                                            ctl->options.serviceaccount_dir};
    if (!ctl->http)
        return -1;
    ctl->kube = cps_kube_new(ctl->http, &kube_options, &err);
    if (!ctl->kube) {
        log_config_error("cannot start: Kubernetes credentials", &err);
        return -1;
    }
    ctl->prom = cps_prom_new(ctl->http, &ctl->config->prometheus, ctl->config->n_targets, &err);
    if (!ctl->prom) {
        log_config_error("cannot start: Prometheus settings", &err);
        return -1;
    }
    if (cps_targets_adopt(ctl, ctl->config) != 0 || cps_watch_cache_start(ctl) != 0 ||
        cps_backfill_init(ctl) != 0) {
        cps_log_message(CPS_LOG_ERROR, "cannot start: out of memory", NULL);
        return -1;
    }
    const char *listen = ctl->options.listen ? ctl->options.listen : ctl->config->listen;
    int64_t liveness = LIVENESS_TICKS * ctl->config->interval_ms + LIVENESS_SLACK_MS;
    ctl->server = cps_server_start(listen, liveness, &err);
    if (!ctl->server) {
        log_config_error("cannot start: HTTP endpoint", &err);
        return -1;
    }
    cps_server_heartbeat(ctl->server, cps_monotonic_ms());
    return 0;
}

/* Start leader election: the one Lease, or with sharding.shards > 1 one
 * Lease per shard (shards.h); 0, or -1 when the Lease clients cannot be
 * made. */
static int start_lease(struct cps_controller *ctl)
{
    const struct cps_leader_election_config *le = &ctl->config->leader_election;
    struct cps_lease_options lease_options = {
        .namespace = le->lease_namespace,
        .name = le->lease_name,
        .identity = ctl->identity,
        .lease_duration_ms = le->lease_duration_ms,
        .renew_deadline_ms = le->renew_deadline_ms,
        .retry_period_ms = le->retry_period_ms,
        .request_timeout_ms = le->retry_period_ms < ctl->options.kube_timeout_ms
                                  ? le->retry_period_ms
                                  : ctl->options.kube_timeout_ms,
    };
    if (ctl->config->sharding.shards > 1) {
        ctl->shards = cps_shards_new(ctl->loop, ctl->kube, (uint32_t)ctl->config->sharding.shards,
                                     &lease_options, shards_changed_cb, ctl);
        if (!ctl->shards)
            return -1;
        cps_shards_start(ctl->shards);
        return 0;
    }
    ctl->lease = cps_lease_new(ctl->loop, ctl->kube, &lease_options, leadership_cb, ctl);
    if (!ctl->lease)
        return -1;
    cps_lease_start(ctl->lease);
    return 0;
}

/* The tick, grace and first-sync timers, the signals and the config file
 * watcher. */
static void start_watchers(struct cps_controller *ctl, double first_tick_s)
{
    double interval_s = (double)ctl->config->interval_ms / CPS_MS_PER_S;
    ev_timer_init(&ctl->tick_timer, tick_cb, first_tick_s, interval_s);
    ctl->tick_timer.data = ctl;
    ev_timer_start(ctl->loop, &ctl->tick_timer);
    ev_timer_init(&ctl->grace_timer, grace_expired_cb, 0.0, 0.0);
    ctl->grace_timer.data = ctl;
    ev_timer_init(&ctl->sync_timer, tick_cb, FIRST_SYNC_POLL_S, 0.0);
    ctl->sync_timer.data = ctl;
    ev_signal_init(&ctl->sigterm_watcher, signal_cb, SIGTERM);
    ev_signal_init(&ctl->sigint_watcher, signal_cb, SIGINT);
    ev_signal_init(&ctl->sighup_watcher, signal_cb, SIGHUP);
    ctl->sigterm_watcher.data = ctl->sigint_watcher.data = ctl->sighup_watcher.data = ctl;
    ev_signal_start(ctl->loop, &ctl->sigterm_watcher);
    ev_signal_start(ctl->loop, &ctl->sigint_watcher);
    ev_signal_start(ctl->loop, &ctl->sighup_watcher);
    ev_stat_init(&ctl->config_watcher, config_changed_cb, ctl->options.config_path,
                 CONFIG_STAT_INTERVAL_S);
    ctl->config_watcher.data = ctl;
    ev_stat_start(ctl->loop, &ctl->config_watcher);
    signal(SIGPIPE, SIG_IGN);
}

static void stop_watchers(struct cps_controller *ctl)
{
    ev_timer_stop(ctl->loop, &ctl->tick_timer);
    ev_timer_stop(ctl->loop, &ctl->sync_timer);
    ev_timer_stop(ctl->loop, &ctl->grace_timer);
    ev_signal_stop(ctl->loop, &ctl->sigterm_watcher);
    ev_signal_stop(ctl->loop, &ctl->sigint_watcher);
    ev_signal_stop(ctl->loop, &ctl->sighup_watcher);
    ev_stat_stop(ctl->loop, &ctl->config_watcher);
}

static void log_started(const struct cps_controller *ctl, int leader_elect)
{
    struct cps_log_line line;
    cps_log_begin(&line, CPS_LOG_INFO, "started");
    cps_log_str(&line, "version", CPS_VERSION);
    cps_log_str(&line, "config", ctl->options.config_path);
    cps_log_int(&line, "targets", (long long)ctl->n_targets);
    cps_log_str(&line, "kubernetes", cps_kube_server(ctl->kube));
    cps_log_str(&line, "prometheus", ctl->config->prometheus.url);
    cps_log_int(&line, "listen_port", cps_server_port(ctl->server));
    cps_log_str(&line, "identity", ctl->identity);
    cps_log_str(&line, "leader_election", leader_elect ? "on" : "off");
    cps_log_int(&line, "shards", leader_elect ? ctl->config->sharding.shards : 1);
    cps_log_str(&line, "dry_run", ctl->options.dry_run ? "true" : "false");
    cps_log_end(&line);
}

/* Load the config, start everything, run the loop until shutdown. An
 * invalid config is a usage error (2); anything else that stops the start
 * is a runtime failure (1). */
int cps_controller_run(const struct cps_run_options *options)
{
    struct cps_controller ctl_storage;
    struct cps_controller *ctl = &ctl_storage;
    memset(ctl, 0, sizeof *ctl);
    ctl->options = *options;
    ctl->tick_done_cb = tick_done_cb;
    srand((unsigned)(cps_wall_ms() ^ (int64_t)getpid()));

    struct cps_err err = {0};
    ctl->config = cps_load_config_file_err(ctl->options.config_path, &err);
    if (!ctl->config) {
        log_config_error("cannot start: invalid config", &err);
        return CPS_EXIT_USAGE;
    }
    if (ctl->config->warning[0])
        cps_log_message(CPS_LOG_WARN, "deprecated config key", ctl->config->warning);
    stat(ctl->options.config_path, &ctl->config_stat);
    ctl->config_generation = 1;
    choose_identity(ctl);
    ctl->wall_offset_ms = cps_wall_ms() - cps_monotonic_ms();
    ctl->started_ms = cps_monotonic_ms();
    ctl->loop = ev_default_loop(EVFLAG_AUTO);
    if (!ctl->loop || cps_http_global_init() != 0) {
        cps_log_message(CPS_LOG_ERROR, "cannot start the event loop or libcurl", NULL);
        cps_config_free(ctl->config);
        return CPS_EXIT_RUNTIME;
    }
    int exit_code = CPS_EXIT_RUNTIME;
    if (open_clients(ctl) != 0)
        goto done;
    int leader_elect = ctl->options.leader_elect >= 0 ? ctl->options.leader_elect
                                                      : ctl->config->leader_election.enabled;
    double first_tick_s = 0.0;
    if (leader_elect) {
        if (start_lease(ctl) != 0)
            goto done;
        /* give the first election attempt a moment before the first tick */
        first_tick_s = FIRST_TICK_AFTER_ELECTION_S;
    }
    start_watchers(ctl, first_tick_s);
    log_started(ctl, leader_elect);
    cps_backfill_start(ctl, "start");
    cps_tick_publish_metrics(ctl);

    ev_run(ctl->loop, 0);
    exit_code = CPS_EXIT_OK;
    cps_log_message(CPS_LOG_INFO, "stopped", NULL);
done:
    stop_watchers(ctl);
    controller_free(ctl);
    ev_loop_destroy(ctl->loop);
    cps_http_global_cleanup();
    return exit_code;
}
