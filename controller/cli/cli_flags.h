/*
 * Every command-line flag of every cpscale command, each spelled once: its
 * name and whether it takes a value live in one row of cli_flags.c, and a
 * command lists the flags it takes by id. A flag shared by several commands
 * (--config, --json, --slo, ...) is therefore the same flag everywhere, and
 * getopt's table cannot drift from the ids a command switches on.
 */
#ifndef CPS_CLI_FLAGS_H
#define CPS_CLI_FLAGS_H

#include <stddef.h>

enum cli_flag {
    CLI_FLAG_HELP = 'h',       /* --help (and -h where a command's optstring has it) */
    CLI_FLAG_FIRST_LONG = 256, /* past every character getopt can return */
    CLI_FLAG_BACKFILL = CLI_FLAG_FIRST_LONG,
    CLI_FLAG_BASE_LATENCY,
    CLI_FLAG_BUDGET,
    CLI_FLAG_BUDGET_WINDOW,
    CLI_FLAG_BURSTS_PER_DAY,
    CLI_FLAG_CANDIDATES,
    CLI_FLAG_CAPACITY_DRIFT,
    CLI_FLAG_CONFIG,
    CLI_FLAG_CONTEXT,
    CLI_FLAG_DAYS,
    CLI_FLAG_DEPLOYMENT,
    CLI_FLAG_DRY_RUN,
    CLI_FLAG_FROM,
    CLI_FLAG_HPA_TARGET,
    CLI_FLAG_IDENTITY,
    CLI_FLAG_INPUT,
    CLI_FLAG_INTERVAL,
    CLI_FLAG_JOBS,
    CLI_FLAG_JSON,
    CLI_FLAG_KUBECONFIG,
    CLI_FLAG_KUBE_TIMEOUT,
    CLI_FLAG_LAG,
    CLI_FLAG_LEADER_ELECT,
    CLI_FLAG_LISTEN,
    CLI_FLAG_LOG_FORMAT,
    CLI_FLAG_LOG_LEVEL,
    CLI_FLAG_MAX_BODY,
    CLI_FLAG_MAX_REPLICAS,
    CLI_FLAG_MERGE,
    CLI_FLAG_MIN_REPLICAS,
    CLI_FLAG_NAMESPACE,
    CLI_FLAG_NOISE,
    CLI_FLAG_ONCE,
    CLI_FLAG_OUTPUT,
    CLI_FLAG_PEAK,
    CLI_FLAG_PLOT,
    CLI_FLAG_POLICY,
    CLI_FLAG_PRICE,
    CLI_FLAG_PROMETHEUS,
    CLI_FLAG_QUIET,
    CLI_FLAG_RECORD_POLICY,
    CLI_FLAG_RECORD_STEP,
    CLI_FLAG_RECORD_TRACE,
    CLI_FLAG_ROUTING,
    CLI_FLAG_SATURATED_ABOVE,
    CLI_FLAG_SCALE,
    CLI_FLAG_SEED,
    CLI_FLAG_SERVICEACCOUNT_DIR,
    CLI_FLAG_SERVICE_RATE,
    CLI_FLAG_SERVICE_TIMES,
    CLI_FLAG_SHARD,
    CLI_FLAG_SHUTDOWN_GRACE,
    CLI_FLAG_SLO,
    CLI_FLAG_STARTUP,
    CLI_FLAG_STARTUP_JITTER,
    CLI_FLAG_STEP,
    CLI_FLAG_STEPS,
    CLI_FLAG_STEPS_EVERY,
    CLI_FLAG_TIMEOUT,
    CLI_FLAG_TO,
    CLI_FLAG_TRAIN_FRACTION,
    CLI_FLAG_WATCH,
    CLI_FLAG_WATCH_TIMEOUT,
    CLI_FLAG_WATCH_PROGRESS_TIMEOUT,
    CLI_FLAG_WINDOW,
    CLI_FLAG_WITH_COST,
    CLI_FLAG_WORLD_SEED,
    CLI_FLAG_END
};

#define CLI_N_FLAGS(list) (sizeof(list) / sizeof((list)[0]))

/*
 * getopt_long over the flags a command takes (n ids in flags), with
 * optstring for its short options. Returns what getopt_long returns: the
 * flag's id, '?' for an unknown flag or a missing value, -1 at the end.
 * The getopt table is rebuilt on each call from the one flag table (a
 * command has a few dozen flags at most, so this costs nothing).
 */
int cli_getopt(int argc, char **argv, const char *optstring, const enum cli_flag *flags,
               size_t n);

#endif
