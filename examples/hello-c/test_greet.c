#include <stdio.h>
#include <string.h>
#include "greet.h"

static int failures = 0;

static void check(const char *test, const char *name, const char *want) {
    char got[256];
    greet(name, got, sizeof got);
    if (strcmp(got, want) == 0) {
        printf("ok: %s\n", test);
    } else {
        printf("FAIL: %s (got \"%s\", want \"%s\")\n", test, got, want);
        failures++;
    }
}

int main(void) {
    check("test_greets_by_name", "cairn", "Hello, cairn!");
    check("test_defaults_to_world", NULL, "Hello, world!");
    check("test_empty_name_is_world", "", "Hello, world!");
    printf("%d failed\n", failures);
    return failures == 0 ? 0 : 1;
}
