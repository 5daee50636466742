/*
 * Which PromQL text a target uses for a metric: its own query when it has
 * one, else the cluster-wide one. The one rule, for the controller and for
 * `cpscale record`. Returns a pointer into the arguments (nobody frees),
 * NULL when neither sets one or the metric is not queried.
 */
#ifndef CPS_QUERY_PICK_H
#define CPS_QUERY_PICK_H

#include "config.h"
#include "metric.h"

const char *cps_query_pick(const struct cps_queries *own, const struct cps_queries *all,
                           enum cps_metric metric);

#endif
