/*
 * The Kubernetes API client: where the server is, how to authenticate, and
 * one generic non-blocking request call on the shared HTTP client.
 *
 * Credentials come from the in-cluster service account (token file, CA
 * file, KUBERNETES_SERVICE_HOST/PORT) or from a kubeconfig's current
 * context (server, certificate-authority(-data), token/tokenFile or client
 * certificate and key). Token files are read again every minute because
 * bound service-account tokens rotate. TLS is always verified, and tokens
 * and keys are never logged.
 *
 * Every request is counted by (verb, resource, code) for /metrics.
 */
#ifndef CPS_KUBE_H
#define CPS_KUBE_H

#include <stddef.h>
#include <stdint.h>

#include "err.h"
#include "http.h"
#include "k8s_names.h"

struct cps_kube;

#define CPS_KUBE_DEFAULT_SA_DIR "/var/run/secrets/kubernetes.io/serviceaccount"
#define CPS_KUBE_TOKEN_REREAD_MS (60 * 1000)
#define CPS_KUBE_MAX_BODY (64u << 20) /* cap on one answer (a large LIST) */

struct cps_kube_options {
    const char *kubeconfig;         /* NULL: in-cluster */
    const char *context;            /* NULL: the kubeconfig's current-context */
    const char *serviceaccount_dir; /* NULL: CPS_KUBE_DEFAULT_SA_DIR */
};

/* What came back; valid only during the callback. */
struct cps_kube_answer {
    long status;          /* HTTP status, 0 when the transport failed */
    const char *body;
    size_t body_len;
    int transport_error;
    const char *error;    /* transport error text, or NULL */
    int64_t retry_after_ms;
    int dropped;          /* 1: never sent (its start_cb refused it); not counted */
};

typedef void cps_kube_done_cb(const struct cps_kube_answer *answer, void *user);

/* Set up from the options. Reads the kubeconfig or the service-account
 * files now (errors name file:line:col). NULL with err set on failure. */
struct cps_kube *cps_kube_new(struct cps_http *http, const struct cps_kube_options *options,
                              struct cps_err *err);
void cps_kube_free(struct cps_kube *kube);

/* "https://host:port" */
const char *cps_kube_server(const struct cps_kube *kube);

/* Re-read the token file when a minute has passed since the last read
 * (bound tokens rotate). A failed read keeps the old token and logs. */
void cps_kube_refresh_token(struct cps_kube *kube, int64_t now_ms);

/* One request in full, for cps_kube_call. */
struct cps_kube_call {
    const char *verb, *resource; /* for metrics and RBAC: "patch", "deployments/scale" */
    const char *method, *path;   /* path absolute ("/apis/...") */
    const char *content_type, *body; /* body may be NULL */
    int64_t timeout_ms;
    enum cps_http_lane lane;     /* see http.h: the Lease has its own */
    /* asked with `user` right before the transfer starts (see http.h's
     * start_cb); -1 drops it: the callback gets answer->dropped = 1, or
     * cps_kube_call returns -1 when refused at once. May be NULL. */
    int (*start_cb)(void *user);
};

/* Send `call`. 0, or -1 when it could not be started (no callback then). */
int cps_kube_call(struct cps_kube *kube, const struct cps_kube_call *call,
                  cps_kube_done_cb *done_cb, void *user, struct cps_http_request **out);

/* Send one request. `verb` and `resource` name it for metrics and RBAC
 * ("patch", "deployments/scale"); `path` is absolute ("/apis/..."); body
 * may be NULL. GETs go in the read lane, other methods in the write lane.
 * 0, or -1 when it could not be started (no callback then). */
int cps_kube_request(struct cps_kube *kube, const char *verb, const char *resource,
                     const char *method, const char *path, const char *content_type,
                     const char *body, int64_t timeout_ms, cps_kube_done_cb *done_cb, void *user,
                     struct cps_http_request **out);

/* A streaming GET (a watch): the body goes to chunk_cb(data, len, user) as
 * it arrives (2xx answers only; return -1 to stop), done_cb is called when
 * the stream ends. Counted like any request; in the watch lane, so open
 * watches never hold the slots other requests need. */
int cps_kube_stream(struct cps_kube *kube, const char *verb, const char *resource,
                    const char *path, int64_t timeout_ms,
                    int (*chunk_cb)(const char *data, size_t len, void *user),
                    cps_kube_done_cb *done_cb, void *user, struct cps_http_request **out);

/* Build "/apis/GROUP/VERSION/namespaces/NS/RESOURCE/NAME[/SUB]" (or
 * "/api/v1/..." for the core group) with each segment percent-escaped.
 * api_version is "apps/v1" or "v1"; name and subresource may be NULL. A
 * malloc'd string, or NULL when out of memory. */
char *cps_kube_path(const char *api_version, const char *namespace, const char *resource,
                    const char *name, const char *subresource);

/* The plural resource of a kind ("Deployment" -> "deployments"). Writes
 * into out; -1 when it does not fit. CPS_KUBE_RESOURCE_MAX holds the
 * resource of the longest kind the config accepts (a DNS label's 63
 * characters, as Kubernetes allows, plus the 's' and the NUL), so a valid
 * config never has a target whose runtime cannot be made; callers make it
 * again on the stack instead of keeping it per target. */
#define CPS_KUBE_RESOURCE_MAX (CPS_K8S_DNS_LABEL_MAX + 2)
int cps_kube_resource_of_kind(const char *kind, char *out, size_t cap);

/* Counted requests, for /metrics: calls emit for every (verb, resource,
 * code) seen so far with its count. code 0 means a transport failure. */
void cps_kube_each_count(const struct cps_kube *kube,
                         void (*emit)(const char *verb, const char *resource, long code,
                                      unsigned long long count, void *user),
                         void *user);

#endif
