/*
 * The plot's numbers and text: nice tick steps, tick and heading labels
 * (trimmed decimals, SI suffixes, USD, durations), UTC calendar fields, and
 * XML-safe text output.
 */
#include "plot_format.h"

#include <math.h>
#include <stdint.h>
#include <string.h>

#define SECONDS_PER_MINUTE 60.0
#define SECONDS_PER_HOUR 3600.0
#define SECONDS_PER_DAY 86400.0
#define STEP_EPSILON 1e-9    /* slack for float error in step arithmetic */
#define TICK_DECIMALS_MAX 12

/* Round durations for the time axis, in seconds, ascending. */
static const double time_steps[] = {
    1, 2, 5, 10, 15, 30,
    60, 120, 300, 600, 900, 1800,
    3600, 7200, 10800, 21600, 43200,
    86400, 172800, 604800, 1209600,
};
#define TIME_STEPS_COUNT (sizeof time_steps / sizeof time_steps[0])

/* The smallest step that fits range in max_ticks intervals (at least one);
 * NAN for a range that is not finite and positive (its step is 1). */
static double raw_step(double range, int max_ticks)
{
    if (!isfinite(range) || range <= 0)
        return NAN;
    return range / (max_ticks < 1 ? 1 : max_ticks);
}

/*
 * Contract in plot.h. raw = range / max_ticks is the smallest step that
 * fits; rounding its mantissa up to 1, 2, 5 or 10 keeps the interval count
 * within max_ticks while giving labels a reader can add up in their head.
 */
double cps_plot_nice_step(double range, int max_ticks)
{
    double raw = raw_step(range, max_ticks);
    if (isnan(raw))
        return 1.0;
    double magnitude = pow(10.0, floor(log10(raw)));
    double fraction = raw / magnitude;
    double nice;
    if (fraction <= 1.0 + STEP_EPSILON)
        nice = 1.0;
    else if (fraction <= 2.0 + STEP_EPSILON)
        nice = 2.0;
    else if (fraction <= 5.0 + STEP_EPSILON)
        nice = 5.0;
    else
        nice = 10.0;
    return nice * magnitude;
}

/*
 * Contract in plot.h. Time does not divide by 10: ticks at 15 min or 6 h
 * line up with how people read a clock, so a table of round durations is
 * searched first, and only spans beyond two-week steps fall back to nice
 * numbers of days.
 */
double cps_plot_time_step(double span_seconds, int max_ticks)
{
    double raw = raw_step(span_seconds, max_ticks);
    if (isnan(raw))
        return 1.0;
    if (raw < time_steps[0])
        return cps_plot_nice_step(span_seconds, max_ticks);
    for (size_t i = 0; i < TIME_STEPS_COUNT; i++)
        if (time_steps[i] >= raw * (1.0 - STEP_EPSILON))
            return time_steps[i];
    return cps_plot_nice_step(span_seconds / SECONDS_PER_DAY, max_ticks) *
           SECONDS_PER_DAY;
}

/* Drop trailing zeros (and a trailing '.') after a decimal point. */
static void trim_zeros(char *s)
{
    if (!strchr(s, '.'))
        return;
    size_t n = strlen(s);
    while (n > 0 && s[n - 1] == '0')
        s[--n] = '\0';
    if (n > 0 && s[n - 1] == '.')
        s[--n] = '\0';
}

/* Print v with `decimals` decimals, trailing zeros trimmed; never "-0". */
void cps_plot_format_trimmed(double v, int decimals, char *buf, size_t size)
{
    if (decimals < 0)
        decimals = 0;
    if (decimals > TICK_DECIMALS_MAX)
        decimals = TICK_DECIMALS_MAX;
    snprintf(buf, size, "%.*f", decimals, v);
    trim_zeros(buf);
    if (strcmp(buf, "-0") == 0)
        snprintf(buf, size, "0");
}

/* SI suffixes for thousands; the value is divided by 1000^index. */
static const char *const si_suffixes[] = {"", "k", "M", "G", "T", "P"};
#define SI_SUFFIX_COUNT (sizeof si_suffixes / sizeof si_suffixes[0])
#define SI_BASE 1000.0

/*
 * Contract in plot.h. The suffix follows the value (so an axis reads 500,
 * 1k, 1.5k rather than 0.5k, 1k, 1.5k), and the decimals follow the step in
 * that suffix's units, so adjacent labels always differ.
 */
void cps_plot_format_tick(double value, double step, char *buf, size_t size)
{
    if (size == 0)
        return;
    if (!isfinite(value) || value == 0) {
        snprintf(buf, size, "0");
        return;
    }
    if (!isfinite(step) || step <= 0)
        step = fabs(value);
    size_t idx = 0;
    double divisor = 1.0;
    while (idx + 1 < SI_SUFFIX_COUNT && fabs(value) >= divisor * SI_BASE) {
        divisor *= SI_BASE;
        idx++;
    }
    int decimals = (int)-floor(log10(step / divisor) + STEP_EPSILON);
    char number[CPS_PLOT_NUMBER_MAX];
    cps_plot_format_trimmed(value / divisor, decimals, number, sizeof number);
    snprintf(buf, size, "%s%s", number, si_suffixes[idx]);
}

/*
 * Three significant digits with an SI suffix: 0.0123, 4.5, 812, 1.23k, 45.6M.
 * For totals in headings, where no axis step gives the precision.
 */
void cps_plot_format_sig3(double v, char *buf, size_t size)
{
    if (!isfinite(v) || v <= 0) {
        snprintf(buf, size, "0");
        return;
    }
    size_t idx = 0;
    /* 999.5 would print as "1000": move it to the next suffix instead. */
    while (idx + 1 < SI_SUFFIX_COUNT && v >= SI_BASE - 0.5) {
        v /= SI_BASE;
        idx++;
    }
    char number[CPS_PLOT_NUMBER_MAX];
    if (idx == 0 && v < 1e-6)
        snprintf(number, sizeof number, "%.2g", v);
    else
        cps_plot_format_trimmed(v, 2 - (int)floor(log10(v)), number, sizeof number);
    snprintf(buf, size, "%s%s", number, si_suffixes[idx]);
}

/* USD for headings: cents below $1000, three significant digits above. */
void cps_plot_format_usd(double v, char *buf, size_t size)
{
    char number[CPS_PLOT_NUMBER_MAX];
    if (!isfinite(v) || v <= 0)
        snprintf(number, sizeof number, "0");
    else if (v >= SI_BASE || v < 1.0)
        cps_plot_format_sig3(v, number, sizeof number);
    else
        snprintf(number, sizeof number, "%.2f", v);
    snprintf(buf, size, "$%s", number);
}

/* "5 min", "1 h", "7 days", "30 s": the largest unit that is at least 1. */
void cps_plot_format_duration(double seconds, char *buf, size_t size)
{
    char number[CPS_PLOT_NUMBER_MAX];
    const char *unit;
    double v;
    if (seconds >= SECONDS_PER_DAY) {
        v = seconds / SECONDS_PER_DAY;
        unit = "day";
    } else if (seconds >= SECONDS_PER_HOUR) {
        v = seconds / SECONDS_PER_HOUR;
        unit = "h";
    } else if (seconds >= SECONDS_PER_MINUTE) {
        v = seconds / SECONDS_PER_MINUTE;
        unit = "min";
    } else {
        v = seconds;
        unit = "s";
    }
    cps_plot_format_trimmed(v, v >= 100 ? 0 : v >= 10 ? 1 : v >= 1 ? 2 : 3, number,
                   sizeof number);
    int plural = strcmp(unit, "day") == 0 && strcmp(number, "1") != 0;
    snprintf(buf, size, "%s %s%s", number, unit, plural ? "s" : "");
}

/* UTC calendar fields of an epoch second (already range-checked). */
void cps_plot_utc_fields(double epoch_s, struct tm *tm)
{
    time_t t = (time_t)floor(epoch_s);
    if (!gmtime_r(&t, tm))
        memset(tm, 0, sizeof *tm);
}

/* Data cleaning: NaN, Inf and negatives draw as 0; huge values are capped. */
double cps_plot_clean_value(double v)
{
    if (!isfinite(v) || v <= 0)
        return 0;
    return v > CPS_PLOT_VALUE_MAX ? CPS_PLOT_VALUE_MAX : v;
}

/*
 * Byte length of the XML-safe UTF-8 character at p (at most `left` bytes
 * remain), or 0 when the byte must be replaced: a control character XML 1.0
 * forbids, a malformed or overlong sequence, a surrogate, U+FFFE/U+FFFF.
 * Replacing instead of copying keeps any name from breaking the document.
 */
static size_t xml_char_length(const unsigned char *p, size_t left)
{
    unsigned char b = p[0];
    if (b < 0x80)
        return (b >= 0x20 && b != 0x7f) || b == '\t' ? 1 : 0;
    size_t len;
    unsigned char lo = 0x80, hi = 0xbf; /* allowed range of the second byte */
    if (b >= 0xc2 && b <= 0xdf) {
        len = 2;
    } else if (b >= 0xe0 && b <= 0xef) {
        len = 3;
        if (b == 0xe0)
            lo = 0xa0;
        else if (b == 0xed)
            hi = 0x9f;
    } else if (b >= 0xf0 && b <= 0xf4) {
        len = 4;
        if (b == 0xf0)
            lo = 0x90;
        else if (b == 0xf4)
            hi = 0x8f;
    } else {
        return 0;
    }
    if (left < len || p[1] < lo || p[1] > hi)
        return 0;
    for (size_t i = 2; i < len; i++)
        if ((p[i] & 0xc0) != 0x80)
            return 0;
    if (b == 0xef && p[1] == 0xbf && (p[2] == 0xbe || p[2] == 0xbf))
        return 0;
    return len;
}

/* Characters cps_plot_write_text() will draw for s (the ellipsis included). */
size_t cps_plot_text_chars(const char *s, size_t max_chars)
{
    size_t n = 0, left = strlen(s);
    const unsigned char *p = (const unsigned char *)s;
    while (left > 0) {
        if (n == max_chars)
            return n + 1;
        size_t len = xml_char_length(p, left);
        if (len == 0)
            len = 1;
        p += len;
        left -= len;
        n++;
    }
    return n;
}

/*
 * Write s as XML character data or attribute content: & < > " ' become
 * entities, characters XML cannot carry become '?', and text longer than
 * max_chars characters is cut there with an ellipsis.
 */
void cps_plot_write_text(FILE *out, const char *s, size_t max_chars)
{
    size_t n = 0, left = strlen(s);
    const unsigned char *p = (const unsigned char *)s;
    while (left > 0) {
        if (n == max_chars) {
            fputs("\xe2\x80\xa6", out); /* U+2026 HORIZONTAL ELLIPSIS */
            return;
        }
        size_t len = xml_char_length(p, left);
        switch (len ? *p : '?') {
        case '&': fputs("&amp;", out); break;
        case '<': fputs("&lt;", out); break;
        case '>': fputs("&gt;", out); break;
        case '"': fputs("&quot;", out); break;
        case '\'': fputs("&apos;", out); break;
        default:
            if (len)
                fwrite(p, 1, len, out);
            else
                fputc('?', out);
        }
        if (len == 0)
            len = 1;
        p += len;
        left -= len;
        n++;
    }
}

