#include "grow.h"

#include <stdint.h>
#include <stdlib.h>

int cps_grow(void **items, size_t *capacity, size_t count, size_t item_size,
             size_t first_capacity)
{
    if (count < *capacity)
        return 0;
    size_t grown = *capacity ? *capacity * 2 : first_capacity;
    if (grown < *capacity || item_size == 0 || grown > SIZE_MAX / item_size)
        return -1;
    void *moved = realloc(*items, grown * item_size);
    if (!moved)
        return -1;
    *items = moved;
    *capacity = grown;
    return 0;
}
