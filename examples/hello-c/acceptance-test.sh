#!/bin/sh
# Acceptance test: runs the built program and checks what it prints.
set -eu
out=$(./hello cairn)
[ "$out" = "Hello, cairn!" ] || { echo "FAIL: acceptance_greets (got: $out)"; exit 1; }
echo "ok: acceptance_greets"
