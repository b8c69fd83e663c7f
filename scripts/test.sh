#!/usr/bin/env bash
# Install what the test suite needs (Debian's chromium and Xvfb for the browser and window tests, the Python test
# extras) and run the whole suite. Extra arguments go to pytest. Exits non-zero on any failure, including "no tests".
set -euo pipefail
cd "$(dirname "$0")/.."
need=()
command -v chromium >/dev/null 2>&1 || need+=(chromium)
command -v Xvfb >/dev/null 2>&1 || need+=(xvfb)
if [ ${#need[@]} -gt 0 ]; then
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${need[@]}" >/dev/null
fi
python3 -m pip install -q -e ".[test]"
exec python3 -m pytest "$@"
