#define _GNU_SOURCE /* memfd_create */
#include "kube.h"

#include <ctype.h>
#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "config_file.h"
#include "kubeconfig.h"
#include "log.h"
#include "request_counts.h"

#define MAX_TOKEN_BYTES 65536

struct cps_kube {
    struct cps_http *http;
    char *server;
    char *proxy_url;     /* kubeconfig proxy-url, or NULL (the environment's) */
    struct cps_http_tls tls;
    /* owned TLS material behind tls's pointers: file names, some of them
     * /proc/self/fd/N for the kubeconfig's inline PEM held in pem_fds */
    char *ca_file;
    char *cert_file, *key_file;
    int pem_fds[3];
    char *token;         /* the current bearer token, or NULL */
    char *token_file;    /* re-read every minute when set */
    int64_t token_read_ms;
    struct cps_request_counts counts;
};

struct pending_call {
    struct cps_kube *kube;
    cps_kube_done_cb *done_cb;
    void *user;
    char verb[CPS_REQUEST_VERB_MAX];
    char resource[CPS_REQUEST_RESOURCE_MAX];
    int (*start_cb)(void *user);
};

/* Read a token file, trimming the trailing newline. NULL on failure. The
 * token itself never goes into an error message. */
static char *read_token_file(const char *path, struct cps_err *err)
{
    size_t len = 0;
    char *bytes = NULL;
    if (cps_read_file_err(path, MAX_TOKEN_BYTES, &bytes, &len, err) != 0)
        return NULL;
    while (len > 0 && isspace((unsigned char)bytes[len - 1]))
        bytes[--len] = '\0';
    if (len == 0) {
        free(bytes);
        cps_err_set(err, path, 0, 0, "the token file is empty");
        return NULL;
    }
    return bytes;
}

/* Free a heap string after wiping it (tokens and keys). */
static void free_secret(void *secret, size_t len)
{
    if (secret) {
        memset(secret, 0, len);
        free(secret);
    }
}

void cps_kube_free(struct cps_kube *kube)
{
    if (!kube)
        return;
    free(kube->server);
    free(kube->proxy_url);
    free(kube->ca_file);
    free(kube->cert_file);
    free(kube->key_file);
    if (kube->token)
        free_secret(kube->token, strlen(kube->token));
    free(kube->token_file);
    for (size_t i = 0; i < sizeof kube->pem_fds / sizeof kube->pem_fds[0]; i++)
        if (kube->pem_fds[i] >= 0)
            close(kube->pem_fds[i]);
    free(kube);
}

/* Hand PEM bytes from the kubeconfig (a *-data field) to the TLS library
 * as a file it can open: a sealed anonymous memory file (memfd), named
 * /proc/self/fd/N. Why not a blob: libcurl takes PEM blobs only with some
 * TLS back ends, and not with GnuTLS, the one cpscale links (libmicrohttpd
 * already loads it, so the process carries one TLS library, not two). Why
 * not a temporary file: the client key would sit on a disk and could
 * outlive the process. The path is opened once here, so a missing /proc
 * fails at start with a clear error rather than at the first handshake.
 * Returns the path (the caller frees it) and stores the descriptor in
 * *fd_out (closed by cps_kube_free), or NULL with err set. */
static char *pem_memory_file(const unsigned char *pem, size_t len, const char *field,
                             int *fd_out, struct cps_err *err)
{
    int fd = memfd_create(field, MFD_CLOEXEC | MFD_ALLOW_SEALING);
    if (fd < 0) {
        cps_err_set(err, "kubeconfig", 0, 0, "%s: cannot create a memory file: %s", field,
                    strerror(errno));
        return NULL;
    }
    *fd_out = fd;
    for (size_t done = 0; done < len;) {
        ssize_t n = write(fd, pem + done, len - done);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            cps_err_set(err, "kubeconfig", 0, 0, "%s: cannot write a memory file: %s", field,
                        strerror(errno));
            return NULL;
        }
        done += (size_t)n;
    }
    /* nothing in the process may change the material after this */
    (void)fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE | F_SEAL_SEAL);
    char *path = malloc(32);
    if (!path) {
        cps_err_set(err, "kubeconfig", 0, 0, "out of memory");
        return NULL;
    }
    snprintf(path, 32, "/proc/self/fd/%d", fd);
    int check = open(path, O_RDONLY | O_CLOEXEC);
    if (check < 0) {
        cps_err_set(err, "kubeconfig", 0, 0,
                    "%s: cannot open %s to hand it to TLS (%s): is /proc mounted?", field, path,
                    strerror(errno));
        free(path);
        return NULL;
    }
    close(check);
    return path;
}

/* Take over the credentials of a parsed kubeconfig (the strings move;
 * inline PEM becomes memory files, see pem_memory_file). */
static int adopt_kubeconfig(struct cps_kube *kube, struct cps_kubeconfig *kc, struct cps_err *err)
{
    kube->server = kc->server, kc->server = NULL;
    kube->proxy_url = kc->proxy_url, kc->proxy_url = NULL;
    kube->ca_file = kc->ca_file, kc->ca_file = NULL;
    kube->cert_file = kc->client_cert_file, kc->client_cert_file = NULL;
    kube->key_file = kc->client_key_file, kc->client_key_file = NULL;
    if (kc->ca_data && kc->ca_data_len > 0) {
        free(kube->ca_file);
        kube->ca_file = pem_memory_file(kc->ca_data, kc->ca_data_len,
                                        "certificate-authority-data", &kube->pem_fds[0], err);
        if (!kube->ca_file)
            return -1;
    }
    if (kc->client_cert_data && kc->client_key_data) {
        free(kube->cert_file);
        free(kube->key_file);
        kube->key_file = NULL;
        kube->cert_file = pem_memory_file(kc->client_cert_data, kc->client_cert_data_len,
                                          "client-certificate-data", &kube->pem_fds[1], err);
        if (!kube->cert_file)
            return -1;
        kube->key_file = pem_memory_file(kc->client_key_data, kc->client_key_data_len,
                                         "client-key-data", &kube->pem_fds[2], err);
        if (!kube->key_file)
            return -1;
    }
    kube->token = kc->token, kc->token = NULL;
    kube->token_file = kc->token_file, kc->token_file = NULL;
    if (kube->token_file && !kube->token) {
        kube->token = read_token_file(kube->token_file, err);
        if (!kube->token)
            return -1;
    }
    return 0;
}

/* In-cluster: KUBERNETES_SERVICE_HOST/PORT, the token and CA files. */
static int adopt_in_cluster(struct cps_kube *kube, const char *sa_dir, struct cps_err *err)
{
    const char *host = getenv("KUBERNETES_SERVICE_HOST");
    const char *port = getenv("KUBERNETES_SERVICE_PORT");
    if (!host || !*host || !port || !*port)
        return cps_err_set(err, "in-cluster", 0, 0,
                           "KUBERNETES_SERVICE_HOST/PORT are not set: not in a cluster? "
                           "(use --kubeconfig)");
    size_t len = strlen(host) + strlen(port) + 16;
    kube->server = malloc(len);
    size_t dir_len = strlen(sa_dir) + 16;
    kube->ca_file = malloc(dir_len);
    kube->token_file = malloc(dir_len);
    if (!kube->server || !kube->ca_file || !kube->token_file)
        return cps_err_set(err, "in-cluster", 0, 0, "out of memory");
    /* an IPv6 address goes in brackets */
    snprintf(kube->server, len, strchr(host, ':') ? "https://[%s]:%s" : "https://%s:%s", host,
             port);
    snprintf(kube->ca_file, dir_len, "%s/ca.crt", sa_dir);
    snprintf(kube->token_file, dir_len, "%s/token", sa_dir);
    kube->token = read_token_file(kube->token_file, err);
    return kube->token ? 0 : -1;
}

struct cps_kube *cps_kube_new(struct cps_http *http, const struct cps_kube_options *options,
                              struct cps_err *err)
{
    struct cps_kube *kube = calloc(1, sizeof *kube);
    if (!kube) {
        cps_err_set(err, "kubernetes", 0, 0, "out of memory");
        return NULL;
    }
    kube->http = http;
    for (size_t i = 0; i < sizeof kube->pem_fds / sizeof kube->pem_fds[0]; i++)
        kube->pem_fds[i] = -1;
    if (options->kubeconfig) {
        size_t len = 0;
        char *bytes = NULL;
        if (cps_read_file_err(options->kubeconfig, CPS_KUBECONFIG_MAX_BYTES, &bytes, &len,
                              err) != 0)
            goto fail;
        struct cps_kubeconfig *kc =
            cps_kubeconfig_parse(bytes, len, options->kubeconfig, options->context, err);
        free_secret(bytes, len);
        if (!kc)
            goto fail;
        int rc = adopt_kubeconfig(kube, kc, err);
        cps_kubeconfig_free(kc);
        if (rc != 0)
            goto fail;
    } else if (adopt_in_cluster(kube,
                                options->serviceaccount_dir ? options->serviceaccount_dir
                                                            : CPS_KUBE_DEFAULT_SA_DIR,
                                err) != 0) {
        goto fail;
    }
    kube->tls.ca_file = kube->ca_file;
    kube->tls.client_cert_file = kube->cert_file;
    kube->tls.client_key_file = kube->key_file;
    /* trailing slashes would double up with the absolute paths */
    size_t n = strlen(kube->server);
    while (n > 0 && kube->server[n - 1] == '/')
        kube->server[--n] = '\0';
    return kube;
fail:
    cps_kube_free(kube);
    return NULL;
}

const char *cps_kube_server(const struct cps_kube *kube)
{
    return kube->server;
}

void cps_kube_refresh_token(struct cps_kube *kube, int64_t now_ms)
{
    if (!kube->token_file)
        return;
    if (kube->token_read_ms != 0 && now_ms - kube->token_read_ms < CPS_KUBE_TOKEN_REREAD_MS)
        return;
    kube->token_read_ms = now_ms;
    struct cps_err err = {0};
    char *token = read_token_file(kube->token_file, &err);
    if (!token) {
        char text[CPS_ERR_SOURCE_MAX + CPS_ERR_MESSAGE_MAX + 8];
        cps_err_format(&err, text, sizeof text);
        cps_log_message(CPS_LOG_WARN, "could not re-read the token; keeping the old one", text);
        return;
    }
    if (kube->token)
        free_secret(kube->token, strlen(kube->token));
    kube->token = token;
}

void cps_kube_each_count(const struct cps_kube *kube,
                         void (*emit)(const char *verb, const char *resource, long code,
                                      unsigned long long count, void *user),
                         void *user)
{
    for (size_t i = 0; i < kube->counts.n_rows; i++) {
        const struct cps_request_count *row = &kube->counts.rows[i];
        emit(row->verb, row->resource, row->code, row->count, user);
    }
}

/* http: the answer to one kube request; count it and pass it on. */
static void request_done_cb(const struct cps_http_response *response, void *user)
{
    struct pending_call *call = user;
    if (!response->dropped)
        cps_request_counts_add(&call->kube->counts, call->verb, call->resource,
                               response->transport_error ? 0 : response->status);
    struct cps_kube_answer answer = {
        .status = response->transport_error ? 0 : response->status,
        .body = response->body,
        .body_len = response->body_len,
        .transport_error = response->transport_error,
        .error = response->error,
        .retry_after_ms = response->retry_after_ms,
        .dropped = response->dropped,
    };
    cps_kube_done_cb *done_cb = call->done_cb;
    void *done_user = call->user;
    free(call);
    done_cb(&answer, done_user);
}

/* http: the request is about to start; ask its owner. */
static int request_start_cb(void *user)
{
    struct pending_call *call = user;
    return call->start_cb(call->user);
}

/* The one way requests go out: counted, authenticated, TLS-verified.
 * chunk_cb (streams) may be NULL. */
static int send_request(struct cps_kube *kube, const struct cps_kube_call *what,
                        int (*chunk_cb)(const char *data, size_t len, void *user),
                        cps_kube_done_cb *done_cb, void *user, struct cps_http_request **out)
{
    const char *path = what->path, *body = what->body;
    struct pending_call *call = calloc(1, sizeof *call);
    if (!call)
        return -1;
    call->kube = kube;
    call->done_cb = done_cb;
    call->user = user;
    call->start_cb = what->start_cb;
    snprintf(call->verb, sizeof call->verb, "%s", what->verb);
    snprintf(call->resource, sizeof call->resource, "%s", what->resource);
    size_t url_len = strlen(kube->server) + strlen(path) + 1;
    char *url = malloc(url_len);
    if (!url) {
        free(call);
        return -1;
    }
    snprintf(url, url_len, "%s%s", kube->server, path);
    struct cps_http_options options = {
        .method = what->method,
        .url = url,
        .bearer_token = kube->token,
        .proxy = kube->proxy_url,
        .body = body,
        .body_len = body ? strlen(body) : 0,
        .content_type = what->content_type,
        .timeout_ms = what->timeout_ms,
        .lane = what->lane,
        .start_cb = what->start_cb ? request_start_cb : NULL,
        .max_body_bytes = CPS_KUBE_MAX_BODY,
        .tls = &kube->tls,
        .cancel_cb = free,
        .chunk_cb = chunk_cb,
        .chunk_user = user,
    };
    int rc = cps_http_send(kube->http, &options, request_done_cb, call, out);
    free(url);
    if (rc != 0)
        free(call);
    return rc;
}

int cps_kube_request(struct cps_kube *kube, const char *verb, const char *resource,
                     const char *method, const char *path, const char *content_type,
                     const char *body, int64_t timeout_ms, cps_kube_done_cb *done_cb, void *user,
                     struct cps_http_request **out)
{
    struct cps_kube_call call = {
        .verb = verb, .resource = resource, .method = method, .path = path,
        .content_type = content_type, .body = body, .timeout_ms = timeout_ms,
        .lane = strcmp(method, "GET") == 0 ? CPS_HTTP_LANE_READ : CPS_HTTP_LANE_WRITE,
    };
    return send_request(kube, &call, NULL, done_cb, user, out);
}

int cps_kube_call(struct cps_kube *kube, const struct cps_kube_call *call,
                  cps_kube_done_cb *done_cb, void *user, struct cps_http_request **out)
{
    return send_request(kube, call, NULL, done_cb, user, out);
}

int cps_kube_stream(struct cps_kube *kube, const char *verb, const char *resource,
                    const char *path, int64_t timeout_ms,
                    int (*chunk_cb)(const char *data, size_t len, void *user),
                    cps_kube_done_cb *done_cb, void *user, struct cps_http_request **out)
{
    struct cps_kube_call call = {
        .verb = verb, .resource = resource, .method = "GET", .path = path,
        .timeout_ms = timeout_ms, .lane = CPS_HTTP_LANE_WATCH,
    };
    return send_request(kube, &call, chunk_cb, done_cb, user, out);
}

/* Append a percent-escaped path segment. */
static int append_segment(char **path, size_t *len, const char *segment)
{
    char *escaped = curl_easy_escape(NULL, segment, 0);
    if (!escaped)
        return -1;
    size_t n = strlen(escaped);
    char *grown = realloc(*path, *len + n + 2);
    if (!grown) {
        curl_free(escaped);
        return -1;
    }
    *path = grown;
    (*path)[(*len)++] = '/';
    memcpy(*path + *len, escaped, n + 1);
    *len += n;
    curl_free(escaped);
    return 0;
}

char *cps_kube_path(const char *api_version, const char *namespace, const char *resource,
                    const char *name, const char *subresource)
{
    char *path = strdup(strchr(api_version, '/') ? "/apis" : "/api");
    if (!path)
        return NULL;
    size_t len = strlen(path);
    /* "apps/v1" is two segments; escape each */
    char group_version[128];
    snprintf(group_version, sizeof group_version, "%s", api_version);
    char *slash = strchr(group_version, '/');
    int failed = 0;
    if (slash) {
        *slash = '\0';
        failed |= append_segment(&path, &len, group_version);
        failed |= append_segment(&path, &len, slash + 1);
    } else {
        failed |= append_segment(&path, &len, group_version);
    }
    if (namespace) {
        failed |= append_segment(&path, &len, "namespaces");
        failed |= append_segment(&path, &len, namespace);
    }
    failed |= append_segment(&path, &len, resource);
    if (name)
        failed |= append_segment(&path, &len, name);
    if (subresource)
        failed |= append_segment(&path, &len, subresource);
    if (failed) {
        free(path);
        return NULL;
    }
    return path;
}

int cps_kube_resource_of_kind(const char *kind, char *out, size_t cap)
{
    size_t n = strlen(kind);
    if (n + 2 > cap)
        return -1;
    for (size_t i = 0; i < n; i++)
        out[i] = (char)tolower((unsigned char)kind[i]);
    out[n] = 's';
    out[n + 1] = '\0';
    return 0;
}
