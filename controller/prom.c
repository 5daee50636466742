#include "prom.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include <curl/curl.h>

#include "config_file.h"
#include "decide.h"
#include "http.h"
#include "log.h"
#include "units.h"

#define MAX_TOKEN_BYTES 65536
#define QUERY_PATH "/api/v1/query?query="
#define STAT_FAILED "cannot stat the bearer token file"
#define OUT_OF_MEMORY "out of memory"
#define SOURCE_MAX 64

struct cps_prom {
    struct cps_http *http;
    struct cps_prom_setup setup;
    char *query_url;        /* <url>/api/v1/query?query= */
    char *namespace_label, *name_label;
    size_t max_series, max_body;
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

static void free_token(struct cps_prom_setup *setup)
{
    if (setup->token) {
        memset(setup->token, 0, strlen(setup->token));
        free(setup->token);
        setup->token = NULL;
    }
}

void cps_prom_setup_release(struct cps_prom_setup *setup)
{
    free(setup->base_url);
    for (char **h = setup->headers; h && *h; h++)
        free(*h);
    free(setup->headers);
    free(setup->token_file);
    free_token(setup);
    memset(setup, 0, sizeof *setup);
}

/* Read the token file when it changed since the last read (or was never
 * read); trailing whitespace is dropped. 0 (the token kept or replaced),
 * or -1 with err when the file cannot be read (the old token stays). */
int cps_prom_setup_read_token(struct cps_prom_setup *setup, struct cps_err *err)
{
    if (!setup->token_file)
        return 0;
    struct stat st;
    if (stat(setup->token_file, &st) != 0)
        return cps_err_set(err, setup->token_file, 0, 0, STAT_FAILED);
    if (setup->token && st.st_mtim.tv_sec == setup->token_mtime.tv_sec &&
        st.st_mtim.tv_nsec == setup->token_mtime.tv_nsec)
        return 0;
    char *bytes = NULL;
    size_t len = 0;
    if (cps_read_file_err(setup->token_file, MAX_TOKEN_BYTES, &bytes, &len, err) != 0)
        return -1;
    while (len > 0 && isspace((unsigned char)bytes[len - 1]))
        bytes[--len] = '\0';
    free_token(setup);
    setup->token = bytes;
    setup->token_mtime = st.st_mtim;
    return 0;
}

int cps_prom_setup_init(struct cps_prom_setup *setup, const struct cps_prometheus_config *config,
                        const char *url, struct cps_err *err)
{
    memset(setup, 0, sizeof *setup);
    if (!url)
        url = config->url;
    setup->timeout_ms = config->timeout_ms;
    size_t url_len = strlen(url);
    while (url_len > 0 && url[url_len - 1] == '/')
        url_len--;
    setup->base_url = strndup(url, url_len);
    setup->headers = calloc(config->n_headers + 1, sizeof *setup->headers);
    if (!setup->base_url || !setup->headers)
        goto oom;
    for (size_t i = 0; i < config->n_headers; i++) {
        size_t n = strlen(config->header_names[i]) + strlen(config->header_values[i]) + 3;
        setup->headers[i] = malloc(n);
        if (!setup->headers[i])
            goto oom;
        snprintf(setup->headers[i], n, "%s: %s", config->header_names[i],
                 config->header_values[i]);
    }
    if (config->bearer_token_file) {
        setup->token_file = strdup(config->bearer_token_file);
        if (!setup->token_file)
            goto oom;
        if (cps_prom_setup_read_token(setup, err) != 0) {
            cps_prom_setup_release(setup);
            return -1;
        }
    }
    return 0;
oom:
    cps_prom_setup_release(setup);
    return cps_err_set(err, "prometheus", 0, 0, OUT_OF_MEMORY);
}

void cps_prom_free(struct cps_prom *prom)
{
    if (!prom)
        return;
    free(prom->query_url);
    free(prom->namespace_label);
    free(prom->name_label);
    cps_prom_setup_release(&prom->setup);
    free(prom);
}

/* 1 when the setup sends credentials (the bearer token or an
 * Authorization header) over plain http: such a request never goes
 * through a proxy (with http_proxy set, the token used to go to the proxy
 * in clear text). The async client's rule is in http.c;
 * this one is for the blocking client and the warning. */
static int plain_http_with_credentials(const struct cps_prom_setup *setup)
{
    int credentials = setup->token_file != NULL;
    for (char **h = setup->headers; h && *h; h++)
        credentials |= strncasecmp(*h, "Authorization:", strlen("Authorization:")) == 0;
    return credentials && strncasecmp(setup->base_url, "http://", strlen("http://")) == 0;
}

/* Say once that a proxy in the environment is not used for Prometheus. */
static void warn_proxy_ignored(const struct cps_prom_setup *setup)
{
    static const char *const vars[] = {"http_proxy", "ALL_PROXY", "all_proxy"};
    if (!plain_http_with_credentials(setup))
        return;
    for (size_t i = 0; i < sizeof vars / sizeof vars[0]; i++)
        if (getenv(vars[i]) && getenv(vars[i])[0]) {
            struct cps_log_line line;
            cps_log_begin(&line, CPS_LOG_WARN,
                          "prometheus.url is plain http with credentials: the proxy is not "
                          "used, Prometheus is reached directly (use https:// to go through a "
                          "proxy)");
            cps_log_str(&line, "ignored", vars[i]);
            cps_log_end(&line);
            return;
        }
}

/* The log line of a token file that could not be (re-)read. */
static void warn_token(const struct cps_err *err, const char *token_file)
{
    cps_log_message(CPS_LOG_WARN,
                    strcmp(err->message, STAT_FAILED) == 0
                        ? "cannot stat the Prometheus token file; keeping the token"
                        : "cannot read the Prometheus token file; keeping the token",
                    token_file);
}

void cps_prom_refresh_token(struct cps_prom *prom)
{
    struct cps_err err = {0};
    if (cps_prom_setup_read_token(&prom->setup, &err) != 0)
        warn_token(&err, prom->setup.token_file);
}

int64_t cps_prom_max_answer_age_ms(int64_t interval_ms)
{
    int64_t age_ms = CPS_METRICS_WINDOW_S * 1000LL + 2 * (interval_ms > 0 ? interval_ms : 0);
    return age_ms < CPS_PROM_MAX_ANSWER_AGE_MS ? age_ms : CPS_PROM_MAX_ANSWER_AGE_MS;
}

size_t cps_prom_max_series(size_t n_targets)
{
    size_t series = CPS_PROM_SERIES_PER_TARGET * n_targets + CPS_PROM_SERIES_SLACK;
    return series < CPS_PROM_MAX_SAMPLES ? series : CPS_PROM_MAX_SAMPLES;
}

size_t cps_prom_max_body(size_t n_targets)
{
    size_t bytes = cps_prom_max_series(n_targets) * CPS_PROM_BYTES_PER_SERIES;
    return bytes < CPS_PROM_MAX_BODY ? bytes : CPS_PROM_MAX_BODY;
}

struct cps_prom *cps_prom_new(struct cps_http *http, const struct cps_prometheus_config *config,
                              size_t n_targets, struct cps_err *err)
{
    struct cps_prom *prom = calloc(1, sizeof *prom);
    if (!prom) {
        cps_err_set(err, "prometheus", 0, 0, OUT_OF_MEMORY);
        return NULL;
    }
    prom->http = http;
    prom->max_series = cps_prom_max_series(n_targets);
    prom->max_body = cps_prom_max_body(n_targets);
    if (cps_prom_setup_init(&prom->setup, config, NULL, err) != 0) {
        if (config->bearer_token_file && strcmp(err->message, OUT_OF_MEMORY) != 0) {
            warn_token(err, config->bearer_token_file);
            cps_err_set(err, config->bearer_token_file, 0, 0,
                        "cannot read the Prometheus bearer token file");
        }
        free(prom);
        return NULL;
    }
    size_t size = strlen(prom->setup.base_url) + sizeof QUERY_PATH;
    prom->query_url = malloc(size);
    prom->namespace_label = strdup(config->namespace_label);
    prom->name_label = strdup(config->deployment_label);
    if (!prom->query_url || !prom->namespace_label || !prom->name_label) {
        cps_prom_free(prom);
        cps_err_set(err, "prometheus", 0, 0, OUT_OF_MEMORY);
        return NULL;
    }
    snprintf(prom->query_url, size, "%s%s", prom->setup.base_url, QUERY_PATH);
    warn_proxy_ignored(&prom->setup);
    return prom;
}

/* http: the answer to one query. A 200 is handed on undecoded (the tick
 * decodes it into its target table); another status is decoded here only
 * for Prometheus's explanation. */
static void query_done_cb(const struct cps_http_response *response, void *user)
{
    struct pending_query *query = user;
    struct cps_prom *prom = query->prom;
    char message[CPS_ERR_SOURCE_MAX + CPS_ERR_MESSAGE_MAX + 32];
    enum cps_prom_error error = CPS_PROM_OK;
    if (response->transport_error) {
        error = CPS_PROM_ERROR_TRANSPORT;
        snprintf(message, sizeof message, "%s: %s", query->source, response->error);
    } else if (response->status != 200) {
        /* Prometheus explains 4xx/5xx in the same JSON shape */
        struct cps_err err = {0};
        struct cps_prom_result result = {0};
        int decoded = cps_prom_decode_instant(response->body, response->body_len,
                                              prom->namespace_label, prom->name_label,
                                              prom->max_series, query->source, &result, &err);
        cps_prom_result_release(&result);
        error = CPS_PROM_ERROR_HTTP;
        if (decoded != 0 && err.message[0]) {
            char detail[CPS_ERR_SOURCE_MAX + CPS_ERR_MESSAGE_MAX + 8];
            cps_err_format(&err, detail, sizeof detail);
            snprintf(message, sizeof message, "HTTP %ld: %s", response->status, detail);
        } else {
            snprintf(message, sizeof message, "%s: HTTP %ld", query->source, response->status);
        }
    }
    query->done_cb(error, error == CPS_PROM_OK ? response->body : NULL,
                   error == CPS_PROM_OK ? response->body_len : 0,
                   error == CPS_PROM_OK ? NULL : message, query->user);
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
        .headers = (const char *const *)prom->setup.headers,
        .bearer_token = prom->setup.token,
        .timeout_ms = prom->setup.timeout_ms,
        .max_body_bytes = prom->max_body,
        .cancel_cb = free,
    };
    int rc = cps_http_send(prom->http, &options, query_done_cb, query, out);
    free(url);
    if (rc != 0)
        free(query);
    return rc;
}

/* ---- blocking query_range ------------------------------------------------ */

#define RANGE_PATH "/api/v1/query_range"
#define RANGE_CONNECT_TIMEOUT_MS 10000
#define RANGE_FORM_EXTRA 128 /* "query=&start=...&end=...&step=..." */

struct cps_prom_range_client {
    struct cps_prom_setup setup;
    CURL *curl;
    struct curl_slist *headers;
    char *endpoint;     /* base URL + RANGE_PATH */
    size_t max_body;
    char *body;
    size_t len, cap;
    int too_big;
    int (*abort_cb)(void *user); /* non-zero: abort the transfer (backfill) */
    void *abort_user;
};

/* curl write callback: append, refusing to grow past the cap (a short
 * count makes curl abort the transfer). */
static size_t range_write_cb(char *ptr, size_t size, size_t nmemb, void *userdata)
{
    struct cps_prom_range_client *c = userdata;
    size_t n = size * nmemb;
    int rc = cps_http_body_append(&c->body, &c->len, &c->cap, c->max_body, ptr, n);
    if (rc > 0)
        c->too_big = 1;
    return rc == 0 ? n : 0;
}

/* Append one header line to the client's list; 0 or -1. */
static int add_header(struct cps_prom_range_client *c, const char *line)
{
    struct curl_slist *grown = curl_slist_append(c->headers, line);
    if (!grown)
        return -1;
    c->headers = grown;
    return 0;
}

/* The setup's headers, then the bearer token, then Accept. The token line
 * is wiped as soon as curl has copied it. */
static int build_range_headers(struct cps_prom_range_client *c)
{
    for (char **h = c->setup.headers; *h; h++)
        if (add_header(c, *h) != 0)
            return -1;
    if (c->setup.token) {
        size_t size = strlen(c->setup.token) + 32;
        char *line = malloc(size);
        if (!line)
            return -1;
        snprintf(line, size, "Authorization: Bearer %s", c->setup.token);
        int rc = add_header(c, line);
        memset(line, 0, strlen(line));
        free(line);
        if (rc != 0)
            return -1;
    }
    return add_header(c, "Accept: application/json");
}

void cps_prom_range_client_free(struct cps_prom_range_client *client)
{
    if (!client)
        return;
    if (client->curl) {
        curl_easy_cleanup(client->curl);
        cps_http_global_cleanup();
    }
    curl_slist_free_all(client->headers);
    free(client->endpoint);
    free(client->body);
    cps_prom_setup_release(&client->setup);
    free(client);
}

struct cps_prom_range_client *cps_prom_range_client_new(const struct cps_prometheus_config *config,
                                                        const char *url, int64_t timeout_ms,
                                                        size_t max_body, int *usage,
                                                        struct cps_err *err)
{
    *usage = 0;
    struct cps_prom_range_client *c = calloc(1, sizeof *c);
    if (!c) {
        cps_err_set(err, "record", 0, 0, OUT_OF_MEMORY);
        return NULL;
    }
    c->max_body = max_body;
    if (cps_prom_setup_init(&c->setup, config, url, err) != 0) {
        *usage = config->bearer_token_file != NULL && strcmp(err->message, OUT_OF_MEMORY) != 0;
        free(c);
        return NULL;
    }
    c->setup.timeout_ms = timeout_ms;
    if (c->setup.token && (!c->setup.token[0] || strpbrk(c->setup.token, "\r\n"))) {
        cps_err_set(err, c->setup.token_file, 0, 0,
                    "the bearer token must be one non-empty line");
        *usage = 1;
        goto fail;
    }
    size_t size = strlen(c->setup.base_url) + sizeof RANGE_PATH;
    c->endpoint = malloc(size);
    if (!c->endpoint || build_range_headers(c) != 0) {
        cps_err_set(err, "record", 0, 0, OUT_OF_MEMORY);
        goto fail;
    }
    snprintf(c->endpoint, size, "%s%s", c->setup.base_url, RANGE_PATH);
    if (cps_http_global_init() != 0)
        goto no_curl;
    if (!(c->curl = curl_easy_init())) {
        cps_http_global_cleanup();
        goto no_curl;
    }
    curl_easy_setopt(c->curl, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c->curl, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(c->curl, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(c->curl, CURLOPT_USERAGENT, cps_http_user_agent());
    curl_easy_setopt(c->curl, CURLOPT_ACCEPT_ENCODING, "");
    if (plain_http_with_credentials(&c->setup))
        curl_easy_setopt(c->curl, CURLOPT_PROXY, ""); /* see plain_http_with_credentials */
    return c;
no_curl:
    cps_err_set(err, "record", 0, 0, "cannot initialise libcurl");
fail:
    cps_prom_range_client_free(c);
    return NULL;
}

/* curl progress callback: ask the owner whether to go on. */
static int range_progress_cb(void *user, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal,
                             curl_off_t ulnow)
{
    (void)dltotal;
    (void)dlnow;
    (void)ultotal;
    (void)ulnow;
    struct cps_prom_range_client *c = user;
    return c->abort_cb && c->abort_cb(c->abort_user) ? 1 : 0;
}

void cps_prom_range_client_bound(struct cps_prom_range_client *client, int64_t timeout_ms,
                                 int (*abort_cb)(void *user), void *user)
{
    client->setup.timeout_ms = timeout_ms > 0 ? timeout_ms : 1;
    client->abort_cb = abort_cb;
    client->abort_user = user;
    curl_easy_setopt(client->curl, CURLOPT_XFERINFOFUNCTION, range_progress_cb);
    curl_easy_setopt(client->curl, CURLOPT_XFERINFODATA, client);
    curl_easy_setopt(client->curl, CURLOPT_NOPROGRESS, abort_cb ? 0L : 1L);
}

const char *cps_prom_range_endpoint(const struct cps_prom_range_client *client)
{
    return client->endpoint;
}

/* A form body (long queries need no URL limits); capped and bounded in
 * time. Transport failures name the endpoint and the flag to change. */
int cps_prom_query_range(struct cps_prom_range_client *c, const char *query, double start,
                         double end, double step, long *status, const char **body, size_t *len,
                         struct cps_err *err)
{
    char *escaped = curl_easy_escape(c->curl, query, 0);
    if (!escaped)
        return cps_err_set(err, "record", 0, 0, OUT_OF_MEMORY);
    size_t size = strlen(escaped) + RANGE_FORM_EXTRA;
    char *form = malloc(size);
    if (!form) {
        curl_free(escaped);
        return cps_err_set(err, "record", 0, 0, OUT_OF_MEMORY);
    }
    snprintf(form, size, "query=%s&start=%.3f&end=%.3f&step=%.3f", escaped, start, end, step);
    curl_free(escaped);
    char errbuf[CURL_ERROR_SIZE] = "";
    c->len = 0;
    c->too_big = 0;
    if (c->body)
        c->body[0] = '\0';
    long timeout_ms = (long)c->setup.timeout_ms;
    curl_easy_setopt(c->curl, CURLOPT_URL, c->endpoint);
    curl_easy_setopt(c->curl, CURLOPT_POSTFIELDS, form);
    curl_easy_setopt(c->curl, CURLOPT_HTTPHEADER, c->headers);
    curl_easy_setopt(c->curl, CURLOPT_WRITEFUNCTION, range_write_cb);
    curl_easy_setopt(c->curl, CURLOPT_WRITEDATA, c);
    curl_easy_setopt(c->curl, CURLOPT_ERRORBUFFER, errbuf);
    curl_easy_setopt(c->curl, CURLOPT_TIMEOUT_MS, timeout_ms);
    curl_easy_setopt(c->curl, CURLOPT_CONNECTTIMEOUT_MS,
                     timeout_ms < RANGE_CONNECT_TIMEOUT_MS ? timeout_ms : RANGE_CONNECT_TIMEOUT_MS);
    curl_easy_setopt(c->curl, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)c->max_body);
    CURLcode rc = curl_easy_perform(c->curl);
    free(form);
    if (c->too_big || rc == CURLE_FILESIZE_EXCEEDED)
        return cps_err_set(err, c->endpoint, 0, 0,
                           "the answer is larger than %zu bytes (--max-body); query a shorter "
                           "span or a longer step",
                           c->max_body);
    if (rc == CURLE_ABORTED_BY_CALLBACK)
        return cps_err_set(err, c->endpoint, 0, 0, "cancelled");
    if (rc == CURLE_OPERATION_TIMEDOUT)
        return cps_err_set(err, c->endpoint, 0, 0, "no answer within %.1f s (--timeout)",
                           (double)timeout_ms / CPS_MS_PER_S);
    if (rc != CURLE_OK)
        return cps_err_set(err, c->endpoint, 0, 0, "request failed: %s%s%s",
                           curl_easy_strerror(rc), errbuf[0] ? ": " : "", errbuf);
    curl_easy_getinfo(c->curl, CURLINFO_RESPONSE_CODE, status);
    *body = c->body ? c->body : "";
    *len = c->len;
    return 0;
}
