#!/usr/bin/env bash
# Run by the image's entrypoint: the backend upstream's server from BACKEND_ADDRESS, `backend:8000`
# (compose) or `backend:8000 resolve` (Swarm); docs/operations.md, "nginx".
set -o errexit -o nounset -o pipefail

printf 'server %s;\n' "${BACKEND_ADDRESS:?set BACKEND_ADDRESS, e.g. backend:8000}" >/etc/nginx/conf.d/backend.servers
echo "nginx: backend servers: ${BACKEND_ADDRESS}"
