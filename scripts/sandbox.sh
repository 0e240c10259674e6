#!/usr/bin/env bash
# The quick start: installs what is missing, builds, starts the mock CRM and unicrm on
# config/sandbox.json, and links a Pipedrive lead to a person and an organization, showing the
# request, unicrm's answer and the call the (mock) CRM received.
#
#   scripts/sandbox.sh          run the demo, then stop both processes
#   scripts/sandbox.sh --keep   leave unicrm (127.0.0.1:8080) and the mock (:9901) running
set -euo pipefail
cd "$(dirname "$0")/.."

keep=0
[ "${1:-}" = "--keep" ] && keep=1

bash scripts/setup.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build -j"$(nproc)" >/dev/null

# The sandbox credentials are the mock's fixed test values, read through env: like real ones.
export SANDBOX_PIPEDRIVE_TOKEN=pd-test-token SANDBOX_CLOSE_KEY=close-test-key
export SANDBOX_ATTIO_TOKEN=attio-test-token SANDBOX_SF_TOKEN=sf-test-token
export SANDBOX_SF_REFRESH=sf-refresh-token SANDBOX_SF_SECRET=sf-secret

logdir=$(mktemp -d)
build/mock_crm --listen 127.0.0.1:9901 >"$logdir/mock.out" 2>"$logdir/mock.log" &
mock=$!
build/unicrm --config config/sandbox.json >/dev/null 2>"$logdir/unicrm.log" &
proxy=$!
stop() { kill "$proxy" "$mock" 2>/dev/null || true; wait 2>/dev/null || true; }
[ "$keep" = 1 ] || trap stop EXIT

for _ in $(seq 50); do
  curl -fsS http://127.0.0.1:8080/healthz >/dev/null 2>&1 && break
  sleep 0.1
done

body='{"entity":"leads","entity_id":"adf21080-0e10-11eb-879b-05d71fb426ec",
 "associations":{"contacts":[{"id":"123"}],"accounts":[{"id":"456"}]}}'
url='http://127.0.0.1:8080/unified/crm/associations?integrated_account_id=62f44730-dd91-461e-bd6a-aedd9e0ad79d'

echo "== request: POST $url"
echo "$body"
echo
echo "== unicrm answered:"
curl -sS -i -X POST "$url" -H 'Content-Type: application/json' -d "$body"
echo
echo
echo "== the CRM (mock) received:"
curl -sS http://127.0.0.1:9901/_mock/calls
echo
echo
echo "== unicrm log:"
cat "$logdir/unicrm.log"
if [ "$keep" = 1 ]; then
  echo "unicrm (pid $proxy) on 127.0.0.1:8080 and the mock (pid $mock) on :9901 keep running;"
  echo "unicrm logs to $logdir/unicrm.log. Stop them with: kill $proxy $mock"
fi
