#!/bin/sh
# Acceptance test against the running release-candidate image: cairn starts the
# RC in the sandbox and gives its address in CAIRN_RC_URL.
set -eu
: "${CAIRN_RC_URL:?CAIRN_RC_URL is not set: run this through cairn}"
python3 - "$CAIRN_RC_URL" <<'PY'
import sys, urllib.request, urllib.error
base = sys.argv[1]
def get(path):
    try:
        with urllib.request.urlopen(base + path, timeout=5) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()
failed = 0
for name, path, status, body in [
    ("acceptance_root_greets", "/", 200, "hello from cairn\n"),
    ("acceptance_health", "/healthz", 200, "ok\n"),
    ("acceptance_unknown_is_404", "/missing", 404, "not found\n"),
]:
    got = get(path)
    if got == (status, body):
        print(f"ok: {name}")
    else:
        print(f"FAIL: {name} (got {got!r})")
        failed += 1
sys.exit(1 if failed else 0)
PY
