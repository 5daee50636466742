/*
 * Growable arrays: one rule for making room, so that every array in cpscale
 * grows the same way (doubling: amortised O(1) appends) and fails the same
 * way (the array untouched, -1 to the caller).
 */
#ifndef CPS_GROW_H
#define CPS_GROW_H

#include <stddef.h>

/*
 * Make room for one more item in *items, an array of item_size-byte items
 * with *capacity slots of which count are used: when it is full, double the
 * capacity (first_capacity the first time) with realloc. Returns 0, or -1
 * when out of memory or the size would overflow, leaving *items and
 * *capacity as they were.
 */
int cps_grow(void **items, size_t *capacity, size_t count, size_t item_size,
             size_t first_capacity);

#endif
