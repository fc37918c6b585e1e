#!/usr/bin/env bash
# Run before `npm test` (npm's pretest): the fleet tests start and kill their
# own real redis-server on free ports, so the binary must be installed. On a
# fresh Debian/Ubuntu machine this installs it (as root, or with sudo);
# elsewhere it says what to install. It never starts a server itself.
set -euo pipefail
if command -v redis-server >/dev/null 2>&1 || [ -x "${REDIS_SERVER:-/usr/bin/redis-server}" ]; then exit 0; fi
if command -v apt-get >/dev/null 2>&1; then
  SUDO=""
  if [ "$(id -u)" != "0" ]; then SUDO="sudo"; fi
  echo "pretest: installing redis-server (Debian package) for the fleet tests"
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends redis-server >/dev/null
  # The package starts a service on 6379; the tests do not use it.
  $SUDO service redis-server stop >/dev/null 2>&1 || true
  exit 0
fi
echo "pretest: the tests need redis-server (Redis 6 or later) on PATH, or REDIS_SERVER=/path/to/redis-server" >&2
exit 1
