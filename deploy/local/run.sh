#!/usr/bin/env bash
# `make run`: the whole connector on this machine, with development
# settings, until Ctrl-C. Expects `make deps` and a release build (the
# Makefile does both first).
set -euo pipefail
cd "$(dirname "$0")/../.."
bin=target/release
state=.local
mkdir -p "$state"

# Development secrets, made once and kept in .local/ (ignored by git).
[ -s "$state/admin-token" ] || openssl rand -hex 24 > "$state/admin-token"
[ -s "$state/key-encryption-key" ] || openssl rand -base64 32 > "$state/key-encryption-key"
export FA_SF_ADMIN_TOKEN=$(cat "$state/admin-token")
export FA_SF_KEY_ENCRYPTION_KEY=$(cat "$state/key-encryption-key")
export FA_SF_LOG_FORMAT=${FA_SF_LOG_FORMAT:-pretty}
export RUST_LOG=${RUST_LOG:-info}
# sfsim serves plain HTTP on loopback; let connections name it.
export FA_SF_LOGIN_URL_ALLOWLIST=${FA_SF_LOGIN_URL_ALLOWLIST:-login.salesforce.com,test.salesforce.com,*.my.salesforce.com,127.0.0.1:*}

services=(token-broker:8080 importer:8081 activity-writer:8082)
pids=()
demo=$state/sfsim-demo
stop() {
  trap - INT TERM EXIT
  echo
  echo "stopping: ${pids[*]:-nothing}"
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
}
trap stop INT TERM EXIT

# sfsim first: a local Salesforce with a demo org of generated Japanese
# customers; its credentials land in .local/sfsim-demo/.
[ -x "$bin/sfsim" ] || { echo "error: $bin/sfsim is missing: run 'make run' (it builds first)" >&2; exit 1; }
rm -f "$demo/credentials.json"
"$bin/sfsim" serve --addr 127.0.0.1:8090 --demo "$demo" 2>&1 | sed -u "s/^/[sfsim] /" &
pids+=($!)
for _ in $(seq 1 60); do [ -s "$demo/credentials.json" ] && break; sleep 0.5; done

# Front Agent's side: a queue bound to salesforce.sync, printed. Without a
# bound queue the connector's publishes are unroutable and fail, as they
# should (nothing may be lost).
[ -x "$bin/frontagent-stub" ] || { echo "error: $bin/frontagent-stub is missing: run 'make run' (it builds first)" >&2; exit 1; }
"$bin/frontagent-stub" 2>&1 | sed -u "s/^/[frontagent] /" &
pids+=($!)

for entry in "${services[@]}"; do
  name=${entry%%:*} port=${entry##*:}
  [ -x "$bin/$name" ] || { echo "error: $bin/$name is missing: run 'make run' (it builds first)" >&2; exit 1; }
  FA_SF_HTTP_ADDR=127.0.0.1:$port "$bin/$name" 2>&1 | sed -u "s/^/[$name] /" &
  pids+=($!)
done

for entry in "${services[@]}"; do
  name=${entry%%:*} port=${entry##*:}
  for _ in $(seq 1 60); do
    curl -fsS "http://127.0.0.1:$port/readyz" >/dev/null 2>&1 && break
    sleep 0.5
  done
  if curl -fsS "http://127.0.0.1:$port/readyz" >/dev/null 2>&1; then
    echo "[$name] ready on http://127.0.0.1:$port (/healthz /readyz /metrics)"
  else
    echo "[$name] NOT ready on http://127.0.0.1:$port: $(curl -sS "http://127.0.0.1:$port/readyz" 2>&1)"
  fi
done
# Connect the demo org as tenant `demo`, as an admin would on
# [管理者機能] → [salesforce連携]: the token-broker proves the key with a live
# token exchange at sfsim and requests the first import.
if [ -s "$demo/credentials.json" ]; then
  body=$(python3 - "$demo/credentials.json" <<'PY'
import json, sys
c = json.load(open(sys.argv[1]))
print(json.dumps({"consumer_key": c["consumer_key"], "username": c["username"],
                  "private_key": open(c["private_key_file"]).read(), "login_url": c["login_url"],
                  "objects": ["Lead", "Contact", "Account"]}))
PY
)
  status=$(curl -sS -o "$state/demo-connection.json" -w '%{http_code}' -X PUT \
    -H "Authorization: Bearer $FA_SF_ADMIN_TOKEN" -H 'Content-Type: application/json' \
    --data "$body" http://127.0.0.1:8080/v1/tenants/demo/salesforce/connection || true)
  echo "[make run] connected the demo org as tenant 'demo': HTTP $status $(cat "$state/demo-connection.json" 2>/dev/null)"
fi

cat <<EOM

sfsim (a local Salesforce) serves http://127.0.0.1:8090 with a demo org:
  $(tr -d '\n' < "$demo/credentials.json" 2>/dev/null || echo "credentials missing: see the [sfsim] lines above")
  its private key: $demo/server.key

The connector runs. Admin API token: $FA_SF_ADMIN_TOKEN
  curl -H "Authorization: Bearer $FA_SF_ADMIN_TOKEN" http://127.0.0.1:8080/v1/tenants/demo/salesforce/connection
  curl -H "Authorization: Bearer $FA_SF_ADMIN_TOKEN" http://127.0.0.1:8080/v1/tenants/demo/salesforce/users
  curl -H "Authorization: Bearer $FA_SF_ADMIN_TOKEN" http://127.0.0.1:8081/v1/tenants/demo/imports
What the connector publishes to salesforce.sync lands in the queue frontagent.demo
and is printed as [frontagent] lines.
RabbitMQ: amqp://guest:guest@127.0.0.1:5672/%2f   PostgreSQL: postgres://postgres@127.0.0.1:5432/fa_salesforce
Press Ctrl-C to stop.
EOM
wait
