#!/usr/bin/env bash
# sekisho's side-by-side load benchmark (make bench-load), on one machine.
#
# THIS IS A COPY of the shared harness's driver (../shared/bench/run.sh, or
# $SHARED_BENCH/run.sh) with its target table and workloads extended. The shared
# driver supports one `gateway` target per run; sekisho is measured here as two
# targets in the same interleaved run:
#   sekisho          CRS v4 PL1, blocking (WAF policy mode: block)
#   sekisho-wafoff   the same gateway with the WAF policy mode: off
# and two workloads are added to get/post/tls: json16k (16 KiB JSON POST) and
# form1m (1 MiB x-www-form-urlencoded POST). Everything else is the shared
# harness's, used from its own folder: lib.sh (ports), gen-configs.sh (certs,
# HAProxy/nginx/ModSecurity configs, get/post workloads), backend/, goref/, and
# the measurement method below (wrk, taskset pinning, interleaved rounds,
# medians). Our additions: lib.sh (target table), gen-extra.sh (body limits,
# new workloads, sekisho configs), summarize.py (a copy of the shared one, with
# ratios vs nginx-modsec and goref). Changes to this copy are marked "sekisho:".
#
#   e2e/bench/run.sh                     # default targets and workloads, ~15 minutes
#   RUNS=1 DURATION=2 e2e/bench/run.sh   # quick check
#
# Everything listens on 127.0.0.1 (ports from BASE_PORT, see lib.sh). The
# script builds the Go programs, generates the peer configs (gen-configs.sh),
# starts every target, verifies each one (normal requests 200, attacks 403 on
# WAF targets), then runs wrk against the targets interleaved (A B C A B C ...),
# RUNS times each, and summarizes medians (summarize.py). See README.md.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
export PATH=$PATH:/usr/local/go/bin
# sekisho: the shared harness (backend/, goref/, gen-configs.sh, lib.sh)
SHARED_BENCH=$(cd "${SHARED_BENCH:-$REPO/../shared/bench}" && pwd) || { echo "shared bench harness not found: set SHARED_BENCH" >&2; exit 1; }
export SHARED_BENCH

# ---- knobs ---------------------------------------------------------------------
DURATION=${DURATION:-5}          # seconds per measurement
WARMUP=${WARMUP:-1}              # seconds of warm-up per target x workload (not recorded)
RUNS=${RUNS:-3}                  # measurements per target x workload
CONNS=${CONNS:-16}               # wrk connections (same for every target)
THREADS=${THREADS:-1}            # wrk threads
# sekisho: the two slow workloads get fewer connections (the same for every target), see README "Method"
JSON16K_CONNS=${JSON16K_CONNS:-4}
FORM1M_CONNS=${FORM1M_CONNS:-1}
# sekisho: form1m lasts DURATION, or longer for a target whose single form took t seconds in the
# verification: (FORM1M_MIN_REQS + 0.5) x t, at most FORM1M_MAX_DURATION
FORM1M_MIN_REQS=${FORM1M_MIN_REQS:-3}
FORM1M_MAX_DURATION=${FORM1M_MAX_DURATION:-40}
DRAIN_MAX=${DRAIN_MAX:-60}       # sekisho: seconds to wait at most for a target to finish in-flight work
WORKLOADS=${WORKLOADS:-"get post tls json16k form1m"}   # sekisho: + json16k form1m
DEFAULT_TARGETS="direct haproxy nginx nginx-modsec goref goref-coraza sekisho sekisho-wafoff"   # sekisho: + 2 targets
TARGETS=${TARGETS:-$DEFAULT_TARGETS}
if [ -n "${GATEWAY_URL:-}" ] && [[ " $TARGETS " != *" gateway "* ]]; then TARGETS="$TARGETS gateway"; fi
PIN=${PIN:-1}                    # 1: load generator and system under test on separate cores
SUT_CPUS=${SUT_CPUS:-0}          # cores for proxies + backends when PIN=1
LOAD_CPUS=${LOAD_CPUS:-1}        # cores for wrk (and this script) when PIN=1
VERIFY_STRICT=${VERIFY_STRICT:-1}
STAMP=$(date +%Y%m%d-%H%M%S)
OUT=${OUT:-${TMPDIR:-/tmp}/sekisho-bench/$STAMP}
KEEP_WORK=${KEEP_WORK:-0}

if [ "$PIN" = 1 ]; then
  n=0; IFS=, read -ra _c <<<"$SUT_CPUS"; for c in "${_c[@]}"; do
    if [[ $c == *-* ]]; then n=$((n + ${c#*-} - ${c%-*} + 1)); else n=$((n + 1)); fi; done
  export SUT_WORKERS=${SUT_WORKERS:-$n}
  SUT_PREFIX=(taskset -c "$SUT_CPUS")
  taskset -pc "$LOAD_CPUS" $$ >/dev/null   # this script, its samplers and wrk stay off the SUT cores
  WRK_PREFIX=(taskset -c "$LOAD_CPUS")
else
  export SUT_WORKERS=${SUT_WORKERS:-$(getconf _NPROCESSORS_ONLN)}
  SUT_PREFIX=(); WRK_PREFIX=()
fi
export GOMAXPROCS_SUT=$SUT_WORKERS
# shellcheck source=lib.sh
source "$HERE/lib.sh"   # sekisho: sources $SHARED_BENCH/lib.sh, adds the sekisho targets and BODY_LIMIT

mkdir -p "$OUT/raw"
OUT=$(cd "$OUT" && pwd)
W=$(mktemp -d /tmp/sekisho-bench-work.XXXXXX)
LOG="$OUT/run.log"
log() { printf '%s %s\n' "$(date +%T)" "$*" | tee -a "$LOG" >&2; }

for tool in wrk curl openssl taskset go python3; do
  command -v "$tool" >/dev/null || { echo "missing $tool: run e2e/bench/setup.sh" >&2; exit 1; }
done
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

# ---- process bookkeeping (every process we start is stopped by PID) ------------
declare -A ROOT=()          # target -> root PID
STARTED=()                  # root PIDs in start order
children_of() { ps -e -o pid=,ppid= | awk -v p="$1" '$2==p{print $1}'; }
tree_pids() { # pid -> pid and all descendants
  local todo=("$1") out=() p
  while [ ${#todo[@]} -gt 0 ]; do
    p=${todo[0]}; todo=("${todo[@]:1}")
    [ -d "/proc/$p" ] || continue
    out+=("$p")
    # shellcheck disable=SC2207
    todo+=($(children_of "$p"))
  done
  echo "${out[@]}"
}
rss_kb() { # pids... -> summed VmRSS in KiB
  local f=() p; for p in "$@"; do [ -r "/proc/$p/status" ] && f+=("/proc/$p/status"); done
  if [ ${#f[@]} -eq 0 ]; then echo 0; return; fi
  awk '/^VmRSS:/{s+=$2} END{print s+0}' "${f[@]}" 2>/dev/null || true
}
pss_kb() { # pids... -> summed Pss in KiB (shared pages split between sharers, e.g. nginx master/worker)
  local f=() p; for p in "$@"; do [ -r "/proc/$p/smaps_rollup" ] && f+=("/proc/$p/smaps_rollup"); done
  if [ ${#f[@]} -eq 0 ]; then echo 0; return; fi
  awk '/^Pss:/{s+=$2} END{print s+0}' "${f[@]}" 2>/dev/null || true
}
cpu_ticks() { # pids... -> summed utime+stime (clock ticks)
  local s=0 p st
  for p in "$@"; do
    st=$(cat "/proc/$p/stat" 2>/dev/null) || continue
    st=${st##*) }; read -ra a <<<"$st"; s=$((s + a[11] + a[12]))
  done
  echo $s
}
self_children_ticks() { local st; st=$(cat /proc/$$/stat); st=${st##*) }; read -ra a <<<"$st"; echo $((a[13] + a[14])); }
sys_ticks() { # -> "user+nice+system steal total" from /proc/stat (all CPUs; irq/softirq time is
  # mostly our own loopback traffic and is left out of "busy")
  awk '/^cpu /{t=0; for(i=2;i<=9;i++) t+=$i; print $2+$3+$4, $9, t; exit}' /proc/stat
}
stop_all() {
  local i p pids=()
  for ((i = ${#STARTED[@]} - 1; i >= 0; i--)); do
    # shellcheck disable=SC2207
    pids+=($(tree_pids "${STARTED[$i]}"))
  done
  [ ${#pids[@]} -eq 0 ] && return 0
  kill -TERM "${pids[@]}" 2>/dev/null || true
  for _ in $(seq 50); do
    local alive=0; for p in "${pids[@]}"; do kill -0 "$p" 2>/dev/null && alive=1; done
    [ $alive = 0 ] && break; sleep 0.1
  done
  for p in "${pids[@]}"; do kill -0 "$p" 2>/dev/null && kill -KILL "$p" 2>/dev/null; done
  wait 2>/dev/null || true
  STARTED=()
}
cleanup() {
  stop_all
  if [ "$KEEP_WORK" = 1 ]; then log "work dir kept: $W"; else rm -rf "$W"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ---- build + configs ---------------------------------------------------------------
log "output: $OUT"
mkdir -p "$W/bin"
(cd "$SHARED_BENCH/backend" && go build -trimpath -o "$W/bin/backend" .)
(cd "$SHARED_BENCH/goref" && go build -trimpath -o "$W/bin/goref" .)
if [[ " $TARGETS " == *" goref-coraza-nomultiline "* || " $TARGETS " == *" goref-coraza-tuned "* ]]; then
  (cd "$SHARED_BENCH/goref" && go build -trimpath -tags coraza.rule.no_regex_multiline -o "$W/bin/goref-nomultiline" .)
fi
# sekisho: the release build (as `make build`), into the work directory; SEKISHO_BIN uses a given binary
SEKISHO_VERSION=$(cd "$REPO" && git describe --tags --always --dirty 2>/dev/null || echo dev)
if [ -n "${SEKISHO_BIN:-}" ]; then
  cp "$SEKISHO_BIN" "$W/bin/sekisho"
elif [[ " $TARGETS " == *" sekisho"* ]]; then
  (cd "$REPO" && CGO_ENABLED=0 go build -trimpath -ldflags "-s -w -X main.version=$SEKISHO_VERSION" -o "$W/bin/sekisho" ./cmd/sekisho)
fi
"$SHARED_BENCH/gen-configs.sh" "$W" >>"$LOG"

BACKENDS=""; BACKEND_ADDRS=""
for ((i = 0; i < BACKEND_N; i++)); do
  BACKENDS+="${BACKENDS:+,}http://127.0.0.1:$((BACKEND_PORT + i))"
  BACKEND_ADDRS+="${BACKEND_ADDRS:+,}127.0.0.1:$((BACKEND_PORT + i))"
done
export BENCH_BACKENDS=$BACKENDS BENCH_BACKEND_ADDRS=$BACKEND_ADDRS \
  BENCH_TLS_CERT="$W/tls/cert.pem" BENCH_TLS_KEY="$W/tls/key.pem" BENCH_TLS_COMBINED="$W/tls/combined.pem" \
  BENCH_CRS_DIR=$(crs_rules_dir) BENCH_WORKDIR=$W BENCH_SUT_WORKERS=$SUT_WORKERS
# sekisho: 2 MiB body limits everywhere, json16k/form1m workloads, sekisho configs (from the BENCH_* above)
"$HERE/gen-extra.sh" "$W" >>"$LOG"

# ---- versions / machine ------------------------------------------------------------
{
  echo "date: $(date -u +%FT%TZ)"
  echo "kernel: $(uname -r)"
  echo "cpu: $(awk -F': ' '/model name/{print $2; exit}' /proc/cpuinfo) x $(getconf _NPROCESSORS_ONLN)"
  echo "mem: $(awk '/MemTotal/{printf "%.1f GiB", $2/1048576}' /proc/meminfo)"
  echo "go: $(go version | awk '{print $3}')"
  echo "coraza: $(awk '$1=="github.com/corazawaf/coraza/v3"{print $2}' "$SHARED_BENCH/goref/go.mod")"
  echo "coraza-coreruleset (CRS): $(awk '$1=="github.com/corazawaf/coraza-coreruleset/v4"{print $2}' "$SHARED_BENCH/goref/go.mod")"
  [ -x "$W/bin/sekisho" ] && echo "sekisho: $("$W/bin/sekisho" version | sed 's/^sekisho //')"
  echo "sekisho coraza / CRS: $(awk '$1=="github.com/corazawaf/coraza/v3"{print $2}' "$REPO/go.mod") / $(awk '$1=="github.com/corazawaf/coraza-coreruleset/v4"{print $2}' "$REPO/go.mod")"
  for p in haproxy nginx libnginx-mod-http-modsecurity libmodsecurity3 modsecurity-crs wrk openssl libssl3 libpcre2-8-0; do
    echo "$p: $(dpkg-query -W -f='${Version}' "$p" 2>/dev/null || echo n/a)"
  done
  echo "pinning: PIN=$PIN SUT_CPUS=$SUT_CPUS LOAD_CPUS=$LOAD_CPUS SUT_WORKERS=$SUT_WORKERS"
  echo "body limit: $BODY_LIMIT bytes (nginx, nginx-modsec, goref-coraza*, sekisho)"
  echo "load: duration=${DURATION}s runs=$RUNS conns=$CONNS wrk_threads=$THREADS workloads=[$WORKLOADS]"
  echo "targets: $TARGETS"
} >"$OUT/versions.txt"
cat "$OUT/versions.txt" >>"$LOG"

# ---- start targets -----------------------------------------------------------------
start_bg() { # name logfile cmd...
  local name=$1 logf=$2; shift 2
  "$@" >"$logf" 2>&1 &
  ROOT[$name]=$!; STARTED+=($!)
}
GOREF_COMMON=(-backends "$BACKENDS" -cert "$W/tls/cert.pem" -key "$W/tls/key.pem")
start_target() {
  local t=$1 p ps _w
  read -r p ps _w < <(target_ports "$t")
  case "$t" in
    direct) ROOT[direct]=$BACKEND_PID ;;
    haproxy) start_bg "$t" "$W/logs/$t.log" "${SUT_PREFIX[@]}" haproxy -db -f "$W/haproxy.cfg" ;;
    nginx|nginx-modsec|nginx-modsec-crs3)
      [ -f "$W/nginx-$t.conf" ] || { log "no config for $t (is modsecurity-crs installed?)"; exit 1; }
      start_bg "$t" "$W/logs/$t.log" "${SUT_PREFIX[@]}" nginx -c "$W/nginx-$t.conf" -p "$W" ;;
    goref) start_bg "$t" "$W/logs/$t.log" "${SUT_PREFIX[@]}" env GOMAXPROCS="$GOMAXPROCS_SUT" "$W/bin/goref" -waf=false \
      -listen "127.0.0.1:$p" -tls-listen "127.0.0.1:$ps" "${GOREF_COMMON[@]}" ;;
    goref-coraza*)
      local bin="$W/bin/goref" extra=()
      case "$t" in
        goref-coraza-noresp) extra=(-resp-body=false) ;;
        goref-coraza-noreqbody) extra=(-req-body=false) ;;
        goref-coraza-prefilter) extra=(-rx-prefilter) ;;
        goref-coraza-detect) extra=(-engine=DetectionOnly) ;;
        goref-coraza-off) extra=(-engine=Off) ;;
        goref-coraza-nomultiline) bin="$W/bin/goref-nomultiline" ;;
        goref-coraza-tuned) bin="$W/bin/goref-nomultiline"; extra=(-resp-body=false -rx-prefilter) ;;
        goref-coraza) ;;
        *) log "unknown target $t"; exit 1 ;;
      esac
      # sekisho: the same 2 MiB body limit as the other WAF targets, held in memory (appended after the CRS)
      # (before GOREF_WAF_FLAGS: a -directives given there replaces this one, so repeat the limits in it)
      local limits=(-directives "SecRequestBodyLimit $BODY_LIMIT"$'\n'"SecRequestBodyInMemoryLimit $BODY_LIMIT")
      start_bg "$t" "$W/logs/$t.log" "${SUT_PREFIX[@]}" env GOMAXPROCS="$GOMAXPROCS_SUT" "$bin" -waf=true \
        -listen "127.0.0.1:$p" -tls-listen "127.0.0.1:$ps" "${GOREF_COMMON[@]}" "${limits[@]}" ${GOREF_WAF_FLAGS:-} "${extra[@]}" ;;
    sekisho|sekisho-wafoff|sekisho-noresp|sekisho-access)   # sekisho: config generated by gen-extra.sh; GOMAXPROCS as the other Go targets
      start_bg "$t" "$W/logs/$t.log" "${SUT_PREFIX[@]}" env GOMAXPROCS="$GOMAXPROCS_SUT" "$W/bin/sekisho" run -c "$W/$t.yaml" ;;
    gateway)
      if [ -n "${GATEWAY_CMD:-}" ]; then
        start_bg gateway "$W/logs/gateway.log" "${SUT_PREFIX[@]}" bash -c "$GATEWAY_CMD"
      elif [ -n "${GATEWAY_PID:-}" ]; then
        ROOT[gateway]=$GATEWAY_PID   # already running: measured, not started or stopped here
      else
        log "gateway: GATEWAY_URL set but neither GATEWAY_CMD nor GATEWAY_PID; RSS/CPU not measured"
        ROOT[gateway]=""
      fi ;;
    *) log "unknown target $t"; exit 1 ;;
  esac
}
target_url() { # target workload -> base URL
  local t=$1 wl=$2 p ps _w
  if [ "$t" = gateway ]; then
    if [ "$wl" = tls ]; then echo "${GATEWAY_TLS_URL:-}"; else echo "$GATEWAY_URL"; fi
    return
  fi
  read -r p ps _w < <(target_ports "$t")
  if [ "$wl" = tls ]; then echo "https://127.0.0.1:$ps"; else echo "http://127.0.0.1:$p"; fi
}
target_waf() { local _p _ps w; read -r _p _ps w < <(target_ports "$1"); echo "$w"; }

# sekisho: a port already taken (a process left from another run, say) would have that process
# measured in the target's place, since the target that fails to bind only logs and exits
port_taken() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
for t in $TARGETS; do
  [ "$t" = gateway ] && continue
  read -r p ps _w < <(target_ports "$t")
  for q in $p $ps; do
    port_taken "$q" && { log "port $q of $t is taken by another process: $(ss -Hltnp "sport = :$q" 2>/dev/null | grep -o 'users:.*')"; exit 1; }
  done
done
log "starting backend x$BACKEND_N on $BACKEND_PORT.. (+TLS $BACKEND_TLS_PORT)"
start_bg backend "$W/logs/backend.log" "${SUT_PREFIX[@]}" env GOMAXPROCS="$GOMAXPROCS_SUT" "$W/bin/backend" \
  -port "$BACKEND_PORT" -n "$BACKEND_N" -tls-port "$BACKEND_TLS_PORT" -cert "$W/tls/cert.pem" -key "$W/tls/key.pem"
BACKEND_PID=${ROOT[backend]}
for t in $TARGETS; do start_target "$t"; done

wait_ready() { # url seconds
  local i
  for ((i = 0; i < $2 * 10; i++)); do
    curl -sk -o /dev/null --max-time 1 -H @"$W/curl/headers.txt" "$1/" && return 0
    sleep 0.1
  done
  return 1
}
wait_ready "http://127.0.0.1:$BACKEND_PORT" 20 || { log "backend did not come up"; exit 1; }
for t in $TARGETS; do
  u=$(target_url "$t" get)
  t0=$(date +%s.%N)
  wait_ready "$u" "${READY_TIMEOUT:-60}" || { log "$t did not come up on $u; log:"; tail -20 "$W/logs/$t.log" >&2 || true; exit 1; }
  log "$t ready on $u ($(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN{printf "%.1f", b-a}')s after the others)"
done

# ---- verification --------------------------------------------------------------------
code() { curl -sk -o /dev/null -w '%{http_code}' --max-time 10 "$@" 2>/dev/null || echo 000; }
# sekisho: the large bodies get more time (a 1 MiB form takes ~10 s through Coraza+CRS on one core);
# the form1m request's time is kept (FORM1M_T) to size that target's form1m measurements
VERIFY_SLOW_TIMEOUT=${VERIFY_SLOW_TIMEOUT:-60}
code_slow() { local r; r=$(curl -sk -o /dev/null -w '%{http_code}' --max-time "$VERIFY_SLOW_TIMEOUT" "$@" 2>/dev/null) || r=000; echo "${r:0:3}"; }
declare -A FORM1M_T=()
FAILED=0
verify_one() {
  local t=$1 w h s ph
  w=$(target_waf "$t"); h=$(target_url "$t" get); s=$(target_url "$t" tls)
  ph=$(cat "$W/curl/get-path.txt")
  local atk_q=200 atk_b=200
  [ "$w" = 1 ] && { atk_q=403; atk_b=403; }
  [ "$w" = 2 ] && atk_q=403
  local -a names=() want=() got=()
  chk() { names+=("$1"); want+=("$2"); got+=("$3"); }
  chk get 200 "$(code -H @"$W/curl/headers.txt" "$h$ph")"
  chk post 200 "$(code -H @"$W/curl/headers.txt" -H 'Content-Type: application/x-www-form-urlencoded' --data-binary @"$W/curl/post-body.txt" "$h/app/contact")"
  chk xss-query "$atk_q" "$(code -H @"$W/curl/headers.txt" -G --data-urlencode 'q=<script>alert(1)</script>' "$h/app/search")"
  chk sqli-query "$atk_q" "$(code -H @"$W/curl/headers.txt" -G --data-urlencode "q=' OR 1=1--" "$h/app/search")"
  chk sqli-body "$atk_b" "$(code -H @"$W/curl/headers.txt" --data-urlencode "comment=' OR 1=1--" "$h/app/contact")"
  # sekisho: the added workloads' bodies must pass (200) everywhere; the same kinds of body with an
  # attack must be blocked by WAF targets: in JSON, and in a field after the 1 MiB of the large form
  # (so the whole body is inspected). 'Expect:' off as wrk sends none.
  chk json16k 200 "$(code_slow -H @"$W/curl/headers.txt" -H 'Content-Type: application/json' -H 'Expect:' --data-binary @"$W/curl/json16k-body.txt" "$h/api/orders")"
  chk sqli-json "$atk_b" "$(code_slow -H @"$W/curl/headers.txt" -H 'Content-Type: application/json' -H 'Expect:' --data-binary @"$W/curl/json-attack.txt" "$h/api/orders")"
  local f0 f1; f0=$(date +%s.%N)
  chk form1m 200 "$(code_slow -H @"$W/curl/headers.txt" -H 'Content-Type: application/x-www-form-urlencoded' -H 'Expect:' --data-binary @"$W/curl/form1m-body.txt" "$h/app/posts")"
  f1=$(date +%s.%N); FORM1M_T[$t]=$(awk -v a="$f0" -v b="$f1" 'BEGIN{printf "%.3f", b-a}')
  chk sqli-form1m-tail "$atk_b" "$(code_slow -H @"$W/curl/headers.txt" -H 'Content-Type: application/x-www-form-urlencoded' -H 'Expect:' --data-binary @"$W/curl/form1m-attack-body.txt" "$h/app/posts")"
  if [ -n "$s" ]; then
    chk tls-get 200 "$(code -H @"$W/curl/headers.txt" "$s$ph")"
    chk tls-xss "$atk_q" "$(code -H @"$W/curl/headers.txt" -G --data-urlencode 'q=<script>alert(1)</script>' "$s/app/search")"
  fi
  local i line="$t:" bad=0
  for i in "${!names[@]}"; do
    if [ "${got[$i]}" = "${want[$i]}" ]; then line+=" ${names[$i]}=${got[$i]}"; else line+=" ${names[$i]}=${got[$i]}(want ${want[$i]})"; bad=1; fi
  done
  if [ -n "$s" ]; then
    local hp=${s#https://}; hp=${hp%%/*}
    line+=" | tls: $(echo | openssl s_client -connect "$hp" -servername shop.example.com 2>/dev/null | awk '/^New, /{print $2, $5}' | tr -d ',')"
  fi
  line+=" | form1m ${FORM1M_T[$t]}s"
  [ $bad = 1 ] && { line+="  <-- FAILED"; FAILED=1; }
  echo "$line" | tee -a "$OUT/verify.txt" >&2
}
: >"$OUT/verify.txt"
for t in $TARGETS; do verify_one "$t"; done
if [ $FAILED = 1 ] && [ "$VERIFY_STRICT" = 1 ]; then log "verification failed (VERIFY_STRICT=0 to measure anyway)"; exit 1; fi

# ---- idle RSS --------------------------------------------------------------------------
# sekisho: idle means quiet. Verification has just sent 1 MiB forms to every
# target; each gets the same few seconds without traffic before it is measured
# (sekisho gives memory back after 1 s of quiet; the others do what they do).
sleep "${IDLE_WAIT:-3}"
printf 'target\tidle_rss_kb\tidle_pss_kb\n' >"$OUT/idle_rss.tsv"
for t in $TARGETS; do
  r=${ROOT[$t]:-}; [ -n "$r" ] || continue
  # shellcheck disable=SC2046
  printf '%s\t%s\t%s\n' "$t" "$(rss_kb $(tree_pids "$r"))" "$(pss_kb $(tree_pids "$r"))" >>"$OUT/idle_rss.tsv"
done

# ---- measurement -----------------------------------------------------------------------
CLK=$(getconf CLK_TCK)
printf 'round\tworkload\ttarget\traw\trss_peak_kb\tpss_peak_kb\tcpu_ticks\tbackend_cpu_ticks\tdriver_ticks\tsys_busy_ticks\tsys_steal_ticks\tsys_total_ticks\tclk_tck\tconns\tduration\n' >"$OUT/results.tsv"
wl_conns() { # sekisho: workload -> wrk connections
  case "$1" in json16k) echo "$JSON16K_CONNS" ;; form1m) echo "$FORM1M_CONNS" ;; *) echo "$CONNS" ;; esac
}
wl_duration() { # sekisho: target workload -> seconds per measurement
  if [ "$2" = form1m ] && [ -n "${FORM1M_T[$1]:-}" ]; then
    awk -v d="$DURATION" -v t="${FORM1M_T[$1]}" -v n="$FORM1M_MIN_REQS" -v m="$FORM1M_MAX_DURATION" \
      'BEGIN{x=(n+0.5)*t; if(x>m)x=m; x=int(x+0.999); if(x<d)x=d; print x}'
  else echo "$DURATION"; fi
}
drain() { # sekisho: wait (bounded) until the target's process tree is idle: requests still in flight
  # when wrk stops (a slow WAF target may hold conns x seconds of work) must not run into the next measurement
  local t=$1 pids=() i prev cur
  [ -n "${ROOT[$t]:-}" ] || return 0
  # shellcheck disable=SC2207
  pids=($(tree_pids "${ROOT[$t]}"))
  [ ${#pids[@]} -gt 0 ] || return 0
  prev=$(cpu_ticks "${pids[@]}")
  for ((i = 0; i < DRAIN_MAX * 5; i++)); do
    sleep 0.2
    cur=$(cpu_ticks "${pids[@]}")
    [ $((cur - prev)) -le 1 ] && return 0
    prev=$cur
  done
  log "drain: $t still busy after ${DRAIN_MAX}s"
}
run_wrk() { # target workload seconds rawfile
  local u lua=get.lua tmo=30s
  case "$2" in post|json16k|form1m) lua=$2.lua ;; esac   # sekisho: + json16k form1m
  [ "$2" = form1m ] && tmo=60s
  u=$(target_url "$1" "$2")
  [ -n "$u" ] || return 1
  "${WRK_PREFIX[@]}" wrk -t"$THREADS" -c"$(wl_conns "$2")" -d"$3"s --timeout "$tmo" --latency -s "$W/wrk/$lua" "$u/" >"$4" 2>&1
}
bench_one() { # round workload target
  local round=$1 wl=$2 t=$3 raw pids=() bpids=() peak=0 ppeak=0 r wp dur
  dur=$(wl_duration "$t" "$wl")
  raw="$OUT/raw/${wl}_${t}_r${round}.txt"
  # shellcheck disable=SC2207
  [ -n "${ROOT[$t]:-}" ] && pids=($(tree_pids "${ROOT[$t]}"))
  # shellcheck disable=SC2207
  bpids=($(tree_pids "$BACKEND_PID"))
  local c0=0 b0 d0 s0
  [ ${#pids[@]} -gt 0 ] && c0=$(cpu_ticks "${pids[@]}")
  b0=$(cpu_ticks "${bpids[@]}"); d0=$(self_children_ticks); s0=$(sys_ticks)
  run_wrk "$t" "$wl" "$dur" "$raw" &
  wp=$!
  while kill -0 "$wp" 2>/dev/null; do
    if [ ${#pids[@]} -gt 0 ]; then
      r=$(rss_kb "${pids[@]}"); r=${r:-0}; [ "$r" -gt "$peak" ] && peak=$r
      r=$(pss_kb "${pids[@]}"); r=${r:-0}; [ "$r" -gt "$ppeak" ] && ppeak=$r
    fi
    sleep 0.5
  done
  wait "$wp" || true
  local c1=0 b1 d1 s1
  [ ${#pids[@]} -gt 0 ] && c1=$(cpu_ticks "${pids[@]}")
  b1=$(cpu_ticks "${bpids[@]}"); d1=$(self_children_ticks); s1=$(sys_ticks)
  read -r sb0 st0 stt0 <<<"$s0"; read -r sb1 st1 stt1 <<<"$s1"
  printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$round" "$wl" "$t" "raw/$(basename "$raw")" "$peak" "$ppeak" \
    $((c1 - c0)) $((b1 - b0)) $((d1 - d0)) $((sb1 - sb0)) $((st1 - st0)) $((stt1 - stt0)) "$CLK" "$(wl_conns "$wl")" "$dur" >>"$OUT/results.tsv"
  drain "$t"   # sekisho: after the sample, so in-flight leftovers are neither counted nor spilled over
  log "r$round $wl $t: $(awk '/Requests\/sec/{r=$2} /^ +99%/{p=$2} /Non-2xx/{n=", NON-2xx " $NF} /Socket errors/{e=", " $0} END{printf "%s req/s, p99 %s%s%s", r, p, n, e}' "$raw")"
}

read -ra TA <<<"$TARGETS"
read -ra WA <<<"$WORKLOADS"
NT=${#TA[@]}
EST=0   # sekisho: per target x workload durations (form1m), + the form1m drains
for wl in "${WA[@]}"; do for t in "${TA[@]}"; do
  EST=$((EST + RUNS * $(wl_duration "$t" "$wl") + WARMUP))
  [ "$wl" = form1m ] && EST=$((EST + (RUNS + 1) * $(awk -v t="${FORM1M_T[$t]:-0}" 'BEGIN{print int(t+0.999)}')))
done; done
log "warm-up ${WARMUP}s each, then $RUNS x ${DURATION}s per target x workload (form1m: $(for t in "${TA[@]}"; do printf '%s=%ss ' "$t" "$(wl_duration "$t" form1m)"; done)) ($NT targets, ${#WA[@]} workloads, ~$((EST / 60 + 1)) min)"
if [ "$WARMUP" -gt 0 ]; then
  for wl in "${WA[@]}"; do for t in "${TA[@]}"; do run_wrk "$t" "$wl" "$WARMUP" /dev/null || true; drain "$t"; done; done
fi
for ((round = 1; round <= RUNS; round++)); do
  for wl in "${WA[@]}"; do
    for ((k = 0; k < NT; k++)); do
      t=${TA[$(( (k + round - 1) % NT ))]}   # rotate the order each round
      [ "$wl" = tls ] && [ -z "$(target_url "$t" tls)" ] && continue
      bench_one "$round" "$wl" "$t"
    done
  done
done

stop_all
python3 "$HERE/summarize.py" "$OUT" | tee "$OUT/summary.md"
log "done: $OUT/summary.md"
