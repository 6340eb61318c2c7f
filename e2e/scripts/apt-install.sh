#!/usr/bin/env bash
# Install Debian packages the tests need: apt-get install, and apt-get update only if the
# package lists are too old for the install to succeed. Uses sudo when not root.
set -euo pipefail
SUDO=
if [ "$(id -u)" != 0 ]; then SUDO=sudo; fi
export DEBIAN_FRONTEND=noninteractive
echo "apt-install: $*"
if ! $SUDO apt-get install -y -q --no-install-recommends "$@" >/dev/null; then
  echo "apt-install: install failed; apt-get update and retry"
  $SUDO apt-get update -q >/dev/null
  $SUDO apt-get install -y -q --no-install-recommends "$@" >/dev/null
fi
