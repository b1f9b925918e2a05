#!/usr/bin/env bash
# Run by the image's entrypoint before nginx starts. With TLS_SELF_SIGNED=if-missing (the dev stack)
# it creates a self-signed certificate for SERVER_NAME on the first start; otherwise (production) the
# certificate must be mounted and nginx refuses to start without it.
set -o errexit -o nounset -o pipefail

if [ "${TLS_SELF_SIGNED:-}" = "if-missing" ]; then
  # shellcheck disable=SC2086 # SERVER_NAME is a space-separated list of names
  exec self-signed-cert --if-missing /etc/nginx/certs ${SERVER_NAME:-localhost}
fi
