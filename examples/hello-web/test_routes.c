/* Unit tests of the routing, run by `make test`. */
#include <stdio.h>
#include <string.h>

#include "routes.h"

static int failures = 0;

static void expect(const char *name, const char *line, int status, const char *body) {
    char got[256];
    int s = route(line, got, sizeof got);
    if (s != status || strcmp(got, body) != 0) {
        printf("FAIL: %s (got %d %s)\n", name, s, got);
        failures++;
    } else {
        printf("ok: %s\n", name);
    }
}

int main(void) {
    expect("test_root_says_hello", "GET / HTTP/1.1", 200, "hello from cairn\n");
    expect("test_healthz", "GET /healthz HTTP/1.1", 200, "ok\n");
    expect("test_unknown_path", "GET /nope HTTP/1.1", 404, "not found\n");
    expect("test_post_refused", "POST / HTTP/1.1", 405, "method not allowed\n");
    expect("test_garbage", "", 400, "bad request\n");
    return failures ? 1 : 0;
}
