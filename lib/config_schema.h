/*
 * The config schema: one row per config.yaml key, the one place a key is
 * spelled. A row gives the key's section, name, type, field (offsetof into
 * the section's struct), default, range and, for strings, the check of its
 * text. The rows drive the defaults (config.c), the loader's walk
 * (config_value.c and the section walkers), the printer (config_print.c),
 * `cpscale tune`'s fragment and JSON (config_print.c, config_json.c) and the
 * tests' equality. Checks that span keys (min <= max, renew_deadline >
 * 1.2 x retry_period, ...) stay in the section walkers.
 *
 * Row order within a section is the order of the "(expected one of: ...)"
 * hint, of the walk and of the printer.
 */
#ifndef CPS_CONFIG_SCHEMA_H
#define CPS_CONFIG_SCHEMA_H

#include <stddef.h>

#include "config.h"

/* The mappings of config.yaml; each row belongs to one. */
enum cps_config_section {
    CPS_SEC_TOP,         /* struct cps_config */
    CPS_SEC_PROMETHEUS,  /* struct cps_prometheus_config */
    CPS_SEC_LABELS,      /* prometheus.labels: struct cps_prometheus_config */
    CPS_SEC_QUERIES,     /* struct cps_queries */
    CPS_SEC_LEADER,      /* struct cps_leader_election_config */
    CPS_SEC_SHARDING,    /* struct cps_sharding_config */
    CPS_SEC_SIM,         /* struct cps_sim_params */
    CPS_SEC_TARGET,      /* struct cps_target (a target body, defaults:) */
    CPS_SEC_SLO,         /* target.slo: struct cps_target */
    CPS_SEC_COST,        /* target.cost: struct cps_target */
    CPS_SEC_CAPACITY,    /* target.capacity: struct cps_target */
    CPS_SEC_MISSING,     /* target.on_missing_metrics: struct cps_target */
    CPS_SEC_POLICY,      /* target.policy: struct cps_policy_params */
    CPS_SEC_BEHAVIOR,    /* target.behavior: struct cps_behavior */
    CPS_SEC_RULES,       /* behavior.scaleUp/scaleDown: struct cps_scaling_rules */
    CPS_SEC_POLICY_ITEM, /* rules.policies[i]: struct cps_scaling_policy */
    CPS_SEC_COUNT
};

/* Every key, one id each, grouped by section in row order. */
enum cps_config_key {
    CPS_KEY_INTERVAL, CPS_KEY_LISTEN, CPS_KEY_PROMETHEUS, CPS_KEY_QUERIES, CPS_KEY_LEADER,
    CPS_KEY_SHARDING,
    CPS_KEY_DEFAULTS, CPS_KEY_TARGETS, CPS_KEY_SIM,
    CPS_KEY_PROM_URL, CPS_KEY_PROM_TIMEOUT, CPS_KEY_PROM_TOKEN_FILE, CPS_KEY_PROM_HEADERS,
    CPS_KEY_PROM_LABELS, CPS_KEY_PROM_MAX_STALENESS,
    CPS_KEY_LABEL_NAMESPACE, CPS_KEY_LABEL_DEPLOYMENT,
    CPS_KEY_QUERY_QPS, CPS_KEY_QUERY_P95, CPS_KEY_QUERY_CPU, CPS_KEY_QUERY_READY,
    CPS_KEY_QUERY_COST, CPS_KEY_QUERY_BUDGET_QPS, CPS_KEY_QUERY_BUDGET_P95,
    CPS_KEY_LE_ENABLED, CPS_KEY_LE_NAMESPACE, CPS_KEY_LE_NAME, CPS_KEY_LE_LEASE_DURATION,
    CPS_KEY_LE_RENEW_DEADLINE, CPS_KEY_LE_RETRY_PERIOD,
    CPS_KEY_SH_SHARDS, CPS_KEY_SH_WARM_STANDBY,
    CPS_KEY_SIM_SERVICE_RATE, CPS_KEY_SIM_BASE_LATENCY, CPS_KEY_SIM_STARTUP, CPS_KEY_SIM_PRICE,
    CPS_KEY_SIM_SCALE, CPS_KEY_SIM_ROUTING, CPS_KEY_SIM_INTERVAL, CPS_KEY_SIM_WINDOW,
    CPS_KEY_SIM_LAG, CPS_KEY_SIM_HPA_TARGET, CPS_KEY_SIM_SERVICE_TIMES,
    CPS_KEY_T_NAMESPACE, CPS_KEY_T_DEPLOYMENT, CPS_KEY_T_KIND, CPS_KEY_T_NAME,
    CPS_KEY_T_API_VERSION, CPS_KEY_T_MIN_REPLICAS, CPS_KEY_T_MAX_REPLICAS, CPS_KEY_T_SLO,
    CPS_KEY_T_COST, CPS_KEY_T_CAPACITY, CPS_KEY_T_PAUSED, CPS_KEY_T_QUERIES, CPS_KEY_T_BEHAVIOR,
    CPS_KEY_T_ON_MISSING, CPS_KEY_T_POLICY,
    CPS_KEY_SLO_P95, CPS_KEY_SLO_BUDGET, CPS_KEY_SLO_BUDGET_WINDOW,
    CPS_KEY_COST_PER_MILLION, CPS_KEY_COST_MAX_PER_HOUR, CPS_KEY_COST_POD_HOUR,
    CPS_KEY_CAPACITY_RPS,
    CPS_KEY_MISSING_FALLBACK,
    CPS_KEY_POL_HEADROOM, CPS_KEY_POL_SCALE_DOWN, CPS_KEY_POL_STARTUP, CPS_KEY_POL_METRICS_LAG,
    CPS_KEY_POL_HALFLIFE, CPS_KEY_POL_SEASONALITY, CPS_KEY_POL_TREND,
    CPS_KEY_BEH_SCALE_UP, CPS_KEY_BEH_SCALE_DOWN,
    CPS_KEY_RULES_WINDOW, CPS_KEY_RULES_SELECT, CPS_KEY_RULES_POLICIES,
    CPS_KEY_ITEM_TYPE, CPS_KEY_ITEM_VALUE, CPS_KEY_ITEM_PERIOD,
    CPS_KEY_COUNT
};

enum cps_config_type {
    CPS_CFG_INT32,       /* int32_t, in [lo, hi] */
    CPS_CFG_NUMBER,      /* double, in the range lo/hi/range flags give */
    CPS_CFG_BOOL,        /* int 0/1 */
    CPS_CFG_DURATION,    /* int64_t ms */
    CPS_CFG_DURATION_MS, /* double ms (sim.base_latency) */
    CPS_CFG_DURATION_S,  /* double s (the other sim durations) */
    CPS_CFG_STRING,      /* char *, checked by `valid` */
    CPS_CFG_ENUM,        /* an enum (int sized), spelled names[value] */
    CPS_CFG_QUERY,       /* char *, PromQL: not empty, only $namespace/$deployment */
    CPS_CFG_CUSTOM,      /* a mapping or a value the section walker reads itself */
};

enum {
    CPS_CFG_LO_OPEN = 1 << 0,  /* lo itself is not allowed */
    CPS_CFG_NO_HI = 1 << 1,    /* no upper bound */
    CPS_CFG_HI_OPEN = 1 << 2,  /* hi itself is not allowed */
    CPS_CFG_ZERO_OK = 1 << 3,  /* a duration may be 0 */
    CPS_CFG_NULL_OK = 1 << 4,  /* a string may be null (NULL) */
    CPS_CFG_TUNABLE = 1 << 5,  /* searched by `cpscale tune` */
    CPS_CFG_DEPRECATED = 1 << 6, /* read and checked, but no effect: a warning, never printed */
    CPS_CFG_PERCENT = 1 << 7,  /* a number written "1%" (or as the fraction 0.01), printed "1%" */
};

#define CPS_CFG_NO_FIELD ((size_t)-1)

struct cps_config_row {
    enum cps_config_section section;
    const char *name;        /* NULL for queries: metric.c spells them (cps_config_row_name) */
    enum cps_config_type type;
    size_t offset;           /* into the section's struct, or CPS_CFG_NO_FIELD */
    double def;              /* numeric default (int, number, bool, enum, durations) */
    const char *def_text;    /* string default, or NULL */
    double lo, hi;           /* range of numbers and ints */
    unsigned flags;          /* CPS_CFG_* */
    const char *const *names; /* enum spellings, by value */
    size_t n_names;
    int (*valid)(const char *text); /* a string's check, or NULL */
    const char *invalid;     /* printf format of its failure: path, shown value */
    int metric;              /* queries: the enum cps_metric whose key this is */
};

extern const struct cps_config_row cps_config_rows[CPS_KEY_COUNT];

/* The first row of a section and how many it has. */
const struct cps_config_row *cps_config_section_rows(enum cps_config_section section,
                                                     size_t *n_rows);

/* A key's name as written in config.yaml. */
const char *cps_config_key_name(enum cps_config_key key);
const char *cps_config_row_name(const struct cps_config_row *row);

/* The names of a section's keys, in row order, into names[0..max): the
 * count. */
size_t cps_config_section_names(enum cps_config_section section, const char **names,
                                size_t max);

/* The spelling of an enum value of an enum row (names[0] when out of range). */
const char *cps_config_enum_name(const struct cps_config_row *row, int value);

/* The field of `row` inside `base` (the section's struct). */
void *cps_config_field(const struct cps_config_row *row, void *base);
const void *cps_config_cfield(const struct cps_config_row *row, const void *base);

/* Set every field of a section to its row's default; strings are copied
 * (free'd first). 0, or -1 when out of memory. */
int cps_config_section_defaults(enum cps_config_section section, void *base);

/* Whether the field of `row` is equal in two section structs (strings by
 * content, NULL equal only to NULL). Custom rows compare equal. */
int cps_config_field_equal(const struct cps_config_row *row, const void *a, const void *b);

/* Free the string fields of a section (CPS_CFG_STRING and CPS_CFG_QUERY
 * rows) and set them to NULL. */
void cps_config_section_release(enum cps_config_section section, void *base);

/* A fingerprint's mixer: called with the bytes of one field. */
typedef void (*cps_config_fold_cb)(void *ctx, const void *bytes, size_t n);

/* Call `fold` on every field of a section that is a setting (numbers,
 * durations, enums, booleans; not names or queries), in row order, mappings
 * (behavior rules and their policies) included. */
void cps_config_section_fold(enum cps_config_section section, const void *base,
                             cps_config_fold_cb fold, void *ctx);

/* The same for every section of a target, plus capacity_auto and
 * on_missing, which no row holds: what a target's decisions depend on. */
void cps_config_target_fold(const struct cps_target *t, cps_config_fold_cb fold, void *ctx);

/* String checks used by rows and the target walker. A kind is CamelCase
 * letters and digits, at most CPS_K8S_DNS_LABEL_MAX (63) of them, as
 * Kubernetes allows; controller/kube.h's CPS_KUBE_RESOURCE_MAX is sized
 * from the same limit, so every kind accepted here has a resource. */
int cps_config_is_kind(const char *s);
int cps_config_is_api_version(const char *s);
int cps_config_is_header_name(const char *s);
int cps_config_is_header_value(const char *s);

/* The apiVersion of kinds with a scale subresource whose group we know
 * (Deployment, StatefulSet, ReplicaSet: apps/v1), else NULL. */
const char *cps_config_known_api_version(const char *kind);

#endif
