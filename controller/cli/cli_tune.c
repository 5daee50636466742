/* `cpscale tune TRACE.csv...`: search the policy's parameters (see tune.h). */
#include <dirent.h>
#include <errno.h>
#include <getopt.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli_common.h"
#include "cli_flags.h"
#include "commands.h"
#include "decimal.h"
#include "pool.h"
#include "trace_runs.h"
#include "tune.h"
#include "tune_merge.h"
#include "whatif.h"
#include "world.h"

#define PERCENT 100.0
#define DEFAULT_CANDIDATES 256
#define DEFAULT_BUDGET_PCT 1.0
#define DEFAULT_TRAIN_FRACTION 0.5
#define DEFAULT_SEED 1
#define DEFAULT_MIN_REPLICAS 1
#define DEFAULT_MAX_REPLICAS 1000
/* Each part of a trace must be at least this long to say anything. */
#define MIN_PART_S 1800
/* --seed takes integers a double holds exactly: up to 2^53. */
#define SEED_MAX 9007199254740992.0
/* Shard files are small; anything bigger is not one. */
#define SHARD_FILE_MAX_BYTES (256u << 20)

static void tune_usage(FILE *out)
{
    fputs("NAME\n"
          "    cpscale tune - search the cpscale policy's parameters on recorded traces\n"
          "\n"
          "SYNOPSIS\n"
          "    cpscale tune TRACE.csv[:SCALE]... [--config FILE] [--scale S] [--budget 1%]\n"
          "                 [--train-fraction 0.5] [--candidates N] [--seed N] [--jobs N]\n"
          "                 [--min-replicas N] [--max-replicas N] [--shard i/N]\n"
          "                 [--output FILE] [--json] [--quiet]\n"
          "    cpscale tune --merge FILE|DIR... [--output FILE] [--json]\n"
          "\n"
          "DESCRIPTION\n"
          "    Searches the `policy:` keys headroom_quantile, scale_down_quantile,\n"
          "    volatility_halflife, and the `behavior:` rails\n"
          "    (scale-down stabilization window, scale-down Percent policy and its\n"
          "    period, scale-up Pods and Percent policies per 15 s) and capacity.rps_per_pod\n"
          "    (auto, or 30..100 % of the world's SLO-safe rate per pod: a fixed safety\n"
          "    factor, for traffic with spikes faster than pods start) for the lowest cost\n"
          "    whose SLO violation % stays within --budget on the training part of every\n"
          "    trace (on a trace where no HPA target gets that low, within the fewest\n"
          "    violations any HPA target reaches there). The training part is the first --train-fraction of each trace;\n"
          "    the rest is the test part, replayed as a trace of its own. The world is\n"
          "    the config's `sim:` section (see cpscale calibrate).\n"
          "\n"
          "    The candidates are one list drawn from --seed: candidate 0 is the config\n"
          "    as it is, then alternately a local move from it and a draw from the whole\n"
          "    grid. Cost is compared as the mean over traces of cost / oracle cost;\n"
          "    ties go to the lower candidate. HPA's best CPU target (0.10 .. 0.95 in\n"
          "    steps of 0.05) is searched per trace the same way: the cheapest meeting\n"
          "    the budget on the training part.\n"
          "\n"
          "    It prints, per trace and part, the cost and violation % of the tuned\n"
          "    config, the starting config (default), HPA at its best target and the\n"
          "    oracle, each cost also against HPA's and the oracle's, then the\n"
          "    `defaults:` fragment of config.yaml with the winning policy and behavior.\n"
          "\n"
          "    The work runs on --jobs threads; the result depends only on the traces,\n"
          "    the config, the flags and --seed, never on --jobs or on sharding. With\n"
          "    --shard i/N it evaluates only its share of the candidates (those whose\n"
          "    index is i modulo N, and the HPA targets likewise) and writes its figures\n"
          "    as JSON; --merge reads the N shard files (or directories of *.json) and\n"
          "    prints exactly what one unsharded run prints. manifests/tune-job.yaml runs\n"
          "    the shards as a Kubernetes Indexed Job.\n"
          "\n"
          "OPTIONS\n"
          "    TRACE.csv[:SCALE]    a trace; SCALE multiplies its rates (on top of --scale)\n"
          "    --config FILE        start from this config's defaults: and sim: sections\n"
          "    --scale S            multiply every trace's rates, > 0 (default: the\n"
          "                         config's 1)\n"
          "    --budget P[%]        violation % allowed on each training part (default 1%);\n"
          "                         a percent: 0.5 is 0.5 %. Without '%', a number below\n"
          "                         0.1 is refused: it looks like a fraction (0.01 for\n"
          "                         1 %); write 0.05% for 0.05 %\n"
          "    --train-fraction F   share of each trace used for the search (default 0.5)\n"
          "    --candidates N       candidates to evaluate, candidate 0 included (default\n"
          "                         256)\n"
          "    --seed N             draws the candidates (default 1)\n"
          "    --jobs N             threads (default: online CPUs)\n"
          "    --min-replicas N     (default 1)    --max-replicas N   (default 1000)\n"
          "    --shard i/N          evaluate shard i of N (0 <= i < N) and write its JSON\n"
          "    --merge              the arguments are shard files or directories\n"
          "    --output FILE        the config fragment (with --shard: the shard JSON) to\n"
          "                         FILE; the report still goes to stdout\n"
          "    --json               the report as one JSON object\n"
          "    --quiet              no progress bar, no gap warnings\n"
          "    --help               this page\n"
          "\n"
          "EXIT STATUS\n"
          "    0 done (a warning on stderr when no candidate met the budget); 1 runtime\n"
          "    failure; 2 usage, config, trace or shard-file error.\n"
          "\n"
          "EXAMPLES\n"
          "    cpscale tune web-week.csv api-week.csv --budget 0.5% --config config.yaml\n"
          "    cpscale tune traces/web-1m.csv:900 traces/api-1m.csv:15 \\\n"
          "        --output tuned.yaml\n"
          "    for i in 0 1 2; do cpscale tune t.csv --shard $i/3 --output s$i.json; done\n"
          "    cpscale tune --merge s0.json s1.json s2.json\n",
          out);
}

/* Print the merged result: the table and fragment, or JSON; the fragment
 * also to `fragment_path` when given; a warning when no candidate met the
 * budget. Returns the exit code. */
static int report(const struct cps_tune_merged *m, int json, const char *fragment_path,
                  double elapsed_s)
{
    int rc = 0;
    if (json) {
        json_t *root = cps_tune_merged_json(m, elapsed_s);
        rc = json_dumpf(root, stdout, JSON_INDENT(2) | JSON_REAL_PRECISION(12));
        json_decref(root);
        if (rc == 0 && fputc('\n', stdout) == EOF)
            rc = -1;
    } else {
        rc = cps_tune_write_table(stdout, m);
    }
    if (rc == 0 && fflush(stdout) == EOF)
        rc = -1;
    if (rc < 0) {
        fprintf(stderr, "cpscale tune: writing the report failed\n");
        return CPS_EXIT_RUNTIME;
    }
    if (fragment_path) {
        FILE *f = fopen(fragment_path, "w");
        int failed = !f;
        if (f) {
            failed = fputs(m->fragment, f) == EOF;
            failed |= fclose(f) != 0;
        }
        if (failed) {
            fprintf(stderr, "cpscale tune: %s: cannot write the fragment: %s\n", fragment_path,
                    strerror(errno));
            return CPS_EXIT_RUNTIME;
        }
    }
    if (!m->best_feasible)
        fprintf(stderr, "cpscale tune: warning: no candidate met the %g %% budget on every "
                "training part\n",
                m->budget_pct);
    return CPS_EXIT_OK;
}

/* ---- the command ---------------------------------------------------------------- */

/* The command's number flags (shared parser, this command's name). */
static int parse_double_arg(const char *flag, const char *text, double lo, double hi, double *out)
{
    return cps_parse_number_arg("tune", flag, text, lo, hi, out);
}

/* --scale S: the world's rate multiplier, held to what `cpscale sim
 * --scale` accepts (> 0: scale 0 replays no request). */
static int parse_scale(const char *text, double *out)
{
    struct cps_err err;
    cps_err_clear(&err);
    if (cps_whatif_parse_value(CPS_WHATIF_SCALE, text, out, &err) == 0)
        return 0;
    cps_err_print(stderr, "cpscale tune: ", &err);
    return -1;
}

/*
 * Below this a budget written without '%' is refused. tune takes a percent
 * ("1" is 1 %) but the config's slo.violation_budget takes a bare number as
 * a fraction ("0.01" is 1 %): the same number in both places would ask tune
 * for a budget 100 times smaller, and the search would quietly buy the pods
 * to meet it. A bare number under 0.1 is far likelier such a fraction
 * (0.01, 0.005) than a percent (0.01 %); 0 means the same either way, and
 * from 0.1 up a fraction would be a budget of 10 % or more.
 */
#define BUDGET_BARE_MIN 0.1

/* "1%", "1", "0.5 %" -> percent: one optional '%', after optional blanks;
 * without the '%', 0 or at least BUDGET_BARE_MIN. */
static int parse_budget(const char *text, double *out)
{
    char buf[64];
    size_t n = strlen(text);
    if (n == 0 || n >= sizeof buf) {
        fprintf(stderr, "cpscale tune: --budget: \"%s\" is not a percentage\n", text);
        return -1;
    }
    memcpy(buf, text, n + 1);
    int percent_sign = buf[n - 1] == '%';
    if (percent_sign)
        buf[--n] = '\0';
    while (n > 0 && buf[n - 1] == ' ')
        buf[--n] = '\0';
    if (parse_double_arg("--budget", buf, 0.0, PERCENT, out) < 0)
        return -1;
    if (!percent_sign && *out > 0.0 && *out < BUDGET_BARE_MIN) {
        fprintf(stderr, "cpscale tune: --budget: \"%s\" would be %g %% of requests but looks "
                "like a fraction (slo.violation_budget's %s is %g %%): write \"%g%%\" for %g %%, "
                "or \"%s%%\" if %g %% is meant\n",
                text, *out, buf, *out * PERCENT, *out * PERCENT, *out * PERCENT, buf, *out);
        return -1;
    }
    return 0;
}

/* "i/N" with 0 <= i < N; prints the problem and returns -1 otherwise. */
static int parse_shard(const char *text, int *shard, int *shards)
{
    char *end = NULL;
    errno = 0;
    long i = strtol(text, &end, 10);
    if (errno || end == text || *end != '/') {
        fprintf(stderr, "cpscale tune: --shard: \"%s\" is not i/N\n", text);
        return -1;
    }
    const char *rest = end + 1;
    long n = strtol(rest, &end, 10);
    if (errno || end == rest || *end || n < 1 || n > CPS_TUNE_MAX_CANDIDATES || i < 0 || i >= n) {
        fprintf(stderr, "cpscale tune: --shard: \"%s\" needs 0 <= i < N\n", text);
        return -1;
    }
    *shard = (int)i;
    *shards = (int)n;
    return 0;
}

/* "FILE" or "FILE:SCALE" (when FILE:SCALE itself is not a file and SCALE is a
 * number). 0; -1 when out of memory; -2 when SCALE is a number outside
 * (0, CPS_SIM_MAX_RATE], sim's --scale range (printed). */
static int parse_trace_arg(const char *arg, char **path, double *scale)
{
    struct stat st;
    const char *colon = strrchr(arg, ':');
    *scale = 1.0;
    if (colon && stat(arg, &st) != 0) {
        char *end = NULL;
        errno = 0;
        double v = cps_strtod_decimal(colon + 1, &end);
        if (end != colon + 1 && !*end && (errno || !isfinite(v) || !(v > 0.0) ||
                                          v > CPS_SIM_MAX_RATE)) {
            fprintf(stderr, "cpscale tune: %s: the scale \"%s\" is out of range (must be > 0 and "
                    "<= 1e+12)\n", arg, colon + 1);
            return -2;
        }
        if (!errno && end != colon + 1 && !*end) {
            *path = strndup(arg, (size_t)(colon - arg));
            *scale = v;
            return *path ? 0 : -1;
        }
    }
    *path = strdup(arg);
    return *path ? 0 : -1;
}

/* Append path (malloc'd; NULL: out of memory) to a growing list, which
 * then owns it. 0, or -1 when out of memory (path freed). */
static int push_path(char ***list, size_t *count, size_t *cap, char *path)
{
    if (!path)
        return -1;
    if (*count == *cap) {
        char **grown = realloc(*list, 2 * *cap * sizeof **list);
        if (!grown) {
            free(path);
            return -1;
        }
        *list = grown;
        *cap *= 2;
    }
    (*list)[(*count)++] = path;
    return 0;
}

/* Shard files from the arguments: files as given, directories' *.json sorted. */
static int collect_shard_files(char **args, int n, char ***files, size_t *n_files)
{
    size_t cap = 16, count = 0;
    char **list = malloc(cap * sizeof *list);
    if (!list)
        return -1;
    for (int i = 0; i < n; i++) {
        struct stat st;
        if (stat(args[i], &st) == 0 && S_ISDIR(st.st_mode)) {
            struct dirent **entries = NULL;
            int m = scandir(args[i], &entries, NULL, alphasort);
            if (m < 0) {
                fprintf(stderr, "cpscale tune: %s: %s\n", args[i], strerror(errno));
                goto fail;
            }
            for (int e = 0; e < m; e++) {
                const char *name = entries[e]->d_name;
                size_t len = strlen(name);
                if (len > 5 && strcmp(name + len - 5, ".json") == 0 && name[0] != '.') {
                    size_t size = strlen(args[i]) + len + 2;
                    char *path = malloc(size);
                    if (path)
                        snprintf(path, size, "%s/%s", args[i], name);
                    if (push_path(&list, &count, &cap, path) < 0)
                        goto fail;
                }
                free(entries[e]);
            }
            free(entries);
            continue;
        }
        if (push_path(&list, &count, &cap, strdup(args[i])) < 0)
            goto fail;
    }
    *files = list;
    *n_files = count;
    return 0;
fail:
    for (size_t i = 0; i < count; i++)
        free(list[i]);
    free(list);
    return -1;
}

/* `tune --merge`: read every shard file (JSON syntax errors name
 * file:line:col), merge, report. Returns the exit code. */
static int merge_main(char **args, int n, int json, const char *output)
{
    char **files = NULL;
    size_t n_files = 0;
    int exit_code = CPS_EXIT_USAGE;
    if (n < 1) {
        fprintf(stderr, "cpscale tune --merge: give the shard files (see --help)\n");
        return CPS_EXIT_USAGE;
    }
    if (collect_shard_files(args, n, &files, &n_files) < 0)
        return CPS_EXIT_RUNTIME;
    json_t **shards = calloc(n_files ? n_files : 1, sizeof *shards);
    if (!shards) {
        exit_code = CPS_EXIT_RUNTIME;
        goto done;
    }
    if (n_files == 0) {
        fprintf(stderr, "cpscale tune --merge: no shard files found\n");
        goto done;
    }
    for (size_t i = 0; i < n_files; i++) {
        char *bytes = NULL;
        size_t len = 0;
        if (cps_read_file(files[i], SHARD_FILE_MAX_BYTES, &bytes, &len) < 0)
            goto done;
        json_error_t jerr;
        shards[i] = json_loadb(bytes, len, 0, &jerr);
        free(bytes);
        if (!shards[i] || !json_is_object(shards[i])) {
            if (shards[i])
                fprintf(stderr, "%s: not a JSON object\n", files[i]);
            else
                fprintf(stderr, "%s:%d:%d: %s\n", files[i], jerr.line, jerr.column, jerr.text);
            goto done;
        }
    }
    struct cps_tune_merged m;
    struct cps_err err;
    cps_err_clear(&err);
    if (cps_tune_merge(shards, (const char *const *)files, n_files, &m, &err) < 0) {
        char msg[CPS_ERR_SOURCE_MAX + CPS_ERR_MESSAGE_MAX + 32];
        cps_err_format(&err, msg, sizeof msg);
        fprintf(stderr, "cpscale tune --merge: %s\n", msg);
        goto done;
    }
    exit_code = report(&m, json, output, -1.0);
done:
    if (shards)
        for (size_t i = 0; i < n_files; i++)
            json_decref(shards[i]);
    free(shards);
    for (size_t i = 0; i < n_files; i++)
        free(files[i]);
    free(files);
    return exit_code;
}

static const enum cli_flag tune_flags[] = {
    CLI_FLAG_CONFIG, CLI_FLAG_SCALE, CLI_FLAG_BUDGET, CLI_FLAG_TRAIN_FRACTION,
    CLI_FLAG_CANDIDATES, CLI_FLAG_SEED, CLI_FLAG_JOBS, CLI_FLAG_MIN_REPLICAS,
    CLI_FLAG_MAX_REPLICAS, CLI_FLAG_SHARD, CLI_FLAG_MERGE, CLI_FLAG_OUTPUT, CLI_FLAG_JSON,
    CLI_FLAG_QUIET, CLI_FLAG_HELP,
};

/* The command's flags that are not part of the run's setup. */
struct tune_args {
    const char *config_path, *output;
    double scale;
    int merge, json, quiet, sharded;
};

/* A finished parse: OK to run, or the exit code to return now. */
#define PARSE_RUN (-1)

#define N_OF(a) (sizeof(a) / sizeof((a)[0]))

/* The flags that take a whole number, and its range. */
static const struct whole_flag {
    int opt;
    const char *flag;
    double lo, hi;
} whole_flags[] = {
    {CLI_FLAG_CANDIDATES, "--candidates", 1, CPS_TUNE_MAX_CANDIDATES},
    {CLI_FLAG_SEED, "--seed", 0, SEED_MAX},
    {CLI_FLAG_JOBS, "--jobs", 1, CPS_POOL_MAX_JOBS},
    {CLI_FLAG_MIN_REPLICAS, "--min-replicas", 0, 1000000},
    {CLI_FLAG_MAX_REPLICAS, "--max-replicas", 1, 1000000},
};

/* A flag that fills the setup: 0, -1 on a bad value (printed). */
static int parse_setup_option(int opt, const char *arg, struct cps_tune_setup *s)
{
    double v;
    switch (opt) {
    case CLI_FLAG_BUDGET: return parse_budget(arg, &s->budget_pct);
    case CLI_FLAG_TRAIN_FRACTION:
        if (parse_double_arg("--train-fraction", arg, 0, 1, &s->train_fraction) < 0)
            return -1;
        if (!(s->train_fraction > 0.0 && s->train_fraction < 1.0)) {
            fprintf(stderr, "cpscale tune: --train-fraction: must be strictly between 0 "
                    "and 1\n");
            return -1;
        }
        return 0;
    case CLI_FLAG_SHARD: return parse_shard(arg, &s->shard, &s->shards);
    }
    /* the whole-number flags */
    size_t i = 0;
    while (i + 1 < N_OF(whole_flags) && whole_flags[i].opt != opt)
        i++;
    if (cps_parse_whole_arg("tune", whole_flags[i].flag, arg, whole_flags[i].lo, whole_flags[i].hi,
                            &v) < 0)
        return -1;
    switch (opt) {
    case CLI_FLAG_CANDIDATES: s->n_candidates = (size_t)v; break;
    case CLI_FLAG_SEED: s->seed = (uint64_t)v; break;
    case CLI_FLAG_JOBS: s->jobs = (int)v; break;
    case CLI_FLAG_MIN_REPLICAS: s->min_replicas = (int32_t)v; break;
    default: s->max_replicas = (int32_t)v; break; /* CLI_FLAG_MAX_REPLICAS */
    }
    return 0;
}

/* Every flag, the setup's defaults first. Returns PARSE_RUN or the exit
 * code when the command ends here. */
static int parse_args(int argc, char **argv, struct tune_args *a, struct cps_tune_setup *s)
{
    s->budget_pct = DEFAULT_BUDGET_PCT;
    s->train_fraction = DEFAULT_TRAIN_FRACTION;
    s->seed = DEFAULT_SEED;
    s->jobs = cps_pool_default_jobs();
    s->shards = 1;
    s->n_candidates = DEFAULT_CANDIDATES;
    s->min_replicas = DEFAULT_MIN_REPLICAS;
    s->max_replicas = DEFAULT_MAX_REPLICAS;
    a->scale = NAN;
    int opt;
    optind = 1;
    while ((opt = cli_getopt(argc, argv, "", tune_flags, CLI_N_FLAGS(tune_flags))) != -1) {
        switch (opt) {
        case CLI_FLAG_CONFIG: a->config_path = optarg; break;
        case CLI_FLAG_SCALE:
            if (parse_scale(optarg, &a->scale) < 0)
                return CPS_EXIT_USAGE;
            break;
        case CLI_FLAG_BUDGET: case CLI_FLAG_TRAIN_FRACTION: case CLI_FLAG_CANDIDATES: case CLI_FLAG_SEED:
        case CLI_FLAG_JOBS: case CLI_FLAG_MIN_REPLICAS: case CLI_FLAG_MAX_REPLICAS: case CLI_FLAG_SHARD:
            if (parse_setup_option(opt, optarg, s) < 0)
                return CPS_EXIT_USAGE;
            a->sharded |= opt == CLI_FLAG_SHARD;
            break;
        case CLI_FLAG_MERGE: a->merge = 1; break;
        case CLI_FLAG_OUTPUT: a->output = optarg; break;
        case CLI_FLAG_JSON: a->json = 1; break;
        case CLI_FLAG_QUIET: a->quiet = 1; break;
        case CLI_FLAG_HELP: tune_usage(stdout); return CPS_EXIT_OK;
        default:
            fprintf(stderr, "usage: cpscale tune TRACE.csv... [options] (see --help)\n");
            return CPS_EXIT_USAGE;
        }
    }
    return PARSE_RUN;
}

/* --config FILE, or the defaults. NULL with the exit code in *exit_code. */
static struct cps_config *load_config(const char *path, int *exit_code)
{
    if (path) {
        *exit_code = CPS_EXIT_USAGE;
        return cps_load_config_file(path);
    }
    struct cps_config *config = calloc(1, sizeof *config);
    if (!config || cps_config_init_defaults(config) < 0) {
        cps_config_free(config);
        fprintf(stderr, "cpscale tune: out of memory\n");
        *exit_code = CPS_EXIT_RUNTIME;
        return NULL;
    }
    return config;
}

/* Load every trace ("FILE" or "FILE:SCALE") and its train/test split; a
 * trace error stops before any work. Returns PARSE_RUN or the exit code. */
static int load_traces(char **args, int n, int quiet, struct cps_tune_setup *s)
{
    struct cps_err err;
    cps_err_clear(&err);
    for (int i = 0; i < n; i++) {
        struct cps_tune_trace *t = &s->traces[s->n_traces];
        t->label = args[i];
        int parsed = parse_trace_arg(t->label, &t->path, &t->scale);
        if (parsed == -2)
            return CPS_EXIT_USAGE;
        if (parsed < 0) {
            fprintf(stderr, "cpscale tune: out of memory\n");
            return CPS_EXIT_RUNTIME;
        }
        s->n_traces++;
        if (cps_trace_runs_load(t->path, quiet ? NULL : stderr, &t->runs, &err) < 0) {
            cps_err_print(stderr, NULL, &err);
            return strstr(err.message, "out of memory") ? CPS_EXIT_RUNTIME : CPS_EXIT_USAGE;
        }
        t->split_s = (int64_t)floor((double)t->runs.seconds * s->train_fraction);
        if (t->split_s < MIN_PART_S || t->runs.seconds - t->split_s < MIN_PART_S) {
            fprintf(stderr, "%s: %lld s is too short to split at %g: each part needs at least "
                    "%d s\n",
                    t->path, (long long)t->runs.seconds, s->train_fraction, MIN_PART_S);
            return CPS_EXIT_USAGE;
        }
    }
    return PARSE_RUN;
}

/* A world the simulator refuses is a usage error, found before any work. */
static int probe_world(const struct cps_tune_setup *s)
{
    struct cps_err err;
    cps_err_clear(&err);
    struct cps_sim_setup probe_setup;
    memset(&probe_setup, 0, sizeof probe_setup);
    probe_setup.world = s->world;
    probe_setup.slo_ms = s->slo_ms;
    probe_setup.min_replicas = s->min_replicas;
    probe_setup.max_replicas = s->max_replicas;
    probe_setup.target = &s->base;
    probe_setup.n_policies = 1;
    struct cps_sim *probe = cps_sim_new(&probe_setup, &err);
    if (!probe) {
        fprintf(stderr, "cpscale tune: %s\n", err.message);
        return -1;
    }
    cps_sim_free(probe);
    return 0;
}

/* --shard: the shard's JSON to --output or stdout. Returns the exit code. */
static int write_shard(const json_t *shard_json, const char *output)
{
    int to_stdout = output == NULL;
    FILE *out = to_stdout ? stdout : fopen(output, "w");
    int rc = out ? json_dumpf(shard_json, out, JSON_INDENT(1) | CPS_TUNE_JSON_EXACT) : -1;
    if (rc == 0 && fputc('\n', out) == EOF)
        rc = -1;
    if (out && (to_stdout ? fflush(out) : fclose(out)) != 0)
        rc = -1;
    if (rc < 0) {
        fprintf(stderr, "cpscale tune: %s: cannot write the shard: %s\n",
                output ? output : "stdout", strerror(errno));
        return CPS_EXIT_RUNTIME;
    }
    return CPS_EXIT_OK;
}

/* Unsharded: the merge of this one shard, through the same path as --merge
 * (after a round trip through JSON text, as a shard file would take).
 * Takes the reference to *shard_json (replacing it). Returns the exit code. */
static int merge_own_shard(json_t **shard_json, const struct tune_args *a, double elapsed)
{
    struct cps_err err;
    cps_err_clear(&err);
    char *text = json_dumps(*shard_json, CPS_TUNE_JSON_EXACT);
    json_decref(*shard_json);
    *shard_json = text ? json_loads(text, 0, NULL) : NULL;
    free(text);
    struct cps_tune_merged m;
    const char *source = "tune";
    if (!*shard_json || cps_tune_merge(shard_json, &source, 1, &m, &err) < 0) {
        fprintf(stderr, "cpscale tune: %s\n", *shard_json ? err.message : "out of memory");
        return CPS_EXIT_RUNTIME;
    }
    return report(&m, a->json, a->output, elapsed);
}

/* Run this shard (all of it unless --shard), then write the shard JSON or
 * merge and report it. Returns the exit code. */
static int run(struct cps_tune_setup *s, const struct tune_args *a)
{
    struct cps_err err;
    cps_err_clear(&err);
    s->progress = !a->quiet && isatty(STDERR_FILENO) ? stderr : NULL;
    double started = cps_pool_now_s(), simulated = 0.0;
    json_t *shard_json = cps_tune_run_shard(s, &simulated, &err);
    if (!shard_json) {
        fprintf(stderr, "cpscale tune: %s\n", err.message);
        return CPS_EXIT_RUNTIME;
    }
    double elapsed = cps_pool_now_s() - started;
    json_object_set_new(shard_json, "elapsed_s", json_real(elapsed));
    if (!a->quiet)
        fprintf(stderr, "cpscale tune: %.4g simulated seconds in %.2f s on %d thread(s): %.4g "
                "simulated seconds/s\n",
                simulated, elapsed, s->jobs, elapsed > 0.0 ? simulated / elapsed : 0.0);
    int exit_code = a->sharded ? write_shard(shard_json, a->output)
                               : merge_own_shard(&shard_json, a, elapsed);
    json_decref(shard_json);
    return exit_code;
}

/*
 * Parse, load the config and every trace (a trace error stops before any
 * work), draw the candidates, then run this shard (all of it unless
 * --shard) and either write the shard JSON or merge it on the spot.
 */
int cli_tune(int argc, char **argv)
{
    struct cps_tune_setup s;
    memset(&s, 0, sizeof s);
    struct tune_args a;
    memset(&a, 0, sizeof a);
    int exit_code = parse_args(argc, argv, &a, &s);
    if (exit_code != PARSE_RUN)
        return exit_code;
    if (a.merge) {
        if (a.sharded) {
            fprintf(stderr, "cpscale tune: --merge and --shard do not go together\n");
            return CPS_EXIT_USAGE;
        }
        return merge_main(argv + optind, argc - optind, a.json, a.output);
    }
    int n_traces = argc - optind;
    if (n_traces < 1 || n_traces > CPS_TUNE_MAX_TRACES) {
        fprintf(stderr, "cpscale tune: give 1 to %d trace files (see --help)\n",
                CPS_TUNE_MAX_TRACES);
        return CPS_EXIT_USAGE;
    }
    if (s.min_replicas > s.max_replicas) {
        fprintf(stderr, "cpscale tune: --min-replicas is above --max-replicas\n");
        return CPS_EXIT_USAGE;
    }
    struct cps_config *config = load_config(a.config_path, &exit_code);
    if (!config)
        return exit_code;
    cps_tune_setup_base(&s, config, a.scale);
    exit_code = load_traces(argv + optind, n_traces, a.quiet, &s);
    if (exit_code != PARSE_RUN)
        goto done;
    if (cps_tune_draw(&s) < 0) {
        fprintf(stderr, "cpscale tune: out of memory\n");
        exit_code = CPS_EXIT_RUNTIME;
        goto done;
    }
    exit_code = probe_world(&s) < 0 ? CPS_EXIT_USAGE : run(&s, &a);
done:
    cps_tune_setup_release(&s);
    cps_config_free(config);
    return exit_code;
}
