#include "server.h"

#include <arpa/inet.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "lease.h"

/* Slow clients must not take the probes down (64 connections sending a byte every 3 s filled a limit of 64 and the
 * kubelet's probes were refused). The limit is far above what scrapers
 * and probes use (epoll, so no FD_SETSIZE bound), one address can hold
 * only an eighth of it, and a connection that sends nothing for
 * CONNECTION_TIMEOUT_S is dropped. The NetworkPolicy in manifests/ keeps
 * other pods off the port in the first place. */
#define CONNECTION_LIMIT 1024u
#define PER_IP_CONNECTION_LIMIT 128u
#define CONNECTION_TIMEOUT_S 5u
#define METRICS_BLOCK_BYTES (32u * 1024u)
#define METRICS_CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"

struct cps_server {
    struct MHD_Daemon *daemon;
    pthread_mutex_t lock;
    struct cps_server_metrics_source metrics; /* .open NULL: none yet */
    int64_t heartbeat_ms;
    int64_t liveness_ms;
    int ready;
    int port;
};

/* One /metrics response in flight. */
struct metrics_scrape {
    struct cps_server_metrics_source source;
    void *stream;
};

/* Queue a response copied from `text`. */
static enum MHD_Result reply(struct MHD_Connection *connection, unsigned status, const char *text,
                             size_t len, const char *content_type)
{
    struct MHD_Response *response =
        MHD_create_response_from_buffer(len, (void *)text, MHD_RESPMEM_MUST_COPY);
    if (!response)
        return MHD_NO;
    MHD_add_response_header(response, MHD_HTTP_HEADER_CONTENT_TYPE, content_type);
    enum MHD_Result result = MHD_queue_response(connection, status, response);
    MHD_destroy_response(response);
    return result;
}

/* libmicrohttpd asks for the next block of a /metrics body. */
static ssize_t metrics_block_cb(void *cls, uint64_t pos, char *buf, size_t max)
{
    (void)pos;
    struct metrics_scrape *scrape = cls;
    long n = scrape->source.read(scrape->stream, buf, max);
    return n > 0 ? (ssize_t)n : (ssize_t)MHD_CONTENT_READER_END_OF_STREAM;
}

/* libmicrohttpd is done with a /metrics body (sent, or the client left). */
static void metrics_done_cb(void *cls)
{
    struct metrics_scrape *scrape = cls;
    scrape->source.close(scrape->stream);
    free(scrape);
}

/* /metrics: streamed from the source's snapshot in METRICS_BLOCK_BYTES
 * blocks (rendered as it is sent; the snapshot is the source's concern). */
static enum MHD_Result reply_metrics(struct cps_server *server, struct MHD_Connection *connection)
{
    pthread_mutex_lock(&server->lock);
    struct cps_server_metrics_source source = server->metrics;
    pthread_mutex_unlock(&server->lock);
    if (!source.open)
        return reply(connection, MHD_HTTP_OK, "", 0, METRICS_CONTENT_TYPE);
    struct metrics_scrape *scrape = calloc(1, sizeof *scrape);
    if (!scrape)
        return MHD_NO;
    scrape->source = source;
    scrape->stream = source.open(source.source);
    if (!scrape->stream) {
        free(scrape);
        return MHD_NO;
    }
    struct MHD_Response *response = MHD_create_response_from_callback(
        MHD_SIZE_UNKNOWN, METRICS_BLOCK_BYTES, metrics_block_cb, scrape, metrics_done_cb);
    if (!response) {
        metrics_done_cb(scrape);
        return MHD_NO;
    }
    MHD_add_response_header(response, MHD_HTTP_HEADER_CONTENT_TYPE, METRICS_CONTENT_TYPE);
    enum MHD_Result result = MHD_queue_response(connection, MHD_HTTP_OK, response);
    MHD_destroy_response(response);
    return result;
}

/* libmicrohttpd: one request, on the server thread. Only GET and HEAD, only
 * the three paths; the probes' state is read under the lock. */
static enum MHD_Result handle_request_cb(void *cls, struct MHD_Connection *connection,
                                         const char *url, const char *method,
                                         const char *version, const char *upload_data,
                                         size_t *upload_data_size, void **request_state)
{
    (void)version;
    (void)upload_data;
    (void)upload_data_size;
    (void)request_state;
    struct cps_server *server = cls;
    if (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0)
        return reply(connection, MHD_HTTP_METHOD_NOT_ALLOWED, "method not allowed\n", 19,
                     "text/plain");
    if (strcmp(url, "/metrics") == 0)
        return reply_metrics(server, connection);
    if (strcmp(url, "/healthz") == 0) {
        pthread_mutex_lock(&server->lock);
        int64_t age = cps_monotonic_ms() - server->heartbeat_ms;
        int alive = server->heartbeat_ms > 0 && age <= server->liveness_ms;
        pthread_mutex_unlock(&server->lock);
        return alive ? reply(connection, MHD_HTTP_OK, "ok\n", 3, "text/plain")
                     : reply(connection, MHD_HTTP_SERVICE_UNAVAILABLE, "event loop stalled\n", 19,
                             "text/plain");
    }
    if (strcmp(url, "/readyz") == 0) {
        pthread_mutex_lock(&server->lock);
        int ready = server->ready;
        pthread_mutex_unlock(&server->lock);
        return ready ? reply(connection, MHD_HTTP_OK, "ok\n", 3, "text/plain")
                     : reply(connection, MHD_HTTP_SERVICE_UNAVAILABLE, "not ready\n", 10,
                             "text/plain");
    }
    return reply(connection, MHD_HTTP_NOT_FOUND, "not found\n", 10, "text/plain");
}

/* Parse "host:port" or "[v6]:port" into a socket address. */
static int parse_listen(const char *listen, struct sockaddr_storage *address, socklen_t *len)
{
    char host[64];
    const char *colon = strrchr(listen, ':');
    if (!colon || colon == listen)
        return -1;
    const char *host_start = listen, *host_end = colon;
    if (*host_start == '[' && host_end[-1] == ']')
        host_start++, host_end--;
    size_t host_len = (size_t)(host_end - host_start);
    if (host_len == 0 || host_len >= sizeof host)
        return -1;
    memcpy(host, host_start, host_len);
    host[host_len] = '\0';
    char *end;
    long port = strtol(colon + 1, &end, 10);
    if (*end != '\0' || end == colon + 1 || port < 0 || port > 65535)
        return -1;
    memset(address, 0, sizeof *address);
    struct sockaddr_in *v4 = (struct sockaddr_in *)address;
    struct sockaddr_in6 *v6 = (struct sockaddr_in6 *)address;
    if (inet_pton(AF_INET, host, &v4->sin_addr) == 1) {
        v4->sin_family = AF_INET;
        v4->sin_port = htons((uint16_t)port);
        *len = sizeof *v4;
        return 0;
    }
    if (inet_pton(AF_INET6, host, &v6->sin6_addr) == 1) {
        v6->sin6_family = AF_INET6;
        v6->sin6_port = htons((uint16_t)port);
        *len = sizeof *v6;
        return 0;
    }
    return -1;
}

struct cps_server *cps_server_start(const char *listen, int64_t liveness_ms, struct cps_err *err)
{
    struct sockaddr_storage address;
    socklen_t address_len;
    if (parse_listen(listen, &address, &address_len) != 0) {
        cps_err_set(err, "listen", 0, 0,
                    "\"%s\": expected ADDRESS:PORT with a numeric address (0.0.0.0:8080)",
                    listen);
        return NULL;
    }
    struct cps_server *server = calloc(1, sizeof *server);
    if (!server) {
        cps_err_set(err, "listen", 0, 0, "out of memory");
        return NULL;
    }
    pthread_mutex_init(&server->lock, NULL);
    server->liveness_ms = liveness_ms;
    unsigned flags = MHD_USE_AUTO_INTERNAL_THREAD | MHD_USE_ERROR_LOG;
    /* "[::]:PORT" is every address of both families, as a Go server's ":PORT"
     * is: IPv6-only, dual-stack and IPv4 clusters alike can scrape it. Any
     * other IPv6 address is that address only. */
    if (address.ss_family == AF_INET6)
        flags |= IN6_IS_ADDR_UNSPECIFIED(&((struct sockaddr_in6 *)&address)->sin6_addr)
                     ? MHD_USE_DUAL_STACK
                     : MHD_USE_IPv6;
    server->daemon = MHD_start_daemon(
        flags, 0, NULL, NULL, handle_request_cb, server, MHD_OPTION_SOCK_ADDR,
        (struct sockaddr *)&address, MHD_OPTION_CONNECTION_LIMIT, CONNECTION_LIMIT,
        MHD_OPTION_PER_IP_CONNECTION_LIMIT, PER_IP_CONNECTION_LIMIT,
        MHD_OPTION_CONNECTION_TIMEOUT, CONNECTION_TIMEOUT_S, MHD_OPTION_END);
    if (!server->daemon) {
        cps_err_set(err, "listen", 0, 0, "cannot listen on %s (in use, or not allowed)", listen);
        pthread_mutex_destroy(&server->lock);
        free(server);
        return NULL;
    }
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(server->daemon,
                                                           MHD_DAEMON_INFO_BIND_PORT);
    server->port = info ? info->port : 0;
    return server;
}

int cps_server_port(const struct cps_server *server)
{
    return server->port;
}

void cps_server_set_metrics_source(struct cps_server *server,
                                   const struct cps_server_metrics_source *source)
{
    pthread_mutex_lock(&server->lock);
    server->metrics = *source;
    pthread_mutex_unlock(&server->lock);
}

void *cps_server_metrics_source(struct cps_server *server)
{
    pthread_mutex_lock(&server->lock);
    void *source = server->metrics.source;
    pthread_mutex_unlock(&server->lock);
    return source;
}

void cps_server_heartbeat(struct cps_server *server, int64_t now_ms)
{
    pthread_mutex_lock(&server->lock);
    server->heartbeat_ms = now_ms;
    pthread_mutex_unlock(&server->lock);
}

void cps_server_set_ready(struct cps_server *server, int ready)
{
    pthread_mutex_lock(&server->lock);
    server->ready = ready;
    pthread_mutex_unlock(&server->lock);
}

void cps_server_stop(struct cps_server *server)
{
    if (!server)
        return;
    MHD_stop_daemon(server->daemon); /* no scrape runs past this */
    if (server->metrics.destroy)
        server->metrics.destroy(server->metrics.source);
    pthread_mutex_destroy(&server->lock);
    free(server);
}
