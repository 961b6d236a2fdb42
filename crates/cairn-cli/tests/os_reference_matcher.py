#!/usr/bin/python3
"""An independent matcher of a Debian root filesystem's packages against OSV
records, for comparing with `cairn scan`: libapt's own version ordering
(`apt_pkg.version_compare`, Debian package python3-apt), the OSV schema's
range evaluation, written from the schema, not from cairn's code.

usage: os_reference_matcher.py OSV_ZIP ROOTFS
prints one line per matching record: `ADVISORY SOURCE_PACKAGE`, sorted.
"""
import functools
import json
import os
import sys
import zipfile

import apt_pkg

apt_pkg.init_system()


def os_release(rootfs):
    for rel in ("etc/os-release", "usr/lib/os-release"):
        path = os.path.join(rootfs, rel)
        if os.path.islink(path) or not os.path.isfile(path):
            continue
        fields = {}
        with open(path, encoding="utf-8") as f:
            for line in f:
                if "=" in line:
                    k, v = line.rstrip("\n").split("=", 1)
                    fields[k] = v.strip('"')
        return fields
    raise SystemExit("no os-release")


def source_packages(rootfs):
    """(source name, source version) of every installed package."""
    out = set()
    with open(os.path.join(rootfs, "var/lib/dpkg/status"), encoding="utf-8") as f:
        for para in f.read().split("\n\n"):
            fields = {}
            for line in para.splitlines():
                if line[:1] in (" ", "\t") or ":" not in line:
                    continue
                k, v = line.split(":", 1)
                fields[k] = v.strip()
            if not fields.get("Package"):
                continue
            if fields.get("Status", "").split()[-1:] != ["installed"]:
                continue
            version = fields["Version"]
            source = fields.get("Source", fields["Package"])
            if " (" in source:
                source, version = source.split(" (", 1)
                version = version.rstrip(")")
            out.add((source, version))
    return out


def cmp_event(a, b):
    (_, va), (_, vb) = a, b
    if va == "0":
        return 0 if vb == "0" else -1
    if vb == "0":
        return 1
    return apt_pkg.version_compare(va, vb)


def in_range(version, events):
    evs = []
    for e in events:
        for kind in ("introduced", "fixed", "last_affected", "limit"):
            if kind in e:
                evs.append((kind, e[kind]))
    evs.sort(key=functools.cmp_to_key(cmp_event))
    affected = False
    limits = []
    for kind, v in evs:
        if kind == "introduced":
            if v == "0" or apt_pkg.version_compare(version, v) >= 0:
                affected = True
        elif kind == "fixed":
            if apt_pkg.version_compare(version, v) >= 0:
                affected = False
        elif kind == "last_affected":
            if apt_pkg.version_compare(version, v) > 0:
                affected = False
        elif kind == "limit" and v != "*":
            limits.append(v)
    if limits:
        return affected and any(apt_pkg.version_compare(version, l) < 0 for l in limits)
    return affected


def main():
    zip_path, rootfs = sys.argv[1], sys.argv[2]
    rel = os_release(rootfs)
    ecosystem = "Debian:" + rel["VERSION_ID"]
    installed = {}
    for name, version in source_packages(rootfs):
        installed.setdefault(name, set()).add(version)
    hits = set()
    with zipfile.ZipFile(zip_path) as z:
        for entry in z.namelist():
            if not entry.endswith(".json"):
                continue
            record = json.loads(z.read(entry))
            if record.get("withdrawn"):
                continue
            for a in record.get("affected", []):
                pkg = a.get("package", {})
                if pkg.get("ecosystem") != ecosystem or pkg.get("name") not in installed:
                    continue
                for version in installed[pkg["name"]]:
                    listed = any(
                        apt_pkg.version_compare(version, v) == 0 for v in a.get("versions", [])
                    )
                    ranged = any(
                        in_range(version, r["events"])
                        for r in a.get("ranges", [])
                        if r.get("type") == "ECOSYSTEM"
                    )
                    if listed or ranged:
                        hits.add((record["id"], pkg["name"]))
    for advisory, package in sorted(hits):
        print(advisory, package)


if __name__ == "__main__":
    main()
