#include "cli_flags.h"

#include <getopt.h>

/* The most flags one command takes, with room to grow. */
#define CLI_FLAGS_PER_COMMAND_MAX 48

struct flag_row {
    const char *name;
    int has_arg; /* getopt's no_argument, required_argument, optional_argument */
};

static const struct flag_row flag_rows[CLI_FLAG_END - CLI_FLAG_FIRST_LONG] = {
    [CLI_FLAG_BACKFILL - CLI_FLAG_FIRST_LONG] = {"backfill", required_argument},
    [CLI_FLAG_BASE_LATENCY - CLI_FLAG_FIRST_LONG] = {"base-latency", required_argument},
    [CLI_FLAG_BUDGET - CLI_FLAG_FIRST_LONG] = {"budget", required_argument},
    [CLI_FLAG_BUDGET_WINDOW - CLI_FLAG_FIRST_LONG] = {"budget-window", required_argument},
    [CLI_FLAG_BURSTS_PER_DAY - CLI_FLAG_FIRST_LONG] = {"bursts-per-day", required_argument},
    [CLI_FLAG_CANDIDATES - CLI_FLAG_FIRST_LONG] = {"candidates", required_argument},
    [CLI_FLAG_CAPACITY_DRIFT - CLI_FLAG_FIRST_LONG] = {"capacity-drift", required_argument},
    [CLI_FLAG_CONFIG - CLI_FLAG_FIRST_LONG] = {"config", required_argument},
    [CLI_FLAG_CONTEXT - CLI_FLAG_FIRST_LONG] = {"context", required_argument},
    [CLI_FLAG_DAYS - CLI_FLAG_FIRST_LONG] = {"days", required_argument},
    [CLI_FLAG_DEPLOYMENT - CLI_FLAG_FIRST_LONG] = {"deployment", required_argument},
    [CLI_FLAG_DRY_RUN - CLI_FLAG_FIRST_LONG] = {"dry-run", no_argument},
    [CLI_FLAG_FROM - CLI_FLAG_FIRST_LONG] = {"from", required_argument},
    [CLI_FLAG_HPA_TARGET - CLI_FLAG_FIRST_LONG] = {"hpa-target", required_argument},
    [CLI_FLAG_IDENTITY - CLI_FLAG_FIRST_LONG] = {"identity", required_argument},
    [CLI_FLAG_INPUT - CLI_FLAG_FIRST_LONG] = {"input", required_argument},
    [CLI_FLAG_INTERVAL - CLI_FLAG_FIRST_LONG] = {"interval", required_argument},
    [CLI_FLAG_JOBS - CLI_FLAG_FIRST_LONG] = {"jobs", required_argument},
    [CLI_FLAG_JSON - CLI_FLAG_FIRST_LONG] = {"json", no_argument},
    [CLI_FLAG_KUBECONFIG - CLI_FLAG_FIRST_LONG] = {"kubeconfig", required_argument},
    [CLI_FLAG_KUBE_TIMEOUT - CLI_FLAG_FIRST_LONG] = {"kube-timeout", required_argument},
    [CLI_FLAG_LAG - CLI_FLAG_FIRST_LONG] = {"lag", required_argument},
    [CLI_FLAG_LEADER_ELECT - CLI_FLAG_FIRST_LONG] = {"leader-elect", optional_argument},
    [CLI_FLAG_LISTEN - CLI_FLAG_FIRST_LONG] = {"listen", required_argument},
    [CLI_FLAG_LOG_FORMAT - CLI_FLAG_FIRST_LONG] = {"log-format", required_argument},
    [CLI_FLAG_LOG_LEVEL - CLI_FLAG_FIRST_LONG] = {"log-level", required_argument},
    [CLI_FLAG_MAX_BODY - CLI_FLAG_FIRST_LONG] = {"max-body", required_argument},
    [CLI_FLAG_MAX_REPLICAS - CLI_FLAG_FIRST_LONG] = {"max-replicas", required_argument},
    [CLI_FLAG_MERGE - CLI_FLAG_FIRST_LONG] = {"merge", no_argument},
    [CLI_FLAG_MIN_REPLICAS - CLI_FLAG_FIRST_LONG] = {"min-replicas", required_argument},
    [CLI_FLAG_NAMESPACE - CLI_FLAG_FIRST_LONG] = {"namespace", required_argument},
    [CLI_FLAG_NOISE - CLI_FLAG_FIRST_LONG] = {"noise", required_argument},
    [CLI_FLAG_ONCE - CLI_FLAG_FIRST_LONG] = {"once", no_argument},
    [CLI_FLAG_OUTPUT - CLI_FLAG_FIRST_LONG] = {"output", required_argument},
    [CLI_FLAG_PEAK - CLI_FLAG_FIRST_LONG] = {"peak", required_argument},
    [CLI_FLAG_PLOT - CLI_FLAG_FIRST_LONG] = {"plot", required_argument},
    [CLI_FLAG_POLICY - CLI_FLAG_FIRST_LONG] = {"policy", required_argument},
    [CLI_FLAG_PRICE - CLI_FLAG_FIRST_LONG] = {"price", required_argument},
    [CLI_FLAG_PROMETHEUS - CLI_FLAG_FIRST_LONG] = {"prometheus", required_argument},
    [CLI_FLAG_QUIET - CLI_FLAG_FIRST_LONG] = {"quiet", no_argument},
    [CLI_FLAG_RECORD_POLICY - CLI_FLAG_FIRST_LONG] = {"record-policy", required_argument},
    [CLI_FLAG_RECORD_STEP - CLI_FLAG_FIRST_LONG] = {"record-step", required_argument},
    [CLI_FLAG_RECORD_TRACE - CLI_FLAG_FIRST_LONG] = {"record-trace", required_argument},
    [CLI_FLAG_ROUTING - CLI_FLAG_FIRST_LONG] = {"routing", required_argument},
    [CLI_FLAG_SATURATED_ABOVE - CLI_FLAG_FIRST_LONG] = {"saturated-above", required_argument},
    [CLI_FLAG_SCALE - CLI_FLAG_FIRST_LONG] = {"scale", required_argument},
    [CLI_FLAG_SEED - CLI_FLAG_FIRST_LONG] = {"seed", required_argument},
    [CLI_FLAG_SERVICEACCOUNT_DIR - CLI_FLAG_FIRST_LONG] = {"serviceaccount-dir", required_argument},
    [CLI_FLAG_SERVICE_RATE - CLI_FLAG_FIRST_LONG] = {"service-rate", required_argument},
    [CLI_FLAG_SERVICE_TIMES - CLI_FLAG_FIRST_LONG] = {"service-times", required_argument},
    [CLI_FLAG_SHARD - CLI_FLAG_FIRST_LONG] = {"shard", required_argument},
    [CLI_FLAG_SHUTDOWN_GRACE - CLI_FLAG_FIRST_LONG] = {"shutdown-grace", required_argument},
    [CLI_FLAG_SLO - CLI_FLAG_FIRST_LONG] = {"slo", required_argument},
    [CLI_FLAG_STARTUP - CLI_FLAG_FIRST_LONG] = {"startup", required_argument},
    [CLI_FLAG_STARTUP_JITTER - CLI_FLAG_FIRST_LONG] = {"startup-jitter", required_argument},
    [CLI_FLAG_STEP - CLI_FLAG_FIRST_LONG] = {"step", required_argument},
    [CLI_FLAG_STEPS - CLI_FLAG_FIRST_LONG] = {"steps", required_argument},
    [CLI_FLAG_STEPS_EVERY - CLI_FLAG_FIRST_LONG] = {"steps-every", required_argument},
    [CLI_FLAG_TIMEOUT - CLI_FLAG_FIRST_LONG] = {"timeout", required_argument},
    [CLI_FLAG_TO - CLI_FLAG_FIRST_LONG] = {"to", required_argument},
    [CLI_FLAG_TRAIN_FRACTION - CLI_FLAG_FIRST_LONG] = {"train-fraction", required_argument},
    [CLI_FLAG_WATCH - CLI_FLAG_FIRST_LONG] = {"watch", optional_argument},
    [CLI_FLAG_WATCH_TIMEOUT - CLI_FLAG_FIRST_LONG] = {"watch-timeout", required_argument},
    [CLI_FLAG_WATCH_PROGRESS_TIMEOUT - CLI_FLAG_FIRST_LONG] = {"watch-progress-timeout",
                                                               required_argument},
    [CLI_FLAG_WINDOW - CLI_FLAG_FIRST_LONG] = {"window", required_argument},
    [CLI_FLAG_WITH_COST - CLI_FLAG_FIRST_LONG] = {"with-cost", no_argument},
    [CLI_FLAG_WORLD_SEED - CLI_FLAG_FIRST_LONG] = {"world-seed", required_argument},
};

static const struct flag_row help_row = {"help", no_argument};

int cli_getopt(int argc, char **argv, const char *optstring, const enum cli_flag *flags,
               size_t n)
{
    struct option table[CLI_FLAGS_PER_COMMAND_MAX + 1];
    size_t used = 0;
    for (size_t i = 0; i < n && used < CLI_FLAGS_PER_COMMAND_MAX; i++) {
        const struct flag_row *row = flags[i] == CLI_FLAG_HELP
                                         ? &help_row
                                         : &flag_rows[flags[i] - CLI_FLAG_FIRST_LONG];
        table[used].name = row->name;
        table[used].has_arg = row->has_arg;
        table[used].flag = NULL;
        table[used].val = (int)flags[i];
        used++;
    }
    table[used] = (struct option){NULL, 0, NULL, 0};
    return getopt_long(argc, argv, optstring, table, NULL);
}
