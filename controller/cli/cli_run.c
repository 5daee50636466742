/*
 * `cpscale run`: the command line of the controller. Parses the options
 * into a struct cps_run_options, sets up logging and hands over to
 * cps_controller_run() (controller/lifecycle.c).
 */
#include <getopt.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "cli_flags.h"
#include "commands.h"
#include "controller.h"
#include "duration.h"
#include "err.h"
#include "log.h"

#define LOG_FD 2                  /* stderr */
#define MIN_WATCH_TIMEOUT_MS 1000
/* above a minute: bookmarks come about once a minute, and a v1.24 server
 * sends none on a quiet watch (then the watch is re-listed this often) */
#define DEFAULT_WATCH_PROGRESS_TIMEOUT_MS 90000
#define MIN_WATCH_PROGRESS_TIMEOUT_MS 1000
#define HELP_SHOWN (-1)           /* parse_run_args: --help printed, exit 0 */


static void run_usage(FILE *out)
{
    fputs("NAME\n"
          "    cpscale run - the controller: keep each target at the cheapest replica\n"
          "    count that meets its SLO, cost target and budget\n"
          "\n"
          "SYNOPSIS\n"
          "    cpscale run --config FILE [--kubeconfig FILE [--context NAME]]\n"
          "                [--dry-run] [--once] [--leader-elect=true|false]\n"
          "                [--log-format text|json] [--log-level debug|info|warn|error]\n"
          "                [--listen ADDR:PORT] [--identity NAME] [--serviceaccount-dir DIR]\n"
          "\n"
          "DESCRIPTION\n"
          "    Every `interval` the controller sends, in parallel on one event loop, one\n"
          "    Prometheus instant query per distinct query. Deployments are read from a\n"
          "    LIST+WATCH cache (client-go's informer pattern, re-listing on 410 Gone);\n"
          "    while that cache is not in sync, and for other kinds, each target gets a\n"
          "    GET of its scale subresource and of the object. It decides with the same code as\n"
          "    `cpscale sim` and, only while holding the leader Lease, PATCHes the scale\n"
          "    subresource (merge patch carrying the resourceVersion) and posts an\n"
          "    events.k8s.io/v1 Event. A missing, stale, NaN or negative metric never\n"
          "    leads to a scale-down. One log line per target per tick; /metrics,\n"
          "    /healthz and /readyz are served on `listen`.\n"
          "\n"
          "    The config file is reloaded when it changes (a ConfigMap update swaps a\n"
          "    symlink) and on SIGHUP; an invalid file is refused, logged and counted,\n"
          "    and the previous config stays in force. SIGTERM lets the tick in flight\n"
          "    finish (at most --shutdown-grace), releases the Lease and exits 0.\n"
          "\n"
          "OPTIONS\n"
          "    --config FILE            the config (see config/default.yaml)\n"
          "    --kubeconfig FILE        use this kubeconfig's current context instead of\n"
          "                             the in-cluster service account\n"
          "    --context NAME           a kubeconfig context other than the current one\n"
          "    --serviceaccount-dir DIR token and ca.crt in-cluster (default\n"
          "                             " CPS_KUBE_DEFAULT_SA_DIR ")\n"
          "    --dry-run                decide, log and export metrics; never PATCH\n"
          "    --once                   run one tick, then exit\n"
          "    --leader-elect=BOOL      override leader_election.enabled; false runs a\n"
          "                             single replica without a Lease\n"
          "    --identity NAME          Lease holder identity (default $POD_NAME, then\n"
          "                             the host name)\n"
          "    --listen ADDR:PORT       override `listen` (port 0 picks a free port)\n"
          "    --log-format text|json   logfmt (default) or one JSON object per line\n"
          "    --log-level LEVEL        debug, info (default), warn or error\n"
          "    --shutdown-grace DURATION  how long SIGTERM waits for a tick (default 5s)\n"
          "    --kube-timeout DURATION    timeout of each Kubernetes request (default 10s)\n"
          "    --watch=BOOL             read Deployments from a LIST+WATCH cache (default\n"
          "                             true); false sends two GETs per target per tick\n"
          "    --watch-timeout DURATION   reopen each watch after this (default 5m)\n"
          "    --watch-progress-timeout DURATION  close a watch that brings no event\n"
          "                             and no bookmark for this long, read targets with\n"
          "                             GETs and list again (default 90s)\n"
          "    --backfill DURATION      on start, on becoming leader and for targets a\n"
          "                             reload adds: rebuild the policy's learned state\n"
          "                             from this much Prometheus history (default 24h;\n"
          "                             0 disables; not with --once)\n"
          "    -h, --help               this text\n"
          "\n"
          "EXIT STATUS\n"
          "    0 after SIGTERM/SIGINT or --once; 1 when it cannot start (Kubernetes\n"
          "    credentials, the listen address); 2 for a usage or config error.\n"
          "\n"
          "EXAMPLES\n"
          "    cpscale run --config /etc/cpscale/config.yaml\n"
          "    cpscale run --config config.yaml --kubeconfig ~/.kube/config --dry-run --once\n",
          out);
}

/* Parse "true"/"false" (and 1/0, yes/no). -1 when neither. */
static int parse_bool(const char *text)
{
    if (!strcasecmp(text, "true") || !strcmp(text, "1") || !strcasecmp(text, "yes"))
        return 1;
    if (!strcasecmp(text, "false") || !strcmp(text, "0") || !strcasecmp(text, "no"))
        return 0;
    return -1;
}

/* An optional boolean flag: absent value means true. 0, or -1 after saying
 * what the flag takes. */
static int bool_flag(const char *name, const char *value, int *out)
{
    *out = value ? parse_bool(value) : 1;
    if (*out >= 0)
        return 0;
    fprintf(stderr, "cpscale run: --%s takes true or false\n", name);
    return -1;
}

/* run's duration flags: the least each accepts and what a refusal says. */
static const struct duration_flag {
    int id;
    const char *name;
    int64_t min_ms;
    const char *wanted;
    size_t offset; /* of the int64_t in struct cps_run_options */
} duration_flags[] = {
    {CLI_FLAG_BACKFILL, "backfill", 0, "a duration (24h; 0 disables)",
     offsetof(struct cps_run_options, backfill_ms)},
    {CLI_FLAG_SHUTDOWN_GRACE, "shutdown-grace", 0, "a duration (5s)",
     offsetof(struct cps_run_options, shutdown_grace_ms)},
    {CLI_FLAG_WATCH_TIMEOUT, "watch-timeout", MIN_WATCH_TIMEOUT_MS, "a duration of 1s or more",
     offsetof(struct cps_run_options, watch_timeout_ms)},
    {CLI_FLAG_KUBE_TIMEOUT, "kube-timeout", 1, "a duration (10s)",
     offsetof(struct cps_run_options, kube_timeout_ms)},
    {CLI_FLAG_WATCH_PROGRESS_TIMEOUT, "watch-progress-timeout",
     MIN_WATCH_PROGRESS_TIMEOUT_MS,
     "a duration of 1s or more", offsetof(struct cps_run_options, watch_progress_timeout_ms)},
};

/* Set the duration flag `id` of options from value. 0, or -1 after saying
 * "--NAME takes WANTED". */
static int duration_flag(int id, const char *value, struct cps_run_options *options)
{
    for (size_t i = 0; i < sizeof duration_flags / sizeof duration_flags[0]; i++) {
        const struct duration_flag *f = &duration_flags[i];
        if (f->id != id)
            continue;
        int64_t *out_ms = (int64_t *)((char *)options + f->offset);
        if (cps_duration_parse(value, out_ms) == 0 && *out_ms >= f->min_ms)
            return 0;
        fprintf(stderr, "cpscale run: --%s takes %s\n", f->name, f->wanted);
        return -1;
    }
    return -1;
}

/* Fill options from argv; 0, HELP_SHOWN, or an exit code (usage errors
 * print why). */
static int parse_run_args(int argc, char **argv, struct cps_run_options *options,
                          enum cps_log_format *format, int *level)
{
    static const enum cli_flag run_flags[] = {
        CLI_FLAG_CONFIG, CLI_FLAG_KUBECONFIG, CLI_FLAG_CONTEXT,
        CLI_FLAG_SERVICEACCOUNT_DIR, CLI_FLAG_DRY_RUN, CLI_FLAG_ONCE,
        CLI_FLAG_LEADER_ELECT, CLI_FLAG_IDENTITY, CLI_FLAG_LISTEN, CLI_FLAG_LOG_FORMAT,
        CLI_FLAG_LOG_LEVEL, CLI_FLAG_SHUTDOWN_GRACE, CLI_FLAG_KUBE_TIMEOUT, CLI_FLAG_WATCH,
        CLI_FLAG_WATCH_TIMEOUT, CLI_FLAG_WATCH_PROGRESS_TIMEOUT, CLI_FLAG_BACKFILL, CLI_FLAG_HELP,
    };
    options->leader_elect = -1;
    options->shutdown_grace_ms = CPS_RUN_DEFAULT_SHUTDOWN_GRACE_MS;
    options->kube_timeout_ms = CPS_RUN_DEFAULT_KUBE_TIMEOUT_MS;
    options->watch = 1;
    options->watch_timeout_ms = CPS_RUN_DEFAULT_WATCH_TIMEOUT_MS;
    options->watch_progress_timeout_ms = DEFAULT_WATCH_PROGRESS_TIMEOUT_MS;
    options->backfill_ms = CPS_BACKFILL_DEFAULT_SPAN_MS;
    optind = 1;
    opterr = 0;
    int c;
    while ((c = cli_getopt(argc, argv, "h", run_flags, CLI_N_FLAGS(run_flags))) != -1) {
        switch (c) {
        case CLI_FLAG_CONFIG: options->config_path = optarg; break;
        case CLI_FLAG_KUBECONFIG: options->kubeconfig = optarg; break;
        case CLI_FLAG_CONTEXT: options->context = optarg; break;
        case CLI_FLAG_SERVICEACCOUNT_DIR: options->serviceaccount_dir = optarg; break;
        case CLI_FLAG_DRY_RUN: options->dry_run = 1; break;
        case CLI_FLAG_ONCE: options->once = 1; break;
        case CLI_FLAG_IDENTITY: options->identity = optarg; break;
        case CLI_FLAG_LISTEN: options->listen = optarg; break;
        case CLI_FLAG_LEADER_ELECT:
            if (bool_flag("leader-elect", optarg, &options->leader_elect) < 0)
                return CPS_EXIT_USAGE;
            break;
        case CLI_FLAG_LOG_FORMAT:
            if (strcmp(optarg, "text") == 0)
                *format = CPS_LOG_TEXT;
            else if (strcmp(optarg, "json") == 0)
                *format = CPS_LOG_JSON;
            else {
                fprintf(stderr, "cpscale run: --log-format takes text or json\n");
                return CPS_EXIT_USAGE;
            }
            break;
        case CLI_FLAG_LOG_LEVEL:
            *level = cps_log_level_parse(optarg);
            if (*level < 0) {
                fprintf(stderr, "cpscale run: --log-level takes debug, info, warn or error\n");
                return CPS_EXIT_USAGE;
            }
            break;
        case CLI_FLAG_WATCH:
            if (bool_flag("watch", optarg, &options->watch) < 0)
                return CPS_EXIT_USAGE;
            break;
        case CLI_FLAG_BACKFILL:
        case CLI_FLAG_SHUTDOWN_GRACE:
        case CLI_FLAG_WATCH_TIMEOUT:
        case CLI_FLAG_KUBE_TIMEOUT:
        case CLI_FLAG_WATCH_PROGRESS_TIMEOUT:
            if (duration_flag(c, optarg, options) < 0)
                return CPS_EXIT_USAGE;
            break;
        case CLI_FLAG_HELP:
            run_usage(stdout);
            return HELP_SHOWN;
        default:
            fprintf(stderr, "cpscale run: unknown or incomplete option \"%s\" (see --help)\n",
                    argv[optind - 1]);
            return CPS_EXIT_USAGE;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "cpscale run: unexpected argument \"%s\"\n", argv[optind]);
        return CPS_EXIT_USAGE;
    }
    if (!options->config_path) {
        fprintf(stderr, "cpscale run: --config FILE is required (see --help)\n");
        return CPS_EXIT_USAGE;
    }
    return 0;
}


int cli_run(int argc, char **argv)
{
    struct cps_run_options options;
    memset(&options, 0, sizeof options);
    enum cps_log_format format = CPS_LOG_TEXT;
    int level = CPS_LOG_INFO;
    int rc = parse_run_args(argc, argv, &options, &format, &level);
    if (rc == HELP_SHOWN)
        return CPS_EXIT_OK;
    if (rc != 0)
        return rc;
    cps_log_setup(format, (enum cps_log_level)level, LOG_FD);
    return cps_controller_run(&options);
}
