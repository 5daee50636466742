/*
 * Kubernetes' name rules, as the API server applies them, so that a config
 * or kubeconfig that names something Kubernetes would refuse is refused at
 * load time with a position instead of at the first request.
 */
#ifndef CPS_K8S_NAMES_H
#define CPS_K8S_NAMES_H

#include <stddef.h>

#define CPS_K8S_DNS_LABEL_MAX 63
#define CPS_K8S_DNS_SUBDOMAIN_MAX 253

/* RFC 1123 label (a namespace): 1-63 of [a-z0-9-], alphanumeric at both
 * ends. Takes a length so that a subdomain's labels can be checked in
 * place. */
int cps_k8s_is_dns_label(const char *s, size_t len);

/* RFC 1123 subdomain (an object name): dot-separated labels, at most 253
 * bytes in all. */
int cps_k8s_is_dns_subdomain(const char *s);

#endif
