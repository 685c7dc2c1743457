# shellcheck shell=bash
# sekisho's additions to the shared bench harness's lib.sh (sourced, not executed).
# Sources ../shared/bench/lib.sh (or $SHARED_BENCH/lib.sh) for the ports, the
# backend layout and crs_rules_dir, then adds three targets to its target table:
#   sekisho          sekisho, WAF policy "default": CRS v4, PL1, blocking
#   sekisho-wafoff   sekisho, WAF policy "default" with mode: off (no inspection)
#   sekisho-noresp   sekisho as "sekisho" but inspect_response_body: false (what
#                    response body inspection costs; not in the default targets)
#   sekisho-access   sekisho-wafoff with the access step on: a 100,000-prefix deny
#                    list, an allow and a challenge list, bans, the JA4 header
#                    (what the access step costs; not in the default targets)
# Their ports sit above the shared harness's range (BASE_PORT..BASE_PORT+131).
_E2E_BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
SHARED_BENCH=${SHARED_BENCH:-$_E2E_BENCH_DIR/../../../shared/bench}
SHARED_BENCH=$(cd "$SHARED_BENCH" && pwd) || { echo "shared bench harness not found (set SHARED_BENCH)" >&2; return 1; }
# shellcheck source=/dev/null
source "$SHARED_BENCH/lib.sh"

# Keep the shared table as shared_target_ports and extend it.
eval "shared_$(declare -f target_ports)"
target_ports() {
  case "$1" in
    sekisho)        echo "$((BASE_PORT + 140)) $((BASE_PORT + 141)) 1" ;;
    sekisho-wafoff) echo "$((BASE_PORT + 150)) $((BASE_PORT + 151)) 0" ;;
    sekisho-noresp) echo "$((BASE_PORT + 160)) $((BASE_PORT + 161)) 1" ;;
    sekisho-access) echo "$((BASE_PORT + 170)) $((BASE_PORT + 171)) 0" ;;
    *) shared_target_ports "$1" ;;
  esac
}

# The request body limit every WAF target gets (and every nginx, whose own
# client_max_body_size would otherwise refuse the 1 MiB form): 2 MiB.
BODY_LIMIT=${BODY_LIMIT:-2097152}
