#!/usr/bin/env bash
# bench/run.sh: unicrm against an nginx proxy_pass reference, on one machine, one command.
#
#   bench/run.sh [all | proxy | fanout | slow | idle | stream]...     (default: all)
#
#   proxy   one provider call per request, 64 and 256 connections: unicrm vs nginx proxy_pass,
#           runs alternated, unicrm's raw format too at 64, the same pair with access logs on,
#           wrk straight to the upstream (R_direct) for scale, and bench/floor.c (the same
#           upstream call through libuv + llhttp + curl multi alone, none of unicrm's work)
#   fanout  one request = 5 provider calls (Pipedrive contacts -> 5 deals), unicrm alone,
#           with nginx forwarding 1 call (64 connections) for context
#   slow    upstream answers after 100 ms (mock_crm fault), 2,000 client connections
#   idle    10,000 idle keep-alive connections: RSS before/after, per connection
#   stream  a 64 MiB provider body through unicrm (stream, raw, unified): peak RSS - idle RSS
#
# Environment (defaults in brackets):
#   BENCH_DURATION [10] seconds per measured run     BENCH_WARMUP [3] seconds of warm-up per run
#   BENCH_ROUNDS [3] alternated rounds per target (proxy)   BENCH_FANOUT_ROUNDS [2]
#   BENCH_SLOW_DURATION [20]
#   BENCH_SLOW_CONNS [2000]  BENCH_IDLE_CONNS [10000]  BENCH_STREAM_BYTES [67108864]
#   BENCH_PORT_BASE [18400] (uses the next 7 ports)    BENCH_PROXY_CPU [1]  BENCH_LOAD_CPU [0]
#   BENCH_SKIP_SETUP [0] 1 skips scripts/setup.sh     BENCH_OUT [a new /tmp dir] work directory
#   BENCH_MAX_OTHER [10] CPU% other processes may use during a run before it is repeated
#   BENCH_RETRIES [6] how many disturbed runs may be repeated in all
#   BENCH_QUIET_WAIT [10] seconds to wait, before each run, for other processes to go quiet
#
# Pinning (pitfalls.md A.3): the proxy under test (unicrm or the nginx proxy, 1 worker each)
# on BENCH_PROXY_CPU; wrk (-t1) and the upstream on BENCH_LOAD_CPU. For R_direct the upstream
# moves to BENCH_PROXY_CPU so it gets a core of its own. Everything listens on 127.0.0.1.
# Every process this script starts is stopped on exit (trap). A setup failure exits 1; a
# unicrm crash is recorded (CRASH line, the run marked FAILED), unicrm restarted, and the script
# ends with status 2.
# A run during which other processes on the machine took more than BENCH_MAX_OTHER CPU% is
# printed as DISTURBED and repeated. Raw lines and summaries go to stdout and results.txt.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BENCH="$ROOT/bench"
BUILD="$ROOT/build-bench"

DURATION=${BENCH_DURATION:-10}
WARMUP=${BENCH_WARMUP:-3}
ROUNDS=${BENCH_ROUNDS:-3}
FANOUT_ROUNDS=${BENCH_FANOUT_ROUNDS:-2}
SLOW_DURATION=${BENCH_SLOW_DURATION:-20}
SLOW_CONNS=${BENCH_SLOW_CONNS:-2000}
IDLE_CONNS=${BENCH_IDLE_CONNS:-10000}
STREAM_BYTES=${BENCH_STREAM_BYTES:-67108864}
PORT_BASE=${BENCH_PORT_BASE:-18400}
PROXY_CPU=${BENCH_PROXY_CPU:-1}
LOAD_CPU=${BENCH_LOAD_CPU:-0}
SKIP_SETUP=${BENCH_SKIP_SETUP:-0}
MAX_OTHER=${BENCH_MAX_OTHER:-10}
RETRIES=${BENCH_RETRIES:-6}
QUIET_WAIT=${BENCH_QUIET_WAIT:-10}
STOP_GRACE=5

UP_PORT=$((PORT_BASE + 1))       # upstream nginx: fixed Pipedrive lead body for anything
NGX_PORT=$((PORT_BASE + 2))      # reference nginx proxy -> upstream nginx
UCRM_PORT=$((PORT_BASE + 3))     # unicrm
MOCK_PORT=$((PORT_BASE + 4))     # mock_crm (slow and stream scenarios)
NGX_SLOW_PORT=$((PORT_BASE + 5)) # reference nginx proxy -> mock_crm
UP_STATUS_PORT=$((PORT_BASE + 6)) # upstream nginx stub_status (accepted connections)
FLOOR_PORT=$((PORT_BASE + 7))    # bench/floor.c: the mandated libraries alone, no unicrm code

ACCOUNT=62f44730-dd91-461e-bd6a-aedd9e0ad79d
LEAD=adf21080-0e10-11eb-879b-05d71fb426ec
UP_BODY='{"success":true,"data":{"id":"'$LEAD'","person_id":123,"organization_id":null}}'
ASSOC_PATH="/unified/crm/associations?integrated_account_id=$ACCOUNT"
export BENCH_PD_TOKEN=pd-test-token # mock_crm's default Pipedrive token
MOCK_TOKEN=$BENCH_PD_TOKEN

WORK=${BENCH_OUT:-$(mktemp -d /tmp/unicrm-bench.XXXXXX)}
mkdir -p "$WORK"
RESULTS="$WORK/results.txt"
: >"$RESULTS"

PIDS=()
UCRM_PID=""
UCRM_CFG=""
UCRM_LEVEL=warn
CRASHES=0
MOCK_PID=""
UP_PID=""
NGX_PID=""

log() { printf '# %s\n' "$*" >&2; }
die() { printf 'bench: %s\n' "$*" >&2; exit 1; }
out() { printf '%s\n' "$*" | tee -a "$RESULTS"; }

cleanup() {
  local pid
  [ "${#PIDS[@]}" -gt 0 ] || return 0
  for pid in "${PIDS[@]}"; do
    kill "$pid" 2>/dev/null || true
  done
  sleep 0.5
  for pid in "${PIDS[@]}"; do
    if kill -0 "$pid" 2>/dev/null; then
      sleep "$STOP_GRACE"
      kill -KILL "$pid" 2>/dev/null || true
    fi
    wait "$pid" 2>/dev/null || true
  done
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# Starts "$@" in the background pinned to CPU $1, logs to $2; sets LAST_PID.
spawn() {
  local cpu=$1 logf=$2
  shift 2
  taskset -c "$cpu" "$@" >"$logf" 2>&1 &
  LAST_PID=$!
  PIDS+=("$LAST_PID")
}

# SIGTERM, then SIGKILL if the process has not exited STOP_GRACE seconds later; a process that
# needed SIGKILL is reported, since unicrm promises to exit on SIGTERM.
stop() {
  local pid=$1
  [ -n "$pid" ] || return 0
  kill "$pid" 2>/dev/null || return 0
  for _ in $(seq 1 $((STOP_GRACE * 10))); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  if kill -0 "$pid" 2>/dev/null; then
    out "NOTE: $(tr '\0' ' ' <"/proc/$pid/cmdline" | cut -c1-80) (pid $pid) had not exited" \
      "${STOP_GRACE}s after SIGTERM; killed"
    kill -KILL "$pid" 2>/dev/null || true
  fi
  wait "$pid" 2>/dev/null || true
  forget "$pid"
}

# Drops a stopped pid from PIDS, so the exit trap never signals a recycled pid.
forget() {
  local keep=() p
  for p in "${PIDS[@]}"; do
    [ "$p" = "$1" ] || keep+=("$p")
  done
  PIDS=("${keep[@]}")
}

# Waits until an HTTP server answers on 127.0.0.1:$1 (any status), else fails the setup.
wait_http() {
  local port=$1 what=$2
  for _ in $(seq 1 100); do
    if curl -s -o /dev/null --max-time 1 "http://127.0.0.1:$port/healthz"; then
      return 0
    fi
    sleep 0.05
  done
  die "$what did not come up on port $port (see $WORK/*.log)"
}

# Fails the run when a helper this script started has gone (crashed, or killed from outside).
# unicrm itself is checked by ucrm_check, which records a crash and goes on.
check_alive() {
  local name pid
  for name in UP_PID NGX_PID MOCK_PID; do
    pid=${!name}
    [ -z "$pid" ] || kill -0 "$pid" 2>/dev/null ||
      die "${name%_PID} (pid $pid) is gone; results so far in $RESULTS"
  done
}

port_free() {
  ! ss -Htln "sport = :$1" | grep -q .
}

# ---- setup ----

setup() {
  if [ "$SKIP_SETUP" != 1 ]; then
    log "scripts/setup.sh --bench"
    "$ROOT/scripts/setup.sh" --bench || die "scripts/setup.sh --bench failed"
  fi
  local t
  for t in wrk nginx taskset cc curl cmake ss; do
    command -v "$t" >/dev/null || die "$t is missing"
  done
  [ "$(nproc)" -ge 2 ] || die "needs 2 CPUs for the pinning (nproc=$(nproc))"

  local p
  for p in $UP_PORT $NGX_PORT $UCRM_PORT $MOCK_PORT $NGX_SLOW_PORT $UP_STATUS_PORT $FLOOR_PORT; do
    port_free "$p" || die "port $p is in use; set BENCH_PORT_BASE"
  done

  # Slow and idle need thousands of descriptors, in this shell and everything it starts.
  ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
  [ "$(ulimit -n)" -ge $((IDLE_CONNS + 1000)) ] ||
    log "warning: ulimit -n is $(ulimit -n); the idle scenario may fall short"

  log "building unicrm (Release) into build-bench/, mock_crm beside it"
  cmake -S "$ROOT" -B "$BUILD" -DCMAKE_BUILD_TYPE=Release -DUNICRM_TESTS=OFF \
    >"$WORK/cmake.log" 2>&1 || die "cmake configure failed (see $WORK/cmake.log)"
  cmake --build "$BUILD" -j"$(nproc)" --target unicrm >>"$WORK/cmake.log" 2>&1 ||
    die "unicrm build failed (see $WORK/cmake.log)"
  # mock_crm is built straight from its sources, so the test tree's CMake is not needed.
  # shellcheck disable=SC2046
  cc -O2 -std=c11 -D_POSIX_C_SOURCE=200809L -o "$BUILD/mock_crm" "$ROOT"/tests/mock/*.c \
    $(pkg-config --cflags --libs libuv libllhttp yajl) >>"$WORK/cmake.log" 2>&1 ||
    die "mock_crm build failed (see $WORK/cmake.log)"
  cc -O2 -Wall -Wextra -std=c11 -D_GNU_SOURCE -o "$WORK/idle_conns" "$BENCH/idle_conns.c" ||
    die "idle_conns.c does not build"
  # shellcheck disable=SC2046
  cc -O2 -Wall -Wextra -std=c11 -o "$BUILD/floor" "$BENCH/floor.c" \
    $(pkg-config --cflags --libs libuv libllhttp libcurl) -Wl,--no-as-needed -lmimalloc \
    >>"$WORK/cmake.log" 2>&1 ||
    die "floor.c does not build (see $WORK/cmake.log)"

  write_bodies
  write_nginx_confs
  start_upstream
  start_nginx_proxy
  start_mock
}

write_bodies() {
  printf '{"entity":"leads","entity_id":"%s","associations":{"contacts":[{"id":"123"}]}}' \
    "$LEAD" >"$WORK/body_one.json"
  printf '{"entity":"contacts","entity_id":"123","associations":{"opportunities":[%s]}}' \
    '{"id":"101"},{"id":"102"},{"id":"103"},{"id":"104"},{"id":"105"}' >"$WORK/body_fanout.json"
}

nginx_common() {
  local dir=$1
  mkdir -p "$dir/tmp"
  cat <<EOF
daemon off;
master_process on;
worker_processes 1;
worker_rlimit_nofile $(ulimit -Hn);
pid $dir/nginx.pid;
error_log $dir/error.log warn;
events { worker_connections $(( $(ulimit -Hn) - 100 )); multi_accept on; }
EOF
}

nginx_temp_paths() {
  local dir=$1
  cat <<EOF
  client_body_temp_path $dir/tmp/body;
  proxy_temp_path $dir/tmp/proxy;
  fastcgi_temp_path $dir/tmp/fastcgi;
  uwsgi_temp_path $dir/tmp/uwsgi;
  scgi_temp_path $dir/tmp/scgi;
EOF
}

write_nginx_confs() {
  local up="$WORK/nginx-upstream" px="$WORK/nginx-proxy"
  mkdir -p "$up" "$px"
  {
    nginx_common "$up"
    echo "http {"
    nginx_temp_paths "$up"
    cat <<EOF
  access_log off;
  keepalive_requests 10000000;
  keepalive_timeout 300s;
  server {
    listen 127.0.0.1:$UP_PORT backlog=4096;
    location / {
      default_type application/json;
      return 200 '$UP_BODY';
    }
  }
  server {
    listen 127.0.0.1:$UP_STATUS_PORT;
    location / { stub_status; }
  }
}
EOF
  } >"$up/nginx.conf"

  # The reference proxy: dpbench's nginx-forwarder-basic settings. The second server forwards
  # to mock_crm as the same Pipedrive call unicrm makes, for the slow-upstream scenario.
  {
    nginx_common "$px"
    echo "http {"
    nginx_temp_paths "$px"
    cat <<EOF
  access_log off;
  keepalive_requests 10000000;
  keepalive_timeout 300s;
  upstream up { server 127.0.0.1:$UP_PORT; keepalive 64; }
  upstream mock { server 127.0.0.1:$MOCK_PORT; keepalive 64; }
  server {
    listen 127.0.0.1:$NGX_PORT backlog=4096;
    location / {
      proxy_pass http://up;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
    }
  }
  server {
    listen 127.0.0.1:$NGX_SLOW_PORT backlog=4096;
    location / {
      rewrite ^ /v1/leads/$LEAD? break;
      proxy_pass http://mock;
      proxy_method PATCH;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header x-api-token $MOCK_TOKEN;
      proxy_pass_request_body off;
      proxy_set_header Content-Type application/json;
      proxy_set_body '{"person_id":123}';
      proxy_read_timeout 30s;
    }
  }
}
EOF
  } >"$px/nginx.conf"
}

start_upstream() {
  spawn "$LOAD_CPU" "$WORK/nginx-upstream.log" nginx -p "$WORK/nginx-upstream" \
    -c "$WORK/nginx-upstream/nginx.conf" -e "$WORK/nginx-upstream/error.log"
  UP_PID=$LAST_PID
  wait_http "$UP_PORT" "upstream nginx"
}

start_nginx_proxy() {
  spawn "$PROXY_CPU" "$WORK/nginx-proxy.log" nginx -p "$WORK/nginx-proxy" \
    -c "$WORK/nginx-proxy/nginx.conf" -e "$WORK/nginx-proxy/error.log"
  NGX_PID=$LAST_PID
  wait_http "$NGX_PORT" "nginx proxy"
}

start_mock() {
  spawn "$LOAD_CPU" "$WORK/mock.log" "$BUILD/mock_crm" --listen "127.0.0.1:$MOCK_PORT" \
    --max-calls 0
  MOCK_PID=$LAST_PID
  wait_http "$MOCK_PORT" "mock_crm"
}

mock_ctl() {
  curl -sf -o /dev/null -X POST --data-binary "$2" "http://127.0.0.1:$MOCK_PORT/_mock/$1" ||
    die "mock_crm control call /_mock/$1 failed"
}

# unicrm config: one Pipedrive account at base_url $1; $2 is the "upstream" object.
write_ucrm_config() {
  local base=$1 upstream=$2 file=$3
  cat >"$file" <<EOF
{
  "listen": "127.0.0.1:$UCRM_PORT",
  "limits": { "max_connections": 20000, "idle_timeout_ms": 120000 },
  "upstream": $upstream,
  "integrated_accounts": {
    "$ACCOUNT": {
      "provider": "pipedrive",
      "base_url": "$base",
      "credentials": { "api_token": "env:BENCH_PD_TOKEN" }
    }
  }
}
EOF
}

# Starts unicrm with config $1 at log level $2 (warn: no access log; info: one line a request).
start_ucrm() {
  local cfg=$1 level=${2:-warn}
  stop "$UCRM_PID"
  spawn "$PROXY_CPU" "$WORK/unicrm.log" "$BUILD/unicrm" \
    --config "$cfg" --log-level "$level"
  UCRM_PID=$LAST_PID
  UCRM_CFG=$cfg
  UCRM_LEVEL=$level
  wait_http "$UCRM_PORT" unicrm
}

# After a run that used unicrm ($1 names the run): when unicrm has died, records the crash
# with its last log line, keeps its log, starts it again and returns 1.
ucrm_check() {
  [ -n "$UCRM_PID" ] || return 0
  kill -0 "$UCRM_PID" 2>/dev/null && return 0
  local status=0
  wait "$UCRM_PID" 2>/dev/null || status=$?
  forget "$UCRM_PID"
  CRASHES=$((CRASHES + 1))
  cp "$WORK/unicrm.log" "$WORK/unicrm.crash$CRASHES.log"
  out "CRASH unicrm (pid $UCRM_PID) exited with status $status during $1;" \
    "last log line: $(tail -n 1 "$WORK/unicrm.log" | cut -c1-160)" \
    "(log kept in $WORK/unicrm.crash$CRASHES.log); restarting it"
  UCRM_PID=""
  start_ucrm "$UCRM_CFG" "$UCRM_LEVEL"
  return 1
}

# ---- measuring ----

# CPU ticks used so far by pid $1 and its children (nginx workers): "user system".
cpu_ticks() {
  local pid user=0 sys=0 f
  for pid in $1 $(pgrep -P "$1" || true); do
    f=$(cut -d' ' -f14,15 "/proc/$pid/stat" 2>/dev/null) || continue
    user=$((user + ${f% *}))
    sys=$((sys + ${f#* }))
  done
  echo "$user $sys"
}

# CPU% of the ticks between two cpu_ticks readings over $3 seconds: "total user system".
cpu_pct() {
  local u0 s0 u1 s1 hz
  read -r u0 s0 <<<"$1"
  read -r u1 s1 <<<"$2"
  hz=$(getconf CLK_TCK)
  echo "$(((u1 - u0 + s1 - s0) * 100 / hz / $3)) $(((u1 - u0) * 100 / hz / $3))" \
    "$(((s1 - s0) * 100 / hz / $3))"
}

rss_kb() { awk -v k="${2:-VmRSS}:" '$1 == k {print $2}' "/proc/$1/status"; }

# Sum of VmRSS over pid $1 and its children.
rss_tree_kb() {
  local pid total=0 v
  for pid in $1 $(pgrep -P "$1" || true); do
    v=$(rss_kb "$pid") || continue
    total=$((total + ${v:-0}))
  done
  echo "$total"
}

# Runs wrk: wrk_run CONNS SECONDS URL BODY_FILE [extra wrk args]; prints the RESULT line.
wrk_run() {
  local conns=$1 secs=$2 url=$3 body=$4
  shift 4
  taskset -c "$LOAD_CPU" wrk -t1 -c"$conns" -d"${secs}s" --latency "$@" \
    -s "$BENCH/post.lua" "$url" -- "$body" 2>&1 | grep '^RESULT' || echo "RESULT failed=1"
}

field() { sed -n "s/.* $1=\([^ ]*\).*/\1/p" <<<" $2"; }

# Connections the upstream nginx has accepted so far.
up_accepts() {
  curl -s "http://127.0.0.1:$UP_STATUS_PORT/" | awk 'NR == 3 {print $1}'
}

# Established connections to port $2 owned by pid $1 or its children.
conns_of() {
  local pid n=0
  for pid in $1 $(pgrep -P "$1" || true); do
    n=$((n + $(ss -Htnp state established "dport = :$2" | grep -c "pid=$pid," || true)))
  done
  echo "$n"
}

# CPU ticks not spent by this script and its descendants: busy ticks of all CPUs (/proc/stat)
# minus what this shell and its live descendants used, themselves and through the children
# they reaped (wrk). What is left is other processes, plus any kernel time not charged to a
# process (on this machine's kernel that was about 0 on a quiet machine).
other_ticks() {
  local busy mine
  busy=$(awk '$1 == "cpu" {print $2 + $3 + $4 + $7 + $8 + $9}' /proc/stat)
  mine=$(ps -e -o pid=,ppid= | awk -v root=$$ '
    {parent[$1] = $2}
    END {
      for (p in parent) {
        q = p
        while (q > 1 && q != root) q = parent[q]
        if (q == root && p != root) printf "/proc/%s/stat ", p
      }
    }')
  # A descendant may exit meanwhile, so its file is read with cat, which skips it.
  # shellcheck disable=SC2086
  { cat "/proc/$$/stat" $mine 2>/dev/null || true; } | awk -v busy="$busy" '
    {
      rest = substr($0, index($0, ") ") + 2); split(rest, f, " ")
      ours += f[12] + f[13] + f[14] + f[15]
    }
    END {print busy - ours}'
}

# Busy ticks of CPU $1 from /proc/stat (user nice system irq softirq steal).
cpu_busy() {
  awk -v c="cpu$1" '$1 == c {print $2 + $3 + $4 + $7 + $8 + $9}' /proc/stat
}

# One measured run against the target: warm-up, then the run. Besides wrk's figures it records
# the server's CPU% and the whole proxy CPU's busy% (a gap between them is load from outside
# the bench), the server's upstream connections mid-run, and how many new connections the
# upstream accepted during the run (connection churn).
# measure NAME SERVER_PID UPSTREAM_PORT CONNS URL BODY -> appends "RUN ..." to $RESULTS
# Waits (at most BENCH_QUIET_WAIT seconds) for half a second in which other processes use less than
# BENCH_MAX_OTHER CPU%.
wait_quiet() {
  local t o0 o1
  for t in $(seq 1 $((QUIET_WAIT * 2))); do
    o0=$(other_ticks)
    sleep 0.5
    o1=$(other_ticks)
    [ $(((o1 - o0) * 200 / $(getconf CLK_TCK))) -gt "$MAX_OTHER" ] || return 0
  done
  log "the machine stayed busy for ${QUIET_WAIT}s; running anyway"
}

# A run during which other processes used more than BENCH_MAX_OTHER CPU% is logged as DISTURBED
# and repeated, while the retry budget (BENCH_RETRIES for the whole script) lasts.
measure() {
  local line
  while :; do
    wait_quiet
    line=$(measure_once "$@")
    check_alive
    if [ "$2" = "$UCRM_PID" ] && ! ucrm_check "$1 c=$4"; then
      out "FAILED name=$1 c=$4: unicrm died during the run (wrk saw rps=$(field rps "$line")" \
        "sock_errors=$(field sock_errors "$line")); not counted"
      return 0
    fi
    local other
    other=$(field other_cpu_pct "$line")
    if [ "$other" -le "$MAX_OTHER" ] || [ "$RETRIES" -le 0 ]; then
      out "$line"
      return 0
    fi
    RETRIES=$((RETRIES - 1))
    out "DISTURBED ${line#RUN } (repeating; $RETRIES retries left)"
  done
}

measure_once() {
  local name=$1 spid=$2 uport=$3 conns=$4 url=$5 body=$6
  wrk_run "$conns" "$WARMUP" "$url" "$body" >/dev/null
  local t0 t1 b0 b1 a0 a1 o0 o1 res upc
  o0=$(other_ticks)
  t0=$(cpu_ticks "$spid")
  b0=$(cpu_busy "$PROXY_CPU")
  a0=$(up_accepts)
  (
    sleep $((DURATION / 2))
    conns_of "$spid" "$uport" >"$WORK/upconns"
  ) &
  local probe=$!
  res=$(wrk_run "$conns" "$DURATION" "$url" "$body")
  wait "$probe" 2>/dev/null || true
  t1=$(cpu_ticks "$spid")
  b1=$(cpu_busy "$PROXY_CPU")
  a1=$(up_accepts)
  o1=$(other_ticks)
  upc=$(cat "$WORK/upconns" 2>/dev/null || echo na)
  local hz cpu usr sys
  hz=$(getconf CLK_TCK)
  read -r cpu usr sys <<<"$(cpu_pct "$t0" "$t1" "$DURATION")"
  local line
  line="RUN name=$name c=$conns rps=$(field rps "$res") p50_us=$(field p50_us "$res")"
  line+=" p99_us=$(field p99_us "$res") cpu_pct=$cpu usr_pct=$usr sys_pct=$sys"
  line+=" cpu${PROXY_CPU}_busy_pct=$(((b1 - b0) * 100 / hz / DURATION))"
  line+=" other_cpu_pct=$(((o1 - o0) * 100 / hz / DURATION))"
  line+=" up_conns=$upc up_new_conns=$((a1 - a0))"
  line+=" sock_errors=$(field sock_errors "$res") status_ge400=$(field status_ge400 "$res")"
  echo "$line"
}

# Median of field $2 over RUN lines with name=$1 and c=$3.
median() {
  { grep "^RUN name=$1 c=$3 " "$RESULTS" || true; } | sed -n "s/.* $2=\([^ ]*\).*/\1/p" | sort -g |
    awk '{v[NR] = $1} END {if (NR == 0) print "na"; else print v[int((NR + 1) / 2)]}'
}

spread() {
  { grep "^RUN name=$1 c=$3 " "$RESULTS" || true; } | sed -n "s/.* $2=\([^ ]*\).*/\1/p" | sort -g |
    awk 'NR == 1 {lo = $1} {hi = $1} END {printf "%s-%s", lo, hi}'
}

ms() { awk -v u="$1" 'BEGIN {if (u == "na") print "na"; else printf "%.2f", u / 1000}'; }

summary_row() {
  local name=$1 c=$2 ref=${3:-} rps
  rps=$(median "$name" rps "$c")
  if [ "$rps" = na ]; then
    out "SUMMARY $name c=$c: no run was counted"
    return 0
  fi
  local ratio=""
  if [ -n "$ref" ]; then
    ratio=$(awk -v a="$rps" -v b="$(median "$ref" rps "$c")" 'BEGIN {printf "%.2f", a / b}')
  fi
  local fmt='SUMMARY %-12s c=%-4s rps=%-6s (runs %s) p50=%sms p99=%sms'
  fmt+=' cpu=%s%%(usr %s sys %s)/%s%% up=%s/+%s other<=%s%%%s\n'
  # shellcheck disable=SC2059 # the format is built from the constants above
  printf "$fmt" \
    "$name" "$c" "$rps" "$(spread "$name" rps "$c")" "$(ms "$(median "$name" p50_us "$c")")" \
    "$(ms "$(median "$name" p99_us "$c")")" "$(median "$name" cpu_pct "$c")" \
    "$(median "$name" usr_pct "$c")" "$(median "$name" sys_pct "$c")" \
    "$(median "$name" "cpu${PROXY_CPU}_busy_pct" "$c")" "$(median "$name" up_conns "$c")" \
    "$(median "$name" up_new_conns "$c")" "$(spread "$name" other_cpu_pct "$c" | sed 's/.*-//')" \
    "${ratio:+ ratio_vs_${ref}=$ratio}" | tee -a "$RESULTS"
}

# "RATIO a/b c=N": the medians of two targets' req/s at N connections.
ratio_row() {
  local a b
  a=$(median "$1" rps "$3")
  b=$(median "$2" rps "$3")
  [ "$a" != na ] && [ "$b" != na ] || return 0
  out "RATIO $1/$2 c=$3 $(awk -v a="$a" -v b="$b" 'BEGIN {printf "%.2f", a / b}')"
}

# Moves every process of the nginx rooted at $1 to CPU $2.
repin() {
  local pid
  for pid in $1 $(pgrep -P "$1" || true); do
    taskset -pc "$2" "$pid" >/dev/null
  done
}

# ---- scenarios ----

# unicrm's upstream limits for proxy, fanout and idle: 64 host connections like nginx's
# keepalive 64; the per-account in-flight cap raised so it is not what is measured.
UP_CFG_DEFAULT='{ "max_host_connections": 64, "max_inflight_per_account": 1024 }'
UP_CFG_BENCH=${BENCH_UCRM_UPSTREAM:-$UP_CFG_DEFAULT}

scenario_proxy() {
  out "== proxy: one provider call per request (unicrm vs nginx proxy_pass, same upstream)"
  write_ucrm_config "http://127.0.0.1:$UP_PORT" "$UP_CFG_BENCH" "$WORK/ucrm-up.json"
  start_ucrm "$WORK/ucrm-up.json" warn

  # R_direct once: on this machine it is the same at 64 and 256 connections (about 97k/s).
  repin "$UP_PID" "$PROXY_CPU"
  measure direct "$UP_PID" "$UP_PORT" 64 "http://127.0.0.1:$UP_PORT$ASSOC_PATH" \
    "$WORK/body_one.json"
  repin "$UP_PID" "$LOAD_CPU"

  # The floor: the same upstream call through the same libraries, with none of unicrm's work.
  spawn "$PROXY_CPU" "$WORK/floor.log" "$BUILD/floor" --listen "$FLOOR_PORT" \
    --upstream "http://127.0.0.1:$UP_PORT"
  local floor_pid=$LAST_PID
  wait_http "$FLOOR_PORT" floor

  local c
  for c in 64 256; do
    for _ in $(seq 1 "$ROUNDS"); do
      measure unicrm "$UCRM_PID" "$UP_PORT" "$c" "http://127.0.0.1:$UCRM_PORT$ASSOC_PATH" \
        "$WORK/body_one.json"
      measure floor "$floor_pid" "$UP_PORT" "$c" "http://127.0.0.1:$FLOOR_PORT$ASSOC_PATH" \
        "$WORK/body_one.json"
      # raw relays the provider's bytes, so unicrm answers exactly what nginx answers.
      [ "$c" != 64 ] || measure unicrm_raw "$UCRM_PID" "$UP_PORT" "$c" \
        "http://127.0.0.1:$UCRM_PORT$ASSOC_PATH&truto_response_format=raw" "$WORK/body_one.json"
      measure nginx "$NGX_PID" "$UP_PORT" "$c" "http://127.0.0.1:$NGX_PORT$ASSOC_PATH" \
        "$WORK/body_one.json"
    done
  done

  stop "$floor_pid"

  # The same at 64 connections with each proxy writing one access-log line per request.
  log "access logs on: unicrm --log-level info, nginx access_log to a file"
  start_ucrm "$WORK/ucrm-up.json" info
  local logged="$WORK/nginx-proxy/nginx-log.conf"
  sed 's|^  access_log off;|  access_log '"$WORK"'/nginx-proxy/access.log;|' \
    "$WORK/nginx-proxy/nginx.conf" >"$logged"
  stop "$NGX_PID"
  spawn "$PROXY_CPU" "$WORK/nginx-proxy.log" nginx -p "$WORK/nginx-proxy" -c "$logged" \
    -e "$WORK/nginx-proxy/error.log"
  NGX_PID=$LAST_PID
  wait_http "$NGX_PORT" "nginx proxy (access log)"
  measure unicrm_log "$UCRM_PID" "$UP_PORT" 64 "http://127.0.0.1:$UCRM_PORT$ASSOC_PATH" \
    "$WORK/body_one.json"
  measure nginx_log "$NGX_PID" "$UP_PORT" 64 "http://127.0.0.1:$NGX_PORT$ASSOC_PATH" \
    "$WORK/body_one.json"
  stop "$NGX_PID"
  start_nginx_proxy
  stop "$UCRM_PID"
  UCRM_PID=""
  rm -f "$WORK/nginx-proxy/access.log"

  summary_row direct 64
  summary_row unicrm 64 nginx
  summary_row unicrm_raw 64 nginx
  summary_row floor 64 nginx
  summary_row nginx 64
  summary_row unicrm 256 nginx
  summary_row floor 256 nginx
  summary_row nginx 256
  ratio_row unicrm floor 64
  ratio_row unicrm floor 256
  summary_row unicrm_log 64 nginx_log
  summary_row nginx_log 64
}

# nginx has no fan-out; its 1-call figure at 64 connections (from the proxy scenario when it
# ran, else measured here) is the context.
scenario_fanout() {
  out "== fanout: 1 request = 5 Pipedrive calls (PATCH /api/v2/deals/{n}); nginx forwards 1"
  write_ucrm_config "http://127.0.0.1:$UP_PORT" "$UP_CFG_BENCH" "$WORK/ucrm-up.json"
  start_ucrm "$WORK/ucrm-up.json" warn
  for _ in $(seq 1 "$FANOUT_ROUNDS"); do
    measure unicrm_fan5 "$UCRM_PID" "$UP_PORT" 64 "http://127.0.0.1:$UCRM_PORT$ASSOC_PATH" \
      "$WORK/body_fanout.json"
  done
  stop "$UCRM_PID"
  UCRM_PID=""
  local ref=nginx
  if [ "$(median nginx rps 64)" = na ]; then
    ref=nginx_1call
    measure nginx_1call "$NGX_PID" "$UP_PORT" 64 "http://127.0.0.1:$NGX_PORT$ASSOC_PATH" \
      "$WORK/body_one.json"
  fi
  summary_row unicrm_fan5 64
  summary_row "$ref" 64
  awk -v a="$(median unicrm_fan5 rps 64)" -v b="$(median "$ref" rps 64)" \
    'BEGIN {printf "SUMMARY fanout upstream calls/s: unicrm %.0f (5 x %.0f), nginx %.0f;" \
            " ratio %.2f\n", 5 * a, a, b, 5 * a / b}' | tee -a "$RESULTS"
}

# One slow-upstream run: slow_run NAME PID URL SECONDS. Counts every non-2xx answer and
# records the CPU% of the server (PID) and of mock_crm.
slow_run() {
  local name=$1 pid=$2 url=$3 secs=$4 res t0 t1 m0 m1 o0 o1
  BENCH_COUNT_STATUS=1 wrk_run "$SLOW_CONNS" "$WARMUP" "$url" "$WORK/body_one.json" \
    --timeout 10s >/dev/null
  o0=$(other_ticks)
  t0=$(cpu_ticks "$pid")
  m0=$(cpu_ticks "$MOCK_PID")
  res=$(BENCH_COUNT_STATUS=1 wrk_run "$SLOW_CONNS" "$secs" "$url" "$WORK/body_one.json" \
    --timeout 10s)
  t1=$(cpu_ticks "$pid")
  m1=$(cpu_ticks "$MOCK_PID")
  o1=$(other_ticks)
  check_alive
  local failed=""
  [ "$pid" != "$UCRM_PID" ] || ucrm_check "slow $name" || failed="FAILED "
  local cpu usr sys mock
  read -r cpu usr sys <<<"$(cpu_pct "$t0" "$t1" "$secs")"
  read -r mock _ <<<"$(cpu_pct "$m0" "$m1" "$secs")"
  out "${failed}SLOW name=$name c=$SLOW_CONNS ${res#RESULT }" \
    "cpu_pct=$cpu usr_pct=$usr sys_pct=$sys mock_cpu_pct=$mock" \
    "other_cpu_pct=$(((o1 - o0) * 100 / $(getconf CLK_TCK) / secs))"
}

scenario_slow() {
  out "== slow: every upstream answer after 100 ms; $SLOW_CONNS connections, ${SLOW_DURATION}s"
  out "   ideal: $SLOW_CONNS / 0.1 s = $((SLOW_CONNS * 10)) req/s"
  mock_ctl reset '{}'
  mock_ctl faults '{"delay_ms":100,"times":-1}'

  # For scale: wrk straight to mock_crm (the Pipedrive call unicrm makes), mock on its own CPU.
  repin "$MOCK_PID" "$PROXY_CPU"
  BENCH_METHOD=PATCH BENCH_HEADER="x-api-token: $MOCK_TOKEN" slow_run direct "$MOCK_PID" \
    "http://127.0.0.1:$MOCK_PORT/v1/leads/$LEAD" "$DURATION"
  repin "$MOCK_PID" "$LOAD_CPU"

  # Upstream limits raised so the test measures concurrency, not the per-account throttle.
  write_ucrm_config "http://127.0.0.1:$MOCK_PORT" \
    '{ "max_host_connections": 4096, "max_inflight_per_account": 4096,
       "max_queue_per_account": 4096 }' "$WORK/ucrm-slow.json"
  start_ucrm "$WORK/ucrm-slow.json" warn
  slow_run unicrm "$UCRM_PID" "http://127.0.0.1:$UCRM_PORT$ASSOC_PATH" "$SLOW_DURATION"

  slow_run nginx "$NGX_PID" "http://127.0.0.1:$NGX_SLOW_PORT$ASSOC_PATH" "$SLOW_DURATION"

  # The shipped defaults (64 host connections, 16 calls in flight per account, a queue of
  # 1024): the per-account throttle answers the excess with 429 at once.
  write_ucrm_config "http://127.0.0.1:$MOCK_PORT" '{}' "$WORK/ucrm-slow-default.json"
  start_ucrm "$WORK/ucrm-slow-default.json" warn
  slow_run unicrm_defaults "$UCRM_PID" "http://127.0.0.1:$UCRM_PORT$ASSOC_PATH" \
    $(((DURATION + 1) / 2))
  stop "$UCRM_PID"
  UCRM_PID=""
  mock_ctl reset '{}'
}

# idle_run NAME PID PORT: opens IDLE_CONNS idle connections to PORT, reports RSS of PID's tree.
idle_run() {
  local name=$1 pid=$2 port=$3
  local before after
  before=$(rss_tree_kb "$pid")
  spawn "$LOAD_CPU" "$WORK/idle-$name.out" "$WORK/idle_conns" 127.0.0.1 "$port" \
    "$IDLE_CONNS" 60
  local ipid=$LAST_PID
  for _ in $(seq 1 600); do
    grep -q '^ready' "$WORK/idle-$name.out" && break
    kill -0 "$ipid" 2>/dev/null || break
    sleep 0.1
  done
  sleep 1
  after=$(rss_tree_kb "$pid")
  local ready
  ready=$(grep '^ready' "$WORK/idle-$name.out" || echo "ready open=0 failed=na")
  local open=${ready#*open=}
  open=${open%% *}
  # One request while the idle connections are held: still served, and how fast.
  local probe
  probe=$(curl -s -o /dev/null -w '%{http_code} %{time_total}' --max-time 5 \
    -H 'Content-Type: application/json' --data-binary @"$WORK/body_one.json" \
    "http://127.0.0.1:$port$ASSOC_PATH" || echo "000 na")
  stop "$ipid"
  awk -v n="$name" -v b="$before" -v a="$after" -v o="$open" -v r="${ready#ready }" \
    -v p="$probe" 'BEGIN {printf "IDLE name=%s %s rss_before_kb=%d rss_after_kb=%d " \
      "per_conn_bytes=%.0f probe_status_time=%s\n", n, r, b, a, o ? (a - b) * 1024 / o : 0,
      p}' | sed 's/probe_status_time=\([0-9]*\) /probe_status_time=\1\//' | tee -a "$RESULTS"
}

scenario_idle() {
  out "== idle: $IDLE_CONNS keep-alive connections, one GET /healthz each, then held idle"
  write_ucrm_config "http://127.0.0.1:$UP_PORT" "$UP_CFG_BENCH" "$WORK/ucrm-up.json"
  start_ucrm "$WORK/ucrm-up.json" warn
  idle_run unicrm "$UCRM_PID" "$UCRM_PORT"
  ucrm_check idle || true
  stop "$UCRM_PID"
  UCRM_PID=""
  # nginx's figure is master + worker, started fresh so earlier runs do not count.
  stop "$NGX_PID"
  start_nginx_proxy
  idle_run nginx "$NGX_PID" "$NGX_PORT"
}

# stream_run FORMAT: a fresh unicrm (so VmHWM starts at idle), one request, RSS sampled.
stream_run() {
  local fmt=$1
  start_ucrm "$WORK/ucrm-stream.json" warn
  curl -s -o /dev/null "http://127.0.0.1:$UCRM_PORT/healthz"
  local idle
  idle=$(rss_kb "$UCRM_PID")
  rm -f "$WORK/stream.stop"
  (
    peak=0
    while [ ! -e "$WORK/stream.stop" ]; do
      v=$(rss_kb "$UCRM_PID" 2>/dev/null || echo 0)
      [ "${v:-0}" -gt "$peak" ] && peak=$v
      sleep 0.01
    done
    echo "$peak" >"$WORK/stream.peak"
  ) &
  local sampler=$!
  local res
  res=$(curl -s -o /dev/null --max-time 60 -w '%{http_code} %{size_download} %{time_total}' \
    -H 'Content-Type: application/json' --data-binary @"$WORK/body_one.json" \
    "http://127.0.0.1:$UCRM_PORT$ASSOC_PATH&truto_response_format=$fmt" || echo "000 0 na")
  touch "$WORK/stream.stop"
  wait "$sampler" 2>/dev/null || true
  rm -f "$WORK/stream.stop"
  if ! ucrm_check "stream $fmt"; then
    out "FAILED STREAM format=$fmt (unicrm died; answer: $res)"
    return 0
  fi
  local hwm sampled
  hwm=$(rss_kb "$UCRM_PID" VmHWM)
  sampled=$(cat "$WORK/stream.peak")
  read -r code bytes secs <<<"$res"
  out "STREAM format=$fmt upstream_bytes=$STREAM_BYTES status=$code bytes_out=$bytes" \
    "secs=$secs idle_rss_kb=$idle peak_rss_sampled_kb=$sampled vmhwm_kb=$hwm" \
    "peak_minus_idle_kb=$((hwm - idle))"
  stop "$UCRM_PID"
  UCRM_PID=""
}

scenario_stream() {
  out "== stream: one Pipedrive answer of $STREAM_BYTES bytes through unicrm"
  mock_ctl reset '{}'
  mock_ctl faults "{\"body_bytes\":$STREAM_BYTES,\"times\":-1}"
  write_ucrm_config "http://127.0.0.1:$MOCK_PORT" '{ "timeout_ms": 60000 }' \
    "$WORK/ucrm-stream.json"
  local f
  for f in stream raw unified; do
    stream_run "$f"
  done
  mock_ctl reset '{}'
}

# ---- main ----

header() {
  out "unicrm bench $(date -u '+%Y-%m-%d %H:%M UTC') on $(hostname)"
  out "cpu: $(awk -F': ' '/model name/ {print $2; exit}' /proc/cpuinfo), $(nproc) cores;" \
    "kernel $(uname -r)"
  out "versions: unicrm $(git -C "$ROOT" describe --always --dirty 2>/dev/null || echo ?)" \
    "(Release, build-bench/), $(nginx -v 2>&1 | sed 's/.*version: //')," \
    "$(wrk -v 2>&1 | head -1 | awk '{print "wrk " $2}'), libcurl $(curl-config --version |
      awk '{print $2}'), libuv $(pkg-config --modversion libuv)"
  out "pinning: proxy under test (unicrm / nginx proxy, 1 worker) on CPU$PROXY_CPU;" \
    "wrk -t1 + upstream nginx + mock_crm on CPU$LOAD_CPU; R_direct: upstream on" \
    "CPU$PROXY_CPU, wrk on CPU$LOAD_CPU"
  out "runs: warm-up ${WARMUP}s + ${DURATION}s each, $ROUNDS rounds alternated" \
    "(unicrm, floor, nginx, ...); medians shown; access logs off unless named *_log"
  out "unicrm upstream config (proxy, fanout, idle): $UP_CFG_BENCH"
  out "SUMMARY columns: rps = median (min-max of the rounds); p50/p99 = medians;" \
    "cpu = server process CPU% (user, system) / whole CPU$PROXY_CPU busy%;" \
    "up = server's upstream connections mid-run / +new connections the upstream accepted;" \
    "other = the most CPU% that processes outside the bench used during one of the runs"
  local b0 b1
  b0=$(($(cpu_busy 0) + $(cpu_busy 1)))
  sleep 2
  b1=$(($(cpu_busy 0) + $(cpu_busy 1)))
  local busy=$(((b1 - b0) * 100 / $(getconf CLK_TCK) / 2))
  out "before the runs: load average $(cut -d' ' -f1-3 /proc/loadavg); CPU0+CPU1 busy" \
    "$busy% of 200% with the bench idle"
  [ "$busy" -lt 10 ] || out "WARNING: other processes are using the CPUs; numbers will be noisy"
}

main() {
  local scenarios=("$@")
  [ "${#scenarios[@]}" -gt 0 ] || scenarios=(all)
  local s
  for s in "${scenarios[@]}"; do
    case $s in
      all | proxy | fanout | slow | idle | stream) ;;
      *) die "unknown scenario '$s' (all proxy fanout slow idle stream)" ;;
    esac
  done
  [ "${scenarios[*]}" = all ] && scenarios=(proxy fanout slow idle stream)

  setup
  header
  local start=$SECONDS
  for s in "${scenarios[@]}"; do
    "scenario_$s"
  done
  out "done in $((SECONDS - start))s; raw results in $RESULTS"
  if [ "$CRASHES" -gt 0 ]; then
    out "unicrm crashed $CRASHES time(s): see the CRASH lines"
    exit 2
  fi
}

main "$@"
