/*
 * lib/kubeconfig.c: choosing a context, the rules about TLS and credentials,
 * base64, relative paths, secrecy of messages, malformed input and limits.
 *
 * Every expected line:col in the error tables was worked out by hand from
 * the YAML text: a value's column is the one of its first character (or of
 * its tag), a block mapping's the one of its first key, a block list's the
 * one of its first '-'.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cps_test.h"
#include "kubeconfig.h"

#define ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))
#define MSG_MAX (CPS_ERR_SOURCE_MAX + CPS_ERR_MESSAGE_MAX + 32)
#define SOURCE "/home/sre/.kube/config"
#define B64_LINE 64       /* how wide tools wrap base64 */
#define SECRET_WINDOW 12  /* a message may not contain this many bytes of a secret in a row */

/* A throwaway P-256 CA certificate and key, made for this test only. */
static const char test_ca_pem[] =
    "-----BEGIN CERTIFICATE-----\n"
    "MIIBhTCCASugAwIBAgIUM13rE2xUCVK+p0nrX4Rn6p04m4swCgYIKoZIzj0EAwIw\n"
    "GDEWMBQGA1UEAwwNa3ViZXJuZXRlcy1jYTAeFw0yNjExMjMxOTE3MzlaFw0zNjEx\n"
    "MjAxOTE3MzlaMBgxFjAUBgNVBAMMDWt1YmVybmV0ZXMtY2EwWTATBgcqhkjOPQIB\n"
    "BggqhkjOPQMBBwNCAARJhgu/nma0csy7583WQejZKzGqhA2g8snuXY6k/dIolYdu\n"
    "6V5SmJZAcLolb6aPuGI7Pv+sK0fMAz3bAxl3Kztio1MwUTAdBgNVHQ4EFgQUQfCw\n"
    "GvJXM13W/LUrHAsV/1IclZMwHwYDVR0jBBgwFoAUQfCwGvJXM13W/LUrHAsV/1Ic\n"
    "lZMwDwYDVR0TAQH/BAUwAwEB/zAKBggqhkjOPQQDAgNIADBFAiEAneyOj3DoOWBT\n"
    "V76s6Zdy8zjC3o1bvDNxRGjoyjPiVToCIEvDiHw9eARwucXvwVsSEMVPLmv4E34Z\n"
    "37ttGOKXZk0p\n"
    "-----END CERTIFICATE-----\n";
static const char test_key_pem[] =
    "-----BEGIN PRIVATE KEY-----\n"
    "MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgkfgmaaamISNTmGrq\n"
    "TSXHsUjKqy/qdiyDCM5RUYHB7YGhRANCAARJhgu/nma0csy7583WQejZKzGqhA2g\n"
    "8snuXY6k/dIolYdu6V5SmJZAcLolb6aPuGI7Pv+sK0fMAz3bAxl3Kzti\n"
    "-----END PRIVATE KEY-----\n";

/* A service-account-like token: what must never reach a message. */
#define TOKEN "eyJhbGciOiJSUzI1NiIsImtpZCI6ImNwcyJ9.c2VjcmV0LXRva2VuLXZhbHVl.U0lHTkFUVVJFX1g"
/* A static token of letters and digits only, which YAML scans as an anchor. */
#define ALNUM_TOKEN "Xk29dLq81mZpQ7vB0wYt"

static struct cps_kubeconfig *parse(const char *yaml, const char *context, struct cps_err *err)
{
    cps_err_clear(err);
    return cps_kubeconfig_parse(yaml, strlen(yaml), SOURCE, context, err);
}

/* Parse or fail the current test, printing the error. */
static struct cps_kubeconfig *parse_ok(const char *yaml, const char *source, const char *context)
{
    struct cps_err err;
    cps_err_clear(&err);
    struct cps_kubeconfig *kc = cps_kubeconfig_parse(yaml, strlen(yaml), source, context, &err);
    if (!kc) {
        char msg[MSG_MAX];
        cps_err_format(&err, msg, sizeof msg);
        CPS_FAIL_AT("unexpected error: %s", msg);
    }
    return kc;
}

/* RFC 4648 base64 with padding, optionally wrapped every `wrap` characters
 * with "\n" + `indent` (0: one line). Caller frees. */
static char *b64_encode(const unsigned char *in, size_t len, size_t wrap, const char *indent)
{
    static const char alphabet[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    size_t chars = (len + 2) / 3 * 4;
    size_t breaks = wrap ? chars / wrap + 1 : 0;
    char *out = malloc(chars + breaks * (strlen(indent) + 1) + 1);
    size_t o = 0, col = 0;
    if (!out)
        return NULL;
    for (size_t i = 0; i < len; i += 3) {
        unsigned v = (unsigned)in[i] << 16;
        if (i + 1 < len)
            v |= (unsigned)in[i + 1] << 8;
        if (i + 2 < len)
            v |= in[i + 2];
        char quad[4] = {alphabet[(v >> 18) & 63], alphabet[(v >> 12) & 63],
                        i + 1 < len ? alphabet[(v >> 6) & 63] : '=',
                        i + 2 < len ? alphabet[v & 63] : '='};
        for (int k = 0; k < 4; k++) {
            if (wrap && col == wrap) {
                o += (size_t)sprintf(out + o, "\n%s", indent);
                col = 0;
            }
            out[o++] = quad[k];
            col++;
        }
    }
    out[o] = '\0';
    return out;
}

/* Does `message` contain SECRET_WINDOW consecutive bytes of `secret`? */
static int leaks(const char *message, const char *secret)
{
    size_t n = strlen(secret);
    char window[SECRET_WINDOW + 1];
    for (size_t i = 0; i + SECRET_WINDOW <= n; i++) {
        memcpy(window, secret + i, SECRET_WINDOW);
        window[SECRET_WINDOW] = '\0';
        if (strstr(message, window))
            return 1;
    }
    return 0;
}

/* ---- a real-looking kubeconfig ------------------------------------------- */

/* Three clusters, four users, four contexts, as kubectl, kind and gcloud
 * write them; the GKE user runs a plugin and the lab cluster skips TLS
 * checks, which is fine as long as neither is chosen. */
static const char multi_yaml[] =
    "apiVersion: v1\n"
    "kind: Config\n"
    "preferences: {}\n"
    "clusters:\n"
    "- cluster:\n"
    "    certificate-authority-data: Zm9vYmFy\n"
    "    server: https://prod.k8s.example.com:6443/\n"
    "    tls-server-name: kubernetes.default.svc\n"
    "    extensions:\n"
    "    - name: client.authentication.k8s.io/exec\n"
    "      extension:\n"
    "        audience: prod\n"
    "        nested: {any: [thing, {at: all}]}\n"
    "  name: prod\n"
    "- cluster:\n"
    "    certificate-authority: pki/ca.crt\n"
    "    server: https://127.0.0.1:39245\n"
    "    disable-compression: true\n"
    "  name: kind-dev\n"
    "- cluster:\n"
    "    insecure-skip-tls-verify: true\n"
    "    server: http://lab.internal:8080\n"
    "  name: lab\n"
    "- cluster:\n"
    "    server: https://34.120.1.2\n"
    "  name: gke_shop_europe-west1_main\n"
    "contexts:\n"
    "- context:\n"
    "    cluster: prod\n"
    "    namespace: shop\n"
    "    user: cpscale\n"
    "  name: prod\n"
    "- context:\n"
    "    cluster: kind-dev\n"
    "    user: kind-admin\n"
    "  name: dev\n"
    "- context: {cluster: lab, user: cpscale}\n"
    "  name: lab\n"
    "- context:\n"
    "    cluster: gke_shop_europe-west1_main\n"
    "    user: gke_shop_europe-west1_main\n"
    "  name: gke\n"
    "current-context: prod\n"
    "users:\n"
    "- name: cpscale\n"
    "  user:\n"
    "    token: " TOKEN "\n"
    "- name: kind-admin\n"
    "  user:\n"
    "    client-certificate: /etc/kind/admin.crt\n"
    "    client-key: ../kind/admin.key\n"
    "- name: gke_shop_europe-west1_main\n"
    "  user:\n"
    "    exec:\n"
    "      apiVersion: client.authentication.k8s.io/v1beta1\n"
    "      command: gke-gcloud-auth-plugin\n"
    "      provideClusterInfo: true\n"
    "- name: nobody\n"
    "  user: {}\n"
    "extensions:\n"
    "- name: tool/metadata\n"
    "  extension: {owner: sre, tags: [a, b]}\n";

static void test_current_context(void)
{
    struct cps_kubeconfig *kc = parse_ok(multi_yaml, SOURCE, NULL);
    if (!kc)
        return;
    ASSERT_STR_EQ(kc->context_name, "prod");
    ASSERT_STR_EQ(kc->server, "https://prod.k8s.example.com:6443"); /* trailing '/' dropped */
    ASSERT_STR_EQ(kc->namespace, "shop");
    ASSERT_EQ(kc->ca_data_len, 6);
    ASSERT_TRUE(kc->ca_data && !memcmp(kc->ca_data, "foobar", 7)); /* and a NUL after */
    ASSERT_TRUE(kc->ca_file == NULL);
    ASSERT_STR_EQ(kc->tls_server_name, "kubernetes.default.svc");
    ASSERT_STR_EQ(kc->token, TOKEN);
    ASSERT_TRUE(kc->token_file == NULL);
    ASSERT_TRUE(kc->client_cert_data == NULL && kc->client_key_data == NULL);
    ASSERT_TRUE(kc->client_cert_file == NULL && kc->client_key_file == NULL);
    ASSERT_EQ(kc->client_cert_data_len, 0);
    cps_kubeconfig_free(kc);
}

/* The caller's context wins over current-context; "" means "use current". */
static void test_context_override(void)
{
    static const struct {
        const char *context;
        const char *name, *server, *namespace, *ca_file, *cert_file, *key_file;
        int has_token;
    } rows[] = {
        {"dev", "dev", "https://127.0.0.1:39245", NULL, "/home/sre/.kube/pki/ca.crt",
         "/etc/kind/admin.crt", "/home/sre/kind/admin.key", 0},
        {"prod", "prod", "https://prod.k8s.example.com:6443", "shop", NULL, NULL, NULL, 1},
        {"", "prod", "https://prod.k8s.example.com:6443", "shop", NULL, NULL, NULL, 1},
    };
    for (size_t i = 0; i < ARRAY_LEN(rows); i++) {
        CPS_ROW_BEGIN();
        struct cps_kubeconfig *kc = parse_ok(multi_yaml, SOURCE, rows[i].context);
        if (kc) {
            ASSERT_STR_EQ(kc->context_name, rows[i].name);
            ASSERT_STR_EQ(kc->server, rows[i].server);
            if (rows[i].namespace)
                ASSERT_STR_EQ(kc->namespace, rows[i].namespace);
            else
                ASSERT_TRUE(kc->namespace == NULL);
            if (rows[i].ca_file)
                ASSERT_STR_EQ(kc->ca_file, rows[i].ca_file);
            else
                ASSERT_TRUE(kc->ca_file == NULL);
            if (rows[i].cert_file) {
                ASSERT_STR_EQ(kc->client_cert_file, rows[i].cert_file);
                ASSERT_STR_EQ(kc->client_key_file, rows[i].key_file);
            } else {
                ASSERT_TRUE(kc->client_cert_file == NULL && kc->client_key_file == NULL);
            }
            ASSERT_EQ(kc->token != NULL, rows[i].has_token);
        }
        cps_kubeconfig_free(kc);
        CPS_ROW_END(rows[i].context);
    }
    /* the unusable entries stop us only once chosen */
    static const struct {
        const char *context;
        int line, col;
        const char *message;
    } refused[] = {
        {"lab", 21, 31, "clusters[2].cluster.insecure-skip-tls-verify: true is refused"},
        {"gke", 54, 5, "users[2].user.exec: not supported: cpscale does not run credential"},
    };
    for (size_t i = 0; i < ARRAY_LEN(refused); i++) {
        CPS_ROW_BEGIN();
        struct cps_err err;
        struct cps_kubeconfig *kc = parse(multi_yaml, refused[i].context, &err);
        ASSERT_TRUE(kc == NULL);
        ASSERT_EQ(err.line, refused[i].line);
        ASSERT_EQ(err.col, refused[i].col);
        ASSERT_CONTAINS(err.message, refused[i].message);
        cps_kubeconfig_free(kc);
        CPS_ROW_END(refused[i].context);
    }
}

/* ---- relative paths ---------------------------------------------------------- */

static void test_relative_paths(void)
{
    static const struct {
        const char *source; /* NULL: none given */
        const char *path;   /* as written in the file */
        const char *want;
    } rows[] = {
        {"/home/sre/.kube/config", "ca.crt", "/home/sre/.kube/ca.crt"},
        {"/home/sre/.kube/config", "./certs/../ca.crt", "/home/sre/.kube/ca.crt"},
        {"/home/sre/.kube/config", "../pki//ca.crt", "/home/sre/pki/ca.crt"},
        {"/home/sre/.kube/config", "/etc/kubernetes/pki/ca.crt", "/etc/kubernetes/pki/ca.crt"},
        /* absolute paths are kept exactly as written, as client-go does */
        {"/home/sre/.kube/config", "/etc//kubernetes/./ca.crt", "/etc//kubernetes/./ca.crt"},
        {"/config", "../../ca.crt", "/ca.crt"},
        {"/k/config", "certs/", "/k/certs"},
        {"/k/config", ".", "/k"},
        {"/k/config", "a/b/../../..", "/"},
        {"config", "ca.crt", "ca.crt"},
        {"config", "../ca.crt", "../ca.crt"},
        {"kube/config", "../../ca.crt", "../ca.crt"},
        {"./kube/config", "ca.crt", "kube/ca.crt"},
        {"../../x/config", "../y/ca.crt", "../../y/ca.crt"},
        {"kube/config", "..", "."},
        {NULL, "certs/ca.crt", "certs/ca.crt"},
    };
    char yaml[1024];
    for (size_t i = 0; i < ARRAY_LEN(rows); i++) {
        CPS_ROW_BEGIN();
        snprintf(yaml, sizeof yaml,
                 "clusters:\n- name: c\n  cluster:\n    server: https://c\n"
                 "    certificate-authority: '%s'\n"
                 "users:\n- name: u\n  user:\n"
                 "    client-certificate: '%s'\n    client-key: '%s'\n    tokenFile: '%s'\n"
                 "contexts:\n- name: x\n  context: {cluster: c, user: u}\n"
                 "current-context: x\n",
                 rows[i].path, rows[i].path, rows[i].path, rows[i].path);
        struct cps_kubeconfig *kc = parse_ok(yaml, rows[i].source, NULL);
        if (kc) {
            ASSERT_STR_EQ(kc->ca_file, rows[i].want);
            ASSERT_STR_EQ(kc->client_cert_file, rows[i].want);
            ASSERT_STR_EQ(kc->client_key_file, rows[i].want);
            ASSERT_STR_EQ(kc->token_file, rows[i].want);
        }
        cps_kubeconfig_free(kc);
        if (cps_test_current_failed)
            fprintf(stderr, "  (source %s, path %s)\n", rows[i].source ? rows[i].source : "NULL",
                    rows[i].path);
        CPS_ROW_END(rows[i].path);
    }
}

/* ---- data fields ---------------------------------------------------------------- */

/*
 * PEM bytes survive the trip through base64 and YAML in the three ways
 * tools write them: one line, a literal block wrapped at 64, and a plain
 * scalar folded over several lines (whose breaks YAML turns into spaces).
 */
static void test_pem_round_trip(void)
{
    char *one_line = b64_encode((const unsigned char *)test_ca_pem, strlen(test_ca_pem), 0, "");
    char *block = b64_encode((const unsigned char *)test_ca_pem, strlen(test_ca_pem), B64_LINE,
                             "      ");
    char *folded = b64_encode((const unsigned char *)test_key_pem, strlen(test_key_pem), B64_LINE,
                              "      ");
    size_t cap = 8192;
    char *yaml = malloc(cap);
    ASSERT_TRUE(one_line && block && folded && yaml);
    if (!one_line || !block || !folded || !yaml)
        goto done;
    /* an independent check of the encoder: coreutils' base64 of the first line */
    ASSERT_TRUE(!strncmp(one_line, "LS0tLS1CRUdJTiBDRVJUSUZJQ0FURS0tLS0tCk1JSUJoVENDQVN1Z0F3SUJ",
                         58));
    snprintf(yaml, cap,
             "apiVersion: v1\nkind: Config\n"
             "clusters:\n- name: c\n  cluster:\n    server: https://c.example\n"
             "    certificate-authority-data: %s\n"
             "users:\n- name: u\n  user:\n"
             "    client-certificate-data: |\n      %s\n"
             "    client-key-data:\n      %s\n"
             "contexts:\n- name: x\n  context: {cluster: c, user: u}\n"
             "current-context: x\n",
             one_line, block, folded);
    struct cps_kubeconfig *kc = parse_ok(yaml, SOURCE, NULL);
    if (kc) {
        ASSERT_EQ(kc->ca_data_len, strlen(test_ca_pem));
        ASSERT_EQ(kc->client_cert_data_len, strlen(test_ca_pem));
        ASSERT_EQ(kc->client_key_data_len, strlen(test_key_pem));
        /* NUL-terminated, so strcmp compares the whole buffer */
        ASSERT_STR_EQ((const char *)kc->ca_data, test_ca_pem);
        ASSERT_STR_EQ((const char *)kc->client_cert_data, test_ca_pem);
        ASSERT_STR_EQ((const char *)kc->client_key_data, test_key_pem);
        ASSERT_TRUE(kc->ca_file == NULL && kc->client_cert_file == NULL &&
                    kc->client_key_file == NULL && kc->token == NULL);
    }
    cps_kubeconfig_free(kc);
done:
    free(yaml);
    free(folded);
    free(block);
    free(one_line);
}

/* The RFC 4648 test vectors and the whitespace tools leave in, through the
 * certificate-authority-data field. */
static void test_base64(void)
{
    static const struct {
        const char *yaml_value;
        const char *want; /* NULL: no data (absent or empty) */
    } good[] = {
        {"Zg==", "f"},
        {"Zm8=", "fo"},
        {"Zm9v", "foo"},
        {"Zm9vYg==", "foob"},
        {"Zm9vYmE=", "fooba"},
        {"Zm9vYmFy", "foobar"},
        {"''", NULL},
        {"\"  \\n \"", NULL},
        {"\"Zm9v\\r\\nYmFy\\n\"", "foobar"},
        {"\"Zm9v\\tYm Fy\"", "foobar"},
        {"Zm9v\n      YmFy", "foobar"},
        {"|\n      Zm9v\n      YmE=\n", "fooba"},
        {"Zh==", "f"}, /* unused low bits are not checked, as Go does */
        {"+/+/", "\xfb\xff\xbf"},
        {"null", NULL},
    };
    char yaml[512];
    for (size_t i = 0; i < ARRAY_LEN(good); i++) {
        CPS_ROW_BEGIN();
        snprintf(yaml, sizeof yaml,
                 "clusters:\n- name: c\n  cluster:\n    server: https://c\n"
                 "    certificate-authority: ca.crt\n"
                 "    certificate-authority-data: %s\n"
                 "users: [{name: u, user: {}}]\n"
                 "contexts: [{name: x, context: {cluster: c, user: u}}]\n"
                 "current-context: x\n",
                 good[i].yaml_value);
        struct cps_kubeconfig *kc = parse_ok(yaml, "/k/config", NULL);
        if (kc && good[i].want) {
            ASSERT_EQ(kc->ca_data_len, strlen(good[i].want));
            ASSERT_STR_EQ((const char *)kc->ca_data, good[i].want);
            ASSERT_TRUE(kc->ca_file == NULL); /* data wins over the file */
        } else if (kc) {
            ASSERT_TRUE(kc->ca_data == NULL);
            ASSERT_EQ(kc->ca_data_len, 0);
            ASSERT_STR_EQ(kc->ca_file, "/k/ca.crt"); /* empty data: the file is used */
        }
        cps_kubeconfig_free(kc);
        CPS_ROW_END(good[i].yaml_value);
    }
    static const struct {
        const char *yaml_value;
        const char *message;
    } bad[] = {
        {"Zm9", "its length is not a multiple of 4 (padding is required) (at byte 3 of"},
        {"Zm9vYg", "its length is not a multiple of 4"},
        {"Zm9*", "a character outside the base64 alphabet (at byte 3 of the value)"},
        {"Zm9v-_==", "a character outside the base64 alphabet (at byte 4"},
        {"Z===", "'=' in the wrong place (at byte 1"},
        {"====", "'=' in the wrong place (at byte 0"},
        {"Zg=a", "'=' in the wrong place (at byte 3"},
        {"Zg==Zg==", "data after the '=' padding (at byte 4"},
        {"Zm8=\n      Zm9v", "data after the '=' padding (at byte 5"},
        {"\"Zm9v\\0\"", "contains a NUL character"},
        {"[Zm9v]", "expected a string, got a list"},
    };
    for (size_t i = 0; i < ARRAY_LEN(bad); i++) {
        CPS_ROW_BEGIN();
        snprintf(yaml, sizeof yaml,
                 "clusters:\n- name: c\n  cluster:\n    server: https://c\n"
                 "    certificate-authority-data: %s\n",
                 bad[i].yaml_value);
        struct cps_err err;
        struct cps_kubeconfig *kc = parse(yaml, NULL, &err);
        ASSERT_TRUE(kc == NULL);
        ASSERT_EQ(err.line, 5);
        ASSERT_EQ(err.col, 33);
        ASSERT_CONTAINS(err.message, "clusters[0].cluster.certificate-authority-data: ");
        ASSERT_CONTAINS(err.message, bad[i].message);
        cps_kubeconfig_free(kc);
        if (cps_test_current_failed)
            fprintf(stderr, "  (got %d:%d: %s)\n", err.line, err.col, err.message);
        CPS_ROW_END(bad[i].yaml_value);
    }
}

/* When both a path and data are given, client-go's transport takes the data. */
static void test_data_wins(void)
{
    static const char yaml[] =
        "clusters:\n- name: c\n  cluster:\n    server: https://c\n"
        "    certificate-authority: ca.crt\n    certificate-authority-data: Zm9v\n"
        "users:\n- name: u\n  user:\n"
        "    client-certificate: u.crt\n    client-certificate-data: Zm9vYg==\n"
        "    client-key: u.key\n    client-key-data: Zm9vYmE=\n"
        "    token: abc\n    tokenFile: /var/run/token\n"
        "contexts:\n- name: x\n  context: {cluster: c, user: u}\n"
        "current-context: x\n";
    struct cps_kubeconfig *kc = parse_ok(yaml, SOURCE, NULL);
    if (!kc)
        return;
    ASSERT_STR_EQ((const char *)kc->ca_data, "foo");
    ASSERT_STR_EQ((const char *)kc->client_cert_data, "foob");
    ASSERT_STR_EQ((const char *)kc->client_key_data, "fooba");
    ASSERT_TRUE(kc->ca_file == NULL && kc->client_cert_file == NULL &&
                kc->client_key_file == NULL);
    /* a token and a token file: both kept (client-go starts with the token,
     * then re-reads the file) */
    ASSERT_STR_EQ(kc->token, "abc");
    ASSERT_STR_EQ(kc->token_file, "/var/run/token");
    cps_kubeconfig_free(kc);
}

/* ---- what is allowed ----------------------------------------------------------------- */

static void test_allowed(void)
{
    static const struct {
        const char *name;
        const char *yaml;
        const char *server;
    } rows[] = {
        {"anonymous: empty user",
         "clusters: [{name: c, cluster: {server: 'https://c:6443'}}]\n"
         "users: [{name: u, user: {}}]\n"
         "contexts: [{name: x, context: {cluster: c, user: u}}]\ncurrent-context: x\n",
         "https://c:6443"},
        {"anonymous: null user and unset fields",
         "clusters:\n- name: c\n  cluster:\n    server: https://c\n    tls-server-name:\n"
         "users:\n- name: u\n  user:\n"
         "contexts:\n- name: x\n  context:\n    cluster: c\n    user: u\n    namespace: ''\n"
         "current-context: x\n",
         "https://c"},
        {"anonymous: user without a body",
         "clusters: [{name: c, cluster: {server: 'https://c'}}]\nusers: [{name: u}]\n"
         "contexts: [{name: x, context: {cluster: c, user: u}}]\ncurrent-context: x\n",
         "https://c"},
        {"empty strings and lists are unset",
         "clusters: [{name: c, cluster: {server: 'https://c', proxy-url: ''}}]\n"
         "users: [{name: u, user: {username: '', as: '', as-groups: [], as-user-extra: {},"
         " exec: null, auth-provider: ~}}]\n"
         "contexts: [{name: x, context: {cluster: c, user: u}}]\ncurrent-context: x\n",
         "https://c"},
        {"preferences and extensions are not read",
         "apiVersion: v1\nkind: Config\n"
         "preferences: {colors: true, whatever: [1, {a: b}], extensions: 7}\n"
         "extensions: not even a list\n"
         "clusters: [{name: c, cluster: {server: 'https://c', extensions: [{x: 1}]}}]\n"
         "users: [{name: u, user: {extensions: {y: [2]}}}]\n"
         "contexts: [{name: x, context: {cluster: c, user: u, extensions: [z]}}]\n"
         "current-context: x\n",
         "https://c"},
        {"insecure false, TLS name, scheme case, path kept",
         "clusters: [{name: c, cluster: {server: 'HTTPS://rancher.example/k8s/clusters/c-x7/',"
         " insecure-skip-tls-verify: no}}]\n"
         "users: [{name: u, user: {token: t}}]\n"
         "contexts: [{name: x, context: {cluster: c, user: u}}]\ncurrent-context: x\n",
         "HTTPS://rancher.example/k8s/clusters/c-x7"},
        {"unselected entries may be unusable",
         "clusters:\n- {name: c, cluster: {server: 'https://c'}}\n"
         "- {name: old, cluster: {server: 'http://old', insecure-skip-tls-verify: true}}\n"
         "- {name: bare}\n"
         "users:\n- {name: u, user: {token: t}}\n"
         "- {name: legacy, user: {username: admin, password: admin, client-key: k.pem}}\n"
         "- {name: oidc, user: {auth-provider: {name: oidc}}}\n"
         "contexts:\n- {name: x, context: {cluster: c, user: u}}\n"
         "- {name: broken, context: {cluster: nowhere, user: nobody, namespace: NOPE}}\n"
         "current-context: x\n",
         "https://c"},
        {"tags that agree with the value",
         "clusters: [{name: c, cluster: {server: !!str 'https://c', disable-compression: !!bool "
         "true}}]\n"
         "users: !!seq [{name: u, user: !!map {token: !!str 12345}}]\n"
         "contexts: [{name: x, context: {cluster: c, user: u}}]\ncurrent-context: x\n",
         "https://c"},
        {"the non-specific tag on mappings and lists",
         "clusters: ! [{name: c, cluster: ! {server: ! 'https://c'}}]\n"
         "users: [{name: u, user: {}}]\n"
         "contexts: [{name: x, context: {cluster: c, user: u}}]\ncurrent-context: x\n",
         "https://c"},
        {"IPv6 server, no apiVersion or kind",
         "clusters: [{name: c, cluster: {server: 'https://[fd00::1]:6443'}}]\n"
         "users: [{name: u, user: {}}]\n"
         "contexts: [{name: x, context: {cluster: c, user: u}}]\ncurrent-context: x\n",
         "https://[fd00::1]:6443"},
        {"a document start and a BOM",
         "\xEF\xBB\xBF---\nclusters: [{name: c, cluster: {server: 'https://c'}}]\n"
         "users: [{name: u, user: {}}]\n"
         "contexts: [{name: x, context: {cluster: c, user: u}}]\ncurrent-context: x\n...\n",
         "https://c"},
    };
    for (size_t i = 0; i < ARRAY_LEN(rows); i++) {
        CPS_ROW_BEGIN();
        struct cps_kubeconfig *kc = parse_ok(rows[i].yaml, SOURCE, NULL);
        if (kc) {
            ASSERT_STR_EQ(kc->server, rows[i].server);
            ASSERT_STR_EQ(kc->context_name, "x");
            ASSERT_TRUE(kc->namespace == NULL && kc->ca_data == NULL && kc->ca_file == NULL);
            ASSERT_TRUE(kc->client_cert_data == NULL && kc->client_key_data == NULL);
            ASSERT_TRUE(kc->client_cert_file == NULL && kc->client_key_file == NULL);
            ASSERT_TRUE(kc->token_file == NULL && kc->tls_server_name == NULL);
            if (i < 5)
                ASSERT_TRUE(kc->token == NULL);
        }
        cps_kubeconfig_free(kc);
        CPS_ROW_END(rows[i].name);
    }
}

/* ---- the error table ----------------------------------------------------------------- */

/* A usable file in three blocks, so a case can swap one and keep the line
 * numbers of the others: clusters on lines 1-4, users 5-8, contexts 9-14. */
#define CLUSTERS_OK "clusters:\n- name: c\n  cluster:\n    server: https://c.example:6443\n"
#define USERS_OK "users:\n- name: u\n  user:\n    token: abc\n"
#define CONTEXTS_OK                                                                    \
    "contexts:\n- name: p\n  context:\n    cluster: c\n    user: u\ncurrent-context: p\n"
#define CLUSTERS_HEAD "clusters:\n- name: c\n  cluster:\n"
#define USERS_HEAD "users:\n- name: u\n  user:\n"
#define CONTEXTS_HEAD "contexts:\n- name: p\n  context:\n"

struct bad_case {
    const char *name;
    const char *yaml;
    const char *context; /* the caller's, or NULL */
    int line, col;
    const char *message; /* a substring of the message */
};

static const struct bad_case bad_cases[] = {
    /* choosing the context */
    {"no current-context", CLUSTERS_OK USERS_OK CONTEXTS_HEAD "    cluster: c\n    user: u\n",
     NULL, 1, 1, "no context chosen: current-context is not set (contexts: \"p\")"},
    {"empty current-context",
     CLUSTERS_OK USERS_OK CONTEXTS_HEAD "    cluster: c\n    user: u\ncurrent-context: \"\"\n",
     NULL, 14, 18, "no context chosen: current-context is not set"},
    {"no contexts at all", CLUSTERS_OK USERS_OK, NULL, 1, 1,
     "current-context is not set (the file defines no contexts)"},
    {"unknown current-context",
     CLUSTERS_OK USERS_OK CONTEXTS_HEAD "    cluster: c\n    user: u\ncurrent-context: staging\n",
     NULL, 14, 18, "current-context: context \"staging\" is not defined (contexts: \"p\")"},
    {"unknown context from the caller", CLUSTERS_OK USERS_OK CONTEXTS_OK, "nope", 10, 1,
     "context \"nope\" is not defined (contexts: \"p\")"},
    {"context names a missing cluster",
     CLUSTERS_OK USERS_OK CONTEXTS_HEAD "    cluster: d\n    user: u\ncurrent-context: p\n", NULL,
     12, 14, "contexts[0].context.cluster: cluster \"d\" is not defined (clusters: \"c\")"},
    {"context names a missing user",
     CLUSTERS_OK USERS_OK CONTEXTS_HEAD "    cluster: c\n    user: v\ncurrent-context: p\n", NULL,
     13, 11, "contexts[0].context.user: user \"v\" is not defined (users: \"u\")"},
    {"context without a cluster",
     CLUSTERS_OK USERS_OK CONTEXTS_HEAD "    user: u\ncurrent-context: p\n", NULL, 12, 5,
     "contexts[0].context: context \"p\" does not name a cluster"},
    {"context without a user",
     CLUSTERS_OK USERS_OK CONTEXTS_HEAD "    cluster: c\ncurrent-context: p\n", NULL, 12, 5,
     "contexts[0].context: context \"p\" does not name a user"},
    {"context without a body",
     CLUSTERS_OK USERS_OK "contexts:\n- name: p\ncurrent-context: p\n", NULL, 10, 3,
     "contexts[0]: context \"p\" does not name a cluster"},
    {"invalid namespace",
     CLUSTERS_OK USERS_OK CONTEXTS_HEAD
     "    cluster: c\n    user: u\n    namespace: Team_A\ncurrent-context: p\n",
     NULL, 14, 16, "contexts[0].context.namespace: \"Team_A\" is not a valid namespace"},
    /* the cluster */
    {"http server", CLUSTERS_HEAD "    server: http://c.example:6443\n" USERS_OK CONTEXTS_OK, NULL,
     4, 13,
     "clusters[0].cluster.server: must be an https:// URL (TLS is always verified), got scheme "
     "\"http\""},
    {"server without a scheme", CLUSTERS_HEAD "    server: c.example:6443\n" USERS_OK CONTEXTS_OK,
     NULL, 4, 13, "clusters[0].cluster.server: must be an https:// URL (TLS is always verified), "
                  "got no scheme"},
    {"server with user info",
     CLUSTERS_HEAD "    server: https://admin:hunter2@c.example\n" USERS_OK CONTEXTS_OK, NULL, 4,
     13, "clusters[0].cluster.server: user info in the URL is not supported"},
    {"server without a host", CLUSTERS_HEAD "    server: https:///api\n" USERS_OK CONTEXTS_OK,
     NULL, 4, 13, "clusters[0].cluster.server: no host after https://"},
    {"server with a space",
     CLUSTERS_HEAD "    server: 'https://c.example /x'\n" USERS_OK CONTEXTS_OK, NULL, 4, 13,
     "clusters[0].cluster.server: contains a space or a control character"},
    {"missing server", CLUSTERS_HEAD "    certificate-authority: ca.crt\n" USERS_OK CONTEXTS_OK,
     NULL, 4, 5, "clusters[0].cluster: cluster \"c\" has no server"},
    {"empty server", CLUSTERS_HEAD "    server: ''\n" USERS_OK CONTEXTS_OK, NULL, 4, 13,
     "clusters[0].cluster: cluster \"c\" has no server"},
    {"cluster without a body", "clusters:\n- name: c\n\n\n" USERS_OK CONTEXTS_OK, NULL, 2, 3,
     "clusters[0]: cluster \"c\" has no server"},
    {"insecure-skip-tls-verify",
     CLUSTERS_OK "    insecure-skip-tls-verify: true\n" USERS_OK CONTEXTS_OK, NULL, 5, 31,
     "clusters[0].cluster.insecure-skip-tls-verify: true is refused: TLS is always verified"},
    {"insecure-skip-tls-verify not a boolean",
     CLUSTERS_OK "    insecure-skip-tls-verify: maybe\n" USERS_OK CONTEXTS_OK, NULL, 5, 31,
     "clusters[0].cluster.insecure-skip-tls-verify: expected true or false, got \"maybe\""},
    {"quoted boolean", CLUSTERS_OK "    disable-compression: \"true\"\n" USERS_OK CONTEXTS_OK,
     NULL, 5, 26, "clusters[0].cluster.disable-compression: expected true or false"},
    {"proxy-url ftp", CLUSTERS_OK "    proxy-url: ftp://proxy:3128\n" USERS_OK CONTEXTS_OK, NULL,
     5, 16, "clusters[0].cluster.proxy-url: expected an http://, https:// or socks5:// URL"},
    {"bad certificate-authority-data",
     CLUSTERS_OK "    certificate-authority-data: LS0t*LS0\n" USERS_OK CONTEXTS_OK, NULL, 5, 33,
     "clusters[0].cluster.certificate-authority-data: not valid base64: a character outside the "
     "base64 alphabet (at byte 4 of the value)"},
    /* the user */
    {"exec plugin",
     CLUSTERS_OK USERS_HEAD "    exec:\n      command: aws\n      args: [eks, get-token]\n"
                            CONTEXTS_OK,
     NULL, 8, 5, "users[0].user.exec: not supported: cpscale does not run credential plugins"},
    {"exec plugin, empty", CLUSTERS_OK USERS_HEAD "    exec: {}\n" CONTEXTS_OK, NULL, 8, 5,
     "users[0].user.exec: not supported"},
    {"auth-provider", CLUSTERS_OK USERS_HEAD "    auth-provider:\n      name: oidc\n" CONTEXTS_OK,
     NULL, 8, 5, "users[0].user.auth-provider: not supported: cpscale does not run auth providers"},
    {"username and password",
     CLUSTERS_OK USERS_HEAD "    username: admin\n    password: s3cret\n" CONTEXTS_OK, NULL, 8, 5,
     "users[0].user.username: not supported: basic authentication"},
    {"password alone", CLUSTERS_OK USERS_HEAD "    password: s3cret\n" CONTEXTS_OK, NULL, 8, 5,
     "users[0].user.password: not supported: basic authentication"},
    {"impersonation", CLUSTERS_OK USERS_OK "    as: system:admin\n" CONTEXTS_OK, NULL, 9, 5,
     "users[0].user.as: not supported: impersonation"},
    {"impersonated groups", CLUSTERS_OK USERS_OK "    as-groups: [system:masters]\n" CONTEXTS_OK,
     NULL, 9, 5, "users[0].user.as-groups: not supported: impersonation"},
    {"certificate without a key",
     CLUSTERS_OK USERS_HEAD "    client-certificate: client.crt\n" CONTEXTS_OK, NULL, 8, 5,
     "users[0].user.client-certificate: a client certificate needs a key (client-key or "
     "client-key-data)"},
    {"certificate data without a key",
     CLUSTERS_OK USERS_HEAD "    client-certificate-data: Zm9v\n    client-key-data: ''\n"
                            CONTEXTS_OK,
     NULL, 8, 5, "users[0].user.client-certificate-data: a client certificate needs a key"},
    {"key without a certificate", CLUSTERS_OK USERS_HEAD "    client-key-data: Zm9v\n" CONTEXTS_OK,
     NULL, 8, 5,
     "users[0].user.client-key-data: a client key needs a certificate (client-certificate or "
     "client-certificate-data)"},
    {"key data missing padding",
     CLUSTERS_OK USERS_HEAD "    client-certificate-data: Zm9v\n    client-key-data: Zm9vYg\n"
                            CONTEXTS_OK,
     NULL, 9, 22,
     "users[0].user.client-key-data: not valid base64: its length is not a multiple of 4 "
     "(padding is required) (at byte 6 of the value)"},
    {"bad base64 in a user that is not chosen",
     CLUSTERS_OK USERS_OK "- name: other\n  user:\n    client-certificate-data: Zg=a\n" CONTEXTS_OK,
     NULL, 11, 30,
     "users[1].user.client-certificate-data: not valid base64: '=' in the wrong place (at byte 3"},
    {"token is a list", CLUSTERS_OK USERS_HEAD "    token: [abc]\n" CONTEXTS_OK, NULL, 8, 12,
     "users[0].user.token: expected a string, got a list"},
    {"token with a NUL", CLUSTERS_OK USERS_HEAD "    token: \"a\\0b\"\n" CONTEXTS_OK, NULL, 8, 12,
     "users[0].user.token: contains a NUL character"},
    {"user is a string", CLUSTERS_OK "users:\n- name: u\n  user: abc\n\n" CONTEXTS_OK, NULL, 7, 9,
     "users[0].user: expected a mapping, got a string"},
    {"exec is a string in a user not chosen",
     CLUSTERS_OK USERS_OK "- name: w\n  user:\n    exec: aws\n" CONTEXTS_OK, NULL, 11, 11,
     "users[1].user.exec: expected a mapping, got a string"},
    /* structure */
    {"duplicate cluster name",
     "clusters:\n- name: c\n  cluster: {server: 'https://a'}\n- name: c\n"
     "  cluster: {server: 'https://b'}\n" USERS_OK CONTEXTS_OK,
     NULL, 4, 9, "clusters[1].name: duplicate cluster name \"c\" (first at clusters[0], line 2)"},
    {"first duplicate in file order",
     "clusters:\n- {name: a, cluster: {server: 'https://a'}}\n"
     "- {name: b, cluster: {server: 'https://b'}}\n- {name: c, cluster: {server: 'https://c'}}\n"
     "- {name: b, cluster: {server: 'https://b'}}\n- {name: a, cluster: {server: 'https://a'}}\n",
     NULL, 5, 10, "clusters[3].name: duplicate cluster name \"b\" (first at clusters[1], line 3)"},
    {"duplicate user name", CLUSTERS_OK USERS_OK "- name: u\n  user: {}\n" CONTEXTS_OK, NULL, 9, 9,
     "users[1].name: duplicate user name \"u\" (first at users[0], line 6)"},
    {"duplicate context name",
     CLUSTERS_OK USERS_OK "contexts:\n- {name: p, context: {cluster: c, user: u}}\n"
                          "- {name: p, context: {cluster: c, user: u}}\ncurrent-context: p\n",
     NULL, 11, 10,
     "contexts[1].name: duplicate context name \"p\" (first at contexts[0], line 10)"},
    {"duplicate key",
     CLUSTERS_OK "    server: https://d.example\n" USERS_OK CONTEXTS_OK, NULL, 5, 5,
     "duplicate key \"server\" in clusters[0].cluster (first at line 4, column 5)"},
    {"unknown cluster key", CLUSTERS_OK "    certificate-authority-dat: x\n" USERS_OK CONTEXTS_OK,
     NULL, 5, 5,
     "unknown key \"certificate-authority-dat\" in clusters[0].cluster (expected one of: server, "
     "tls-server-name, insecure-skip-tls-verify,"},
    {"unknown top-level key", CLUSTERS_OK USERS_OK CONTEXTS_OK "current_context: p\n", NULL, 15, 1,
     "unknown key \"current_context\" in the top level (expected one of: apiVersion, kind,"},
    {"unknown item key", "clusters:\n- name: c\n  clusterr: {}\n", NULL, 3, 3,
     "unknown key \"clusterr\" in clusters[0] (expected one of: name, cluster)"},
    {"apiVersion", "apiVersion: v2\nkind: Config\n", NULL, 1, 13,
     "apiVersion: expected \"v1\", got \"v2\""},
    {"kind", "apiVersion: v1\nkind: Pod\n", NULL, 2, 7, "kind: expected \"Config\", got \"Pod\""},
    {"clusters is a mapping", "clusters:\n  c:\n    server: https://c\n", NULL, 2, 3,
     "clusters: expected a list, got a mapping"},
    {"list item is a string", "clusters:\n- c\n", NULL, 2, 3,
     "clusters[0]: expected a mapping with name and cluster, got a string"},
    {"item without a name", "clusters:\n- cluster:\n    server: https://c\n", NULL, 2, 3,
     "clusters[0]: missing name"},
    {"item with an empty name", "users:\n- name: ''\n  user: {}\n", NULL, 2, 9,
     "users[0].name: must not be empty"},
    {"current-context is a list", CLUSTERS_OK USERS_OK "current-context: [p]\n", NULL, 9, 18,
     "current-context: expected a string, got a list"},
    {"a key that is a list", "? [a]\n: b\n", NULL, 1, 3,
     "keys in the top level must be strings, got a list"},
    /* YAML itself */
    {"empty file", "", NULL, 1, 1, "the kubeconfig is empty"},
    {"only comments", "# nothing\n\n", NULL, 1, 1, "the kubeconfig is empty"},
    {"empty document", "---\n", NULL, 2, 1, "the kubeconfig is empty"},
    {"list root", "- a\n- b\n", NULL, 1, 1,
     "a kubeconfig must be a mapping (apiVersion, clusters, users, contexts, current-context), "
     "got a list"},
    {"scalar root", "hello\n", NULL, 1, 1, "a kubeconfig must be a mapping"},
    {"unterminated quote", CLUSTERS_OK "current-context: \"p\n", NULL, 6, 1,
     "invalid YAML: found unexpected end of stream while scanning a quoted scalar at line 5, "
     "column 18"},
    {"mapping in a plain value", CLUSTERS_HEAD "    server: https://c: x\n", NULL, 4, 22,
     "invalid YAML: mapping values are not allowed in this context"},
    {"bad indentation", CLUSTERS_OK "   tls-server-name: c\n", NULL, 5, 4,
     "invalid YAML: did not find expected key while parsing a block mapping at line 2, column 3"},
    {"tab indentation", CLUSTERS_HEAD "\tserver: https://c\n", NULL, 4, 1,
     "invalid YAML: found character that cannot start any token while scanning for the next "
     "token"},
    {"alias", USERS_OK "- name: v\n  user: *u\n", NULL, 6, 9,
     "aliases (*u) are not supported; write the value out"},
    {"second document", CLUSTERS_OK "---\n" USERS_OK, NULL, 5, 1,
     "a kubeconfig is one YAML document; found a second one"},
    {"unsupported tag", CLUSTERS_OK USERS_HEAD "    token: !vault abc\n", NULL, 8, 12,
     "unsupported YAML tag \"!vault\""},
    {"tag that disagrees", "clusters: !!map [a]\n", NULL, 1, 11,
     "unsupported YAML tag \"!!map\" here"},
    {"unsupported tag with digits", CLUSTERS_OK USERS_HEAD "    token: !k8s/v1 abc\n", NULL, 8, 12,
     "unsupported YAML tag (not quoted: it may be a secret)"},
    {"invalid UTF-8", CLUSTERS_OK USERS_HEAD "    token: a\xff\n", NULL, 8, 13,
     "invalid input: invalid leading UTF-8 octet"},
};

static void test_bad_kubeconfigs(void)
{
    for (size_t i = 0; i < ARRAY_LEN(bad_cases); i++) {
        const struct bad_case *bc = &bad_cases[i];
        CPS_ROW_BEGIN();
        struct cps_err err;
        struct cps_kubeconfig *kc = parse(bc->yaml, bc->context, &err);
        ASSERT_TRUE(kc == NULL);
        cps_kubeconfig_free(kc);
        ASSERT_STR_EQ(err.source, SOURCE);
        ASSERT_EQ(err.line, bc->line);
        ASSERT_EQ(err.col, bc->col);
        ASSERT_CONTAINS(err.message, bc->message);
        if (cps_test_current_failed)
            fprintf(stderr, "  (%s: got %d:%d: %s)\n", bc->name, err.line, err.col, err.message);
        CPS_ROW_END(bc->name);
    }
    /* the formatted form, as the controller logs it */
    struct cps_err err;
    char msg[MSG_MAX];
    cps_kubeconfig_free(parse(CLUSTERS_HEAD "    server: http://c\n" USERS_OK CONTEXTS_OK, NULL,
                              &err));
    cps_err_format(&err, msg, sizeof msg);
    ASSERT_STR_EQ(msg, SOURCE ":4:13: clusters[0].cluster.server: must be an https:// URL (TLS is "
                       "always verified), got scheme \"http\"");
    /* NULL bytes, NULL source, NULL err */
    cps_err_clear(&err);
    ASSERT_TRUE(cps_kubeconfig_parse(NULL, 10, NULL, NULL, &err) == NULL);
    ASSERT_STR_EQ(err.source, "<kubeconfig>");
    ASSERT_CONTAINS(err.message, "the kubeconfig is empty");
    ASSERT_TRUE(cps_kubeconfig_parse("a: 1", 4, "x", NULL, NULL) == NULL);
    cps_kubeconfig_free(NULL);
}

/* ---- secrets never reach a message --------------------------------------------- */

static void test_secrets_not_shown(void)
{
    static const struct {
        const char *name;
        const char *yaml;
        const char *message;
        const char *secret; /* NULL: TOKEN */
    } rows[] = {
        {"token in a list", CLUSTERS_OK USERS_HEAD "    token: [" TOKEN "]\n" CONTEXTS_OK,
         "expected a string, got a list", NULL},
        {"token as the user body", CLUSTERS_OK "users:\n- name: u\n  user: " TOKEN "\n" CONTEXTS_OK,
         "users[0].user: expected a mapping, got a string", NULL},
        {"token as a key", CLUSTERS_OK USERS_HEAD "    " TOKEN ": x\n" CONTEXTS_OK,
         "unknown key in users[0].user (not quoted: it may be a secret; expected one of: "
         "client-certificate,", NULL},
        {"token with a NUL", CLUSTERS_OK USERS_HEAD "    token: \"" TOKEN "\\0\"\n" CONTEXTS_OK,
         "contains a NUL character", NULL},
        {"token with a bad byte", CLUSTERS_OK USERS_HEAD "    token: " TOKEN "\x80\n" CONTEXTS_OK,
         "invalid input: invalid leading UTF-8 octet", NULL},
        {"token with a bad tag",
         CLUSTERS_OK USERS_HEAD "    token: !secret " TOKEN "\n" CONTEXTS_OK,
         "unsupported YAML tag \"!secret\"", NULL},
        {"token unterminated", CLUSTERS_OK USERS_HEAD "    token: '" TOKEN "\n" CONTEXTS_OK,
         "while scanning a quoted scalar", NULL},
        {"token as the password", CLUSTERS_OK USERS_HEAD "    password: " TOKEN "\n" CONTEXTS_OK,
         "users[0].user.password: not supported", NULL},
        {"token in a bad key file", CLUSTERS_OK USERS_HEAD
         "    client-certificate-data: Zm9v\n    client-key-data: " TOKEN "\n" CONTEXTS_OK,
         "not valid base64", NULL},
        {"token as user info",
         CLUSTERS_HEAD "    server: https://x:" TOKEN "@c\n" USERS_OK CONTEXTS_OK,
         "user info in the URL is not supported", NULL},
        {"token as the server", CLUSTERS_HEAD "    server: " TOKEN "\n" USERS_OK CONTEXTS_OK,
         "got no scheme", NULL},
        {"token as an alias", CLUSTERS_OK USERS_HEAD "    token: *" TOKEN "\n" CONTEXTS_OK,
         "invalid YAML: did not find expected alphabetic or numeric character while scanning an "
         "alias", NULL},
        {"letters-and-digits token as an alias",
         CLUSTERS_OK USERS_HEAD "    token: &" ALNUM_TOKEN " x\n    tokenFile: *" ALNUM_TOKEN
         "\n" CONTEXTS_OK,
         "aliases are not supported; write the value out", ALNUM_TOKEN},
        {"letters-and-digits token as a key", CLUSTERS_OK USERS_HEAD "    " ALNUM_TOKEN ": x\n"
         CONTEXTS_OK, "unknown key in users[0].user (not quoted", ALNUM_TOKEN},
        {"letters-and-digits token as a tag", CLUSTERS_OK USERS_HEAD "    token: !" ALNUM_TOKEN
         " x\n" CONTEXTS_OK, "unsupported YAML tag (not quoted", ALNUM_TOKEN},
        {"token with the key but no cert", CLUSTERS_OK USERS_HEAD
         "    token: " TOKEN "\n    client-key: k.pem\n" CONTEXTS_OK,
         "a client key needs a certificate", NULL},
    };
    for (size_t i = 0; i < ARRAY_LEN(rows); i++) {
        CPS_ROW_BEGIN();
        struct cps_err err;
        char msg[MSG_MAX];
        struct cps_kubeconfig *kc = parse(rows[i].yaml, NULL, &err);
        ASSERT_TRUE(kc == NULL);
        cps_kubeconfig_free(kc);
        cps_err_format(&err, msg, sizeof msg);
        ASSERT_CONTAINS(msg, rows[i].message);
        ASSERT_EQ(leaks(msg, rows[i].secret ? rows[i].secret : TOKEN), 0);
        if (cps_test_current_failed)
            fprintf(stderr, "  (%s: %s)\n", rows[i].name, msg);
        CPS_ROW_END(rows[i].name);
    }
    /* the check itself can fail: a message that quotes the token is caught */
    ASSERT_EQ(leaks("users[0].user.token: got \"" TOKEN "\"", TOKEN), 1);
    ASSERT_EQ(leaks("users[0].user.token: got \"eyJhbGciOiJS...\"", TOKEN), 1);
}

/* ---- limits ------------------------------------------------------------------------ */

static void test_limits(void)
{
    struct cps_err err;
    /* nesting: the root mapping is level 1, so the 64th '[' is one too many;
     * "extensions: " is 12 columns */
    char deep[256];
    int n = snprintf(deep, sizeof deep, "extensions: ");
    for (int i = 0; i < 70; i++)
        deep[n++] = '[';
    for (int i = 0; i < 70; i++)
        deep[n++] = ']';
    deep[n] = '\0';
    ASSERT_TRUE(parse(deep, NULL, &err) == NULL);
    ASSERT_EQ(err.line, 1);
    ASSERT_EQ(err.col, 12 + 64);
    ASSERT_CONTAINS(err.message, "nested deeper than 64 levels");

    /* values: root, "extensions", the list, then items: item i (1-based) is
     * value 3 + i, so item 249998 is value 250001, at column 14 + 2 (i - 1) */
    size_t items = CPS_KUBECONFIG_MAX_NODES + 10;
    char *many = malloc(16 + 2 * items);
    if (many) {
        size_t used = (size_t)sprintf(many, "extensions: [");
        for (size_t i = 0; i < items; i++) {
            many[used++] = '0';
            many[used++] = ',';
        }
        many[used - 1] = ']';
        many[used] = '\0';
        ASSERT_TRUE(cps_kubeconfig_parse(many, used, SOURCE, NULL, &err) == NULL);
        ASSERT_EQ(err.line, 1);
        ASSERT_EQ(err.col, 14 + 2 * (CPS_KUBECONFIG_MAX_NODES - 3));
        ASSERT_CONTAINS(err.message, "more than 250000 values in one file");
        free(many);
    }

    /* size: refused before any parsing */
    size_t big = (size_t)CPS_KUBECONFIG_MAX_BYTES + 1;
    char *huge = malloc(big);
    if (huge) {
        memset(huge, '#', big);
        ASSERT_TRUE(cps_kubeconfig_parse(huge, big, SOURCE, NULL, &err) == NULL);
        ASSERT_EQ(err.line, 0);
        ASSERT_CONTAINS(err.message, "larger than 16 MiB");
        /* exactly the limit is parsed (and is one long comment) */
        ASSERT_TRUE(cps_kubeconfig_parse(huge, big - 1, SOURCE, NULL, &err) == NULL);
        ASSERT_CONTAINS(err.message, "the kubeconfig is empty");
        free(huge);
    }
}

/* Many entries: names are found by binary search and duplicates by sorting,
 * so 5000 of each (about 100000 values) is quick; the duplicate is reported
 * at its line. */
static void test_many_entries(void)
{
    const size_t n = 5000;
    size_t cap = n * 160 + 256;
    char *yaml = malloc(cap);
    if (!yaml)
        return;
    for (int dup = 0; dup < 2; dup++) {
        CPS_ROW_BEGIN();
        size_t used = (size_t)snprintf(yaml, cap, "clusters:\n");
        for (size_t i = 0; i < n; i++) /* with dup, the last one repeats c0 */
            used += (size_t)snprintf(yaml + used, cap - used,
                                     "- {name: c%zu, cluster: {server: 'https://c%zu'}}\n",
                                     dup ? i % (n - 1) : i, i);
        used += (size_t)snprintf(yaml + used, cap - used, "users:\n");
        for (size_t i = 0; i < n; i++)
            used += (size_t)snprintf(yaml + used, cap - used,
                                     "- {name: u%zu, user: {token: t%zu}}\n", i, i);
        used += (size_t)snprintf(yaml + used, cap - used, "contexts:\n");
        for (size_t i = 0; i < n; i++)
            used += (size_t)snprintf(yaml + used, cap - used,
                                     "- {name: x%zu, context: {cluster: c%zu, user: u%zu}}\n", i,
                                     n - 1 - i, i);
        snprintf(yaml + used, cap - used, "current-context: x1\n");
        struct cps_err err;
        struct cps_kubeconfig *kc = parse(yaml, NULL, &err);
        if (!dup) {
            ASSERT_TRUE(kc != NULL);
            if (kc) {
                char want[64];
                snprintf(want, sizeof want, "https://c%zu", n - 2);
                ASSERT_STR_EQ(kc->server, want);
                ASSERT_STR_EQ(kc->token, "t1");
            }
        } else {
            ASSERT_TRUE(kc == NULL);
            ASSERT_EQ(err.line, (int)n + 1);
            ASSERT_EQ(err.col, 10);
            ASSERT_CONTAINS(err.message, "clusters[4999].name: duplicate cluster name \"c0\" "
                                         "(first at clusters[0], line 2)");
        }
        cps_kubeconfig_free(kc);
        CPS_ROW_END(dup ? "many with a duplicate" : "many");
    }
    free(yaml);
}

/* ---- never crash ------------------------------------------------------------------ */

/*
 * A poor man's fuzz run (ASan/UBSan builds make it meaningful): every prefix
 * of the rich file, and copies with single bytes replaced by YAML's special
 * characters. Each parse must succeed or fill the error, and no message may
 * hold a piece of the token.
 */
static void test_mutations_never_crash(void)
{
    static const char specials[] = {':', '-', '[', '{', '"', '\'', '&', '*', '!', '#', '\n',
                                    ' ', '\t', '|', '>', '?', ',', '%', '@', '\0', '\xff', '='};
    size_t len = strlen(multi_yaml);
    char *buf = malloc(len + 1);
    int silent = 0, leaked = 0, parses = 0, ok = 0;
    if (!buf)
        return;
    for (size_t cut = 0; cut <= len; cut++) {
        struct cps_err err;
        cps_err_clear(&err);
        struct cps_kubeconfig *kc = cps_kubeconfig_parse(multi_yaml, cut, "cut", NULL, &err);
        silent += !kc && !err.message[0];
        leaked += !kc && leaks(err.message, TOKEN);
        ok += kc != NULL;
        cps_kubeconfig_free(kc);
        parses++;
    }
    for (size_t pos = 0; pos < len; pos++) {
        for (size_t s = 0; s < sizeof specials; s++) {
            memcpy(buf, multi_yaml, len + 1);
            buf[pos] = specials[s];
            for (int ctx = 0; ctx < 2; ctx++) {
                struct cps_err err;
                cps_err_clear(&err);
                struct cps_kubeconfig *kc =
                    cps_kubeconfig_parse(buf, len, "mut", ctx ? "dev" : NULL, &err);
                silent += !kc && !err.message[0];
                if (!kc && leaks(err.message, TOKEN)) {
                    if (!leaked)
                        fprintf(stderr, "  leak at byte %zu ('%c'): %s\n", pos, specials[s],
                                err.message);
                    leaked++;
                }
                ok += kc != NULL;
                cps_kubeconfig_free(kc);
                parses++;
            }
        }
    }
    ASSERT_EQ(silent, 0);
    ASSERT_EQ(leaked, 0);
    ASSERT_TRUE(parses > 50000);
    ASSERT_TRUE(ok > 1000); /* many mutations land in harmless places */
    free(buf);
}

/* proxy-url is taken (it was refused as "connects
 * directly", which the environment's HTTPS_PROXY made untrue); absent,
 * it is NULL (curl then follows HTTPS_PROXY/NO_PROXY, as client-go). */
static void test_proxy_url(void)
{
    struct cps_kubeconfig *kc =
        parse_ok(CLUSTERS_OK "    proxy-url: http://user:pw@proxy:3128\n" USERS_OK CONTEXTS_OK,
                 SOURCE, NULL);
    if (!kc)
        return;
    ASSERT_STR_EQ(kc->proxy_url, "http://user:pw@proxy:3128");
    cps_kubeconfig_free(kc);
    kc = parse_ok(CLUSTERS_OK "    proxy-url: socks5://proxy:1080\n" USERS_OK CONTEXTS_OK, SOURCE,
                  NULL);
    if (!kc)
        return;
    ASSERT_STR_EQ(kc->proxy_url, "socks5://proxy:1080");
    cps_kubeconfig_free(kc);
    kc = parse_ok(CLUSTERS_OK USERS_OK CONTEXTS_OK, SOURCE, NULL);
    if (!kc)
        return;
    ASSERT_TRUE(kc->proxy_url == NULL);
    cps_kubeconfig_free(kc);
}

int main(void)
{
    CPS_RUN(test_current_context);
    CPS_RUN(test_proxy_url);
    CPS_RUN(test_context_override);
    CPS_RUN(test_relative_paths);
    CPS_RUN(test_pem_round_trip);
    CPS_RUN(test_base64);
    CPS_RUN(test_data_wins);
    CPS_RUN(test_allowed);
    CPS_RUN(test_bad_kubeconfigs);
    CPS_RUN(test_secrets_not_shown);
    CPS_RUN(test_limits);
    CPS_RUN(test_many_entries);
    CPS_RUN(test_mutations_never_crash);
    CPS_TEST_END();
}
