/*
 * The retry discipline after a 429 or 5xx from the API server: exponential
 * backoff from 1 s, times a jitter, never longer than 5 min and never
 * shorter than the server's Retry-After (itself capped at those 5 min).
 * Pure (the caller draws the jitter).
 */
#ifndef CPS_BACKOFF_H
#define CPS_BACKOFF_H

#include <stdint.h>

#define CPS_BACKOFF_BASE_MS 1000          /* first retry after a 429/5xx */
#define CPS_BACKOFF_MAX_MS (5 * 60 * 1000) /* the ceiling, jitter included */

/* The wait after the `failures`-th consecutive failure (1 for the first):
 * base * 2^(failures-1), capped, times `jitter` (drawn in [0.5, 1.5)),
 * capped again (a jitter below 1 still spreads the waits at the ceiling;
 * one above it must not stretch the ceiling to 7.5 min), then raised to
 * `retry_after_ms` (itself capped at the same 5 min) when that is longer. */
int64_t cps_backoff_delay_ms(int failures, int64_t retry_after_ms, double jitter);

/* 1 for the HTTP statuses worth a retry later (429 and 5xx). */
int cps_backoff_is_retryable(long status);

#endif
