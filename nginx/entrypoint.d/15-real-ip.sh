#!/usr/bin/env bash
# Run by the image's entrypoint: REAL_IP_FROM (a load balancer's addresses or networks, comma-separated)
# makes nginx take the client's address from the X-Forwarded-For those send; unset, off
# (docs/operations.md, "Behind a load balancer or CDN").
set -o errexit -o nounset -o pipefail

conf=/etc/nginx/conf.d/real-ip.conf
rm -f "$conf"
if [ -z "${REAL_IP_FROM:-}" ]; then
  echo "nginx: client addresses as connected (REAL_IP_FROM unset)"
  exit 0
fi
IFS=, read -ra sources <<<"${REAL_IP_FROM// /}"
for source in "${sources[@]}"; do
  # Only address characters, so the value cannot add directives of its own.
  if ! [[ $source =~ ^[0-9A-Fa-f.:]+(/[0-9]{1,3})?$ ]]; then
    echo "nginx: REAL_IP_FROM must list addresses or networks like 203.0.113.0/24, not '$source'" >&2
    exit 1
  fi
  printf 'set_real_ip_from %s;\n' "$source" >>"$conf"
done
# The rightmost untrusted address: a client's own entries, further left, are never taken.
printf 'real_ip_header X-Forwarded-For;\nreal_ip_recursive on;\n' >>"$conf"
echo "nginx: client addresses from X-Forwarded-For sent by ${REAL_IP_FROM}"
