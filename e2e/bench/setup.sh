#!/usr/bin/env bash
# Installs what e2e/bench/run.sh needs (Debian 12, as root): the shared harness's
# setup does it (apt: haproxy nginx libnginx-mod-http-modsecurity wrk curl openssl
# procps util-linux python3, without starting their system services; Go modules
# for its backend and goref: Coraza + coraza-coreruleset), then sekisho's own Go
# modules are fetched and the binary is built once as a check.
#   e2e/bench/setup.sh            (SHARED_BENCH=DIR if the harness is not at ../shared/bench)
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
export PATH=$PATH:/usr/local/go/bin
SHARED_BENCH=$(cd "${SHARED_BENCH:-$REPO/../shared/bench}" && pwd) || { echo "shared bench harness not found: set SHARED_BENCH" >&2; exit 1; }
bash "$SHARED_BENCH/setup.sh"
(cd "$REPO" && go mod download && CGO_ENABLED=0 go build -o /dev/null ./cmd/sekisho)
echo "e2e/bench setup ok"
