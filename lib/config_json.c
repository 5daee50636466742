/*
 * The tunable settings of a target as JSON, in the config's key names from
 * the schema rows. The contract is in config.h.
 */
#include <jansson.h>
#include <stdint.h>

#include "config_schema.h"
#include "duration.h"

/* A row's field as JSON: numbers as reals, durations as their config text,
 * enums as their spelling, booleans as booleans. */
static json_t *row_json(const struct cps_config_row *row, const void *base)
{
    const void *field = cps_config_cfield(row, base);
    char text[CPS_DURATION_TEXT_MAX];
    switch (row->type) {
    case CPS_CFG_INT32: return json_integer(*(const int32_t *)field);
    case CPS_CFG_NUMBER: return json_real(*(const double *)field);
    case CPS_CFG_BOOL: return json_boolean(*(const int *)field);
    case CPS_CFG_ENUM: return json_string(cps_config_enum_name(row, *(const int *)field));
    case CPS_CFG_DURATION:
        cps_duration_format(text, sizeof text, *(const int64_t *)field);
        return json_string(text);
    default: return json_null(); /* not used for the tunable rows */
    }
}

/* The rows of a section (those with `flags`, when not 0) into `object`. */
static void section_json(json_t *object, enum cps_config_section section, const void *base,
                         unsigned flags)
{
    size_t n;
    const struct cps_config_row *rows = cps_config_section_rows(section, &n);
    for (size_t i = 0; i < n; i++)
        if (rows[i].type != CPS_CFG_CUSTOM && (!flags || (rows[i].flags & flags)))
            json_object_set_new(object, cps_config_row_name(&rows[i]), row_json(&rows[i], base));
}

static json_t *rules_json(const struct cps_scaling_rules *r)
{
    json_t *o = json_object(), *list = json_array();
    section_json(o, CPS_SEC_RULES, r, 0);
    for (int i = 0; i < r->n_policies && i < CPS_MAX_SCALING_POLICIES; i++) {
        json_t *p = json_object();
        section_json(p, CPS_SEC_POLICY_ITEM, &r->policies[i], 0);
        json_array_append_new(list, p);
    }
    json_object_set_new(o, cps_config_key_name(CPS_KEY_RULES_POLICIES), list);
    return o;
}

json_t *cps_config_tunables_json(const struct cps_target *t)
{
    json_t *o = json_object(), *policy = json_object(), *behavior = json_object();
    section_json(policy, CPS_SEC_POLICY, &t->policy, CPS_CFG_TUNABLE);
    json_object_set_new(o, "capacity_rps_per_pod",
                        t->capacity_auto ? json_string("auto")
                                         : json_real(t->capacity_rps_per_pod));
    json_object_set_new(behavior, cps_config_key_name(CPS_KEY_BEH_SCALE_UP),
                        rules_json(&t->behavior.scale_up));
    json_object_set_new(behavior, cps_config_key_name(CPS_KEY_BEH_SCALE_DOWN),
                        rules_json(&t->behavior.scale_down));
    json_object_set_new(o, cps_config_key_name(CPS_KEY_T_POLICY), policy);
    json_object_set_new(o, cps_config_key_name(CPS_KEY_T_BEHAVIOR), behavior);
    return o;
}
