/* Per-thread scratch memory that only grows, so that its pages stay mapped from one call to the next. Every
 * buffer whose size depends on the input (block size, head or expert counts) lives here, never on the stack:
 * a stack array sized by the input overflows the thread's stack, and crashes the process, for inputs the
 * specs accept (a block size of 64K tokens, say). */
#ifndef ANYACCEL_CPU_SCRATCH_H
#define ANYACCEL_CPU_SCRATCH_H

#include <stdlib.h>

typedef struct {
    void *data;
    size_t size;
} Scratch;

/* At least `size` bytes of s, or NULL when they cannot be had (the caller reports it, -2 by convention). */
static inline void *grow(Scratch *s, size_t size) {
    if (size > s->size) {
        free(s->data);
        s->data = malloc(size);
        s->size = s->data ? size : 0;
    }
    return s->data;
}

#endif
