#!/usr/bin/env bash
# sekisho's additions to the shared harness's generated work directory. Run
# after ../shared/bench/gen-configs.sh WORKDIR has filled WORKDIR:
#
#   1. Body limits: the 1 MiB form workload needs a request body limit above
#      1 MiB, so every target that has one gets the same 2 MiB (BODY_LIMIT):
#        nginx, nginx-modsec   client_max_body_size 2m (nginx's default is 1m),
#                              client_body_buffer_size 2m (keep bodies in memory,
#                              as the Go targets do, instead of temp files)
#        nginx-modsec          SecRequestBodyLimit and SecRequestBodyNoFilesLimit 2 MiB
#                              (Debian's recommended config: 12.5 MiB and 128 KiB:
#                              the latter refuses a 1 MiB form with 413)
#        goref-coraza*         SecRequestBodyLimit and SecRequestBodyInMemoryLimit 2 MiB
#                              (run.sh passes them; Coraza's recommended: 12.5 MiB / 128 KiB)
#        sekisho               waf request_body_limit and request_body_no_files_limit 2 MiB
#                              (defaults 1 MiB and 128 KiB: the latter, like ModSecurity's,
#                              refuses a 1 MiB form with 413)
#   2. Two more workloads, generated like the shared get/post ones (same
#      browser headers; a random token in a field makes every request differ):
#        wrk/json16k.lua   POST application/json, exactly 16384 bytes
#        wrk/form1m.lua    POST application/x-www-form-urlencoded, exactly 1048576 bytes
#      and their curl bodies for verification (curl/json16k-body.txt,
#      curl/form1m-body.txt, curl/form1m-attack-body.txt, curl/json-attack.txt).
#   3. The sekisho configs (sekisho.yaml, sekisho-wafoff.yaml, sekisho-noresp.yaml, sekisho-access.yaml), from the BENCH_*
#      variables run.sh exports: plain + TLS bind with the bench certificate,
#      one backend with the two backend servers, access log off.
# Usage: gen-extra.sh WORKDIR      (BENCH_BACKEND_ADDRS, BENCH_TLS_CERT, BENCH_TLS_KEY set)
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=lib.sh
source "$HERE/lib.sh"
W=${1:?usage: gen-extra.sh WORKDIR}
W=$(cd "$W" && pwd)
[ -f "$W/curl/headers.txt" ] && [ -f "$W/modsec/modsecurity.conf" ] || { echo "run gen-configs.sh $W first" >&2; exit 1; }
: "${BENCH_BACKEND_ADDRS:?}" "${BENCH_TLS_CERT:?}" "${BENCH_TLS_KEY:?}"

# ---- 1. body limits ------------------------------------------------------------
KB=$((BODY_LIMIT / 1024))
for f in "$W"/nginx-*.conf; do
  grep -q client_max_body_size "$f" ||
    sed -i "s|^    access_log off;|    access_log off;\n    client_max_body_size ${KB}k;\n    client_body_buffer_size ${KB}k;|" "$f"
  grep -q "client_max_body_size ${KB}k;" "$f" || { echo "could not set the body limit in $f" >&2; exit 1; }
done
sed -i -e "s/^SecRequestBodyLimit .*/SecRequestBodyLimit $BODY_LIMIT/" \
       -e "s/^SecRequestBodyNoFilesLimit .*/SecRequestBodyNoFilesLimit $BODY_LIMIT/" "$W/modsec/modsecurity.conf"
grep -q "^SecRequestBodyNoFilesLimit $BODY_LIMIT$" "$W/modsec/modsecurity.conf" &&
  grep -q "^SecRequestBodyLimit $BODY_LIMIT$" "$W/modsec/modsecurity.conf" ||
  { echo "could not set the body limit in modsecurity.conf" >&2; exit 1; }

# ---- 2. workloads -----------------------------------------------------------------
# The token placeholder: 6 characters, replaced per request by 6 random hex digits
# (fixed width, so Content-Length stays right). The curl bodies keep it as is.
TOKEN=ZZTOKN
lua_headers() { # the shared browser header set, minus the navigation-only ones
  while IFS= read -r line; do
    local k=${line%%: *} v=${line#*: }
    v=${v//\\/\\\\}; v=${v//\"/\\\"}
    printf 'wrk.headers["%s"] = "%s"\n' "$k" "$v"
  done < "$W/curl/headers.txt" | grep -v -e '"Sec-Fetch-User"' -e '"Upgrade-Insecure-Requests"'
}
# A request template is built once per wrk thread (wrk.format, so the headers and
# Content-Length are wrk's own), split at the token; each request is then
# prefix .. token .. suffix: one copy of the body per request, no gsub over 1 MiB.
lua_tail() { # body file
  cat <<LUA
local f = assert(io.open("$1", "rb"))
local body = f:read("*a")
f:close()
local req = wrk.format(nil, nil, nil, body)
local a, b = req:find("$TOKEN", 1, true)
local pre, post = req:sub(1, a - 1), req:sub(b + 1)
math.randomseed(os.time())
request = function()
  return pre .. string.format("%06x", math.random(0, 0xffffff)) .. post
end
LUA
}
pad_to() { # string size filler -> string of exactly size bytes (filler repeated, cut)
  local s=$1 n=$2 fill=$3
  while [ ${#s} -lt "$n" ]; do s+=$fill; done
  printf '%s' "${s:0:$n}"
}

# (iv) JSON API call, exactly 16384 bytes: an order with 40 line items (about 330
# JSON values, well under the 1000-argument limits of Coraza and ModSecurity).
DESC='Lightweight breathable mesh upper with a cushioned midsole for daily training and long distance running'
json='{"order_id":"A-'$TOKEN'","customer":{"name":"Jane Doe","email":"jane.doe@example.com","phone":"+1 555 0100","address":{"street":"12 Market Street","city":"Springfield","zip":"12345","country":"US"}},"currency":"USD","items":['
for ((i = 1; i <= 40; i++)); do
  [ $i -gt 1 ] && json+=','
  json+=$(printf '{"sku":"SKU-%05d","name":"Running shoes model %d","qty":%d,"price":%d.99,"color":"blue","size":"42","gift":false,"description":"%s"}' \
    $((10000 + i * 37)) "$i" $((i % 3 + 1)) $((40 + i)) "$DESC")
done
json+='],"notes":"Please deliver in the afternoon'
tail='"}'
json=$(pad_to "$json" $((16384 - ${#tail})) ' thank you')
json+=$tail
[ ${#json} -eq 16384 ] || { echo "json body is ${#json} bytes" >&2; exit 1; }
printf '%s' "$json" > "$W/curl/json16k-body.txt"
printf '%s' '{"order_id":"A-1","comment":"'"'"' OR 1=1--"}' > "$W/curl/json-attack.txt"
{
  echo 'wrk.method = "POST"'
  echo 'wrk.path = "/api/orders"'
  lua_headers | sed 's|^wrk.headers\["Accept"\] = .*|wrk.headers["Accept"] = "application/json"|'
  echo 'wrk.headers["Content-Type"] = "application/json"'
  echo 'wrk.headers["Origin"] = "https://shop.example.com"'
  lua_tail "$W/curl/json16k-body.txt"
} > "$W/wrk/json16k.lua"

# (v) a large form, exactly 1048576 bytes: a CMS article with a few short fields
# and ~1 MiB of text in one field (the same text the shared 4 KiB POST uses).
LOREM='Lorem+ipsum+dolor+sit+amet+consectetur+adipiscing+elit+sed+do+eiusmod+tempor+incididunt+ut+labore+et+dolore+magna+aliqua+Ut+enim+ad+minim+veniam+quis+nostrud+exercitation+ullamco+laboris+nisi+ut+aliquip+ex+ea+commodo+consequat+Duis+aute+irure+dolor+in+reprehenderit+in+voluptate+velit+esse+cillum+dolore+eu+fugiat+nulla+pariatur+'
form="post_id=P-$TOKEN&title=Spring+collection+review&author=Jane+Doe&category=reviews&tags=running%2Cshoes%2Cspring&status=draft&body="
# build 1 MiB by doubling (a character-at-a-time loop over 1 MiB is slow in bash)
big=$LOREM
while [ ${#big} -lt 1048576 ]; do big+=$big; done
form=${form}${big}
form=${form:0:1048576}
[ "${form: -1}" = + ] && form=${form%+}s   # do not end on a '+' (a trailing space); keeps the length
[ ${#form} -eq 1048576 ] || { echo "form body is ${#form} bytes" >&2; exit 1; }
printf '%s' "$form" > "$W/curl/form1m-body.txt"
# the same form with an SQL injection in a field after the 1 MiB: verifies that
# WAF targets inspect the whole body, not a first part
printf '%s&comment=%s' "$form" "%27+OR+1%3D1--" > "$W/curl/form1m-attack-body.txt"
{
  echo 'wrk.method = "POST"'
  echo 'wrk.path = "/app/posts"'
  lua_headers
  echo 'wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"'
  echo 'wrk.headers["Origin"] = "https://shop.example.com"'
  lua_tail "$W/curl/form1m-body.txt"
} > "$W/wrk/form1m.lua"

# ---- 3. sekisho configs ------------------------------------------------------------
gen_sekisho() { # target mode [policy line [frontend lines [top-level lines]]]
  local t=$1 mode=$2 extra=${3:-} front=${4:-} top=${5:-} p ps _w a
  read -r p ps _w < <(target_ports "$t")
  {
    cat <<YAML
# generated by e2e/bench/gen-extra.sh for target $t
frontends:
  - name: bench
    bind:
      - address: 127.0.0.1:$p
      - address: 127.0.0.1:$ps
        tls: true
    tls:
      certificates:
        - cert_file: $BENCH_TLS_CERT
          key_file: $BENCH_TLS_KEY
    default_backend: app
${front}backends:
  - name: app
    servers:
YAML
    IFS=, read -ra addrs <<<"$BENCH_BACKEND_ADDRS"
    for a in "${addrs[@]}"; do echo "      - address: $a"; done
    cat <<YAML
waf:
  policies:
    - name: default
      mode: "$mode"
      paranoia_level: 1
      request_body_limit: $BODY_LIMIT
      request_body_no_files_limit: $BODY_LIMIT
${extra:+      $extra
}log:
  level: warn
  access: "off"
YAML
    printf '%s' "$top"
  } > "$W/$t.yaml"
}
gen_sekisho sekisho block
gen_sekisho sekisho-wafoff off
gen_sekisho sekisho-noresp block "inspect_response_body: false"
# The access step on, WAF off: lists the benchmark's client (127.0.0.1) is
# in none of, so every request is looked up in each and goes on.
awk 'BEGIN { srand(7); for (i = 0; i < 100000; i++) printf "%d.%d.%d.0/24\n", 11 + int(rand() * 100), int(rand() * 256), int(rand() * 256) }' > "$W/deny.txt"
gen_sekisho sekisho-access off "" "    ja4_header: X-JA4
    access: {allow: [office], deny: [drop], challenge: [suspects]}
    ban: {waf_blocks: 5, errors_4xx: 100, within: 1m, duration: 10m}
" "ip_lists:
  - {name: drop, file: $W/deny.txt}
  - {name: office, cidrs: [\"192.0.2.0/24\"]}
  - {name: suspects, cidrs: [\"198.51.100.0/24\", \"2001:db8::/32\"]}
"

echo "extra workloads (json16k, form1m), ${KB} KiB body limits and sekisho configs generated in $W"
