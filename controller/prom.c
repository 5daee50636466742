#include "prom.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "config_file.h"
#include "log.h"

#define MAX_TOKEN_BYTES 65536
#define SOURCE_MAX 64

struct cps_prom {
    struct cps_http *http;
    char *query_url;        /* <url>/api/v1/query?query= */
    int64_t timeout_ms;
    char *namespace_label, *name_label;
    char **headers;         /* "Name: value", NULL-terminated */
    char *token_file;
    char *token;
    struct timespec token_mtime;
};

struct pending_query {
    struct cps_prom *prom;
    cps_prom_done_cb *done_cb;
    void *user;
    char source[SOURCE_MAX];
};

const char *cps_prom_error_name(enum cps_prom_error error)
{
    static const char *const names[CPS_PROM_ERROR_COUNT] = {"none", "transport", "http",
                                                            "decode"};
    return error < CPS_PROM_ERROR_COUNT ? names[error] : "unknown";
}

static void free_token(struct cps_prom *prom)
{
    if (prom->token) {
        memset(prom->token, 0, strlen(prom->token));
        free(prom->token);
        prom->token = NULL;
    }
}

void cps_prom_free(struct cps_prom *prom)
{
    if (!prom)
        return;
    free(prom->query_url);
    free(prom->namespace_label);
    free(prom->name_label);
    for (char **h = prom->headers; h && *h; h++)
        free(*h);
    free(prom->headers);
    free(prom->token_file);
    free_token(prom);
    free(prom);
}

void cps_prom_refresh_token(struct cps_prom *prom)
{
    if (!prom->token_file)
        return;
    struct stat st;
    if (stat(prom->token_file, &st) != 0) {
        cps_log_message(CPS_LOG_WARN, "cannot stat the Prometheus token file; keeping the token",
                        prom->token_file);
        return;
    }
    if (prom->token && st.st_mtim.tv_sec == prom->token_mtime.tv_sec &&
        st.st_mtim.tv_nsec == prom->token_mtime.tv_nsec)
        return;
    char *bytes = NULL;
    size_t len = 0;
    struct cps_err err = {0};
    if (cps_read_file_err(prom->token_file, MAX_TOKEN_BYTES, &bytes, &len, &err) != 0) {
        cps_log_message(CPS_LOG_WARN, "cannot read the Prometheus token file; keeping the token",
                        prom->token_file);
        return;
    }
    while (len > 0 && isspace((unsigned char)bytes[len - 1]))
        bytes[--len] = '\0';
    free_token(prom);
    prom->token = bytes;
    prom->token_mtime = st.st_mtim;
}

struct cps_prom *cps_prom_new(struct cps_http *http, const struct cps_prometheus_config *config,
                              struct cps_err *err)
{
    struct cps_prom *prom = calloc(1, sizeof *prom);
    if (!prom)
        goto oom;
    prom->http = http;
    prom->timeout_ms = config->timeout_ms;
    size_t url_len = strlen(config->url);
    while (url_len > 0 && config->url[url_len - 1] == '/')
        url_len--;
    prom->query_url = malloc(url_len + 32);
    prom->namespace_label = strdup(config->namespace_label);
    prom->name_label = strdup(config->deployment_label);
    prom->headers = calloc(config->n_headers + 1, sizeof *prom->headers);
    if (!prom->query_url || !prom->namespace_label || !prom->name_label || !prom->headers)
        goto oom;
    snprintf(prom->query_url, url_len + 32, "%.*s/api/v1/query?query=", (int)url_len,
             config->url);
    for (size_t i = 0; i < config->n_headers; i++) {
        size_t n = strlen(config->header_names[i]) + strlen(config->header_values[i]) + 3;
        prom->headers[i] = malloc(n);
        if (!prom->headers[i])
            goto oom;
        snprintf(prom->headers[i], n, "%s: %s", config->header_names[i],
                 config->header_values[i]);
    }
    if (config->bearer_token_file) {
        prom->token_file = strdup(config->bearer_token_file);
        if (!prom->token_file)
            goto oom;
        cps_prom_refresh_token(prom);
        if (!prom->token) {
            cps_err_set(err, config->bearer_token_file, 0, 0,
                        "cannot read the Prometheus bearer token file");
            cps_prom_free(prom);
            return NULL;
        }
    }
    return prom;
oom:
    cps_prom_free(prom);
    cps_err_set(err, "prometheus", 0, 0, "out of memory");
    return NULL;
}

/* http: the answer to one query; decode and hand it on. */
static void query_done_cb(const struct cps_http_response *response, void *user)
{
    struct pending_query *query = user;
    struct cps_prom *prom = query->prom;
    char message[CPS_ERR_SOURCE_MAX + CPS_ERR_MESSAGE_MAX + 32];
    struct cps_prom_result result = {0};
    enum cps_prom_error error = CPS_PROM_OK;
    if (response->transport_error) {
        error = CPS_PROM_ERROR_TRANSPORT;
        snprintf(message, sizeof message, "%s: %s", query->source, response->error);
    } else {
        struct cps_err err = {0};
        int decoded = cps_prom_decode_instant(response->body, response->body_len,
                                              prom->namespace_label, prom->name_label,
                                              query->source, &result, &err);
        if (response->status != 200) {
            /* Prometheus explains 4xx/5xx in the same JSON shape */
            error = CPS_PROM_ERROR_HTTP;
            if (decoded != 0 && err.message[0]) {
                char detail[CPS_ERR_SOURCE_MAX + CPS_ERR_MESSAGE_MAX + 8];
                cps_err_format(&err, detail, sizeof detail);
                snprintf(message, sizeof message, "HTTP %ld: %s", response->status, detail);
            } else {
                snprintf(message, sizeof message, "%s: HTTP %ld", query->source,
                         response->status);
            }
            cps_prom_result_release(&result);
        } else if (decoded != 0) {
            error = CPS_PROM_ERROR_DECODE;
            cps_err_format(&err, message, sizeof message);
        }
    }
    query->done_cb(error, error == CPS_PROM_OK ? &result : NULL,
                   error == CPS_PROM_OK ? NULL : message, query->user);
    cps_prom_result_release(&result);
    free(query);
}

int cps_prom_query(struct cps_prom *prom, const char *promql, const char *source,
                   cps_prom_done_cb *done_cb, void *user, struct cps_http_request **out)
{
    char *escaped = cps_http_escape(prom->http, promql);
    struct pending_query *query = calloc(1, sizeof *query);
    size_t url_len = escaped ? strlen(prom->query_url) + strlen(escaped) + 1 : 0;
    char *url = escaped ? malloc(url_len) : NULL;
    if (!escaped || !query || !url) {
        free(escaped);
        free(query);
        free(url);
        return -1;
    }
    snprintf(url, url_len, "%s%s", prom->query_url, escaped);
    free(escaped);
    query->prom = prom;
    query->done_cb = done_cb;
    query->user = user;
    snprintf(query->source, sizeof query->source, "%s", source);
    struct cps_http_options options = {
        .method = "GET",
        .url = url,
        .headers = (const char *const *)prom->headers,
        .bearer_token = prom->token,
        .timeout_ms = prom->timeout_ms,
        .max_body_bytes = CPS_PROM_MAX_BODY,
        .cancel_cb = free,
    };
    int rc = cps_http_send(prom->http, &options, query_done_cb, query, out);
    free(url);
    if (rc != 0)
        free(query);
    return rc;
}
