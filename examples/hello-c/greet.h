#ifndef GREET_H
#define GREET_H
#include <stddef.h>

/* Writes "Hello, NAME!" into out (at most size bytes); returns the length. */
int greet(const char *name, char *out, size_t size);

#endif
