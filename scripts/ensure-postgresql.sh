#!/usr/bin/env bash
# Make sure Debian's PostgreSQL server binaries (initdb, postgres) are installed for the
# journal tests (tests/journal/: the tests start their own server in a temp folder on a
# free loopback port). Called by `make test` before pytest.
#
# - Already installed: says so and exits 0.
# - Missing and we are root with apt-get: installs the Debian package `postgresql`
#   without recommends and without letting its postinst start the system cluster (a
#   temporary policy-rc.d answers 101 "action forbidden"); if a system cluster runs
#   anyway, it is stopped and the service disabled. Nothing of ours uses it.
# - Missing and we cannot install (not root, no apt-get, install failed): says so and
#   exits 0, so `make test` still runs; the PostgreSQL tests then skip, or fail when
#   WATCHDOG_REQUIRE_REAL_SERVICES=1 (as in .ci/run).
set -uo pipefail

say() { echo "ensure-postgresql: $*"; }

find_initdb() {
    command -v initdb 2>/dev/null || ls -1 /usr/lib/postgresql/*/bin/initdb 2>/dev/null | sort -V | tail -n 1
}

found=$(find_initdb)
if [ -n "$found" ] && [ -x "$(dirname "$found")/postgres" ]; then
    say "found $found ($("$found" --version 2>&1 | head -n 1))"
    exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
    say "PostgreSQL is not installed and we are not root: not installing" \
        "(install it with: sudo apt-get install --no-install-recommends postgresql)"
    exit 0
fi
if ! command -v apt-get >/dev/null 2>&1; then
    say "PostgreSQL is not installed and there is no apt-get: not installing"
    exit 0
fi

policy=/usr/sbin/policy-rc.d
made_policy=0
if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\n# temporary, from ensure-postgresql.sh: do not start services\nexit 101\n' \
        >"$policy" && chmod 0755 "$policy" && made_policy=1
fi
cleanup() { if [ "$made_policy" -eq 1 ]; then rm -f "$policy"; fi; }
trap cleanup EXIT

say "installing Debian package postgresql (apt-get update; apt-get install --no-install-recommends)"
if ! apt-get update -qq; then
    say "apt-get update failed: not installed"
    exit 0
fi
if ! DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends postgresql; then
    say "apt-get install postgresql failed: not installed"
    exit 0
fi

# The package creates a system cluster and a service; the tests never use them.
if [ -d /run/systemd/system ] && command -v systemctl >/dev/null 2>&1; then
    if systemctl is-active --quiet postgresql 2>/dev/null \
        || systemctl is-enabled --quiet postgresql 2>/dev/null; then
        systemctl disable --now postgresql >/dev/null 2>&1 \
            && say "stopped and disabled the system postgresql service"
    fi
elif command -v pg_lsclusters >/dev/null 2>&1; then
    pg_lsclusters --no-header 2>/dev/null | while read -r version cluster _port status _rest; do
        if [ "$status" = "online" ]; then
            pg_ctlcluster "$version" "$cluster" stop >/dev/null 2>&1 \
                && say "stopped the system cluster $version/$cluster"
        fi
    done
fi

found=$(find_initdb)
if [ -n "$found" ]; then
    say "installed $found ($("$found" --version 2>&1 | head -n 1))"
else
    say "installation finished but initdb is still not found"
fi
exit 0
