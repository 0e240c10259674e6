#!/usr/bin/env bash
# bench/profile.sh: where unicrm spends instructions per request, measured with callgrind.
#
#   bench/profile.sh
#
# Builds unicrm as Release with -g into build-bench/prof-malloc-ON/ (or -OFF), starts an
# upstream nginx that answers anything with a fixed Pipedrive lead body, and runs unicrm under
# valgrind --tool=callgrind with instrumentation off. After a warm-up it switches
# instrumentation on, drives a bounded load (wrk -t1 -c8, PROFILE_SECONDS), dumps, and divides
# each function's instruction count by the number of requests wrk saw answered. Then it counts
# system calls per request with strace -c (unicrm, the floor, nginx). One unicrm pass of each
# per log level in PROFILE_LEVELS: "warn" (no access log, as bench/run.sh runs it) and "info"
# (one access-log line per request, the default).
#
# Environment: PROFILE_SECONDS [5]  PROFILE_CONNS [8]  PROFILE_TOP [15]
#              PROFILE_LEVELS ["warn info"]  BENCH_PORT_BASE [18450]  BENCH_OUT [new /tmp dir]
#              BENCH_PROXY_CPU [1]  BENCH_LOAD_CPU [0]
#              PROFILE_MIMALLOC [ON] OFF builds unicrm on glibc's malloc, to compare
#              PROFILE_PRELOAD [none] a library for unicrm's LD_PRELOAD (another malloc, say)
# Output: tables on stdout; the callgrind files stay in the work directory for
# callgrind_annotate or kcachegrind.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
MIMALLOC=${PROFILE_MIMALLOC:-ON}
BUILD="$ROOT/build-bench/prof-malloc-$MIMALLOC"
SECS=${PROFILE_SECONDS:-5}
CONNS=${PROFILE_CONNS:-8}
TOP=${PROFILE_TOP:-15}
LEVELS=${PROFILE_LEVELS:-warn info}
PORT_BASE=${BENCH_PORT_BASE:-18450}
PROXY_CPU=${BENCH_PROXY_CPU:-1}
LOAD_CPU=${BENCH_LOAD_CPU:-0}
UP_PORT=$((PORT_BASE + 1))
NGX_PORT=$((PORT_BASE + 2))
UCRM_PORT=$((PORT_BASE + 3))
FLOOR_PORT=$((PORT_BASE + 4))
WORK=${BENCH_OUT:-$(mktemp -d /tmp/unicrm-profile.XXXXXX)}
mkdir -p "$WORK"

ACCOUNT=62f44730-dd91-461e-bd6a-aedd9e0ad79d
LEAD=adf21080-0e10-11eb-879b-05d71fb426ec
UP_BODY='{"success":true,"data":{"id":"'$LEAD'","person_id":123,"organization_id":null}}'
ASSOC_PATH="/unified/crm/associations?integrated_account_id=$ACCOUNT"
URL="http://127.0.0.1:$UCRM_PORT$ASSOC_PATH"
export BENCH_PD_TOKEN=bench-token

PIDS=()
die() { printf 'profile: %s\n' "$*" >&2; exit 1; }
log() { printf '# %s\n' "$*" >&2; }

cleanup() {
  local pid
  for pid in "${PIDS[@]}"; do stop_pid "$pid"; done
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# SIGTERM, and SIGKILL 5 s later if the process is still there.
stop_pid() {
  kill "$1" 2>/dev/null || return 0
  for _ in $(seq 1 50); do
    kill -0 "$1" 2>/dev/null || break
    sleep 0.1
  done
  if kill -0 "$1" 2>/dev/null; then
    log "pid $1 had not exited 5s after SIGTERM; killed"
    kill -KILL "$1" 2>/dev/null || true
  fi
  wait "$1" 2>/dev/null || true
}

wait_http() {
  for _ in $(seq 1 300); do
    curl -s -o /dev/null --max-time 1 "http://127.0.0.1:$1/healthz" && return 0
    sleep 0.1
  done
  die "$2 did not come up on port $1 (see $WORK)"
}

setup() {
  local t
  for t in valgrind callgrind_annotate callgrind_control wrk nginx taskset cmake curl strace; do
    command -v "$t" >/dev/null || die "$t is missing (scripts/setup.sh --bench)"
  done
  log "building unicrm (Release, -g, mimalloc $MIMALLOC) into ${BUILD#"$ROOT"/}/"
  cmake -S "$ROOT" -B "$BUILD" -DCMAKE_BUILD_TYPE=Release -DCMAKE_C_FLAGS=-g \
    -DUNICRM_TESTS=OFF -DUNICRM_MIMALLOC="$MIMALLOC" >"$WORK/cmake.log" 2>&1 ||
    die "cmake configure failed"
  cmake --build "$BUILD" -j"$(nproc)" --target unicrm >>"$WORK/cmake.log" 2>&1 ||
    die "build failed (see $WORK/cmake.log)"
  # shellcheck disable=SC2046
  cc -O2 -g -std=c11 -o "$BUILD/floor" "$ROOT/bench/floor.c" \
    $(pkg-config --cflags --libs libuv libllhttp libcurl) -Wl,--no-as-needed -lmimalloc \
    >>"$WORK/cmake.log" 2>&1 ||
    die "floor.c does not build (see $WORK/cmake.log)"

  printf '{"entity":"leads","entity_id":"%s","associations":{"contacts":[{"id":"123"}]}}' \
    "$LEAD" >"$WORK/body.json"
  mkdir -p "$WORK/nginx/tmp"
  cat >"$WORK/nginx/nginx.conf" <<EOF
daemon off;
worker_processes 1;
pid $WORK/nginx/nginx.pid;
error_log $WORK/nginx/error.log warn;
events { worker_connections 1024; }
http {
  client_body_temp_path $WORK/nginx/tmp/body;
  proxy_temp_path $WORK/nginx/tmp/proxy;
  fastcgi_temp_path $WORK/nginx/tmp/fastcgi;
  uwsgi_temp_path $WORK/nginx/tmp/uwsgi;
  scgi_temp_path $WORK/nginx/tmp/scgi;
  access_log off;
  keepalive_requests 10000000;
  keepalive_timeout 300s;
  server {
    listen 127.0.0.1:$UP_PORT;
    location / { default_type application/json; return 200 '$UP_BODY'; }
  }
}
EOF
  # The reference proxy, only for the system-call comparison.
  mkdir -p "$WORK/nginx-proxy/tmp"
  sed -e "s|$WORK/nginx/|$WORK/nginx-proxy/|g" -e '/^  server {/,$d' "$WORK/nginx/nginx.conf" \
    >"$WORK/nginx-proxy.conf"
  cat >>"$WORK/nginx-proxy.conf" <<EOF
  upstream up { server 127.0.0.1:$UP_PORT; keepalive 64; }
  server {
    listen 127.0.0.1:$NGX_PORT;
    location / { proxy_pass http://up; proxy_http_version 1.1; proxy_set_header Connection ""; }
  }
}
EOF
  cat >"$WORK/unicrm.json" <<EOF
{
  "listen": "127.0.0.1:$UCRM_PORT",
  "upstream": { "max_host_connections": 64, "max_inflight_per_account": 1024 },
  "integrated_accounts": {
    "$ACCOUNT": { "provider": "pipedrive", "base_url": "http://127.0.0.1:$UP_PORT",
                  "credentials": { "api_token": "env:BENCH_PD_TOKEN" } }
  }
}
EOF
  taskset -c "$LOAD_CPU" nginx -p "$WORK/nginx" -c "$WORK/nginx/nginx.conf" \
    -e "$WORK/nginx/error.log" >"$WORK/nginx.log" 2>&1 &
  PIDS+=($!)
  wait_http "$UP_PORT" "upstream nginx"
}

# wrk_requests SECONDS [URL]: prints how many requests were answered.
wrk_requests() {
  taskset -c "$LOAD_CPU" wrk -t1 -c"$CONNS" -d"${1}s" -s "$ROOT/bench/post.lua" "${2:-$URL}" \
    -- "$WORK/body.json" | sed -n 's/^RESULT requests=\([0-9]*\) .*/\1/p'
}

# strace_per_request NAME PID URL: system calls per answered request of process PID.
strace_per_request() {
  local name=$1 pid=$2 url=$3
  wrk_requests 1 "$url" >/dev/null
  strace -c -f -q -p "$pid" -o "$WORK/strace.$name" &
  local st=$!
  sleep 0.5
  local reqs
  reqs=$(wrk_requests 3 "$url")
  kill -INT "$st"
  wait "$st" 2>/dev/null || true
  printf '\n%s (%s requests under strace):\n' "$name" "$reqs"
  awk -v n="$reqs" '$NF == "total" {printf "  total %.2f per request\n", $4 / n; next}
    /^ *[0-9.]+ +[0-9.]+ +[0-9]+ +[0-9]+ / {
      if ($4 / n >= 0.05) printf "  %-16s %6.2f\n", $NF, $4 / n}' "$WORK/strace.$name"
}

# System calls per request, unicrm (the Release -g build, not under valgrind), the floor and
# the nginx proxy, each pinned like in bench/run.sh.
syscalls() {
  printf '\n== system calls per request (strace -c -f; wrk -t1 -c%s)\n' "$CONNS"
  local level upid
  for level in $LEVELS; do
    taskset -c "$PROXY_CPU" "$BUILD/unicrm" --config "$WORK/unicrm.json" --log-level "$level" \
      >"$WORK/unicrm-$level.strace.log" 2>&1 &
    upid=$!
    PIDS+=("$upid")
    wait_http "$UCRM_PORT" unicrm
    strace_per_request "unicrm-$level" "$upid" "$URL"
    stop_pid "$upid"
  done

  taskset -c "$PROXY_CPU" "$BUILD/floor" --listen "$FLOOR_PORT" \
    --upstream "http://127.0.0.1:$UP_PORT" >"$WORK/floor.strace.log" 2>&1 &
  local fpid=$!
  PIDS+=("$fpid")
  wait_http "$FLOOR_PORT" floor
  strace_per_request floor "$fpid" "http://127.0.0.1:$FLOOR_PORT$ASSOC_PATH"
  stop_pid "$fpid"

  taskset -c "$PROXY_CPU" nginx -p "$WORK/nginx-proxy" -c "$WORK/nginx-proxy.conf" \
    -e "$WORK/nginx-proxy/error.log" >"$WORK/nginx-proxy.log" 2>&1 &
  local npid=$!
  PIDS+=("$npid")
  wait_http "$NGX_PORT" "nginx proxy"
  strace_per_request nginx-worker "$(pgrep -P "$npid" | head -1)" \
    "http://127.0.0.1:$NGX_PORT$ASSOC_PATH"
}

# callgrind_annotate's function table as "Ir<TAB>file:function<TAB>object", one line each,
# with this checkout's path prefix removed (callgrind names a file both ways) and duplicates
# dropped. $2: yes for inclusive, no for self cost.
annotate_rows() {
  callgrind_annotate --auto=no --inclusive="$2" --threshold=100 "$1" 2>/dev/null |
    awk -v root="$ROOT/" '
      /PROGRAM TOTALS/ {next}
      /^ *[0-9,]+ +\([ 0-9.]+%\) +/ {
        ir = $1; gsub(",", "", ir)
        fn = $0; sub(/^ *[0-9,]+ +\([ 0-9.]+%\) +/, "", fn)
        obj = "libc.so.6"
        if (match(fn, / \[[^ ]+\]$/)) {
          obj = substr(fn, RSTART + 2, RLENGTH - 3); fn = substr(fn, 1, RSTART - 1)
          sub(/.*\//, "", obj)
        }
        if (index(fn, root) == 1) fn = substr(fn, length(root) + 1)
        if (seen[fn]++) next
        printf "%s\t%s\t%s\n", ir, fn, obj
      }'
}

# Prints "Ir/request  share  function (object)" for the first $TOP rows matching $4.
per_request() {
  local file=$1 reqs=$2 total=$3 filter=$4 inclusive=$5
  annotate_rows "$file" "$inclusive" | awk -F'\t' -v n="$reqs" -v t="$total" -v top="$TOP" \
    -v f="$filter" '$2 ~ f && shown < top {
      name = $2; if (name ~ /^\?\?\?:/) name = name " (" $3 ")"
      printf "  %9.0f  %5.1f%%  %s\n", $1 / n, 100 * $1 / t, name; shown++}'
}

# Self cost summed by the object (executable or library) it ran in.
per_object() {
  local file=$1 reqs=$2 total=$3
  annotate_rows "$file" no | awk -F'\t' -v n="$reqs" -v t="$total" '
      {s[$3] += $1}
      END {for (o in s) printf "  %9.0f  %5.1f%%  %s\n", s[o] / n, 100 * s[o] / t, o}' |
    sort -rn
}

# Calls per request to the allocator, from the caller tree, leaving out the allocator's calls
# to itself. "free" counts free(NULL) too (curl_easy_reset frees every string option).
alloc_calls() {
  local file=$1 reqs=$2
  callgrind_annotate --auto=no --tree=caller --threshold=100 "$file" 2>/dev/null |
    awk -v n="$reqs" '
      /^ *[0-9,]+ +\([ 0-9.]+%\) +< / {
        if ($0 ~ /\/malloc\/(malloc|arena)\.c:|libmimalloc/) next # realloc calling malloc...
        if (match($0, /\(([0-9,]+)x\)/)) {c = substr($0, RSTART + 1, RLENGTH - 3); gsub(",", "", c)}
        pending += c; next
      }
      /^ *[0-9,]+ +\([ 0-9.]+%\) +\* / {
        if ($0 ~ /(malloc\.c|\?\?\?):(malloc|calloc|realloc|free) \[/) { # glibc or mimalloc
          f = $0; sub(/ \[.*/, "", f); sub(/.*:/, "", f); calls[f] += pending
        }
        pending = 0; next
      }
      /^$/ {pending = 0}
      END {printf "  malloc %.1f  calloc %.1f  realloc %.1f  free %.1f\n", calls["malloc"] / n,
             calls["calloc"] / n, calls["realloc"] / n, calls["free"] / n}'
}

# callgrind_run NAME PORT URL CMD...: (NAME: unicrm-LEVEL or floor) runs CMD under callgrind pinned to the proxy CPU, counts
# instructions over PROFILE_SECONDS of load after a warm-up, prints the tables.
callgrind_run() {
  local name=$1 port=$2 url=$3
  shift 3
  local out="$WORK/callgrind.$name"
  taskset -c "$PROXY_CPU" env ${PROFILE_PRELOAD:+LD_PRELOAD=$PROFILE_PRELOAD} \
    valgrind --tool=callgrind --instr-atstart=no \
    --callgrind-out-file="$out.%p" "$@" >"$WORK/$name.log" 2>&1 &
  local pid=$!
  PIDS+=("$pid")
  wait_http "$port" "$name under valgrind"

  wrk_requests 2 "$url" >/dev/null # warm-up: connections, caches, first allocations
  callgrind_control -i on "$pid" >/dev/null
  local reqs
  reqs=$(wrk_requests "$SECS" "$url")
  callgrind_control -d "$pid" >/dev/null
  callgrind_control -i off "$pid" >/dev/null
  stop_pid "$pid"
  if [ -z "$reqs" ] || [ "$reqs" -le 0 ]; then
    die "no requests were answered under valgrind ($name)"
  fi

  local file
  for file in "$out.$pid".*; do break; done
  [ -f "$file" ] || die "no callgrind dump for pid $pid"
  local total
  total=$(callgrind_annotate --auto=no "$file" 2>/dev/null |
    awk '/PROGRAM TOTALS/ {gsub(",", "", $1); print $1}')
  printf '\n== %s: %s requests (wrk -t1 -c%s, %ss under callgrind)\n' \
    "$name" "$reqs" "$CONNS" "$SECS"
  printf 'Ir per request, whole process (user space only): %s   (dump: %s)\n' \
    "$((total / reqs))" "$file"
  printf '\ntop %s inclusive (Ir/request, share of all Ir, function):\n' "$TOP"
  per_request "$file" "$reqs" "$total" . yes
  if [ "$name" != floor ]; then
    printf '\ntop %s inclusive in unicrm'"'"'s own code (src/, providers/):\n' "$TOP"
    per_request "$file" "$reqs" "$total" '^(src|providers)/' yes
  fi
  printf '\ntop %s self (exclusive):\n' "$TOP"
  per_request "$file" "$reqs" "$total" . no
  printf '\nself cost by object:\n'
  per_object "$file" "$reqs" "$total"
  printf '\nallocator calls per request:\n'
  alloc_calls "$file" "$reqs"
}

profile_level() {
  log "unicrm under callgrind, --log-level $1"
  callgrind_run "unicrm-$1" "$UCRM_PORT" "$URL" \
    "$BUILD/unicrm" --config "$WORK/unicrm.json" --log-level "$1"
}

# bench/floor.c: the same upstream call through libuv, llhttp and curl multi, nothing else.
profile_floor() {
  log "bench/floor.c under callgrind"
  callgrind_run floor "$FLOOR_PORT" "http://127.0.0.1:$FLOOR_PORT$ASSOC_PATH" \
    "$BUILD/floor" --listen "$FLOOR_PORT" --upstream "http://127.0.0.1:$UP_PORT"
}

setup
printf 'unicrm callgrind profile %s; %s; unicrm %s\n' "$(date -u '+%Y-%m-%d %H:%M UTC')" \
  "$(valgrind --version)" "$(git -C "$ROOT" describe --always --dirty 2>/dev/null || echo ?)"
for level in $LEVELS; do
  profile_level "$level"
done
profile_floor
syscalls
