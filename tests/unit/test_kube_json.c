/*
 * Kubernetes wire formats: decoding Scale, Deployment, DeploymentList,
 * watch events, Lease and Status answers as a real API server sends them,
 * and encoding the scale patch, Lease bodies and events.k8s.io/v1 Events
 * (checked by parsing them back with jansson). Expected values are written
 * from the API's semantics, not taken from the code under test.
 */
#include <jansson.h>
#include <stdlib.h>

#include "cps_test.h"
#include "kube_json.h"

/* 50 lowercase DNS characters; five of them plus a tail make names at the
 * 253-byte DNS-subdomain limit (and one past it). */
#define N50 "a123456789b123456789c123456789d123456789e123456789"
#define NAME_253 N50 N50 N50 N50 N50 "abc"
#define NAME_254 N50 N50 N50 N50 N50 "abcd"
#define IDENTITY_255 N50 N50 N50 N50 N50 "abcde"
#define IDENTITY_256 N50 N50 N50 N50 N50 "abcdef"
#define RV10 "1234567890"
#define RV_63 RV10 RV10 RV10 RV10 RV10 RV10 "123"
#define RV_64 RV10 RV10 RV10 RV10 RV10 RV10 "1234"

/* 2026-01-02T03:04:05Z: 20455 days after the epoch, plus 3h 4m 5s. */
#define T_2026_01_02_030405 1767323045LL
/* 2026-01-02T02:58:11Z, 354 s earlier. */
#define T_2026_01_02_025811 1767322691LL

#define SCALE_SOURCE "kube: GET shop/checkout-api/scale"
#define DEPLOYMENT_SOURCE "kube: GET shop/checkout-api"
#define LIST_SOURCE "kube: LIST deployments"
#define WATCH_SOURCE "kube: WATCH deployments"
#define LEASE_SOURCE "kube: GET lease cpscale-system/cpscale-leader"

/* ---- bodies as an API server returns them ---------------------------- */

#define REAL_SCALE                                                                            \
    "{\"kind\":\"Scale\",\"apiVersion\":\"autoscaling/v1\",\"metadata\":{\"name\":\"checkout-api\"," \
    "\"namespace\":\"shop\",\"uid\":\"6f1c2d9e-3b7a-4c51-9d2e-8a4b5c6d7e8f\","                     \
    "\"resourceVersion\":\"48213377\",\"creationTimestamp\":\"2025-11-03T09:14:22Z\"},"             \
    "\"spec\":{\"replicas\":7},\"status\":{\"replicas\":8,"                                        \
    "\"selector\":\"app.kubernetes.io/name=checkout-api\"}}"

#define REAL_DEPLOYMENT_METADATA                                                              \
    "\"metadata\":{\"name\":\"checkout-api\",\"namespace\":\"shop\","                              \
    "\"uid\":\"6f1c2d9e-3b7a-4c51-9d2e-8a4b5c6d7e8f\",\"resourceVersion\":\"48213377\","          \
    "\"generation\":17,\"creationTimestamp\":\"2025-11-03T09:14:22Z\","                            \
    "\"labels\":{\"app.kubernetes.io/name\":\"checkout-api\"},"                                    \
    "\"annotations\":{\"deployment.kubernetes.io/revision\":\"12\","                               \
    "\"kubectl.kubernetes.io/last-applied-configuration\":\"{\\\"apiVersion\\\":\\\"apps/v1\\\","  \
    "\\\"kind\\\":\\\"Deployment\\\",\\\"metadata\\\":{\\\"annotations\\\":{},\\\"name\\\":"       \
    "\\\"checkout-api\\\",\\\"namespace\\\":\\\"shop\\\"},\\\"spec\\\":{\\\"replicas\\\":3}}\\n\"}," \
    "\"managedFields\":[{\"manager\":\"kubectl-client-side-apply\",\"operation\":\"Update\","      \
    "\"apiVersion\":\"apps/v1\",\"time\":\"2025-11-03T09:14:22Z\",\"fieldsType\":\"FieldsV1\","    \
    "\"fieldsV1\":{\"f:metadata\":{\"f:annotations\":{\".\":{},"                                   \
    "\"f:kubectl.kubernetes.io/last-applied-configuration\":{}}},"                                 \
    "\"f:spec\":{\"f:progressDeadlineSeconds\":{},\"f:replicas\":{}}}},"                          \
    "{\"manager\":\"kube-controller-manager\",\"operation\":\"Update\",\"apiVersion\":\"apps/v1\"," \
    "\"time\":\"2026-01-02T03:04:05Z\",\"fieldsType\":\"FieldsV1\",\"fieldsV1\":{\"f:status\":"    \
    "{\"f:readyReplicas\":{},\"f:replicas\":{}}},\"subresource\":\"status\"}]}"

#define REAL_DEPLOYMENT_SPEC                                                                  \
    "\"spec\":{\"replicas\":7,\"selector\":{\"matchLabels\":{\"app.kubernetes.io/name\":"         \
    "\"checkout-api\"}},\"template\":{\"metadata\":{\"creationTimestamp\":null,\"labels\":"        \
    "{\"app.kubernetes.io/name\":\"checkout-api\"}},\"spec\":{\"containers\":[{\"name\":\"api\","  \
    "\"image\":\"registry.example.com/shop/checkout-api:1.42.0\",\"ports\":[{\"containerPort\":"   \
    "8080,\"protocol\":\"TCP\"}],\"resources\":{\"requests\":{\"cpu\":\"500m\",\"memory\":"        \
    "\"256Mi\"}},\"terminationMessagePath\":\"/dev/termination-log\","                             \
    "\"terminationMessagePolicy\":\"File\",\"imagePullPolicy\":\"IfNotPresent\"}],"                \
    "\"restartPolicy\":\"Always\",\"terminationGracePeriodSeconds\":30,\"dnsPolicy\":"             \
    "\"ClusterFirst\",\"securityContext\":{},\"schedulerName\":\"default-scheduler\"}},"           \
    "\"strategy\":{\"type\":\"RollingUpdate\",\"rollingUpdate\":{\"maxUnavailable\":\"25%\","      \
    "\"maxSurge\":\"25%\"}},\"revisionHistoryLimit\":10,\"progressDeadlineSeconds\":600}"

#define REAL_DEPLOYMENT_STATUS                                                                \
    "\"status\":{\"observedGeneration\":16,\"replicas\":8,\"updatedReplicas\":7,"                 \
    "\"readyReplicas\":6,\"availableReplicas\":6,\"unavailableReplicas\":2,\"conditions\":["       \
    "{\"type\":\"Available\",\"status\":\"True\",\"lastUpdateTime\":\"2025-11-03T09:15:01Z\","     \
    "\"lastTransitionTime\":\"2025-11-03T09:15:01Z\",\"reason\":\"MinimumReplicasAvailable\","     \
    "\"message\":\"Deployment has minimum availability.\"},{\"type\":\"Progressing\",\"status\":"  \
    "\"True\",\"lastUpdateTime\":\"2026-01-02T03:04:05Z\",\"lastTransitionTime\":"                 \
    "\"2025-11-03T09:14:22Z\",\"reason\":\"NewReplicaSetAvailable\",\"message\":"                 \
    "\"ReplicaSet \\\"checkout-api-7d9f8b6c5d\\\" has successfully progressed.\"}]}"

#define REAL_DEPLOYMENT                                                                       \
    "{\"kind\":\"Deployment\",\"apiVersion\":\"apps/v1\"," REAL_DEPLOYMENT_METADATA ","            \
    REAL_DEPLOYMENT_SPEC "," REAL_DEPLOYMENT_STATUS "}"

/* A 404 as the API server words it. */
#define STATUS_404                                                                            \
    "{\"kind\":\"Status\",\"apiVersion\":\"v1\",\"metadata\":{},\"status\":\"Failure\","          \
    "\"message\":\"deployments.apps \\\"checkout-api\\\" not found\",\"reason\":\"NotFound\","     \
    "\"details\":{\"name\":\"checkout-api\",\"group\":\"apps\",\"kind\":\"deployments\"},"        \
    "\"code\":404}"

/* A minimal Deployment with a given metadata/spec/status tail. */
#define MINI_DEPLOYMENT(spec_status)                                                          \
    "{\"kind\":\"Deployment\",\"apiVersion\":\"apps/v1\",\"metadata\":{\"name\":\"api\","          \
    "\"namespace\":\"shop\",\"resourceVersion\":\"900\",\"generation\":2}," spec_status "}"

/* ---- shared checks ------------------------------------------------------ */

/* An error is either "source: path: message" (line 0) or, for JSON syntax,
 * "source:line:col: message"; both the fields and the formatted text are
 * checked. */
static void check_error(const struct cps_err *err, const char *source, const char *fragment,
                        int line, int col)
{
    char formatted[1024], prefix[600];
    ASSERT_STR_EQ(err->source, source);
    ASSERT_EQ(err->line, line);
    ASSERT_EQ(err->col, col);
    cps_err_format(err, formatted, sizeof formatted);
    if (line == 0) {
        snprintf(prefix, sizeof prefix, "%s: %s", source, fragment);
        ASSERT_TRUE(strncmp(formatted, prefix, strlen(prefix)) == 0);
        if (strncmp(formatted, prefix, strlen(prefix)) != 0)
            fprintf(stderr, "    got \"%s\", expected it to start with \"%s\"\n", formatted,
                    prefix);
    } else {
        ASSERT_CONTAINS(err->message, fragment);
        if (col > 0)
            snprintf(prefix, sizeof prefix, "%s:%d:%d: not JSON: ", source, line, col);
        else
            snprintf(prefix, sizeof prefix, "%s:%d: not JSON: ", source, line);
        ASSERT_TRUE(strncmp(formatted, prefix, strlen(prefix)) == 0);
        if (strncmp(formatted, prefix, strlen(prefix)) != 0)
            fprintf(stderr, "    got \"%s\", expected it to start with \"%s\"\n", formatted,
                    prefix);
    }
}

/* ---- autoscaling/v1 Scale ----------------------------------------------- */

struct scale_case {
    const char *name;
    const char *body;
    int ok;
    int32_t spec_replicas, status_replicas;
    const char *resource_version;
    const char *error_fragment; /* for line 0: the start of "path: message" */
    int error_line, error_col;
};

static const struct scale_case scale_cases[] = {
    {"scale: real answer", REAL_SCALE, 1, 7, 8, "48213377", NULL, 0, 0},
    {"scale: at zero spec.replicas is omitted (omitempty)",
     "{\"kind\":\"Scale\",\"apiVersion\":\"autoscaling/v1\",\"metadata\":{\"name\":\"batch\","
     "\"namespace\":\"jobs\",\"resourceVersion\":\"771\"},\"spec\":{},\"status\":{\"replicas\":0,"
     "\"selector\":\"app=batch\"}}",
     1, 0, 0, "771", NULL, 0, 0},
    {"scale: no spec and no status at all",
     "{\"kind\":\"Scale\",\"metadata\":{\"resourceVersion\":\"5\"}}", 1, 0, 0, "5", NULL, 0, 0},
    {"scale: null replicas reads as absent",
     "{\"kind\":\"Scale\",\"metadata\":{\"resourceVersion\":\"5\"},\"spec\":{\"replicas\":null},"
     "\"status\":{\"replicas\":2}}",
     1, 0, 2, "5", NULL, 0, 0},
    {"scale: kind and apiVersion may be left out",
     "{\"metadata\":{\"resourceVersion\":\"6\"},\"spec\":{\"replicas\":4},\"status\":{\"replicas\":4}}",
     1, 4, 4, "6", NULL, 0, 0},
    {"scale: int32 maximum",
     "{\"kind\":\"Scale\",\"metadata\":{\"resourceVersion\":\"5\"},\"spec\":{\"replicas\":2147483647},"
     "\"status\":{\"replicas\":2147483647}}",
     1, 2147483647, 2147483647, "5", NULL, 0, 0},
    {"scale: resourceVersion of 63 bytes fits",
     "{\"kind\":\"Scale\",\"metadata\":{\"resourceVersion\":\"" RV_63 "\"},\"spec\":{\"replicas\":1}}",
     1, 1, 0, RV_63, NULL, 0, 0},
    {"scale: resourceVersion of 64 bytes is too long",
     "{\"kind\":\"Scale\",\"metadata\":{\"resourceVersion\":\"" RV_64 "\"},\"spec\":{\"replicas\":1}}",
     0, 0, 0, NULL, "metadata.resourceVersion: longer than 63", 0, 0},
    {"scale: a UUID uid fits",
     "{\"metadata\":{\"resourceVersion\":\"5\",\"uid\":\"6f1c2d9e-3b7a-4c51-9d2e-8a4b5c6d7e8f\"},"
     "\"spec\":{\"replicas\":1}}",
     1, 1, 0, "5", NULL, 0, 0},
    {"scale: a uid of 40 bytes is too long",
     "{\"metadata\":{\"resourceVersion\":\"5\",\"uid\":\"6f1c2d9e-3b7a-4c51-9d2e-8a4b5c6d7e8f-123\"},"
     "\"spec\":{\"replicas\":1}}",
     0, 0, 0, NULL, "metadata.uid: longer than 39", 0, 0},
    {"scale: spec.replicas past int32",
     "{\"kind\":\"Scale\",\"metadata\":{\"resourceVersion\":\"5\"},\"spec\":{\"replicas\":2147483648}}",
     0, 0, 0, NULL, "spec.replicas: 2147483648", 0, 0},
    {"scale: negative spec.replicas",
     "{\"kind\":\"Scale\",\"metadata\":{\"resourceVersion\":\"5\"},\"spec\":{\"replicas\":-1}}", 0, 0,
     0, NULL, "spec.replicas: -1", 0, 0},
    {"scale: negative status.replicas",
     "{\"kind\":\"Scale\",\"metadata\":{\"resourceVersion\":\"5\"},\"spec\":{\"replicas\":1},"
     "\"status\":{\"replicas\":-3}}",
     0, 0, 0, NULL, "status.replicas: -3", 0, 0},
    {"scale: replicas as a string",
     "{\"kind\":\"Scale\",\"metadata\":{\"resourceVersion\":\"5\"},\"spec\":{\"replicas\":\"3\"}}", 0,
     0, 0, NULL, "spec.replicas: expected an integer", 0, 0},
    {"scale: replicas as a real number",
     "{\"kind\":\"Scale\",\"metadata\":{\"resourceVersion\":\"5\"},\"spec\":{\"replicas\":3.0}}", 0,
     0, 0, NULL, "spec.replicas: expected an integer", 0, 0},
    {"scale: replicas as a boolean",
     "{\"kind\":\"Scale\",\"metadata\":{\"resourceVersion\":\"5\"},\"spec\":{\"replicas\":true}}", 0,
     0, 0, NULL, "spec.replicas: expected an integer", 0, 0},
    {"scale: spec is a list",
     "{\"kind\":\"Scale\",\"metadata\":{\"resourceVersion\":\"5\"},\"spec\":[3]}", 0, 0, 0, NULL,
     "spec: expected an object", 0, 0},
    {"scale: metadata missing", "{\"kind\":\"Scale\",\"spec\":{\"replicas\":3}}", 0, 0, 0, NULL,
     "metadata: missing", 0, 0},
    {"scale: resourceVersion missing",
     "{\"kind\":\"Scale\",\"metadata\":{\"name\":\"api\"},\"spec\":{\"replicas\":3}}", 0, 0, 0, NULL,
     "metadata.resourceVersion: missing", 0, 0},
    {"scale: resourceVersion empty",
     "{\"kind\":\"Scale\",\"metadata\":{\"resourceVersion\":\"\"},\"spec\":{\"replicas\":3}}", 0, 0,
     0, NULL, "metadata.resourceVersion: missing", 0, 0},
    {"scale: resourceVersion as a number",
     "{\"kind\":\"Scale\",\"metadata\":{\"resourceVersion\":771},\"spec\":{\"replicas\":3}}", 0, 0,
     0, NULL, "metadata.resourceVersion: expected a string", 0, 0},
    /* a Status's "status" is a string ("Failure"), so it fails as a wrong type */
    {"scale: a 404 Status is not a Scale", STATUS_404, 0, 0, 0, NULL, "status: expected an object",
     0, 0},
    {"scale: a Deployment (GET without /scale) is not a Scale", REAL_DEPLOYMENT, 0, 0, 0, NULL,
     "kind: expected Scale, got Deployment", 0, 0},
    {"scale: truncated answer", "{\"kind\":\"Scale\",\"spec\":{\"replicas\":3", 0, 0, 0, NULL,
     "'}' expected near end of file", 1, 36},
    {"scale: duplicate key", "{\"kind\":\"Scale\",\"kind\":\"Scale\"}", 0, 0, 0, NULL,
     "duplicate object key", 1, 22},
    {"scale: NaN is not JSON", "{\"spec\":{\"replicas\":NaN}}", 0, 0, 0, NULL,
     "invalid token near 'NaN'", 1, 23},
    {"scale: trailing comma on line 3 of a pretty body",
     "{\n  \"kind\": \"Scale\",\n  \"spec\": {\"replicas\": 3,}\n}", 0, 0, 0, NULL,
     "string or '}' expected", 3, 26},
    {"scale: HTML from a proxy", "<html><body>502 Bad Gateway</body></html>", 0, 0, 0, NULL,
     "'[' or '{' expected", 1, 1},
    {"scale: empty body", "", 0, 0, 0, NULL, "'[' or '{' expected near end of file", 1, 0},
    {"scale: top-level array", "[" REAL_SCALE "]", 0, 0, 0, NULL, "expected a JSON object", 0,
     0},
};

static void test_scale(void)
{
    for (size_t i = 0; i < sizeof scale_cases / sizeof scale_cases[0]; i++) {
        const struct scale_case *tc = &scale_cases[i];
        CPS_ROW_BEGIN();
        struct cps_kube_scale scale;
        struct cps_err err = {0};
        memset(&scale, 0x5a, sizeof scale);
        int rc = cps_kube_decode_scale(tc->body, strlen(tc->body), SCALE_SOURCE, &scale, &err);
        ASSERT_EQ(rc, tc->ok ? 0 : -1);
        if (tc->ok) {
            ASSERT_EQ(scale.spec_replicas, tc->spec_replicas);
            ASSERT_EQ(scale.status_replicas, tc->status_replicas);
            ASSERT_STR_EQ(scale.resource_version, tc->resource_version);
        } else {
            check_error(&err, SCALE_SOURCE, tc->error_fragment, tc->error_line, tc->error_col);
        }
        CPS_ROW_END(tc->name);
    }
}

/* ---- apps/v1 Deployment -------------------------------------------------- */

struct expect_deployment {
    const char *namespace, *name;
    int32_t spec_replicas, status_replicas, ready_replicas;
    int64_t generation, observed_generation;
    const char *resource_version;
};

static void check_deployment(const struct cps_kube_deployment *got,
                             const struct expect_deployment *want)
{
    ASSERT_STR_EQ(got->namespace, want->namespace);
    ASSERT_STR_EQ(got->name, want->name);
    ASSERT_EQ(got->spec_replicas, want->spec_replicas);
    ASSERT_EQ(got->status_replicas, want->status_replicas);
    ASSERT_EQ(got->ready_replicas, want->ready_replicas);
    ASSERT_EQ(got->generation, want->generation);
    ASSERT_EQ(got->observed_generation, want->observed_generation);
    ASSERT_STR_EQ(got->resource_version, want->resource_version);
}

struct deployment_case {
    const char *name;
    const char *body;
    int ok;
    struct expect_deployment want;
    const char *error_fragment;
    int error_line, error_col;
};

static const struct deployment_case deployment_cases[] = {
    {"deployment: real answer with managedFields and annotations", REAL_DEPLOYMENT, 1,
     {"shop", "checkout-api", 7, 8, 6, 17, 16, "48213377"}, NULL, 0, 0},
    {"deployment: just created, status empty",
     MINI_DEPLOYMENT("\"spec\":{\"replicas\":3},\"status\":{}"), 1,
     {"shop", "api", 3, 0, 0, 2, 0, "900"}, NULL, 0, 0},
    {"deployment: spec.replicas omitted defaults to 1 (apps/v1)",
     MINI_DEPLOYMENT("\"spec\":{\"selector\":{\"matchLabels\":{\"app\":\"api\"}}},"
                     "\"status\":{\"observedGeneration\":2,\"replicas\":1,\"readyReplicas\":1}"),
     1, {"shop", "api", 1, 1, 1, 2, 2, "900"}, NULL, 0, 0},
    {"deployment: no spec at all defaults to 1", MINI_DEPLOYMENT("\"status\":{}"), 1,
     {"shop", "api", 1, 0, 0, 2, 0, "900"}, NULL, 0, 0},
    {"deployment: explicit zero is zero, not the default",
     MINI_DEPLOYMENT("\"spec\":{\"replicas\":0},\"status\":{\"observedGeneration\":2}"), 1,
     {"shop", "api", 0, 0, 0, 2, 2, "900"}, NULL, 0, 0},
    {"deployment: readyReplicas absent while pods start",
     MINI_DEPLOYMENT("\"spec\":{\"replicas\":2},\"status\":{\"observedGeneration\":2,"
                     "\"replicas\":2,\"updatedReplicas\":2,\"unavailableReplicas\":2}"),
     1, {"shop", "api", 2, 2, 0, 2, 2, "900"}, NULL, 0, 0},
    {"deployment: JSON escapes in strings are decoded",
     "{\"metadata\":{\"name\":\"api\\u002dv2\",\"namespace\":\"sh\\/op\",\"resourceVersion\":\"1\"}}",
     1, {"sh/op", "api-v2", 1, 0, 0, 0, 0, "1"}, NULL, 0, 0},
    {"deployment: name of 253 bytes fits",
     "{\"metadata\":{\"name\":\"" NAME_253 "\",\"namespace\":\"shop\",\"resourceVersion\":\"1\"}}", 1,
     {"shop", NAME_253, 1, 0, 0, 0, 0, "1"}, NULL, 0, 0},
    {"deployment: name of 254 bytes is too long",
     "{\"metadata\":{\"name\":\"" NAME_254 "\",\"namespace\":\"shop\",\"resourceVersion\":\"1\"}}", 0,
     {0}, "metadata.name: longer than 253", 0, 0},
    {"deployment: namespace of the wrong type",
     "{\"metadata\":{\"name\":\"api\",\"namespace\":[\"shop\"],\"resourceVersion\":\"1\"}}", 0, {0},
     "metadata.namespace: expected a string", 0, 0},
    {"deployment: name missing", "{\"metadata\":{\"namespace\":\"shop\",\"resourceVersion\":\"1\"}}",
     0, {0}, "metadata.name: missing", 0, 0},
    {"deployment: resourceVersion missing",
     "{\"metadata\":{\"name\":\"api\",\"namespace\":\"shop\"},\"spec\":{\"replicas\":2}}", 0, {0},
     "metadata.resourceVersion: missing", 0, 0},
    {"deployment: metadata missing", "{\"spec\":{\"replicas\":2}}", 0, {0}, "metadata: missing", 0,
     0},
    {"deployment: metadata is a list", "{\"metadata\":[],\"spec\":{\"replicas\":2}}", 0, {0},
     "metadata: expected an object", 0, 0},
    {"deployment: status is a string", MINI_DEPLOYMENT("\"status\":\"Running\""), 0, {0},
     "status: expected an object", 0, 0},
    {"deployment: negative spec.replicas", MINI_DEPLOYMENT("\"spec\":{\"replicas\":-2}"), 0, {0},
     "spec.replicas: -2", 0, 0},
    {"deployment: spec.replicas past int32",
     MINI_DEPLOYMENT("\"spec\":{\"replicas\":4294967296}"), 0, {0},
     "spec.replicas: 4294967296", 0, 0},
    {"deployment: negative readyReplicas",
     MINI_DEPLOYMENT("\"spec\":{\"replicas\":2},\"status\":{\"readyReplicas\":-1}"), 0, {0},
     "status.readyReplicas: -1", 0, 0},
    {"deployment: readyReplicas as a string",
     MINI_DEPLOYMENT("\"spec\":{\"replicas\":2},\"status\":{\"readyReplicas\":\"2\"}"), 0, {0},
     "status.readyReplicas: expected an integer", 0, 0},
    {"deployment: negative observedGeneration",
     MINI_DEPLOYMENT("\"status\":{\"observedGeneration\":-1}"), 0, {0},
     "status.observedGeneration: -1", 0, 0},
    {"deployment: negative generation",
     "{\"metadata\":{\"name\":\"a\",\"resourceVersion\":\"1\",\"generation\":-1}}", 0, {0},
     "metadata.generation: -1", 0, 0},
    {"deployment: generation too big for JSON integers",
     "{\"metadata\":{\"name\":\"a\",\"resourceVersion\":\"1\",\"generation\":9223372036854775808}}",
     0, {0}, "too big integer", 1, 78},
    {"deployment: duplicate resourceVersion on line 2",
     "{\"metadata\":{\n\"resourceVersion\":\"1\",\"name\":\"a\",\"resourceVersion\":\"2\"}}", 0, {0},
     "duplicate object key", 2, 50},
    {"deployment: a 404 Status is not a Deployment", STATUS_404, 0, {0},
     "status: expected an object", 0, 0},
};

static void test_deployment(void)
{
    for (size_t i = 0; i < sizeof deployment_cases / sizeof deployment_cases[0]; i++) {
        const struct deployment_case *tc = &deployment_cases[i];
        CPS_ROW_BEGIN();
        struct cps_kube_deployment d;
        struct cps_err err = {0};
        memset(&d, 0x5a, sizeof d);
        int rc = cps_kube_decode_deployment(tc->body, strlen(tc->body), DEPLOYMENT_SOURCE, &d,
                                            &err);
        ASSERT_EQ(rc, tc->ok ? 0 : -1);
        if (tc->ok)
            check_deployment(&d, &tc->want);
        else
            check_error(&err, DEPLOYMENT_SOURCE, tc->error_fragment, tc->error_line,
                        tc->error_col);
        CPS_ROW_END(tc->name);
    }
}

/* ---- apps/v1 DeploymentList ---------------------------------------------- */

/* An item as a LIST returns it: no kind or apiVersion of its own. */
#define LIST_ITEM(name, rv, replicas, ready)                                                  \
    "{\"metadata\":{\"name\":\"" name "\",\"namespace\":\"shop\",\"uid\":"                        \
    "\"0b7c0e52-8d0e-4a53-a8a4-" name "\",\"resourceVersion\":\"" rv "\",\"generation\":4,"       \
    "\"annotations\":{\"deployment.kubernetes.io/revision\":\"3\"}},\"spec\":{\"replicas\":"      \
    replicas ",\"selector\":{\"matchLabels\":{\"app\":\"" name "\"}}},\"status\":{"               \
    "\"observedGeneration\":4,\"replicas\":" replicas ",\"readyReplicas\":" ready "}}"

#define LIST_OF(items)                                                                        \
    "{\"kind\":\"DeploymentList\",\"apiVersion\":\"apps/v1\",\"metadata\":{\"resourceVersion\":"  \
    "\"48214001\"},\"items\":[" items "]}"

#define LIST_MAX_ITEMS 4

struct list_collector {
    int calls;
    struct cps_kube_deployment items[LIST_MAX_ITEMS];
};

static void collect_cb(const struct cps_kube_deployment *item, void *user)
{
    struct list_collector *c = user;
    if (c->calls < LIST_MAX_ITEMS)
        c->items[c->calls] = *item;
    c->calls++;
}

struct list_case {
    const char *name;
    const char *body;
    int ok;
    int n_items;
    struct expect_deployment want[LIST_MAX_ITEMS];
    const char *resource_version;
    const char *error_fragment;
    int error_line, error_col;
};

static const struct list_case list_cases[] = {
    {"list: three items in order",
     LIST_OF(LIST_ITEM("cart", "48213001", "3", "3") "," LIST_ITEM("checkout", "48213377", "7", "6")
             "," LIST_ITEM("search", "48190020", "12", "0")),
     1, 3,
     {{"shop", "cart", 3, 3, 3, 4, 4, "48213001"},
      {"shop", "checkout", 7, 7, 6, 4, 4, "48213377"},
      {"shop", "search", 12, 12, 0, 4, 4, "48190020"}},
     "48214001", NULL, 0, 0},
    {"list: empty", LIST_OF(""), 1, 0, {{0}}, "48214001", NULL, 0, 0},
    {"list: items null",
     "{\"kind\":\"DeploymentList\",\"apiVersion\":\"apps/v1\",\"metadata\":{\"resourceVersion\":"
     "\"77\"},\"items\":null}",
     1, 0, {{0}}, "77", NULL, 0, 0},
    {"list: pagination metadata alongside resourceVersion",
     "{\"kind\":\"DeploymentList\",\"apiVersion\":\"apps/v1\",\"metadata\":{\"resourceVersion\":"
     "\"78\",\"remainingItemCount\":0},\"items\":[" LIST_ITEM("cart", "70", "1", "1") "]}",
     1, 1, {{"shop", "cart", 1, 1, 1, 4, 4, "70"}}, "78", NULL, 0, 0},
    {"list: bad middle item fails the whole list",
     LIST_OF(LIST_ITEM("cart", "1", "3", "3") "," LIST_ITEM("checkout", "2", "-2", "0") ","
             LIST_ITEM("search", "3", "1", "1")),
     0, 0, {{0}}, NULL, "items[1].spec.replicas: -2", 0, 0},
    {"list: bad last item fails the whole list",
     LIST_OF(LIST_ITEM("cart", "1", "3", "3") "," LIST_ITEM("checkout", "2", "2", "2") ","
             "{\"metadata\":{\"name\":\"search\",\"namespace\":\"shop\"}}"),
     0, 0, {{0}}, NULL, "items[2].metadata.resourceVersion: missing", 0, 0},
    {"list: item without a name",
     LIST_OF("{\"metadata\":{\"namespace\":\"shop\",\"resourceVersion\":\"1\"}}," LIST_ITEM(
         "cart", "1", "3", "3")),
     0, 0, {{0}}, NULL, "items[0].metadata.name: missing", 0, 0},
    {"list: item is not an object", LIST_OF(LIST_ITEM("cart", "1", "3", "3") ",\"checkout\""), 0,
     0, {{0}}, NULL, "items[1]: expected an object", 0, 0},
    {"list: item with a wrong-typed status",
     LIST_OF(LIST_ITEM("cart", "1", "3", "3") ",{\"metadata\":{\"name\":\"x\",\"resourceVersion\":"
                                              "\"2\"},\"status\":[]}"),
     0, 0, {{0}}, NULL, "items[1].status: expected an object", 0, 0},
    {"list: resourceVersion missing",
     "{\"kind\":\"DeploymentList\",\"metadata\":{},\"items\":[" LIST_ITEM("cart", "1", "3", "3")
     "]}",
     0, 0, {{0}}, NULL, "metadata.resourceVersion: missing", 0, 0},
    {"list: items is an object",
     "{\"kind\":\"DeploymentList\",\"metadata\":{\"resourceVersion\":\"9\"},\"items\":{}}", 0, 0,
     {{0}}, NULL, "items: expected a list", 0, 0},
    {"list: connection cut in the second item",
     "{\"kind\":\"DeploymentList\",\"metadata\":{\"resourceVersion\":\"5\"},\"items\":["
     "{\"metadata\":{\"name\":\"cart\",\"resourceVersion\":\"1\"}},{\"metadata\":{\"name\":\"che",
     0, 0, {{0}}, NULL, "premature end of input", 1, 144},
};

static void test_list(void)
{
    for (size_t i = 0; i < sizeof list_cases / sizeof list_cases[0]; i++) {
        const struct list_case *tc = &list_cases[i];
        CPS_ROW_BEGIN();
        struct list_collector c;
        memset(&c, 0, sizeof c);
        char rv[CPS_KUBE_RV_MAX];
        memset(rv, 'x', sizeof rv);
        struct cps_err err = {0};
        int rc = cps_kube_decode_deployment_list(tc->body, strlen(tc->body), 500, LIST_SOURCE,
                                                 collect_cb, &c, rv, &err);
        ASSERT_EQ(rc, tc->ok ? 0 : -1);
        if (tc->ok) {
            ASSERT_EQ(c.calls, tc->n_items);
            for (int k = 0; k < tc->n_items && k < c.calls; k++)
                check_deployment(&c.items[k], &tc->want[k]);
            ASSERT_STR_EQ(rv, tc->resource_version);
        } else {
            ASSERT_EQ(c.calls, 0); /* a consumer never sees half a list */
            ASSERT_STR_EQ(rv, "");
            check_error(&err, LIST_SOURCE, tc->error_fragment, tc->error_line, tc->error_col);
        }
        CPS_ROW_END(tc->name);
    }
}

/* ---- watch events -------------------------------------------------------- */

#define WATCH_BOOKMARK                                                                        \
    "{\"type\":\"BOOKMARK\",\"object\":{\"kind\":\"Deployment\",\"apiVersion\":\"apps/v1\","     \
    "\"metadata\":{\"resourceVersion\":\"48213990\",\"creationTimestamp\":null,\"annotations\":"  \
    "{\"k8s.io/initial-events-end\":\"true\"}},\"spec\":{\"selector\":null,\"template\":"         \
    "{\"metadata\":{\"creationTimestamp\":null},\"spec\":{\"containers\":null}},"                 \
    "\"strategy\":{}},\"status\":{}}}"

#define WATCH_EXPIRED                                                                         \
    "{\"type\":\"ERROR\",\"object\":{\"kind\":\"Status\",\"apiVersion\":\"v1\",\"metadata\":{},"  \
    "\"status\":\"Failure\",\"message\":\"too old resource version: 48213377 (48299012)\","       \
    "\"reason\":\"Expired\",\"code\":410}}"

struct watch_case {
    const char *name;
    const char *line;
    int first_line_only; /* decode only up to and including the first '\n' */
    int ok;
    enum cps_kube_watch_type type;
    struct expect_deployment want; /* for BOOKMARK only resource_version */
    int32_t status_code;
    const char *status_reason, *status_message;
    const char *error_fragment;
    int error_line, error_col;
};

static const struct watch_case watch_cases[] = {
    {"watch: ADDED with a real Deployment", "{\"type\":\"ADDED\",\"object\":" REAL_DEPLOYMENT "}\n",
     0, 1, CPS_KUBE_WATCH_ADDED, {"shop", "checkout-api", 7, 8, 6, 17, 16, "48213377"}, 0, "", "",
     NULL, 0, 0},
    {"watch: MODIFIED as the rollout progresses",
     "{\"type\":\"MODIFIED\",\"object\":" MINI_DEPLOYMENT(
         "\"spec\":{\"replicas\":5},\"status\":{\"observedGeneration\":2,\"replicas\":5,"
         "\"updatedReplicas\":5,\"readyReplicas\":4,\"availableReplicas\":4}") "}",
     0, 1, CPS_KUBE_WATCH_MODIFIED, {"shop", "api", 5, 5, 4, 2, 2, "900"}, 0, "", "", NULL, 0, 0},
    {"watch: DELETED carries the last state",
     "{\"type\":\"DELETED\",\"object\":{\"kind\":\"Deployment\",\"apiVersion\":\"apps/v1\","
     "\"metadata\":{\"name\":\"api\",\"namespace\":\"shop\",\"resourceVersion\":\"48299100\","
     "\"generation\":3,\"deletionTimestamp\":\"2026-01-02T03:05:00Z\","
     "\"deletionGracePeriodSeconds\":0,\"finalizers\":[\"foregroundDeletion\"]},"
     "\"spec\":{\"replicas\":4},\"status\":{\"observedGeneration\":3,\"replicas\":4,"
     "\"readyReplicas\":4}}}",
     0, 1, CPS_KUBE_WATCH_DELETED, {"shop", "api", 4, 4, 4, 3, 3, "48299100"}, 0, "", "", NULL, 0,
     0},
    {"watch: BOOKMARK gives only a resourceVersion", WATCH_BOOKMARK "\n", 0, 1,
     CPS_KUBE_WATCH_BOOKMARK, {"", "", 0, 0, 0, 0, 0, "48213990"}, 0, "", "", NULL, 0, 0},
    {"watch: BOOKMARK without a resourceVersion is refused",
     "{\"type\":\"BOOKMARK\",\"object\":{\"kind\":\"Deployment\",\"apiVersion\":\"apps/v1\","
     "\"metadata\":{\"creationTimestamp\":null}}}",
     0, 0, 0, {0}, 0, NULL, NULL, "object.metadata.resourceVersion: missing", 0, 0},
    {"watch: BOOKMARK with no metadata is refused",
     "{\"type\":\"BOOKMARK\",\"object\":{\"kind\":\"Deployment\"}}", 0, 0, 0, {0}, 0, NULL, NULL,
     "object.metadata.resourceVersion: missing", 0, 0},
    {"watch: BOOKMARK with a 64-byte resourceVersion",
     "{\"type\":\"BOOKMARK\",\"object\":{\"metadata\":{\"resourceVersion\":\"" RV_64 "\"}}}", 0, 0,
     0, {0}, 0, NULL, NULL, "object.metadata.resourceVersion: longer than 63", 0, 0},
    {"watch: ERROR 410 Expired", WATCH_EXPIRED "\n", 0, 1, CPS_KUBE_WATCH_ERROR, {0}, 410,
     "Expired", "too old resource version: 48213377 (48299012)", NULL, 0, 0},
    {"watch: ERROR 410 Gone (older servers)",
     "{\"type\":\"ERROR\",\"object\":{\"kind\":\"Status\",\"apiVersion\":\"v1\",\"metadata\":{},"
     "\"status\":\"Failure\",\"message\":\"The resourceVersion for the provided watch is too old.\","
     "\"reason\":\"Gone\",\"code\":410}}",
     0, 1, CPS_KUBE_WATCH_ERROR, {0}, 410, "Gone",
     "The resourceVersion for the provided watch is too old.", NULL, 0, 0},
    {"watch: ERROR 500",
     "{\"type\":\"ERROR\",\"object\":{\"kind\":\"Status\",\"apiVersion\":\"v1\",\"metadata\":{},"
     "\"status\":\"Failure\",\"message\":\"etcdserver: request timed out\","
     "\"reason\":\"InternalError\",\"code\":500}}",
     0, 1, CPS_KUBE_WATCH_ERROR, {0}, 500, "InternalError", "etcdserver: request timed out", NULL,
     0, 0},
    {"watch: unknown type",
     "{\"type\":\"SYNC\",\"object\":" MINI_DEPLOYMENT("\"spec\":{\"replicas\":1}") "}", 0, 0, 0,
     {0}, 0, NULL, NULL, "type: ", 0, 0},
    {"watch: type in lower case",
     "{\"type\":\"added\",\"object\":" MINI_DEPLOYMENT("\"spec\":{\"replicas\":1}") "}", 0, 0, 0,
     {0}, 0, NULL, NULL, "type: ", 0, 0},
    {"watch: type missing", "{\"object\":" MINI_DEPLOYMENT("\"spec\":{\"replicas\":1}") "}", 0, 0,
     0, {0}, 0, NULL, NULL, "type: ", 0, 0},
    {"watch: type is a number",
     "{\"type\":1,\"object\":" MINI_DEPLOYMENT("\"spec\":{\"replicas\":1}") "}", 0, 0, 0, {0}, 0,
     NULL, NULL, "type: ", 0, 0},
    {"watch: object missing", "{\"type\":\"ADDED\"}", 0, 0, 0, {0}, 0, NULL, NULL,
     "object: expected an object", 0, 0},
    {"watch: ERROR whose object is a string", "{\"type\":\"ERROR\",\"object\":\"gone\"}", 0, 0, 0,
     {0}, 0, NULL, NULL, "object: expected an object", 0, 0},
    {"watch: MODIFIED with a wrong-typed replicas",
     "{\"type\":\"MODIFIED\",\"object\":" MINI_DEPLOYMENT("\"spec\":{\"replicas\":\"5\"}") "}", 0,
     0, 0, {0}, 0, NULL, NULL, "object.spec.replicas: expected an integer", 0, 0},
    {"watch: ADDED without a resourceVersion",
     "{\"type\":\"ADDED\",\"object\":{\"metadata\":{\"name\":\"api\",\"namespace\":\"shop\"}}}", 0,
     0, 0, {0}, 0, NULL, NULL, "object.metadata.resourceVersion: missing", 0, 0},
    {"watch: CRLF line ending",
     "{\"type\":\"ADDED\",\"object\":" MINI_DEPLOYMENT("\"spec\":{\"replicas\":1}") "}\r\n", 0, 1,
     CPS_KUBE_WATCH_ADDED, {"shop", "api", 1, 0, 0, 2, 0, "900"}, 0, "", "", NULL, 0, 0},
    {"watch: length bounds the line within a larger buffer",
     WATCH_EXPIRED "\n" WATCH_BOOKMARK "\n", 1, 1, CPS_KUBE_WATCH_ERROR, {0}, 410, "Expired",
     "too old resource version: 48213377 (48299012)", NULL, 0, 0},
    {"watch: two events within one length", WATCH_EXPIRED "\n" WATCH_BOOKMARK "\n", 0, 0, 0, {0},
     0, NULL, NULL, "end of file expected", 2, 1},
    {"watch: stream cut mid-line", "{\"type\":\"MODIFIED\",\"object\":{\"metadata\":{\"na", 0, 0, 0,
     {0}, 0, NULL, NULL, "premature end of input", 1, 44},
};

static void test_watch(void)
{
    for (size_t i = 0; i < sizeof watch_cases / sizeof watch_cases[0]; i++) {
        const struct watch_case *tc = &watch_cases[i];
        CPS_ROW_BEGIN();
        enum cps_kube_watch_type type = (enum cps_kube_watch_type)77;
        struct cps_kube_deployment d;
        struct cps_kube_status status;
        struct cps_err err = {0};
        memset(&d, 0x5a, sizeof d);
        memset(&status, 0x5a, sizeof status);
        size_t len = tc->first_line_only ? (size_t)(strchr(tc->line, '\n') - tc->line) + 1
                                         : strlen(tc->line);
        int rc = cps_kube_decode_watch_event(tc->line, len, WATCH_SOURCE, &type, &d, &status, &err);
        ASSERT_EQ(rc, tc->ok ? 0 : -1);
        if (tc->ok) {
            ASSERT_EQ(type, tc->type);
            if (tc->type == CPS_KUBE_WATCH_ERROR) {
                ASSERT_EQ(status.code, tc->status_code);
                ASSERT_STR_EQ(status.reason, tc->status_reason);
                ASSERT_STR_EQ(status.message, tc->status_message);
            } else if (tc->type == CPS_KUBE_WATCH_BOOKMARK) {
                ASSERT_STR_EQ(d.resource_version, tc->want.resource_version);
            } else {
                check_deployment(&d, &tc->want);
            }
        } else {
            check_error(&err, WATCH_SOURCE, tc->error_fragment, tc->error_line, tc->error_col);
        }
        CPS_ROW_END(tc->name);
    }
}

/* ---- coordination.k8s.io/v1 Lease ---------------------------------------- */

#define LEASE_WITH_SPEC(spec)                                                                 \
    "{\"kind\":\"Lease\",\"apiVersion\":\"coordination.k8s.io/v1\",\"metadata\":{\"name\":"       \
    "\"cpscale-leader\",\"namespace\":\"cpscale-system\",\"resourceVersion\":\"9170245\"},"       \
    "\"spec\":" spec "}"

struct lease_case {
    const char *name;
    const char *body;
    int ok;
    const char *holder_identity;
    int32_t lease_duration_s;
    int64_t acquire_time_ms, renew_time_ms;
    int32_t lease_transitions;
    const char *resource_version;
    const char *error_fragment;
    int error_line, error_col;
};

static const struct lease_case lease_cases[] = {
    {"lease: real held Lease with MicroTime fields",
     "{\"kind\":\"Lease\",\"apiVersion\":\"coordination.k8s.io/v1\",\"metadata\":{\"name\":"
     "\"cpscale-leader\",\"namespace\":\"cpscale-system\",\"uid\":"
     "\"c1d2e3f4-0a1b-4c2d-8e3f-405162738495\",\"resourceVersion\":\"9170245\","
     "\"creationTimestamp\":\"2025-12-30T08:00:00Z\",\"managedFields\":[{\"manager\":\"cpscale\","
     "\"operation\":\"Update\",\"apiVersion\":\"coordination.k8s.io/v1\",\"time\":"
     "\"2026-01-02T03:04:05Z\",\"fieldsType\":\"FieldsV1\",\"fieldsV1\":{\"f:spec\":"
     "{\"f:acquireTime\":{},\"f:holderIdentity\":{},\"f:leaseDurationSeconds\":{},"
     "\"f:leaseTransitions\":{},\"f:renewTime\":{}}}}]},\"spec\":{\"holderIdentity\":"
     "\"cpscale-6c9f7d8b4-x2x7q_0f3e5a71-2c4d-4b8e-9a61-7d2c1e0b5f93\","
     "\"leaseDurationSeconds\":15,\"acquireTime\":\"2026-01-02T02:58:11.402351Z\","
     "\"renewTime\":\"2026-01-02T03:04:05.678201Z\",\"leaseTransitions\":3}}",
     1, "cpscale-6c9f7d8b4-x2x7q_0f3e5a71-2c4d-4b8e-9a61-7d2c1e0b5f93", 15,
     T_2026_01_02_025811 * 1000 + 402, T_2026_01_02_030405 * 1000 + 678, 3, "9170245", NULL, 0,
     0},
    {"lease: released as client-go releases it",
     LEASE_WITH_SPEC("{\"holderIdentity\":\"\",\"leaseDurationSeconds\":1,"
                     "\"acquireTime\":\"2026-01-02T03:04:05.000000Z\","
                     "\"renewTime\":\"2026-01-02T03:04:05.000000Z\",\"leaseTransitions\":3}"),
     1, "", 1, T_2026_01_02_030405 * 1000, T_2026_01_02_030405 * 1000, 3, "9170245", NULL, 0, 0},
    {"lease: created with an empty spec", LEASE_WITH_SPEC("{}"), 1, "", 0, 0, 0, 0, "9170245",
     NULL, 0, 0},
    {"lease: no spec",
     "{\"kind\":\"Lease\",\"metadata\":{\"name\":\"l\",\"resourceVersion\":\"12\"}}", 1, "", 0, 0, 0,
     0, "12", NULL, 0, 0},
    {"lease: null holder and times",
     LEASE_WITH_SPEC("{\"holderIdentity\":null,\"acquireTime\":null,\"renewTime\":null}"), 1, "", 0,
     0, 0, 0, "9170245", NULL, 0, 0},
    {"lease: times without fractional seconds",
     LEASE_WITH_SPEC("{\"holderIdentity\":\"a\",\"leaseDurationSeconds\":15,"
                     "\"acquireTime\":\"2026-01-02T02:58:11Z\","
                     "\"renewTime\":\"2026-01-02T03:04:05Z\"}"),
     1, "a", 15, T_2026_01_02_025811 * 1000, T_2026_01_02_030405 * 1000, 0, "9170245", NULL, 0, 0},
    {"lease: positive offset",
     LEASE_WITH_SPEC("{\"holderIdentity\":\"a\",\"renewTime\":\"2026-01-02T04:04:05.250+01:00\"}"),
     1, "a", 0, 0, T_2026_01_02_030405 * 1000 + 250, 0, "9170245", NULL, 0, 0},
    {"lease: negative offset across midnight",
     LEASE_WITH_SPEC("{\"holderIdentity\":\"a\",\"renewTime\":\"2026-01-01T21:34:05-05:30\"}"), 1,
     "a", 0, 0, T_2026_01_02_030405 * 1000, 0, "9170245", NULL, 0, 0},
    {"lease: one fractional digit",
     LEASE_WITH_SPEC("{\"holderIdentity\":\"a\",\"renewTime\":\"2026-01-02T03:04:05.5Z\"}"), 1, "a",
     0, 0, T_2026_01_02_030405 * 1000 + 500, 0, "9170245", NULL, 0, 0},
    {"lease: nanosecond precision",
     LEASE_WITH_SPEC("{\"holderIdentity\":\"a\",\"renewTime\":\"2026-01-02T03:04:05.123456789Z\"}"),
     1, "a", 0, 0, T_2026_01_02_030405 * 1000 + 123, 0, "9170245", NULL, 0, 0},
    {"lease: leap day",
     /* 2024-02-29T23:59:59Z is 1709251199 */
     LEASE_WITH_SPEC("{\"holderIdentity\":\"a\",\"renewTime\":\"2024-02-29T23:59:59.999000Z\"}"), 1,
     "a", 0, 0, 1709251199999LL, 0, "9170245", NULL, 0, 0},
    {"lease: holderIdentity of 255 bytes fits",
     LEASE_WITH_SPEC("{\"holderIdentity\":\"" IDENTITY_255 "\"}"), 1, IDENTITY_255, 0, 0, 0, 0,
     "9170245", NULL, 0, 0},
    {"lease: holderIdentity of 256 bytes is too long",
     LEASE_WITH_SPEC("{\"holderIdentity\":\"" IDENTITY_256 "\"}"), 0, NULL, 0, 0, 0, 0, NULL,
     "spec.holderIdentity: longer than 255", 0, 0},
    {"lease: holderIdentity as a number", LEASE_WITH_SPEC("{\"holderIdentity\":7}"), 0, NULL, 0, 0,
     0, 0, NULL, "spec.holderIdentity: expected a string", 0, 0},
    {"lease: renewTime as epoch seconds", LEASE_WITH_SPEC("{\"renewTime\":1767323045}"), 0, NULL, 0,
     0, 0, 0, NULL, "spec.renewTime: expected an RFC 3339 time", 0, 0},
    {"lease: renewTime without a zone",
     LEASE_WITH_SPEC("{\"renewTime\":\"2026-01-02T03:04:05.678201\"}"), 0, NULL, 0, 0, 0, 0, NULL,
     "spec.renewTime: expected an RFC 3339 time", 0, 0},
    {"lease: acquireTime on a day that does not exist",
     LEASE_WITH_SPEC("{\"acquireTime\":\"2026-02-29T00:00:00.000000Z\"}"), 0, NULL, 0, 0, 0, 0,
     NULL, "spec.acquireTime: expected an RFC 3339 time", 0, 0},
    {"lease: acquireTime empty", LEASE_WITH_SPEC("{\"acquireTime\":\"\"}"), 0, NULL, 0, 0, 0, 0,
     NULL, "spec.acquireTime: expected an RFC 3339 time", 0, 0},
    {"lease: acquireTime with trailing text",
     LEASE_WITH_SPEC("{\"acquireTime\":\"2026-01-02T03:04:05Z junk\"}"), 0, NULL, 0, 0, 0, 0, NULL,
     "spec.acquireTime: expected an RFC 3339 time", 0, 0},
    {"lease: negative leaseDurationSeconds", LEASE_WITH_SPEC("{\"leaseDurationSeconds\":-15}"), 0,
     NULL, 0, 0, 0, 0, NULL, "spec.leaseDurationSeconds: -15", 0, 0},
    {"lease: leaseDurationSeconds as a string", LEASE_WITH_SPEC("{\"leaseDurationSeconds\":\"15s\"}"),
     0, NULL, 0, 0, 0, 0, NULL, "spec.leaseDurationSeconds: expected an integer", 0, 0},
    {"lease: negative leaseTransitions", LEASE_WITH_SPEC("{\"leaseTransitions\":-1}"), 0, NULL, 0,
     0, 0, 0, NULL, "spec.leaseTransitions: -1", 0, 0},
    {"lease: resourceVersion missing",
     "{\"kind\":\"Lease\",\"metadata\":{\"name\":\"l\"},\"spec\":{\"holderIdentity\":\"a\"}}", 0,
     NULL, 0, 0, 0, 0, NULL, "metadata.resourceVersion: missing", 0, 0},
    {"lease: spec is a string", "{\"metadata\":{\"resourceVersion\":\"1\"},\"spec\":\"held\"}", 0,
     NULL, 0, 0, 0, 0, NULL, "spec: expected an object", 0, 0},
    {"lease: duplicate renewTime",
     LEASE_WITH_SPEC("{\"renewTime\":\"2026-01-02T03:04:05Z\",\"renewTime\":\"2026-01-02T03:04:06Z\"}"),
     0, NULL, 0, 0, 0, 0, NULL, "duplicate object key", 1, 202},
};

static void test_lease(void)
{
    for (size_t i = 0; i < sizeof lease_cases / sizeof lease_cases[0]; i++) {
        const struct lease_case *tc = &lease_cases[i];
        CPS_ROW_BEGIN();
        struct cps_kube_lease lease;
        struct cps_err err = {0};
        memset(&lease, 0x5a, sizeof lease);
        int rc = cps_kube_decode_lease(tc->body, strlen(tc->body), LEASE_SOURCE, &lease, &err);
        ASSERT_EQ(rc, tc->ok ? 0 : -1);
        if (tc->ok) {
            ASSERT_STR_EQ(lease.holder_identity, tc->holder_identity);
            ASSERT_EQ(lease.lease_duration_s, tc->lease_duration_s);
            ASSERT_EQ(lease.acquire_time_ms, tc->acquire_time_ms);
            ASSERT_EQ(lease.renew_time_ms, tc->renew_time_ms);
            ASSERT_EQ(lease.lease_transitions, tc->lease_transitions);
            ASSERT_STR_EQ(lease.resource_version, tc->resource_version);
        } else {
            check_error(&err, LEASE_SOURCE, tc->error_fragment, tc->error_line, tc->error_col);
        }
        CPS_ROW_END(tc->name);
    }
}

/* The shard scheme annotation is read back; an absent one (an older
 * version, or annotations of other tools only) reads as "". */
static void test_lease_scheme_annotation(void)
{
    static const char with[] =
        "{\"metadata\":{\"resourceVersion\":\"5\",\"annotations\":{\"x\":\"y\","
        "\"cpscale.io/shard-scheme\":\"fnv1a64-v1/6\"}},\"spec\":{\"holderIdentity\":\"a\"}}";
    static const char other[] =
        "{\"metadata\":{\"resourceVersion\":\"5\",\"annotations\":{\"x\":\"y\"}},"
        "\"spec\":{\"holderIdentity\":\"a\"}}";
    struct cps_kube_lease lease;
    struct cps_err err = {0};
    ASSERT_EQ(cps_kube_decode_lease(with, strlen(with), LEASE_SOURCE, &lease, &err), 0);
    ASSERT_STR_EQ(lease.shard_scheme, "fnv1a64-v1/6");
    ASSERT_EQ(cps_kube_decode_lease(other, strlen(other), LEASE_SOURCE, &lease, &err), 0);
    ASSERT_STR_EQ(lease.shard_scheme, "");
}

/* ---- meta/v1 Status ------------------------------------------------------ */

struct status_case {
    const char *name;
    const char *body;
    int ok;
    int32_t code;
    const char *reason, *message;
};

static const struct status_case status_cases[] = {
    {"status: 404 NotFound", STATUS_404, 1, 404, "NotFound",
     "deployments.apps \"checkout-api\" not found"},
    {"status: 409 Conflict on the scale patch",
     "{\"kind\":\"Status\",\"apiVersion\":\"v1\",\"metadata\":{},\"status\":\"Failure\",\"message\":"
     "\"Operation cannot be fulfilled on deployments.apps \\\"checkout-api\\\": the object has been "
     "modified; please apply your changes to the latest version and try again\",\"reason\":"
     "\"Conflict\",\"details\":{\"name\":\"checkout-api\",\"group\":\"apps\",\"kind\":"
     "\"deployments\"},\"code\":409}",
     1, 409, "Conflict",
     "Operation cannot be fulfilled on deployments.apps \"checkout-api\": the object has been "
     "modified; please apply your changes to the latest version and try again"},
    {"status: 403 Forbidden from RBAC",
     "{\"kind\":\"Status\",\"apiVersion\":\"v1\",\"metadata\":{},\"status\":\"Failure\",\"message\":"
     "\"deployments.apps \\\"checkout-api\\\" is forbidden: User \\\"system:serviceaccount:cpscale-"
     "system:cpscale\\\" cannot patch resource \\\"deployments/scale\\\" in API group \\\"apps\\\" in "
     "the namespace \\\"shop\\\"\",\"reason\":\"Forbidden\",\"details\":{\"name\":\"checkout-api\","
     "\"group\":\"apps\",\"kind\":\"deployments\"},\"code\":403}",
     1, 403, "Forbidden",
     "deployments.apps \"checkout-api\" is forbidden: User \"system:serviceaccount:cpscale-system:"
     "cpscale\" cannot patch resource \"deployments/scale\" in API group \"apps\" in the namespace "
     "\"shop\""},
    {"status: 429 with retryAfterSeconds",
     "{\"kind\":\"Status\",\"apiVersion\":\"v1\",\"metadata\":{},\"status\":\"Failure\",\"message\":"
     "\"Too many requests, please try again later.\",\"reason\":\"TooManyRequests\",\"details\":"
     "{\"causes\":[{\"message\":\"client rate limiter\"}],\"retryAfterSeconds\":1},\"code\":429}",
     1, 429, "TooManyRequests", "Too many requests, please try again later."},
    {"status: Success without a code",
     "{\"kind\":\"Status\",\"apiVersion\":\"v1\",\"metadata\":{},\"status\":\"Success\","
     "\"details\":{\"name\":\"cpscale-leader\",\"group\":\"coordination.k8s.io\",\"kind\":"
     "\"leases\",\"uid\":\"c1d2e3f4-0a1b-4c2d-8e3f-405162738495\"}}",
     1, 0, "", ""},
    {"status: wrong-typed fields are left empty",
     "{\"kind\":\"Status\",\"code\":\"500\",\"reason\":500,\"message\":[\"x\"]}", 1, 0, "", ""},
    {"status: a long message is cut to the buffer, not refused",
     "{\"kind\":\"Status\",\"code\":422,\"reason\":\"Invalid\",\"message\":\"" N50 N50 N50 N50 N50
     N50 "\"}",
     /* 300 bytes into a 256-byte buffer: the first 255 */
     1, 422, "Invalid", N50 N50 N50 N50 N50 "a1234"},
    {"status: a Deployment is not a Status", REAL_DEPLOYMENT, 0, 0, "", ""},
    {"status: kind missing",
     "{\"apiVersion\":\"v1\",\"status\":\"Failure\",\"reason\":\"NotFound\",\"code\":404}", 0, 0, "",
     ""},
    {"status: HTML from a proxy", "<html><body>503 Service Unavailable</body></html>", 0, 0, "",
     ""},
    {"status: empty body", "", 0, 0, "", ""},
    {"status: a list of Status objects", "[" STATUS_404 "]", 0, 0, "", ""},
};

static void test_status(void)
{
    for (size_t i = 0; i < sizeof status_cases / sizeof status_cases[0]; i++) {
        const struct status_case *tc = &status_cases[i];
        CPS_ROW_BEGIN();
        struct cps_kube_status status;
        memset(&status, 0x5a, sizeof status);
        int rc = cps_kube_decode_status(tc->body, strlen(tc->body), &status);
        ASSERT_EQ(rc, tc->ok ? 0 : -1);
        ASSERT_EQ(status.code, tc->code);
        ASSERT_STR_EQ(status.message, tc->message);
        ASSERT_STR_EQ(status.reason, tc->reason);
        CPS_ROW_END(tc->name);
    }
}

/* ---- MicroTime ----------------------------------------------------------- */

struct micro_time_case {
    const char *name;
    int64_t unix_us;
    const char *expected;
};

static const struct micro_time_case micro_time_cases[] = {
    {"micro time: epoch", 0, "1970-01-01T00:00:00.000000Z"},
    {"micro time: one microsecond", 1, "1970-01-01T00:00:00.000001Z"},
    {"micro time: the header's example", T_2026_01_02_030405 * 1000000 + 678000,
     "2026-01-02T03:04:05.678000Z"},
    {"micro time: last microsecond of a leap day", 1709251199LL * 1000000 + 999999,
     "2024-02-29T23:59:59.999999Z"},
    {"micro time: 2000-03-01, after a century leap day", 951868800LL * 1000000,
     "2000-03-01T00:00:00.000000Z"},
    {"micro time: last microsecond of 1999", 946684799LL * 1000000 + 999999,
     "1999-12-31T23:59:59.999999Z"},
    {"micro time: past 32-bit time_t", 2147483648LL * 1000000, "2038-01-19T03:14:08.000000Z"},
    {"micro time: one microsecond before the epoch", -1, "1969-12-31T23:59:59.999999Z"},
    {"micro time: half a second before the epoch", -500000, "1969-12-31T23:59:59.500000Z"},
    {"micro time: one second before the epoch", -1000000, "1969-12-31T23:59:59.000000Z"},
    {"micro time: 1.500001 s before the epoch", -1500001, "1969-12-31T23:59:58.499999Z"},
    {"micro time: one day before the epoch", -86400LL * 1000000, "1969-12-31T00:00:00.000000Z"},
};

static void test_micro_time(void)
{
    for (size_t i = 0; i < sizeof micro_time_cases / sizeof micro_time_cases[0]; i++) {
        const struct micro_time_case *tc = &micro_time_cases[i];
        CPS_ROW_BEGIN();
        char out[40];
        memset(out, 'x', sizeof out);
        cps_kube_format_micro_time(tc->unix_us, out, 32);
        ASSERT_STR_EQ(out, tc->expected);
        ASSERT_EQ(strlen(out), 27);
        CPS_ROW_END(tc->name);
    }
    CPS_ROW_BEGIN();
    char small[16];
    memset(small, 'x', sizeof small);
    cps_kube_format_micro_time(T_2026_01_02_030405 * 1000000, small, 11);
    ASSERT_STR_EQ(small, "2026-01-02");
    ASSERT_EQ(small[11], 'x');
    CPS_ROW_END("micro time: a short buffer is cut, never overrun");
}

/* ---- encoders, parsed back ---------------------------------------------- */

/* The node at a dotted path ("metadata.name"), or NULL. */
static json_t *at(json_t *root, const char *path)
{
    char key[64];
    json_t *node = root;
    while (node && *path) {
        size_t n = strcspn(path, ".");
        if (n >= sizeof key)
            return NULL;
        memcpy(key, path, n);
        key[n] = '\0';
        node = json_object_get(node, key);
        path += n + (path[n] == '.');
    }
    return node;
}

static const char *str_at(json_t *root, const char *path)
{
    return json_string_value(at(root, path));
}

/* Parse an encoder's output strictly (duplicates are an error). */
static json_t *parse_back(const char *text)
{
    if (!text) {
        CPS_FAIL_AT("encoder returned NULL");
        return NULL;
    }
    json_error_t error;
    json_t *root = json_loads(text, JSON_REJECT_DUPLICATES, &error);
    if (!root)
        CPS_FAIL_AT("encoder output is not JSON (%s): %s", error.text, text);
    else if (!json_is_object(root))
        CPS_FAIL_AT("encoder output is not an object: %s", text);
    return root;
}

struct scale_patch_case {
    const char *name;
    const char *resource_version; /* NULL or "": no precondition */
    int32_t replicas;
};

static const struct scale_patch_case scale_patch_cases[] = {
    {"scale patch: with resourceVersion", "48213377", 7},
    {"scale patch: NULL resourceVersion", NULL, 3},
    {"scale patch: empty resourceVersion, to zero", "", 0},
    {"scale patch: int32 maximum", "1", 2147483647},
    {"scale patch: opaque resourceVersion is escaped", "a\"b\\c", 12},
};

static void test_scale_patch(void)
{
    for (size_t i = 0; i < sizeof scale_patch_cases / sizeof scale_patch_cases[0]; i++) {
        const struct scale_patch_case *tc = &scale_patch_cases[i];
        CPS_ROW_BEGIN();
        char *text = cps_kube_encode_scale_patch(tc->resource_version, tc->replicas);
        json_t *root = parse_back(text);
        if (root) {
            /* a merge patch: only metadata and spec, and spec only replicas */
            const char *key;
            json_t *value;
            json_object_foreach(root, key, value) {
                (void)value;
                ASSERT_TRUE(strcmp(key, "metadata") == 0 || strcmp(key, "spec") == 0);
            }
            ASSERT_EQ(json_object_size(at(root, "spec")), 1);
            /* replicas is there even at 0: an absent key would not scale to zero */
            ASSERT_TRUE(json_is_integer(at(root, "spec.replicas")));
            ASSERT_EQ(json_integer_value(at(root, "spec.replicas")), tc->replicas);
            if (tc->resource_version && tc->resource_version[0]) {
                ASSERT_STR_EQ(str_at(root, "metadata.resourceVersion"), tc->resource_version);
                ASSERT_EQ(json_object_size(at(root, "metadata")), 1);
            } else {
                ASSERT_TRUE(at(root, "metadata.resourceVersion") == NULL);
                json_t *metadata = at(root, "metadata");
                ASSERT_TRUE(metadata == NULL ||
                            (json_is_object(metadata) && json_object_size(metadata) == 0));
            }
        }
        json_decref(root);
        free(text);
        CPS_ROW_END(tc->name);
    }
}

struct lease_encode_case {
    const char *name;
    struct cps_kube_lease lease;
    const char *acquire_time, *renew_time; /* NULL: must be absent */
};

static const struct lease_encode_case lease_encode_cases[] = {
    {"lease encode: create (no resourceVersion)",
     {"cpscale-6c9f7d8b4-x2x7q_0f3e5a71", 15, T_2026_01_02_025811 * 1000 + 402,
      T_2026_01_02_025811 * 1000 + 402, 0, "", ""},
     "2026-01-02T02:58:11.402000Z", "2026-01-02T02:58:11.402000Z"},
    {"lease encode: update with resourceVersion",
     {"cpscale-6c9f7d8b4-x2x7q_0f3e5a71", 15, T_2026_01_02_025811 * 1000 + 402,
      T_2026_01_02_030405 * 1000 + 678, 3, "9170245", "fnv1a64-v1/6"},
     "2026-01-02T02:58:11.402000Z", "2026-01-02T03:04:05.678000Z"},
    {"lease encode: release keeps an empty holder",
     {"", 1, T_2026_01_02_030405 * 1000, T_2026_01_02_030405 * 1000, 4, "9170300", ""},
     "2026-01-02T03:04:05.000000Z", "2026-01-02T03:04:05.000000Z"},
    {"lease encode: unset times are left out", {"a", 15, 0, 0, 0, "77", ""}, NULL, NULL},
};

static void test_lease_encode(void)
{
    for (size_t i = 0; i < sizeof lease_encode_cases / sizeof lease_encode_cases[0]; i++) {
        const struct lease_encode_case *tc = &lease_encode_cases[i];
        CPS_ROW_BEGIN();
        char *text = cps_kube_encode_lease("cpscale-system", "cpscale-leader", &tc->lease);
        json_t *root = parse_back(text);
        if (root) {
            ASSERT_STR_EQ(str_at(root, "apiVersion"), "coordination.k8s.io/v1");
            ASSERT_STR_EQ(str_at(root, "kind"), "Lease");
            ASSERT_STR_EQ(str_at(root, "metadata.name"), "cpscale-leader");
            ASSERT_STR_EQ(str_at(root, "metadata.namespace"), "cpscale-system");
            if (tc->lease.resource_version[0])
                ASSERT_STR_EQ(str_at(root, "metadata.resourceVersion"),
                              tc->lease.resource_version);
            else
                ASSERT_TRUE(at(root, "metadata.resourceVersion") == NULL);
            if (tc->lease.shard_scheme[0]) {
                const json_t *ann = at(root, "metadata.annotations");
                ASSERT_TRUE(ann != NULL);
                ASSERT_STR_EQ(json_string_value(json_object_get(ann, "cpscale.io/shard-scheme")),
                              "fnv1a64-v1/6");
            } else {
                ASSERT_TRUE(at(root, "metadata.annotations") == NULL);
            }
            ASSERT_STR_EQ(str_at(root, "spec.holderIdentity"), tc->lease.holder_identity);
            ASSERT_TRUE(json_is_integer(at(root, "spec.leaseDurationSeconds")));
            ASSERT_EQ(json_integer_value(at(root, "spec.leaseDurationSeconds")),
                      tc->lease.lease_duration_s);
            ASSERT_TRUE(json_is_integer(at(root, "spec.leaseTransitions")));
            ASSERT_EQ(json_integer_value(at(root, "spec.leaseTransitions")),
                      tc->lease.lease_transitions);
            if (tc->acquire_time)
                ASSERT_STR_EQ(str_at(root, "spec.acquireTime"), tc->acquire_time);
            else
                ASSERT_TRUE(at(root, "spec.acquireTime") == NULL ||
                            json_is_null(at(root, "spec.acquireTime")));
            if (tc->renew_time)
                ASSERT_STR_EQ(str_at(root, "spec.renewTime"), tc->renew_time);
            else
                ASSERT_TRUE(at(root, "spec.renewTime") == NULL ||
                            json_is_null(at(root, "spec.renewTime")));
            /* what we PUT is what a GET gives back */
            if (tc->lease.resource_version[0]) {
                struct cps_kube_lease back;
                struct cps_err err = {0};
                ASSERT_EQ(cps_kube_decode_lease(text, strlen(text), LEASE_SOURCE, &back, &err), 0);
                ASSERT_STR_EQ(back.holder_identity, tc->lease.holder_identity);
                ASSERT_EQ(back.lease_duration_s, tc->lease.lease_duration_s);
                ASSERT_EQ(back.acquire_time_ms, tc->lease.acquire_time_ms);
                ASSERT_EQ(back.renew_time_ms, tc->lease.renew_time_ms);
                ASSERT_EQ(back.lease_transitions, tc->lease.lease_transitions);
                ASSERT_STR_EQ(back.resource_version, tc->lease.resource_version);
                ASSERT_STR_EQ(back.shard_scheme, tc->lease.shard_scheme);
            }
        }
        json_decref(root);
        free(text);
        CPS_ROW_END(tc->name);
    }
}

struct event_case {
    const char *name;
    struct cps_kube_event event;
    const char *event_name; /* NULL: check the 253-byte limit instead */
    const char *event_time;
};

static const struct event_case event_cases[] = {
    {"event: SuccessfulRescale",
     {"shop", "Deployment", "apps/v1", "checkout-api", "Normal", "SuccessfulRescale", "Scale",
      "4\xe2\x86\x92" "7: scale_up (p95 182ms > SLO 150ms)", "cpscale.io/controller",
      "cpscale-6c9f7d8b4-x2x7q", T_2026_01_02_030405 * 1000000 + 678000,
      "5c1bd0a2-4f7e-4d0b-9a55-0b1e8f0c2d11"},
     /* 1767323045678000000 ns */
     "checkout-api.1886caf244ffa780", "2026-01-02T03:04:05.678000Z"},
    {"event: FailedRescale with quotes and a newline in the note",
     {"shop", "Deployment", "apps/v1", "checkout-api", "Warning", "FailedRescale", "Scale",
      "7\xe2\x86\x92" "9: PATCH failed: 409 \"Conflict\"\nretrying next tick",
      "cpscale.io/controller", "cpscale-6c9f7d8b4-x2x7q", T_2026_01_02_030405 * 1000000 + 1,
      NULL},
     /* 1767323045000001000 ns */
     "checkout-api.1886caf21c9635e8", "2026-01-02T03:04:05.000001Z"},
    {"event: at the epoch", {"default", "Deployment", "apps/v1", "web", "Normal",
                             "SuccessfulRescale", "Scale", "1\xe2\x86\x92" "2: scale_up",
                             "cpscale.io/controller", "cpscale-0", 0, ""},
     "web.0", "1970-01-01T00:00:00.000000Z"},
    {"event: a 253-byte name still gives a valid Event name",
     {"shop", "Deployment", "apps/v1", NAME_253, "Normal", "SuccessfulRescale", "Scale",
      "2\xe2\x86\x92" "3: scale_up", "cpscale.io/controller", "cpscale-0",
      T_2026_01_02_030405 * 1000000 + 678000, NULL},
     NULL, "2026-01-02T03:04:05.678000Z"},
};

static void test_event(void)
{
    for (size_t i = 0; i < sizeof event_cases / sizeof event_cases[0]; i++) {
        const struct event_case *tc = &event_cases[i];
        const struct cps_kube_event *ev = &tc->event;
        CPS_ROW_BEGIN();
        char *text = cps_kube_encode_event(ev);
        json_t *root = parse_back(text);
        if (root) {
            ASSERT_STR_EQ(str_at(root, "apiVersion"), "events.k8s.io/v1");
            ASSERT_STR_EQ(str_at(root, "kind"), "Event");
            const char *name = str_at(root, "metadata.name");
            if (tc->event_name) {
                ASSERT_STR_EQ(name, tc->event_name);
            } else {
                /* "<name>.<hex ns>" within the 253-byte limit, name cut if need be */
                const char *suffix = ".1886caf244ffa780";
                ASSERT_TRUE(name != NULL);
                if (name) {
                    size_t n = strlen(name), s = strlen(suffix);
                    ASSERT_TRUE(n <= 253);
                    ASSERT_TRUE(n > s && strcmp(name + n - s, suffix) == 0);
                    ASSERT_TRUE(n > s && strncmp(name, ev->regarding_name, n - s) == 0);
                }
            }
            ASSERT_STR_EQ(str_at(root, "metadata.namespace"), ev->namespace);
            ASSERT_STR_EQ(str_at(root, "eventTime"), tc->event_time);
            ASSERT_STR_EQ(str_at(root, "regarding.kind"), ev->regarding_kind);
            ASSERT_STR_EQ(str_at(root, "regarding.apiVersion"), ev->regarding_api_version);
            ASSERT_STR_EQ(str_at(root, "regarding.name"), ev->regarding_name);
            ASSERT_STR_EQ(str_at(root, "regarding.namespace"), ev->namespace);
            /* kubectl describe selects Events by regarding.uid */
            if (ev->regarding_uid && ev->regarding_uid[0])
                ASSERT_STR_EQ(str_at(root, "regarding.uid"), ev->regarding_uid);
            else
                ASSERT_TRUE(str_at(root, "regarding.uid") == NULL);
            ASSERT_STR_EQ(str_at(root, "reportingController"), ev->reporting_controller);
            ASSERT_STR_EQ(str_at(root, "reportingInstance"), ev->reporting_instance);
            ASSERT_STR_EQ(str_at(root, "note"), ev->note);
            ASSERT_STR_EQ(str_at(root, "type"), ev->type);
            ASSERT_STR_EQ(str_at(root, "reason"), ev->reason);
            ASSERT_STR_EQ(str_at(root, "action"), ev->action);
        }
        json_decref(root);
        free(text);
        CPS_ROW_END(tc->name);
    }
}

struct continue_case {
    const char *name;
    const char *body;
    size_t cap;
    int rc;
    const char *expected;
};

/* metadata.continue of a paginated DeploymentList page. */
/* A page over its item limit, or over its decoded budget (items of `[]`
 * that cost ~130 bytes each once decoded), is refused before decoding. */
static void test_list_budget(void)
{
    static const char *three = LIST_OF(LIST_ITEM("cart", "48213001", "3", "3") "," LIST_ITEM(
        "checkout", "48213377", "7", "6") "," LIST_ITEM("search", "48190020", "12", "0"));
    struct list_collector c;
    memset(&c, 0, sizeof c);
    char rv[CPS_KUBE_RV_MAX];
    struct cps_err err = {0};
    ASSERT_EQ(cps_kube_decode_deployment_list(three, strlen(three), 3, LIST_SOURCE, collect_cb,
                                              &c, rv, &err),
              0);
    memset(&c, 0, sizeof c);
    ASSERT_EQ(cps_kube_decode_deployment_list(three, strlen(three), 2, LIST_SOURCE, collect_cb,
                                              &c, rv, &err),
              -1);
    ASSERT_CONTAINS(err.message, "page limit");
    ASSERT_EQ(c.calls, 0);
    static const char head[] = "{\"metadata\":{\"resourceVersion\":\"1\"},\"items\":[";
    size_t n_items = 100000, len = sizeof head - 1;
    char *body = malloc(sizeof head + 3 * n_items + 4);
    ASSERT_TRUE(body != NULL);
    memcpy(body, head, len);
    for (size_t i = 0; i < n_items; i++)
        len += (size_t)sprintf(body + len, i ? ",[]" : "[]");
    len += (size_t)sprintf(body + len, "]}");
    ASSERT_EQ(cps_kube_decode_deployment_list(body, len, 10, LIST_SOURCE, collect_cb, &c, rv,
                                              &err),
              -1);
    ASSERT_CONTAINS(err.message, "memory budget");
    free(body);
}

static void test_list_continue(void)
{
    static const struct continue_case cases[] = {
        {"a next page", "{\"kind\":\"DeploymentList\",\"metadata\":{\"resourceVersion\":\"7\","
                        "\"continue\":\"eyJ2IjoibWV0YS5rOHMuaW8vdjEiLCJydiI6N30\"},\"items\":[]}",
         64, 0, "eyJ2IjoibWV0YS5rOHMuaW8vdjEiLCJydiI6N30"},
        {"the last page", "{\"metadata\":{\"resourceVersion\":\"7\",\"continue\":\"\"},\"items\":[]}",
         64, 0, ""},
        {"no continue at all", "{\"metadata\":{\"resourceVersion\":\"7\"},\"items\":[]}", 64, 0,
         ""},
        {"token longer than the buffer", "{\"metadata\":{\"continue\":\"abcdefgh\"}}", 8, -1, ""},
        {"not an object", "[1,2]", 64, -1, ""},
        {"not JSON", "{\"metadata\":", 64, -1, ""},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        CPS_ROW_BEGIN();
        char out[64] = "junk";
        ASSERT_EQ(cps_kube_list_continue(cases[i].body, strlen(cases[i].body), out, cases[i].cap),
                  cases[i].rc);
        ASSERT_STR_EQ(out, cases[i].expected);
        CPS_ROW_END(cases[i].name);
    }
}

/* metadata.uid of the Scale and the Deployment: the Event's regarding.uid
 * (kubectl describe selects Events by it). */
static void test_uid(void)
{
    struct cps_kube_scale scale;
    struct cps_err err = {0};
    ASSERT_EQ(cps_kube_decode_scale(REAL_SCALE, strlen(REAL_SCALE), SCALE_SOURCE, &scale, &err), 0);
    ASSERT_STR_EQ(scale.uid, "6f1c2d9e-3b7a-4c51-9d2e-8a4b5c6d7e8f");
    const char *no_uid = "{\"kind\":\"Scale\",\"metadata\":{\"resourceVersion\":\"5\"},"
                         "\"spec\":{\"replicas\":2}}";
    ASSERT_EQ(cps_kube_decode_scale(no_uid, strlen(no_uid), SCALE_SOURCE, &scale, &err), 0);
    ASSERT_STR_EQ(scale.uid, "");
    const char *bad_uid = "{\"kind\":\"Scale\",\"metadata\":{\"resourceVersion\":\"5\","
                          "\"uid\":7},\"spec\":{\"replicas\":2}}";
    ASSERT_EQ(cps_kube_decode_scale(bad_uid, strlen(bad_uid), SCALE_SOURCE, &scale, &err), -1);
    struct cps_kube_deployment d;
    ASSERT_EQ(cps_kube_decode_deployment(REAL_DEPLOYMENT, strlen(REAL_DEPLOYMENT),
                                         DEPLOYMENT_SOURCE, &d, &err), 0);
    ASSERT_STR_EQ(d.uid, "6f1c2d9e-3b7a-4c51-9d2e-8a4b5c6d7e8f");
}

/* The series merge patch of an isomorphic Event. */
static void test_event_series(void)
{
    char *text = cps_kube_encode_event_series(7, T_2026_01_02_030405 * 1000000 + 678000);
    json_t *root = parse_back(text);
    if (root) {
        ASSERT_EQ(json_integer_value(at(root, "series.count")), 7);
        ASSERT_STR_EQ(str_at(root, "series.lastObservedTime"), "2026-01-02T03:04:05.678000Z");
        ASSERT_EQ(json_object_size(root), 1);
        json_decref(root);
    }
    free(text);
    char name[CPS_KUBE_NAME_MAX];
    cps_kube_event_name("checkout-api", T_2026_01_02_030405 * 1000000 + 678000, name, sizeof name);
    ASSERT_STR_EQ(name, "checkout-api.1886caf244ffa780");
}

int main(void)
{
    CPS_RUN(test_list_continue);
    CPS_RUN(test_scale);
    CPS_RUN(test_deployment);
    CPS_RUN(test_list);
    CPS_RUN(test_list_budget);
    CPS_RUN(test_watch);
    CPS_RUN(test_lease);
    CPS_RUN(test_lease_scheme_annotation);
    CPS_RUN(test_status);
    CPS_RUN(test_micro_time);
    CPS_RUN(test_scale_patch);
    CPS_RUN(test_lease_encode);
    CPS_RUN(test_event);
    CPS_RUN(test_event_series);
    CPS_RUN(test_uid);
    CPS_TEST_END();
}
