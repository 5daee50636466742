/*
 * kubeconfig bytes -> the connection settings of one context (libyaml).
 *
 * A pure parser: no file I/O, no clock, no environment. The caller reads the
 * file (and later the ca/cert/key/token files it names) in controller/.
 *
 * What is read, following client-go (clientcmd/api/v1 and its validation):
 *   - apiVersion (v1) and kind (Config), both optional as in clientcmd.Load;
 *   - clusters[] {name, cluster}, users[] {name, user}, contexts[] {name, context};
 *   - current-context, or the caller's `context` (kubectl --context) instead;
 *   - preferences and every `extensions` value are skipped unread.
 *
 * Every entry of every list is checked for shape and types (a wrong type,
 * an unknown key, a duplicate key, a duplicate name or bad base64 anywhere is
 * an error, as client-go's decoder fails the whole file). The rules about
 * meaning apply only to the chosen context and the cluster and user it names,
 * so an unrelated user with an `exec` plugin does not stop us:
 *   - the context must name a cluster and a user that exist;
 *     its namespace, when set, must be an RFC 1123 label;
 *   - server is required and must be an https:// URL: TLS is always
 *     verified, so http:// and `insecure-skip-tls-verify: true` are refused;
 *   - `exec`, `auth-provider`, `username`/`password` and impersonation
 *     (`as`, `as-uid`, `as-groups`, `as-user-extra`) are refused as not
 *     supported, naming the key;
 *   - `proxy-url` must be http://, https:// or socks5:// (client-go's); the
 *     API server is then reached through it (a CONNECT tunnel: the token
 *     stays inside TLS);
 *   - a client certificate needs a key and a key needs a certificate;
 *   - when both `X` and `X-data` are given, the data wins and the path is
 *     dropped (what client-go's transport does);
 *   - no credentials at all is allowed: requests are then anonymous, which
 *     only works against an API server that permits anonymous access.
 *
 * Relative paths (certificate-authority, client-certificate, client-key,
 * tokenFile) are resolved against the directory of `source`, lexically
 * cleaned, as client-go does; absolute paths are kept as written. client-go
 * first makes that directory absolute; we cannot (no getcwd in lib/), so a
 * relative `source` gives paths relative to the same working directory.
 *
 * Errors are "source:line:col: message" in a caller-owned cps_err, at the
 * offending node. A message never quotes a credential: values are only shown
 * for fields that cannot hold one (names, server scheme, booleans, apiVersion,
 * kind, namespace), and an unknown key, tag or anchor is only quoted when it
 * looks like a name (letters, '-', '_'; no digits or '.'), since it could be
 * a secret pasted in the wrong place.
 *
 * Limits (any input is safe to hand over): at most CPS_KUBECONFIG_MAX_BYTES,
 * CPS_KUBECONFIG_MAX_DEPTH levels of nesting, CPS_KUBECONFIG_MAX_NODES
 * values; one YAML document; aliases and non-standard tags refused.
 *
 * Ownership: cps_kubeconfig_parse returns a struct the caller frees with
 * cps_kubeconfig_free (NULL is a no-op). Every pointer inside is owned by it.
 */
#ifndef CPS_KUBECONFIG_H
#define CPS_KUBECONFIG_H

#include <stddef.h>

#include "err.h"

#define CPS_KUBECONFIG_MAX_BYTES (16u << 20) /* far above 1000 clusters with CA data */
#define CPS_KUBECONFIG_MAX_DEPTH 64          /* nesting levels of mappings and lists */
#define CPS_KUBECONFIG_MAX_NODES 250000      /* scalars + mappings + lists in one file */
#define CPS_KUBECONFIG_PATH_MAX 4096         /* a resolved file path, bytes */

struct cps_kubeconfig {
    char *context_name;       /* the context used */
    char *server;             /* "https://host[:port][/path]", trailing '/' removed */
    char *namespace;          /* the context's namespace, or NULL (the caller's default) */
    unsigned char *ca_data;   /* decoded certificate-authority-data (PEM bytes), or NULL */
    size_t ca_data_len;
    char *ca_file;            /* certificate-authority, resolved; NULL if absent or ca_data set */
    char *tls_server_name;    /* tls-server-name, or NULL */
    char *proxy_url;          /* proxy-url, or NULL (the environment's HTTPS_PROXY/NO_PROXY).
                                 May hold a password: never log it. */
    char *token;              /* bearer token, or NULL. Never log it. */
    char *token_file;         /* tokenFile, resolved, or NULL. When both are set, client-go
                                 starts with token and then re-reads token_file. */
    unsigned char *client_cert_data; /* decoded client-certificate-data, or NULL */
    size_t client_cert_data_len;
    unsigned char *client_key_data;  /* decoded client-key-data, or NULL. Never log it. */
    size_t client_key_data_len;
    char *client_cert_file;   /* client-certificate, resolved; NULL when absent or data is set */
    char *client_key_file;    /* client-key, resolved; NULL when absent or data is set */
};

/*
 * Parse kubeconfig YAML bytes. `source` names the file in messages and its
 * directory resolves relative paths (NULL: "<kubeconfig>", paths relative to
 * the working directory). `context` selects a context like kubectl --context;
 * NULL or "" means current-context. Returns a heap struct, or NULL with err
 * (may be NULL) filled. Decoded *_data buffers are followed by a NUL byte
 * that *_len does not count, so PEM data is also a C string.
 */
struct cps_kubeconfig *cps_kubeconfig_parse(const char *bytes, size_t len, const char *source,
                                            const char *context, struct cps_err *err);

/* Free kc and everything it owns; the key and token are zeroed first. NULL is a no-op. */
void cps_kubeconfig_free(struct cps_kubeconfig *kc);

#endif
