#!/usr/bin/env bash
# Install SoftHSM2 (Debian's softhsm2) for the PKCS#11 tests if it is missing.
# Tests make their own tokens in temporary directories (tests/support/softhsm.py).
set -u
LIB=/usr/lib/softhsm/libsofthsm2.so
if [ -e "$LIB" ] && command -v softhsm2-util >/dev/null 2>&1; then
  exit 0
fi
if command -v apt-get >/dev/null 2>&1; then
  SUDO=""
  [ "$(id -u)" -ne 0 ] && command -v sudo >/dev/null 2>&1 && SUDO="sudo -n"
  $SUDO apt-get install -y -q softhsm2 >/dev/null 2>&1 \
    || { $SUDO apt-get update -q >/dev/null 2>&1 && $SUDO apt-get install -y -q softhsm2 >/dev/null 2>&1; }
fi
if [ -e "$LIB" ]; then
  exit 0
fi
echo "warning: SoftHSM2 could not be installed; PKCS#11 tests will be skipped" >&2
exit 0
