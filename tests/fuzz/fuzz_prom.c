/*
 * Fuzz target: the Prometheus instant-answer decoder and PromQL placeholder
 * substitution (lib/promql.h).
 *
 * The whole input is decoded as an /api/v1/query answer. The labels of the
 * samples it yields (values an attacker who controls label values would
 * choose) are then substituted into queries that use every placeholder form
 * (bare, double- and single-quoted, regex operand, raw string). Finally the
 * input itself is taken as a query: up to its first NUL byte is the query,
 * the next NUL-separated pieces the namespace and deployment. The split
 * decoder (one series' tree at a time) must agree with the whole-tree one
 * on every input: same samples, or the same error.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../unit/prom_split_check.h"
#include "promql.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FUZZ_PROM_SOURCE "prometheus: fuzz"
#define FUZZ_PROM_DEFAULT_NAMESPACE "shop"
#define FUZZ_PROM_DEFAULT_NAME "api"
/* Samples whose labels are substituted; the rest only decode. */
#define FUZZ_PROM_MAX_SUBSTITUTED 8
/* Output buffer of the escaping check, small enough that inputs overflow it. */
#define FUZZ_PROM_ESCAPE_CAP 64

/* Queries covering each placeholder context cps_promql_substitute knows. */
static const char *const template_queries[] = {
    "sum(rate(http_requests_total{namespace=$namespace, deployment=$deployment}[1m]))",
    "x{namespace=\"$namespace\",pod='$deployment'}",
    "x{pod=~\"$deployment-[a-z0-9]+\"} or y{pod !~ '$namespace.*'}",
    "x{pod=~`$deployment-.*`, n=`$namespace`}",
    "x # $namespace\n+ y{n=$namespace, a=\"\\\"$deployment\"}",
};

/* Substitute and free; the answer (query or error) is not checked further
 * than the contract: NULL comes with a message. */
static void substitute(const char *query, const char *namespace, const char *name)
{
    struct cps_err err;
    cps_err_clear(&err);
    char *out = cps_promql_substitute(query, namespace, name, &err);
    if (!out && !err.message[0])
        abort();
    free(out);
}

/*
 * Return the i-th NUL-separated piece of data[0, size) as a fresh
 * NUL-terminated string, or NULL when there is no such piece (or no
 * memory). The caller frees.
 */
static char *piece(const uint8_t *data, size_t size, int index)
{
    size_t start = 0;
    for (int i = 0; i < index; i++) {
        const uint8_t *nul = memchr(data + start, '\0', size - start);
        if (!nul)
            return NULL;
        start = (size_t)(nul - data) + 1;
    }
    const uint8_t *nul = memchr(data + start, '\0', size - start);
    size_t len = nul ? (size_t)(nul - data) - start : size - start;
    char *s = malloc(len + 1);
    if (!s)
        return NULL;
    memcpy(s, data + start, len);
    s[len] = '\0';
    return s;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct cps_prom_result result = {0, NULL};
    struct cps_err err;
    cps_err_clear(&err);
    if (cps_prom_decode_instant((const char *)data, size, "namespace", "deployment",
                                CPS_PROM_MAX_SAMPLES, FUZZ_PROM_SOURCE, &result, &err) == 0) {
        for (size_t i = 0; i < result.n_samples && i < FUZZ_PROM_MAX_SUBSTITUTED; i++) {
            const struct cps_prom_sample *s = &result.samples[i];
            const char *ns = s->namespace ? s->namespace : FUZZ_PROM_DEFAULT_NAMESPACE;
            const char *name = s->name ? s->name : FUZZ_PROM_DEFAULT_NAME;
            for (size_t q = 0; q < sizeof template_queries / sizeof template_queries[0]; q++)
                substitute(template_queries[q], ns, name);
        }
    } else if (result.n_samples != 0 || result.samples != NULL || !err.message[0]) {
        abort(); /* a failed decode must leave the result empty and say why */
    }
    cps_prom_result_release(&result);
    char why[256];
    if (split_check_compare((const char *)data, size, CPS_PROM_MAX_SAMPLES, why, sizeof why) != 0 ||
        split_check_compare((const char *)data, size, 2, why, sizeof why) != 0)
        abort(); /* the split decoder disagrees with the whole tree */

    char *query = piece(data, size, 0);
    char *ns = piece(data, size, 1);
    char *name = piece(data, size, 2);
    if (query) {
        char escaped[FUZZ_PROM_ESCAPE_CAP];
        int n = cps_promql_escape_string(query, escaped, sizeof escaped);
        if (n >= (int)sizeof escaped || (n >= 0 && strlen(escaped) != (size_t)n))
            abort();
        cps_promql_has_placeholders(query);
        substitute(query, ns ? ns : FUZZ_PROM_DEFAULT_NAMESPACE,
                   name ? name : FUZZ_PROM_DEFAULT_NAME);
    }
    free(name);
    free(ns);
    free(query);
    return 0;
}
