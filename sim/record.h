/*
 * `cpscale record`: read one target's history from Prometheus (query_range,
 * with the target's own queries from config.yaml) and write it as a trace
 * CSV (SIM-MODEL §1): timestamp, qps, p95_ms, replicas, cost_per_pod_hour.
 *
 * This file is the only part of sim/ that talks to the network (libcurl);
 * it is built into the cpscale binary, not into the simulator library. The
 * decoding lives in prom_range.c, which is pure.
 */
#ifndef CPS_SIM_RECORD_H
#define CPS_SIM_RECORD_H

/* The command; returns the exit code. */
int cps_record_main(int argc, char **argv);

#endif
