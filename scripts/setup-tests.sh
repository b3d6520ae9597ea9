#!/bin/sh
# Everything the test suite needs, on a fresh Debian or Ubuntu machine with only python3:
#   - a virtual environment in .venv with nhiwatch and its test extras;
#   - Debian's chromium, which the dashboard's browser test drives through Playwright;
#   - Java 17 or newer, which PySpark needs for the Spark engine's tests.
# The two system packages are installed with apt when they are missing and this runs as root (or sudo
# works without a password); otherwise it says what to install and the tests needing them will fail.
# README's quick start, command 2:  sh scripts/setup-tests.sh && .venv/bin/python -m pytest -q
set -eu
cd "$(dirname "$0")/.."

missing=""
command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1 || missing="$missing chromium"
command -v java >/dev/null 2>&1 || missing="$missing openjdk-17-jre-headless"

if [ -n "$missing" ]; then
  if [ "$(id -u)" -eq 0 ]; then
    sudo=""
  elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
    sudo="sudo -n"
  else
    sudo="none"
  fi
  if [ "$sudo" != "none" ] && command -v apt-get >/dev/null 2>&1; then
    echo "setup-tests: installing$missing with apt"
    $sudo apt-get update -qq
    # shellcheck disable=SC2086  # the package list is meant to split
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends $missing >/dev/null
  else
    echo "setup-tests: please install$missing (Debian/Ubuntu: apt-get install$missing);" \
         "the dashboard's browser test needs chromium, the Spark tests Java 17 or newer" >&2
  fi
fi

python3 -m venv .venv
.venv/bin/pip install -q -e '.[test]'
echo "setup-tests: ready; the whole suite: .venv/bin/python -m pytest -q; the fast lane: .venv/bin/python -m pytest -q -m 'not slow'"
