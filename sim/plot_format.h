/*
 * The SVG plot's numbers and text (plot.c draws, this formats): labels for
 * ticks and headings, UTC calendar fields, and XML-safe text. Every buffer
 * is the caller's; nothing allocates.
 */
#ifndef CPS_SIM_PLOT_FORMAT_H
#define CPS_SIM_PLOT_FORMAT_H

#include <stddef.h>
#include <stdio.h>
#include <time.h>

#include "plot.h"

/* Room for a formatted number: 1e15 with 12 decimals fits. */
#define CPS_PLOT_NUMBER_MAX 32

/* v with `decimals` decimals, trailing zeros (and a bare '.') dropped. */
void cps_plot_format_trimmed(double v, int decimals, char *buf, size_t size);

/* Three significant digits with an SI suffix (12.3k, 4.56M). */
void cps_plot_format_sig3(double v, char *buf, size_t size);

/* USD for headings: cents below $1000, three significant digits above. */
void cps_plot_format_usd(double v, char *buf, size_t size);

/* A span in the largest fitting unit (s, min, h, days). */
void cps_plot_format_duration(double seconds, char *buf, size_t size);

/* UTC calendar fields of an epoch second (already range-checked). */
void cps_plot_utc_fields(double epoch_s, struct tm *tm);

/* Data cleaning: NaN, Inf and negatives draw as 0; huge values are capped. */
double cps_plot_clean_value(double v);

/* How many characters of s (at most max_chars) cps_plot_write_text writes. */
size_t cps_plot_text_chars(const char *s, size_t max_chars);

/* s as XML text (escaped, unsafe bytes replaced), at most max_chars
 * characters, an ellipsis when cut. */
void cps_plot_write_text(FILE *out, const char *s, size_t max_chars);

#endif
