#include "backoff.h"

#define MAX_SHIFT 20 /* 2^20 s is far past the cap: stop doubling there */

int64_t cps_backoff_delay_ms(int failures, int64_t retry_after_ms, double jitter)
{
    int shift = failures - 1 < MAX_SHIFT ? failures - 1 : MAX_SHIFT;
    if (shift < 0)
        shift = 0;
    int64_t delay = (int64_t)CPS_BACKOFF_BASE_MS << shift;
    if (delay > CPS_BACKOFF_MAX_MS)
        delay = CPS_BACKOFF_MAX_MS;
    delay = (int64_t)((double)delay * jitter);
    if (delay > CPS_BACKOFF_MAX_MS)
        delay = CPS_BACKOFF_MAX_MS; /* the ceiling holds whatever the jitter */
    if (retry_after_ms > CPS_BACKOFF_MAX_MS)
        retry_after_ms = CPS_BACKOFF_MAX_MS; /* a huge Retry-After never freezes a target */
    if (retry_after_ms > delay)
        delay = retry_after_ms;
    return delay;
}

int cps_backoff_is_retryable(long status)
{
    return status == 429 || status >= 500;
}
