#!/usr/bin/env bash
# Run by the image's entrypoint before nginx starts. With TLS_LOCAL_CA=true (the dev stack) it makes, on
# the first start, a local CA and a certificate for SERVER_NAME signed by it, and renews the
# certificate at a later start when it is close to expiry (local-cert). Otherwise (production) the
# certificate must be mounted and nginx refuses to start without it.
set -o errexit -o nounset -o pipefail

if [ "${TLS_LOCAL_CA:-}" = "true" ]; then
  # shellcheck disable=SC2086 # SERVER_NAME is a space-separated list of names
  exec local-cert /etc/nginx/certs ${SERVER_NAME:-localhost}
fi
