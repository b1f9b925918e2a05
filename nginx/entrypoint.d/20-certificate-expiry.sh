#!/usr/bin/env bash
# Run by the image's entrypoint before nginx starts: a JSON line with the certificate's notAfter and days
# left, a warning when it is about to expire (certificate-expiry).
set -o errexit -o nounset -o pipefail

exec certificate-expiry /etc/nginx/certs/fullchain.pem
