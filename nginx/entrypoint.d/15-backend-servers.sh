#!/usr/bin/env bash
# Run by the image's entrypoint before nginx starts: the backend upstream's server from BACKEND_ADDRESS,
# an address and its parameters: `backend:8000` (compose.prod.yaml: every container of the service, its
# name resolved at start and at each reload; `make deploy` then names the containers, scripts/nginx-reload)
# or `backend:8000 resolve` (Swarm: nginx follows the name in Docker's DNS, no reload needed).
set -o errexit -o nounset -o pipefail

printf 'server %s;\n' "${BACKEND_ADDRESS:?set BACKEND_ADDRESS, e.g. backend:8000}" >/etc/nginx/conf.d/backend.servers
echo "nginx: backend servers: ${BACKEND_ADDRESS}"
