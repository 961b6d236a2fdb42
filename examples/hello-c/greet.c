#include <stdio.h>
#include "greet.h"

int greet(const char *name, char *out, size_t size) {
    if (name == NULL || name[0] == '\0') {
        name = "world";
    }
    return snprintf(out, size, "Hello, %s!", name);
}
