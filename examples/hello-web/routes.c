#include <stdio.h>
#include <string.h>

#include "routes.h"

int route(const char *request_line, char *body, size_t cap) {
    char method[8], path[256];
    if (sscanf(request_line, "%7s %255s", method, path) != 2) {
        snprintf(body, cap, "bad request\n");
        return 400;
    }
    if (strcmp(method, "GET") != 0) {
        snprintf(body, cap, "method not allowed\n");
        return 405;
    }
    if (strcmp(path, "/") == 0) {
        snprintf(body, cap, "hello from cairn\n");
        return 200;
    }
    if (strcmp(path, "/healthz") == 0) {
        snprintf(body, cap, "ok\n");
        return 200;
    }
    snprintf(body, cap, "not found\n");
    return 404;
}
