#!/bin/sh
# Entry point of the e2eid container (deploy/Dockerfile). Runs `e2eid "$@"`; before `serve`, creates
# the CA in /var/lib/e2eid/ca when it is missing and E2EID_INIT_DOMAIN is set (the federation
# domain; E2EID_INIT_ARGS adds flags of `e2eid init`, e.g. "--key-type p384"). An existing CA is
# never touched.
set -eu

ca_dir="${E2EID_CA_DIR:-/var/lib/e2eid/ca}"
if [ "${1:-}" = "serve" ] && [ ! -f "$ca_dir/intermediate.pem" ] && [ -n "${E2EID_INIT_DOMAIN:-}" ]; then
  # shellcheck disable=SC2086  # E2EID_INIT_ARGS is a list of flags
  /usr/bin/e2eid init --dir "$ca_dir" --domain "$E2EID_INIT_DOMAIN" ${E2EID_INIT_ARGS:-}
fi
exec /usr/bin/e2eid "$@"
