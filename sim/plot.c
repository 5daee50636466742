/*
 * SVG plot of a simulation run: three stacked panels sharing one UTC time
 * axis (demand + ready pods, seconds over the SLO, cumulative cost), with
 * nice ticks, grid lines, a legend and per-policy totals in the headings.
 *
 * Everything is written straight to the FILE*; the only allocation is one
 * pair of scratch coordinate arrays. Every number printed is derived from
 * clamped, finite data and fixed geometry, so NaN/Inf never reach the SVG.
 */
#include "plot.h"
#include "plot_format.h"

#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* Canvas and layout, in SVG user units (px). */
#define SVG_WIDTH 1200
#define SVG_HEIGHT 900
#define MARGIN_LEFT 88.0
#define MARGIN_RIGHT 88.0
#define TITLE_BASELINE 32.0
#define LEGEND_TOP 48.0
#define LEGEND_ROW_HEIGHT 20.0
#define LEGEND_MAX_ROWS 4
#define LEGEND_SWATCH_WIDTH 26.0
#define LEGEND_SWATCH_GAP 6.0
#define LEGEND_ITEM_GAP 24.0
#define LEGEND_NAME_MAX_CHARS 32
#define LEGEND_BOTTOM_GAP 10.0
#define PANEL_HEADING_HEIGHT 24.0
#define PANEL_GAP 18.0
#define BOTTOM_RESERVED 68.0        /* time labels (two lines) + axis title */
#define PANEL_SHARE_DEMAND 0.44
#define PANEL_SHARE_VIOLATION 0.24
#define PANEL_SHARE_COST 0.32
#define Y_TITLE_OFFSET 64.0         /* from the plot edge to a y-axis title */
#define TICK_LENGTH 5.0
#define TICK_LABEL_GAP 8.0
#define FONT_SIZE 12
#define TITLE_FONT_SIZE 18
#define HEADING_FONT_SIZE 13
#define CHAR_WIDTH_EST 7.2          /* mean DejaVu/Helvetica advance at 12px */
#define HEADING_CHAR_WIDTH_EST 7.8  /* the same at 13px */
#define TITLE_CHAR_WIDTH_EST 11.0   /* the same at 18px bold */
#define BASELINE_SHIFT (FONT_SIZE / 3.0) /* baseline below a line's centre */
#define TEXT_LINE_GAP 2.0
#define AXIS_TITLE_GAP 8.0
#define LEGEND_SWATCH_HEIGHT 10.0
#define LEGEND_LINE_WIDTH 3.0
#define HEADING_LABEL_DX 24.0       /* heading text to "total"/"final" */
#define HEADING_ITEM_DX 16.0        /* between per-series totals */
#define HEADING_VALUE_DX 4.0        /* series name to its value */
#define Y_TICK_MIN_SPACING 38.0     /* px between y ticks, at least */
#define Y_TICKS_MAX 8
#define X_TICK_MIN_SPACING 95.0     /* px between time ticks, fits "Wed 07-03" */
#define X_TICKS_HARD_MAX 64         /* loop guard for the time ticks */
#define LINE_WIDTH 1.7
#define VIOLATION_LINE_WIDTH 1.3
#define DEMAND_LINE_WIDTH 1.0
#define STEP_MIN_BUCKET_PX 4.0      /* narrower buckets draw as points, not steps */

/* Colours: Okabe-Ito (colour-blind safe), yellow last as it is faint on
 * white. cpscale, hpa and oracle keep the same colour in every plot. */
#define COLOR_CPSCALE "#0072B2"
#define COLOR_HPA "#D55E00"
#define COLOR_ORACLE "#000000"
#define DASH_ORACLE "7 4"
#define DASH_SECOND_CYCLE "2 3"
#define COLOR_DEMAND_FILL "#d4d4d4"
#define COLOR_DEMAND_LINE "#a0a0a0"
#define COLOR_DEMAND_TEXT "#6b6b6b"
#define COLOR_GRID "#e8e8e8"
#define COLOR_AXIS "#8c8c8c"
#define COLOR_TEXT "#333333"
#define COLOR_MUTED "#555555"
#define FONT_FAMILY "DejaVu Sans, Helvetica, Arial, sans-serif"

static const char *const palette[] = {
    COLOR_CPSCALE, COLOR_HPA, COLOR_ORACLE, "#009E73", "#CC79A7",
    "#E69F00", "#56B4E9", "#F0E442",
};
#define PALETTE_SIZE (sizeof palette / sizeof palette[0])

/* Series with these names own palette[0..FIXED_COLORS), in this order. */
static const char *const fixed_names[] = {"cpscale", "hpa", "oracle"};
#define FIXED_COLORS (sizeof fixed_names / sizeof fixed_names[0])

/* Time. */
#define SECONDS_PER_MINUTE 60.0
#define SECONDS_PER_DAY 86400.0
#define SECONDS_PER_WEEK 604800.0
#define MONDAY_EPOCH_OFFSET (4 * SECONDS_PER_DAY) /* 1970-01-05 was a Monday */
#define ISO_DATE_SPAN_DAYS 60.0   /* beyond this, day ticks show the year */
#define EPOCH_MIN -62135596800.0  /* 0001-01-01T00:00:00Z */
#define EPOCH_MAX 253402300799.0  /* 9999-12-31T23:59:59Z */

#define TINY_AXIS_MAX 1e-9   /* an axis whose data stays below this is "all zero" */
#define STEP_EPSILON 1e-9    /* slack for float error in step arithmetic */
#define LABEL_MAX 64

static const char *const weekday_names[] = {
    "Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat",
};

struct rect {
    double left, top, width, height;
};

/* A y axis from 0 to step * intervals. */
struct axis {
    double step;
    int intervals;
    double max;
};

/* Everything derived once from the input and shared by the panels. */
struct layout {
    const struct cps_plot *plot;
    double span;                 /* seconds covered by all buckets */
    double *xs, *ys;             /* scratch, 2 * n_points + 1 each */
    const char **colors;         /* one per series */
    const char **dashes;         /* one per series, NULL for solid */
};

static const char *series_name(const struct cps_plot_series *s)
{
    return s->name ? s->name : "(unnamed)";
}

static int is_oracle(const char *name)
{
    return strncmp(name, "oracle", strlen("oracle")) == 0;
}

/*
 * Colour and dash per series. cpscale, hpa and oracle (first of each name)
 * keep their colours in every plot so plots can be compared side by side;
 * other series take the rest of the palette in order, then the colours of
 * those three if they are absent, and a second trip round the palette is
 * dotted so lines stay distinguishable. Anything whose
 * name starts with "oracle" is dashed: it is a bound, not a policy.
 */
static void assign_styles(struct layout *lay)
{
    const struct cps_plot *plot = lay->plot;
    int used[PALETTE_SIZE] = {0};
    for (size_t i = 0; i < plot->n_series; i++) {
        lay->colors[i] = NULL;
        for (size_t f = 0; f < FIXED_COLORS; f++)
            if (!used[f] && strcmp(series_name(&plot->series[i]), fixed_names[f]) == 0) {
                lay->colors[i] = palette[f];
                used[f] = 1;
            }
    }
    size_t next = 0, extra = 0;
    for (size_t i = 0; i < plot->n_series; i++) {
        int second_cycle = 0;
        if (!lay->colors[i]) {
            /* Visit palette[FIXED..], then palette[0..FIXED). */
            while (next < PALETTE_SIZE && used[(next + FIXED_COLORS) % PALETTE_SIZE])
                next++;
            if (next < PALETTE_SIZE) {
                size_t c = (next + FIXED_COLORS) % PALETTE_SIZE;
                lay->colors[i] = palette[c];
                used[c] = 1;
            } else {
                lay->colors[i] = palette[extra % PALETTE_SIZE];
                second_cycle = 1;
                extra++;
            }
        }
        if (is_oracle(series_name(&plot->series[i])))
            lay->dashes[i] = DASH_ORACLE;
        else
            lay->dashes[i] = second_cycle ? DASH_SECOND_CYCLE : NULL;
    }
}

/*
 * A y axis from 0 covering max with nice steps, at most as many intervals as
 * fit the panel height. Integer axes (pod counts) never step below 1. An axis
 * whose data is all (near) zero spans 0..1 so a flat line sits on the floor.
 */
static struct axis make_axis(double max, double height, int integer)
{
    struct axis a;
    int max_ticks = (int)(height / Y_TICK_MIN_SPACING);
    if (max_ticks > Y_TICKS_MAX)
        max_ticks = Y_TICKS_MAX;
    if (max_ticks < 1)
        max_ticks = 1;
    if (!(max > TINY_AXIS_MAX))
        max = 1.0;
    a.step = cps_plot_nice_step(max, max_ticks);
    if (integer && a.step < 1.0)
        a.step = 1.0;
    a.intervals = (int)ceil(max / a.step - STEP_EPSILON);
    if (a.intervals < 1)
        a.intervals = 1;
    a.max = a.step * a.intervals;
    return a;
}

static double y_of(const struct rect *r, const struct axis *a, double v)
{
    return r->top + r->height - v / a->max * r->height;
}

static double x_of(const struct rect *r, const struct layout *lay, double offset_s)
{
    return r->left + offset_s / lay->span * r->width;
}

/*
 * Emit n points as a polyline at 0.1 px. Interior points of horizontal runs
 * (same rounded y before and after) are dropped: flat stretches such as
 * "no SLO violation" then cost two points instead of one per bucket.
 */
static void write_points(FILE *out, const double *xs, const double *ys, size_t n)
{
    long prev_x = 0, prev_y = 0;
    int have_prev = 0;
    for (size_t i = 0; i < n; i++) {
        long xi = lround(xs[i] * 10.0), yi = lround(ys[i] * 10.0);
        if (have_prev && i + 1 < n && yi == prev_y &&
            lround(ys[i + 1] * 10.0) == yi)
            continue;
        if (have_prev && xi == prev_x && yi == prev_y)
            continue;
        fprintf(out, "%s%.1f,%.1f", have_prev ? " " : "", xi / 10.0, yi / 10.0);
        prev_x = xi;
        prev_y = yi;
        have_prev = 1;
    }
}

/*
 * Fill lay->xs/ys for a per-bucket mean or, when cumulative, a running
 * total. A mean is a step across its bucket while buckets are at least
 * STEP_MIN_BUCKET_PX wide (so a few buckets, or one, fill the plot edge to
 * edge), and a point at the bucket midpoint when they are narrower (steps
 * would only double the size). A running total is drawn at bucket ends from
 * 0 at the left edge, and a non-finite total repeats the last good one.
 * Returns the point count (at most 2 * n_points).
 */
static size_t build_points(const struct layout *lay, const struct rect *r,
                           const struct axis *a, const double *values, int cumulative)
{
    const struct cps_plot *plot = lay->plot;
    size_t n = plot->n_points;
    if (cumulative) {
        double last = 0;
        lay->xs[0] = r->left;
        lay->ys[0] = y_of(r, a, 0);
        for (size_t i = 0; i < n; i++) {
            if (isfinite(values[i]))
                last = cps_plot_clean_value(values[i]);
            lay->xs[i + 1] = x_of(r, lay, (double)(i + 1) * plot->bucket_seconds);
            lay->ys[i + 1] = y_of(r, a, last);
        }
        return n + 1;
    }
    if ((double)n * STEP_MIN_BUCKET_PX <= r->width) {
        for (size_t i = 0; i < n; i++) {
            lay->xs[2 * i] = x_of(r, lay, (double)i * plot->bucket_seconds);
            lay->xs[2 * i + 1] = x_of(r, lay, (double)(i + 1) * plot->bucket_seconds);
            lay->ys[2 * i] = lay->ys[2 * i + 1] = y_of(r, a, cps_plot_clean_value(values[i]));
        }
        return 2 * n;
    }
    for (size_t i = 0; i < n; i++) {
        lay->xs[i] = x_of(r, lay, ((double)i + 0.5) * plot->bucket_seconds);
        lay->ys[i] = y_of(r, a, cps_plot_clean_value(values[i]));
    }
    return n;
}

static void write_polyline(FILE *out, const struct layout *lay, size_t n,
                           const char *color, const char *dash, double width)
{
    fprintf(out, "<polyline fill=\"none\" stroke=\"%s\" stroke-width=\"%.1f\""
                 " stroke-linejoin=\"round\"", color, width);
    if (dash)
        fprintf(out, " stroke-dasharray=\"%s\"", dash);
    fputs(" points=\"", out);
    write_points(out, lay->xs, lay->ys, n);
    fputs("\"/>\n", out);
}

/* Largest cleaned value of one array. */
static double array_max(const double *values, size_t n)
{
    double m = 0;
    for (size_t i = 0; i < n; i++) {
        double v = cps_plot_clean_value(values[i]);
        if (v > m)
            m = v;
    }
    return m;
}

/* The last finite value of a cumulative array, cleaned (0 if none). */
static double cumulative_final(const double *values, size_t n)
{
    for (size_t i = n; i-- > 0;)
        if (isfinite(values[i]))
            return cps_plot_clean_value(values[i]);
    return 0;
}

/*
 * Horizontal grid lines and left tick labels for axis a, the frame's left
 * and bottom axis lines, and the rotated y-axis title. The grid goes first
 * so data draws over it.
 */
static void write_y_axis(FILE *out, const struct rect *r, const struct axis *a,
                         const char *title)
{
    char label[LABEL_MAX];
    fprintf(out, "<g stroke=\"%s\" stroke-width=\"1\">\n", COLOR_GRID);
    for (int i = 1; i <= a->intervals; i++) {
        double y = y_of(r, a, a->step * i);
        fprintf(out, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\"/>\n",
                r->left, y, r->left + r->width, y);
    }
    fputs("</g>\n", out);
    fprintf(out, "<g fill=\"%s\" text-anchor=\"end\">\n", COLOR_TEXT);
    for (int i = 0; i <= a->intervals; i++) {
        double y = y_of(r, a, a->step * i);
        cps_plot_format_tick(a->step * i, a->step, label, sizeof label);
        fprintf(out, "<text x=\"%.1f\" y=\"%.1f\">%s</text>\n",
                r->left - TICK_LABEL_GAP, y + BASELINE_SHIFT, label);
    }
    fputs("</g>\n", out);
    double cx = r->left - Y_TITLE_OFFSET, cy = r->top + r->height / 2;
    fprintf(out, "<text x=\"%.1f\" y=\"%.1f\" transform=\"rotate(-90 %.1f %.1f)\""
                 " text-anchor=\"middle\" fill=\"%s\">%s</text>\n",
            cx, cy, cx, cy, COLOR_TEXT, title);
}

/* Tick labels, ticks and title of the demand axis on the right (no grid:
 * the left axis owns the grid, and two grids would fight). */
static void write_right_axis(FILE *out, const struct rect *r, const struct axis *a,
                             const char *title)
{
    char label[LABEL_MAX];
    double x = r->left + r->width;
    fprintf(out, "<g fill=\"%s\" stroke=\"%s\">\n", COLOR_DEMAND_TEXT, COLOR_DEMAND_LINE);
    for (int i = 0; i <= a->intervals; i++) {
        double y = y_of(r, a, a->step * i);
        cps_plot_format_tick(a->step * i, a->step, label, sizeof label);
        fprintf(out, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\"/>\n",
                x, y, x + TICK_LENGTH, y);
        fprintf(out, "<text x=\"%.1f\" y=\"%.1f\" stroke=\"none\">%s</text>\n",
                x + TICK_LABEL_GAP, y + BASELINE_SHIFT, label);
    }
    fputs("</g>\n", out);
    double cx = x + Y_TITLE_OFFSET, cy = r->top + r->height / 2;
    fprintf(out, "<text x=\"%.1f\" y=\"%.1f\" transform=\"rotate(90 %.1f %.1f)\""
                 " text-anchor=\"middle\" fill=\"%s\">%s</text>\n",
            cx, cy, cx, cy, COLOR_DEMAND_TEXT, title);
}

/* The time ticks of the run: step, alignment and how many fit. */
struct time_ticks {
    double step;
    double first;        /* epoch second of the first tick */
    int count;
};

/*
 * Ticks at round UTC times: multiples of the step since the epoch (weeks
 * from a Monday), as many as fit X_TICK_MIN_SPACING apart.
 */
static struct time_ticks make_time_ticks(const struct layout *lay, double width)
{
    struct time_ticks tt;
    double t0 = lay->plot->start_epoch_s;
    int max_ticks = (int)(width / X_TICK_MIN_SPACING);
    tt.step = cps_plot_time_step(lay->span, max_ticks);
    double origin = fmod(tt.step, SECONDS_PER_WEEK) == 0 ? MONDAY_EPOCH_OFFSET : 0;
    tt.first = origin + ceil((t0 - origin) / tt.step - STEP_EPSILON) * tt.step;
    tt.count = 0;
    while (tt.count < X_TICKS_HARD_MAX &&
           tt.first + tt.count * tt.step <= t0 + lay->span * (1 + STEP_EPSILON))
        tt.count++;
    return tt;
}

/* Vertical grid lines at the time ticks, for one panel. */
static void write_time_grid(FILE *out, const struct layout *lay, const struct rect *r,
                            const struct time_ticks *tt)
{
    fprintf(out, "<g stroke=\"%s\" stroke-width=\"1\">\n", COLOR_GRID);
    for (int i = 0; i < tt->count; i++) {
        double x = x_of(r, lay, tt->first + i * tt->step - lay->plot->start_epoch_s);
        fprintf(out, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\"/>\n",
                x, r->top, x, r->top + r->height);
    }
    fputs("</g>\n", out);
}

/* The frame of a panel: axis lines left and bottom (a path, so that every
 * polyline in the document is data), ticks along the bottom. */
static void write_frame(FILE *out, const struct layout *lay, const struct rect *r,
                        const struct time_ticks *tt)
{
    double bottom = r->top + r->height;
    fprintf(out, "<g stroke=\"%s\" stroke-width=\"1\" fill=\"none\">\n", COLOR_AXIS);
    fprintf(out, "<path d=\"M%.1f,%.1f V%.1f H%.1f\"/>\n", r->left, r->top, bottom,
            r->left + r->width);
    for (int i = 0; i < tt->count; i++) {
        double x = x_of(r, lay, tt->first + i * tt->step - lay->plot->start_epoch_s);
        fprintf(out, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\"/>\n",
                x, bottom, x, bottom + TICK_LENGTH);
    }
    fputs("</g>\n", out);
}

static void format_day(const struct tm *tm, int with_year, char *buf, size_t size)
{
    if (with_year)
        snprintf(buf, size, "%04d-%02d-%02d", tm->tm_year + 1900, tm->tm_mon + 1,
                 tm->tm_mday);
    else
        snprintf(buf, size, "%s %02d-%02d", weekday_names[tm->tm_wday % 7],
                 tm->tm_mon + 1, tm->tm_mday);
}

/*
 * Time labels under the bottom panel and the axis title. Day steps show
 * "Wed 07-03" (or the ISO date over long spans); shorter steps show
 * "12:30" with the date on a second line where the day changes, so every
 * label is unambiguous without repeating the date on each one.
 */
static void write_time_labels(FILE *out, const struct layout *lay, const struct rect *r,
                              const struct time_ticks *tt)
{
    const struct cps_plot *plot = lay->plot;
    double bottom = r->top + r->height;
    double line1 = bottom + TICK_LENGTH + FONT_SIZE + TEXT_LINE_GAP;
    double line2 = line1 + FONT_SIZE + TEXT_LINE_GAP;
    int long_span = lay->span >= ISO_DATE_SPAN_DAYS * SECONDS_PER_DAY;
    int last_yday = -1, last_year = 0;
    char time_text[LABEL_MAX], day_text[LABEL_MAX];
    fprintf(out, "<g fill=\"%s\" text-anchor=\"middle\">\n", COLOR_TEXT);
    for (int i = 0; i < tt->count; i++) {
        double t = tt->first + i * tt->step;
        double x = x_of(r, lay, t - plot->start_epoch_s);
        struct tm tm;
        cps_plot_utc_fields(t, &tm);
        format_day(&tm, long_span, day_text, sizeof day_text);
        if (tt->step >= SECONDS_PER_DAY) {
            fprintf(out, "<text x=\"%.1f\" y=\"%.1f\">%s</text>\n", x, line1, day_text);
            continue;
        }
        if (tt->step < 1.0) {
            char number[CPS_PLOT_NUMBER_MAX];
            cps_plot_format_trimmed(t - plot->start_epoch_s, 3, number, sizeof number);
            snprintf(time_text, sizeof time_text, "+%s s", number);
        } else if (tt->step < SECONDS_PER_MINUTE) {
            snprintf(time_text, sizeof time_text, "%02d:%02d:%02d", tm.tm_hour,
                     tm.tm_min, tm.tm_sec);
        } else {
            snprintf(time_text, sizeof time_text, "%02d:%02d", tm.tm_hour, tm.tm_min);
        }
        fprintf(out, "<text x=\"%.1f\" y=\"%.1f\">%s</text>\n", x, line1, time_text);
        if (tm.tm_yday != last_yday || tm.tm_year != last_year)
            fprintf(out, "<text x=\"%.1f\" y=\"%.1f\" fill=\"%s\">%s</text>\n", x,
                    line2, COLOR_MUTED, day_text);
        last_yday = tm.tm_yday;
        last_year = tm.tm_year;
    }
    fputs("</g>\n", out);

    char span_text[LABEL_MAX], bucket_text[LABEL_MAX];
    char from_text[LABEL_MAX], to_text[LABEL_MAX];
    struct tm from, to;
    cps_plot_utc_fields(plot->start_epoch_s, &from);
    cps_plot_utc_fields(plot->start_epoch_s + lay->span, &to);
    cps_plot_format_duration(lay->span, span_text, sizeof span_text);
    cps_plot_format_duration(plot->bucket_seconds, bucket_text, sizeof bucket_text);
    snprintf(from_text, sizeof from_text, "%s %04d-%02d-%02d %02d:%02d",
             weekday_names[from.tm_wday % 7], from.tm_year + 1900, from.tm_mon + 1,
             from.tm_mday, from.tm_hour, from.tm_min);
    snprintf(to_text, sizeof to_text, "%s %04d-%02d-%02d %02d:%02d",
             weekday_names[to.tm_wday % 7], to.tm_year + 1900, to.tm_mon + 1,
             to.tm_mday, to.tm_hour, to.tm_min);
    fprintf(out, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\" fill=\"%s\">"
                 "time (UTC): %s, %s \xe2\x80\x93 %s, %zu bucket%s of %s</text>\n",
            r->left + r->width / 2, line2 + FONT_SIZE + AXIS_TITLE_GAP, COLOR_TEXT, span_text,
            from_text, to_text, plot->n_points, plot->n_points == 1 ? "" : "s",
            bucket_text);
}

/* Estimated width in px of one legend item: swatch, gap, name, gap. */
static double legend_item_width(size_t chars)
{
    return LEGEND_SWATCH_WIDTH + LEGEND_SWATCH_GAP + (double)chars * CHAR_WIDTH_EST +
           LEGEND_ITEM_GAP;
}

/*
 * Lay out the legend (demand first, then each series) in rows that wrap at
 * the plot width. With write == 0 only counts the rows, so the panels can be
 * placed below it before anything is drawn. Items past LEGEND_MAX_ROWS are
 * summarised as "+N more" rather than pushing the panels off the canvas.
 */
static int write_legend(FILE *out, const struct layout *lay, int write)
{
    const struct cps_plot *plot = lay->plot;
    const double right = SVG_WIDTH - MARGIN_RIGHT;
    const char *demand_label = "demand (req/s, right axis)";
    double x = MARGIN_LEFT;
    int row = 0;
    double y = LEGEND_TOP + LEGEND_ROW_HEIGHT / 2;
    if (write) {
        fprintf(out, "<g fill=\"%s\">\n", COLOR_TEXT);
        fprintf(out, "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\""
                     " fill=\"%s\" stroke=\"%s\"/>\n",
                x, y - LEGEND_SWATCH_HEIGHT / 2, LEGEND_SWATCH_WIDTH, LEGEND_SWATCH_HEIGHT,
                COLOR_DEMAND_FILL, COLOR_DEMAND_LINE);
        fprintf(out, "<text x=\"%.1f\" y=\"%.1f\">%s</text>\n",
                x + LEGEND_SWATCH_WIDTH + LEGEND_SWATCH_GAP, y + BASELINE_SHIFT,
                demand_label);
    }
    x += legend_item_width(strlen(demand_label));
    for (size_t i = 0; i < plot->n_series; i++) {
        const char *name = series_name(&plot->series[i]);
        double w = legend_item_width(cps_plot_text_chars(name, LEGEND_NAME_MAX_CHARS));
        if (x + w - LEGEND_ITEM_GAP > right && x > MARGIN_LEFT) {
            if (row + 1 == LEGEND_MAX_ROWS) {
                if (write)
                    fprintf(out, "<text x=\"%.1f\" y=\"%.1f\" fill=\"%s\">+%zu more</text>\n",
                            x, y + BASELINE_SHIFT, COLOR_MUTED, plot->n_series - i);
                break;
            }
            row++;
            x = MARGIN_LEFT;
            y += LEGEND_ROW_HEIGHT;
        }
        if (write) {
            fprintf(out, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\""
                         " stroke=\"%s\" stroke-width=\"%.1f\"",
                    x, y, x + LEGEND_SWATCH_WIDTH, y, lay->colors[i], LEGEND_LINE_WIDTH);
            if (lay->dashes[i])
                fprintf(out, " stroke-dasharray=\"%s\"", lay->dashes[i]);
            fprintf(out, "/>\n<text x=\"%.1f\" y=\"%.1f\">",
                    x + LEGEND_SWATCH_WIDTH + LEGEND_SWATCH_GAP, y + BASELINE_SHIFT);
            cps_plot_write_text(out, name, LEGEND_NAME_MAX_CHARS);
            fputs("</text>\n", out);
        }
        x += w;
    }
    if (write)
        fputs("</g>\n", out);
    return row + 1;
}

/* What a panel heading sums up per series. */
enum heading_totals {
    TOTALS_NONE,
    TOTALS_VIOLATION_SECONDS,  /* sum of seconds over the SLO */
    TOTALS_FINAL_COST,         /* last cumulative cost */
};

/*
 * A panel heading: bold text, then, unless totals is TOTALS_NONE, `label`
 * and one coloured "name value" per series, as many as fit the plot width,
 * so the numbers an SRE compares first are readable at a glance.
 */
static void write_heading(FILE *out, const struct layout *lay, const struct rect *r,
                          const char *text, enum heading_totals totals,
                          const char *label)
{
    const struct cps_plot *plot = lay->plot;
    double y = r->top - PANEL_HEADING_HEIGHT / 2 + TEXT_LINE_GAP;
    fprintf(out, "<text x=\"%.1f\" y=\"%.1f\" font-size=\"%d\" fill=\"%s\">"
                 "<tspan font-weight=\"bold\">%s</tspan>",
            r->left, y, HEADING_FONT_SIZE, COLOR_TEXT, text);
    double width = (double)strlen(text) * HEADING_CHAR_WIDTH_EST;
    if (totals == TOTALS_NONE || plot->n_series == 0) {
        fputs("</text>\n", out);
        return;
    }
    fprintf(out, "<tspan dx=\"%.0f\" fill=\"%s\">%s</tspan>", HEADING_LABEL_DX,
            COLOR_MUTED, label);
    width += HEADING_LABEL_DX + (double)strlen(label) * HEADING_CHAR_WIDTH_EST;
    for (size_t i = 0; i < plot->n_series; i++) {
        const struct cps_plot_series *s = &plot->series[i];
        const char *name = series_name(s);
        char value[LABEL_MAX];
        if (totals == TOTALS_VIOLATION_SECONDS) {
            double sum = 0;
            for (size_t k = 0; k < plot->n_points; k++)
                sum += cps_plot_clean_value(s->violation_seconds[k]);
            char number[CPS_PLOT_NUMBER_MAX];
            cps_plot_format_sig3(cps_plot_clean_value(sum), number, sizeof number);
            snprintf(value, sizeof value, "%s s", number);
        } else {
            cps_plot_format_usd(cumulative_final(s->cumulative_cost, plot->n_points), value,
                       sizeof value);
        }
        double w = HEADING_ITEM_DX + HEADING_VALUE_DX +
                   (double)(cps_plot_text_chars(name, LEGEND_NAME_MAX_CHARS) + strlen(value)) *
                       HEADING_CHAR_WIDTH_EST;
        if (width + w > r->width) {
            fprintf(out, "<tspan dx=\"%.0f\">\xe2\x80\xa6</tspan>", HEADING_VALUE_DX);
            break;
        }
        fprintf(out, "<tspan dx=\"%.0f\" fill=\"%s\" font-weight=\"bold\">",
                i == 0 ? HEADING_VALUE_DX * 2 : HEADING_ITEM_DX, lay->colors[i]);
        cps_plot_write_text(out, name, LEGEND_NAME_MAX_CHARS);
        fprintf(out, "</tspan><tspan dx=\"%.0f\">%s</tspan>", HEADING_VALUE_DX, value);
        width += w;
    }
    fputs("</text>\n", out);
}

/* Which per-series array a panel draws. */
enum series_field { FIELD_READY_PODS, FIELD_VIOLATION_SECONDS, FIELD_CUMULATIVE_COST };

static const double *series_values(const struct cps_plot_series *s, enum series_field field)
{
    switch (field) {
    case FIELD_READY_PODS: return s->ready_pods;
    case FIELD_VIOLATION_SECONDS: return s->violation_seconds;
    default: return s->cumulative_cost;
    }
}

/* The largest value of one field over every series. */
static double series_max(const struct cps_plot *plot, enum series_field field)
{
    double max = 0;
    for (size_t i = 0; i < plot->n_series; i++) {
        double m = array_max(series_values(&plot->series[i], field), plot->n_points);
        if (m > max)
            max = m;
    }
    return max;
}

/* One line per series of one field against axis a, in its style. */
static void write_series_lines(FILE *out, const struct layout *lay, const struct rect *r,
                               const struct axis *a, enum series_field field, double width)
{
    const struct cps_plot *plot = lay->plot;
    for (size_t i = 0; i < plot->n_series; i++) {
        size_t n = build_points(lay, r, a, series_values(&plot->series[i], field),
                                field == FIELD_CUMULATIVE_COST);
        write_polyline(out, lay, n, lay->colors[i], lay->dashes[i], width);
    }
}

/* Panel 1: demand as a light area on the right axis, ready pods as lines. */
static void write_demand_panel(FILE *out, const struct layout *lay, const struct rect *r,
                               const struct time_ticks *tt)
{
    const struct cps_plot *plot = lay->plot;
    struct axis pods = make_axis(series_max(plot, FIELD_READY_PODS), r->height, 1);
    struct axis demand = make_axis(array_max(plot->demand_qps, plot->n_points),
                                   r->height, 0);

    write_heading(out, lay, r, "Demand and ready pods", TOTALS_NONE, NULL);
    write_time_grid(out, lay, r, tt);
    write_y_axis(out, r, &pods, "ready pods");
    write_right_axis(out, r, &demand, "demand (req/s)");

    size_t n = build_points(lay, r, &demand, plot->demand_qps, 0);
    double base = r->top + r->height;
    fprintf(out, "<polygon fill=\"%s\" fill-opacity=\"0.6\" stroke=\"none\" points=\""
                 "%.1f,%.1f ", COLOR_DEMAND_FILL, lay->xs[0], base);
    write_points(out, lay->xs, lay->ys, n);
    fprintf(out, " %.1f,%.1f\"/>\n", lay->xs[n - 1], base);
    write_polyline(out, lay, n, COLOR_DEMAND_LINE, NULL, DEMAND_LINE_WIDTH);

    write_series_lines(out, lay, r, &pods, FIELD_READY_PODS, LINE_WIDTH);
    write_frame(out, lay, r, tt);
}

/* Panel 2: seconds over the SLO in each bucket, one line per policy. */
static void write_violation_panel(FILE *out, const struct layout *lay,
                                  const struct rect *r, const struct time_ticks *tt)
{
    const struct cps_plot *plot = lay->plot;
    struct axis a = make_axis(series_max(plot, FIELD_VIOLATION_SECONDS), r->height, 0);
    char bucket[LABEL_MAX], heading[LABEL_MAX * 2];
    cps_plot_format_duration(plot->bucket_seconds, bucket, sizeof bucket);
    snprintf(heading, sizeof heading, "Seconds over SLO per %s bucket", bucket);
    write_heading(out, lay, r, heading, TOTALS_VIOLATION_SECONDS, "total");
    write_time_grid(out, lay, r, tt);
    write_y_axis(out, r, &a, "s over SLO / bucket");
    write_series_lines(out, lay, r, &a, FIELD_VIOLATION_SECONDS, VIOLATION_LINE_WIDTH);
    write_frame(out, lay, r, tt);
}

/* Panel 3: cumulative cost, one line per policy, from 0 at the left edge. */
static void write_cost_panel(FILE *out, const struct layout *lay, const struct rect *r,
                             const struct time_ticks *tt)
{
    struct axis a = make_axis(series_max(lay->plot, FIELD_CUMULATIVE_COST), r->height, 0);
    write_heading(out, lay, r, "Cumulative cost", TOTALS_FINAL_COST, "final");
    write_time_grid(out, lay, r, tt);
    write_y_axis(out, r, &a, "cumulative cost (USD)");
    write_series_lines(out, lay, r, &a, FIELD_CUMULATIVE_COST, LINE_WIDTH);
    write_frame(out, lay, r, tt);
    write_time_labels(out, lay, r, tt);
}

/* Check the input against the rules in plot.h; 0 or -1 with err filled. */
static int validate(FILE *out, const struct cps_plot *plot, struct cps_err *err)
{
    if (!out || !plot)
        return cps_err_set(err, "plot", 0, 0, "no output or no plot");
    if (plot->n_points == 0)
        return cps_err_set(err, "plot", 0, 0, "nothing to plot: the run has no buckets");
    if (plot->n_points > CPS_PLOT_MAX_POINTS)
        return cps_err_set(err, "plot", 0, 0, "%zu buckets is too many to plot (max %d);"
                           " downsample first", plot->n_points, CPS_PLOT_MAX_POINTS);
    if (!plot->demand_qps)
        return cps_err_set(err, "plot", 0, 0, "demand_qps is NULL");
    if (plot->n_series > 0 && !plot->series)
        return cps_err_set(err, "plot", 0, 0, "%zu series but no series array",
                           plot->n_series);
    for (size_t i = 0; i < plot->n_series; i++) {
        const struct cps_plot_series *s = &plot->series[i];
        if (!s->ready_pods || !s->violation_seconds || !s->cumulative_cost)
            return cps_err_set(err, "plot", 0, 0, "series %zu (%s) is missing an array",
                               i, series_name(s));
    }
    if (!isfinite(plot->bucket_seconds) ||
        plot->bucket_seconds < CPS_PLOT_MIN_BUCKET_SECONDS)
        return cps_err_set(err, "plot", 0, 0,
                           "bucket_seconds must be a finite number >= %g, got %g",
                           CPS_PLOT_MIN_BUCKET_SECONDS, plot->bucket_seconds);
    double end = plot->start_epoch_s + (double)plot->n_points * plot->bucket_seconds;
    if (!isfinite(plot->start_epoch_s) || plot->start_epoch_s < EPOCH_MIN ||
        !isfinite(end) || end > EPOCH_MAX)
        return cps_err_set(err, "plot", 0, 0,
                           "the run's time span is outside years 0001..9999");
    return 0;
}

/*
 * Contract in plot.h. Layout is computed before the first byte is written,
 * so bad input leaves `out` untouched. Write errors are caught once at the
 * end (fflush + ferror): a FILE* keeps its error flag, and checking every
 * fprintf would bury the drawing code without making failures more visible.
 */
int cps_plot_write_svg(FILE *out, const struct cps_plot *plot, struct cps_err *err)
{
    struct layout lay = {0};
    if (validate(out, plot, err) != 0)
        return -1;
    lay.plot = plot;
    lay.span = (double)plot->n_points * plot->bucket_seconds;
    lay.xs = malloc((2 * plot->n_points + 1) * sizeof *lay.xs);
    lay.ys = malloc((2 * plot->n_points + 1) * sizeof *lay.ys);
    lay.colors = malloc((plot->n_series + 1) * sizeof *lay.colors);
    lay.dashes = malloc((plot->n_series + 1) * sizeof *lay.dashes);
    if (!lay.xs || !lay.ys || !lay.colors || !lay.dashes) {
        cps_err_set(err, "plot", 0, 0, "out of memory for %zu points", plot->n_points);
        goto fail;
    }
    assign_styles(&lay);

    /* Vertical layout: title, legend rows, three headed panels, time axis. */
    int legend_rows = write_legend(out, &lay, 0);
    double top = LEGEND_TOP + legend_rows * LEGEND_ROW_HEIGHT + LEGEND_BOTTOM_GAP;
    double avail = SVG_HEIGHT - BOTTOM_RESERVED - top - 3 * PANEL_HEADING_HEIGHT -
                   2 * PANEL_GAP;
    double width = SVG_WIDTH - MARGIN_LEFT - MARGIN_RIGHT;
    struct rect demand_r = {MARGIN_LEFT, top + PANEL_HEADING_HEIGHT, width,
                            avail * PANEL_SHARE_DEMAND};
    struct rect violation_r = {MARGIN_LEFT,
                               demand_r.top + demand_r.height + PANEL_GAP +
                                   PANEL_HEADING_HEIGHT,
                               width, avail * PANEL_SHARE_VIOLATION};
    struct rect cost_r = {MARGIN_LEFT,
                          violation_r.top + violation_r.height + PANEL_GAP +
                              PANEL_HEADING_HEIGHT,
                          width, avail * PANEL_SHARE_COST};
    struct time_ticks tt = make_time_ticks(&lay, width);

    const char *title = plot->title && plot->title[0] ? plot->title : "cpscale simulation";
    errno = 0;
    fputs("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n", out);
    fprintf(out, "<svg xmlns=\"http://www.w3.org/2000/svg\" version=\"1.1\""
                 " width=\"%d\" height=\"%d\" viewBox=\"0 0 %d %d\""
                 " font-family=\"%s\" font-size=\"%d\">\n",
            SVG_WIDTH, SVG_HEIGHT, SVG_WIDTH, SVG_HEIGHT, FONT_FAMILY, FONT_SIZE);
    fputs("<title>", out);
    cps_plot_write_text(out, title, SIZE_MAX);
    fputs("</title>\n", out);
    fprintf(out, "<rect x=\"0\" y=\"0\" width=\"%d\" height=\"%d\" fill=\"#ffffff\"/>\n",
            SVG_WIDTH, SVG_HEIGHT);
    fprintf(out, "<text x=\"%.1f\" y=\"%.1f\" font-size=\"%d\" font-weight=\"bold\""
                 " fill=\"%s\">",
            MARGIN_LEFT, TITLE_BASELINE, TITLE_FONT_SIZE, COLOR_TEXT);
    cps_plot_write_text(out, title,
               (size_t)((SVG_WIDTH - MARGIN_LEFT - MARGIN_RIGHT) / TITLE_CHAR_WIDTH_EST));
    fputs("</text>\n", out);
    write_legend(out, &lay, 1);
    write_demand_panel(out, &lay, &demand_r, &tt);
    write_violation_panel(out, &lay, &violation_r, &tt);
    write_cost_panel(out, &lay, &cost_r, &tt);
    fputs("</svg>\n", out);

    if (fflush(out) != 0 || ferror(out)) {
        cps_err_set(err, "plot", 0, 0, "writing the SVG failed: %s",
                    errno ? strerror(errno) : "write error");
        goto fail;
    }
    free(lay.dashes);
    free(lay.colors);
    free(lay.ys);
    free(lay.xs);
    return 0;

fail:
    free(lay.dashes);
    free(lay.colors);
    free(lay.ys);
    free(lay.xs);
    return -1;
}
