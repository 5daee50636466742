/*
 * The controller's HTTP endpoint (libmicrohttpd, on its own thread):
 *   /metrics  the Prometheus text, streamed from the metrics source
 *             (metrics.c renders it while it is sent);
 *   /healthz  200 while the event loop has ticked recently (liveness);
 *   /readyz   200 once a config is loaded and a first tick has run, until
 *             shutdown begins (readiness).
 *
 * The loop publishes into the source; the server thread reads it through
 * open/read/close, which keep a scrape on one consistent snapshot.
 */
#ifndef CPS_SERVER_H
#define CPS_SERVER_H

#include <stddef.h>
#include <stdint.h>

#include "err.h"

struct cps_server;

/* Listen on "host:port" ("0.0.0.0:8080", "127.0.0.1:0", "[::1]:9090";
 * port 0 picks a free one). `liveness_ms`: how old the last heartbeat may
 * be before /healthz fails. NULL with err set. */
struct cps_server *cps_server_start(const char *listen, int64_t liveness_ms,
                                    struct cps_err *err);

/* The port actually bound. */
int cps_server_port(const struct cps_server *server);

/* Where /metrics comes from: open(source) starts a scrape (NULL: out of
 * memory), read(stream) fills up to cap bytes (0: the end), close(stream)
 * ends it; all three run on the server thread. destroy(source), when set,
 * runs in cps_server_stop once no scrape can run. */
struct cps_server_metrics_source {
    void *source;
    void *(*open)(void *source);
    long (*read)(void *stream, char *buf, size_t cap);
    void (*close)(void *stream);
    void (*destroy)(void *source);
};

/* Set the /metrics source (the server owns it from now on). */
void cps_server_set_metrics_source(struct cps_server *server,
                                   const struct cps_server_metrics_source *source);
/* The source set, or NULL. */
void *cps_server_metrics_source(struct cps_server *server);

/* The loop is alive at monotonic `now_ms`. */
void cps_server_heartbeat(struct cps_server *server, int64_t now_ms);

void cps_server_set_ready(struct cps_server *server, int ready);

/* Stop the thread and free. NULL is a no-op. */
void cps_server_stop(struct cps_server *server);

#endif
