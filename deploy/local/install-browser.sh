#!/usr/bin/env bash
# Debian's Chromium and its matching ChromeDriver, for the tests that use the web pages as a
# person would (the intake form, the oversight dashboard). Installs only when missing.
set -euo pipefail
if [[ -x /usr/bin/chromium && -x /usr/bin/chromedriver ]]; then exit 0; fi
[[ $(id -u) -eq 0 ]] || { echo "install-browser.sh: run as root to apt-get install chromium" >&2; exit 1; }
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends chromium chromium-driver >/dev/null
echo "install-browser.sh: installed $(/usr/bin/chromium --version 2>/dev/null | head -1)"
