#include "k8s_names.h"

#include <string.h>

static int is_lower_alnum(int c)
{
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}

int cps_k8s_is_dns_label(const char *s, size_t len)
{
    if (len == 0 || len > CPS_K8S_DNS_LABEL_MAX || !is_lower_alnum((unsigned char)s[0]) ||
        !is_lower_alnum((unsigned char)s[len - 1]))
        return 0;
    for (size_t i = 0; i < len; i++)
        if (!is_lower_alnum((unsigned char)s[i]) && s[i] != '-')
            return 0;
    return 1;
}

int cps_k8s_is_dns_subdomain(const char *s)
{
    size_t len = strlen(s);
    if (len == 0 || len > CPS_K8S_DNS_SUBDOMAIN_MAX)
        return 0;
    const char *label = s;
    for (;;) {
        const char *dot = strchr(label, '.');
        size_t n = dot ? (size_t)(dot - label) : strlen(label);
        if (!cps_k8s_is_dns_label(label, n))
            return 0;
        if (!dot)
            return 1;
        label = dot + 1;
    }
}
