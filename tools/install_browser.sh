#!/usr/bin/env bash
# Installs Debian's Chromium for the demo's browser test, when it is missing and apt is usable.
# Playwright's own browser download is not used (it is not reachable everywhere); the test
# drives /usr/bin/chromium. If no browser can be installed the browser test skips and says why.
set -u
if command -v chromium >/dev/null 2>&1 || [ -x /usr/bin/chromium ]; then
  exit 0
fi
if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
  echo "Installing Debian's chromium for the browser test (once)..."
  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) \
    || echo "Could not install chromium; the browser test will be skipped."
else
  echo "chromium is not installed and cannot be installed here (needs root and apt-get);" \
       "the browser test will be skipped. Install chromium to run it."
fi
exit 0
