#!/usr/bin/env bash
# Make sure Debian's `prometheus` binary is installed for the real-server tests
# (tests/sources/test_prometheus_source.py). Called by `make test` before pytest.
#
# - Already on PATH: says so and exits 0.
# - Missing and we are root with apt-get: installs the Debian package without
#   recommends and without letting its postinst start the system service (a
#   temporary policy-rc.d answers 101 "action forbidden"); if a system instance
#   is running anyway, it is stopped and disabled. The tests start their own
#   Prometheus on free loopback ports, so a system instance would not matter.
# - Missing and we cannot install (not root, no apt-get, install failed): says so
#   and exits 0, so `make test` still runs; the tests then skip, or fail when
#   WATCHDOG_REQUIRE_REAL_SERVICES=1 (as in .ci/run).
set -uo pipefail

say() { echo "ensure-prometheus: $*"; }

if command -v prometheus >/dev/null 2>&1; then
    say "found $(command -v prometheus) ($(prometheus --version 2>&1 | head -n 1))"
    exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
    say "prometheus is not installed and we are not root: not installing" \
        "(install it with: sudo apt-get install --no-install-recommends prometheus)"
    exit 0
fi
if ! command -v apt-get >/dev/null 2>&1; then
    say "prometheus is not installed and there is no apt-get: not installing"
    exit 0
fi

policy=/usr/sbin/policy-rc.d
made_policy=0
if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\n# temporary, from ensure-prometheus.sh: do not start services\nexit 101\n' \
        >"$policy" && chmod 0755 "$policy" && made_policy=1
fi
cleanup() { if [ "$made_policy" -eq 1 ]; then rm -f "$policy"; fi; }
trap cleanup EXIT

say "installing Debian package prometheus (apt-get update; apt-get install --no-install-recommends)"
if ! apt-get update -qq; then
    say "apt-get update failed: not installed"
    exit 0
fi
if ! DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends prometheus; then
    say "apt-get install prometheus failed: not installed"
    exit 0
fi

# The package ships a system service; we never want it running for the tests.
if [ -d /run/systemd/system ] && command -v systemctl >/dev/null 2>&1; then
    if systemctl is-active --quiet prometheus 2>/dev/null \
        || systemctl is-enabled --quiet prometheus 2>/dev/null; then
        systemctl disable --now prometheus >/dev/null 2>&1 \
            && say "stopped and disabled the system prometheus service"
    fi
elif [ -x /etc/init.d/prometheus ] && /etc/init.d/prometheus status >/dev/null 2>&1; then
    /etc/init.d/prometheus stop >/dev/null 2>&1 && say "stopped the system prometheus service"
fi

if command -v prometheus >/dev/null 2>&1; then
    say "installed $(command -v prometheus) ($(prometheus --version 2>&1 | head -n 1))"
else
    say "installation finished but prometheus is still not on PATH"
fi
exit 0
