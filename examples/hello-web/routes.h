#ifndef ROUTES_H
#define ROUTES_H

#include <stddef.h>

/* Answers one request line ("GET /path HTTP/1.1"): the status code, and the
   body written into `body` (at most `cap` bytes, NUL-terminated). */
int route(const char *request_line, char *body, size_t cap);

#endif
