/*
 * The controller's HTTP endpoint (libmicrohttpd, on its own thread):
 *   /metrics  the Prometheus text rendered after the last tick;
 *   /healthz  200 while the event loop has ticked recently (liveness);
 *   /readyz   200 once a config is loaded and a first tick has run, until
 *             shutdown begins (readiness).
 *
 * The loop publishes; the server thread only copies under a mutex, so a
 * scrape never sees half a rendering and never blocks a tick for long.
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

/* Replace the /metrics text; the server takes ownership of `text`. */
void cps_server_publish_metrics(struct cps_server *server, char *text, size_t len);

/* The loop is alive at monotonic `now_ms`. */
void cps_server_heartbeat(struct cps_server *server, int64_t now_ms);

void cps_server_set_ready(struct cps_server *server, int ready);

/* Stop the thread and free. NULL is a no-op. */
void cps_server_stop(struct cps_server *server);

#endif
