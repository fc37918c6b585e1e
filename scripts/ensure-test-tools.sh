#!/usr/bin/env bash
# Run before `npm test` (npm's pretest). The tests use two real programs:
#   - redis-server: the fleet tests start and kill their own on free ports;
#   - promtool (Debian package prometheus): the metrics tests check /metrics
#     with Prometheus's own text-format parser and linter;
#   - chromium: the dashboard test opens the live dashboard in headless
#     Chromium, driven by playwright-core (no browser download);
#   - curl (with HTTP/2) and openssl: the TLS and HTTP/2 tests make their
#     certificates with openssl and talk to the gateway with curl --http2.
# On a fresh Debian/Ubuntu machine this installs what is missing (as root,
# or with sudo); elsewhere it says what to install. It never starts a
# server itself (and stops the ones the packages start).
set -euo pipefail
missing=()
if ! command -v redis-server >/dev/null 2>&1 && [ ! -x "${REDIS_SERVER:-/usr/bin/redis-server}" ]; then missing+=(redis-server); fi
if ! command -v promtool >/dev/null 2>&1 && [ ! -x "${PROMTOOL:-/usr/bin/promtool}" ]; then missing+=(prometheus); fi
if [ ! -x "${CHROMIUM:-/usr/bin/chromium}" ]; then missing+=(chromium); fi
if ! command -v curl >/dev/null 2>&1; then missing+=(curl); fi
if ! command -v openssl >/dev/null 2>&1; then missing+=(openssl); fi
if [ ${#missing[@]} -eq 0 ]; then exit 0; fi
if command -v apt-get >/dev/null 2>&1; then
  SUDO=""
  if [ "$(id -u)" != "0" ]; then SUDO="sudo"; fi
  echo "pretest: installing ${missing[*]} (Debian packages) for the tests"
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  # The packages start services (redis on 6379, prometheus on 9090); the tests use neither.
  $SUDO service redis-server stop >/dev/null 2>&1 || true
  $SUDO service prometheus stop >/dev/null 2>&1 || true
  exit 0
fi
echo "pretest: the tests need redis-server (Redis 6 or later), promtool (Prometheus), chromium, curl and openssl, on PATH or at REDIS_SERVER= / PROMTOOL= / CHROMIUM= paths" >&2
exit 1
