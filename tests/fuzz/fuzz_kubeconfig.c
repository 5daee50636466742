/*
 * Fuzz target: the kubeconfig parser (cps_kubeconfig_parse).
 *
 * A kubeconfig is a file a user may be handed; any bytes must parse or fail
 * with a message. The context to select can come from the input: when it
 * starts with the YAML comment "#context:NAME\n", NAME is passed as the
 * caller's --context (the comment does not change the document). The file
 * is named with a relative path, so relative credential paths go through
 * the path resolution; resolved paths must fit CPS_KUBECONFIG_PATH_MAX.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "kubeconfig.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FUZZ_KUBECONFIG_SOURCE "home/user/.kube/config"
#define CONTEXT_PREFIX "#context:"
#define CONTEXT_PREFIX_LEN (sizeof CONTEXT_PREFIX - 1)

/* A resolved path, when set, must be a string within the documented bound. */
static void check_path(const char *path)
{
    if (path && strlen(path) >= CPS_KUBECONFIG_PATH_MAX)
        abort();
}

/* Decoded *_data is followed by a NUL byte that the length does not count. */
static void check_data(const unsigned char *bytes, size_t len)
{
    if (bytes && bytes[len] != '\0')
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *context = NULL;
    if (size > CONTEXT_PREFIX_LEN && memcmp(data, CONTEXT_PREFIX, CONTEXT_PREFIX_LEN) == 0) {
        const uint8_t *nl = memchr(data, '\n', size);
        size_t len = (nl ? (size_t)(nl - data) : size) - CONTEXT_PREFIX_LEN;
        context = malloc(len + 1);
        if (!context)
            return 0;
        memcpy(context, data + CONTEXT_PREFIX_LEN, len);
        context[len] = '\0';
    }
    struct cps_err err;
    cps_err_clear(&err);
    struct cps_kubeconfig *kc = cps_kubeconfig_parse((const char *)data, size,
                                                     FUZZ_KUBECONFIG_SOURCE, context, &err);
    if (!kc) {
        if (!err.message[0])
            abort();
    } else {
        if (!kc->server || !kc->context_name)
            abort();
        check_path(kc->ca_file);
        check_path(kc->token_file);
        check_path(kc->client_cert_file);
        check_path(kc->client_key_file);
        check_data(kc->ca_data, kc->ca_data_len);
        check_data(kc->client_cert_data, kc->client_cert_data_len);
        check_data(kc->client_key_data, kc->client_key_data_len);
    }
    cps_kubeconfig_free(kc);
    free(context);
    return 0;
}
