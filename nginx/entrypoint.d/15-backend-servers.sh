#!/usr/bin/env bash
# Run by the image's entrypoint before nginx starts: the backend upstream's servers from BACKEND_ADDRESS
# (space-separated host:port). A name is resolved at start and at each reload, to every address it has:
# every container of a scaled compose service. `make deploy` points nginx at other containers with
# nginx-reload, without a restart. With BACKEND_WATCH_INTERVAL (Swarm), the names' addresses are
# written instead, and backend-watch follows them in the background from then on.
set -o errexit -o nounset -o pipefail

if [ -n "${BACKEND_WATCH_INTERVAL:-}" ]; then
  backend-watch --servers-only
  backend-watch </dev/null &
  exit 0
fi
# shellcheck disable=SC2086 # a space-separated list
exec nginx-reload --servers-only ${BACKEND_ADDRESS:?set BACKEND_ADDRESS, e.g. backend:8000}
