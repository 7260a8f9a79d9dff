#!/usr/bin/env bash
# Make sure Debian's `chromium` and `chromium-driver` are installed for the web view's
# browser tests (tests/web/). Called by `make test` before pytest.
#
# - Both already installed: says so and exits 0.
# - Missing and we are root with apt-get: installs the Debian packages (the tests drive
#   this browser with Selenium through Debian's chromedriver: nothing is downloaded at
#   test time, Selenium Manager is never asked for a browser).
# - Missing and we cannot install (not root, no apt-get, install failed): says so and
#   exits 0, so `make test` still runs; the tests then skip, or fail when
#   WATCHDOG_REQUIRE_REAL_SERVICES=1 (as in .ci/run).
set -uo pipefail

say() { echo "ensure-chromium: $*"; }

have() { command -v chromium >/dev/null 2>&1 && command -v chromedriver >/dev/null 2>&1; }

if have; then
    say "found $(command -v chromium) and $(command -v chromedriver)" \
        "($(chromedriver --version 2>/dev/null | cut -d' ' -f1-2))"
    exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
    say "chromium/chromium-driver are not installed and we are not root: not installing" \
        "(install them with: sudo apt-get install chromium chromium-driver)"
    exit 0
fi
if ! command -v apt-get >/dev/null 2>&1; then
    say "chromium/chromium-driver are not installed and there is no apt-get: not installing"
    exit 0
fi

say "installing Debian packages chromium and chromium-driver (apt-get update; apt-get install)"
if ! apt-get update -qq; then
    say "apt-get update failed: not installed"
    exit 0
fi
if ! DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver; then
    say "apt-get install chromium chromium-driver failed: not installed"
    exit 0
fi

if have; then
    say "installed $(command -v chromium) and $(command -v chromedriver)"
else
    say "installation finished but chromium or chromedriver is still not on PATH"
fi
exit 0
