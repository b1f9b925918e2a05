#!/usr/bin/env bash
# Run by the image's entrypoint after the templates are rendered: stop with the reason rather than
# start an nginx that answers nothing.
set -o errexit -o nounset -o pipefail

if [ ! -s /etc/nginx/conf.d/default.conf ]; then
  echo "nginx: /etc/nginx/conf.d/default.conf was not rendered from templates/ (is /etc/nginx/conf.d writable?)" >&2
  exit 1
fi
