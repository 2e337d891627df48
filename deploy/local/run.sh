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
pids=() # the binaries' own pids (their output goes through sed by process substitution, so $! is the binary)
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
"$bin/sfsim" serve --addr 127.0.0.1:8090 --demo "$demo" > >(sed -u "s/^/[sfsim] /") 2>&1 &
pids+=($!)
for _ in $(seq 1 60); do [ -s "$demo/credentials.json" ] && break; sleep 0.5; done

# Front Agent's side: a queue bound to salesforce.sync, printed. Without a
# bound queue the connector's publishes are unroutable and fail, as they
# should (nothing may be lost).
[ -x "$bin/frontagent-stub" ] || { echo "error: $bin/frontagent-stub is missing: run 'make run' (it builds first)" >&2; exit 1; }
"$bin/frontagent-stub" > >(sed -u "s/^/[frontagent] /") 2>&1 &
pids+=($!)

# Each service logs in to RabbitMQ as its own user (made by `make deps`
# with production's rights), unless FA_SF_AMQP_URL says otherwise.
amqp_url() {
  local secret=$state/rabbitmq/$1.password
  if [ -n "${FA_SF_AMQP_URL:-}" ]; then echo "$FA_SF_AMQP_URL"
  elif [ -s "$secret" ]; then echo "amqp://$1:$(cat "$secret")@127.0.0.1:5672/%2f"
  else echo "error: $secret is missing: run 'make deps'" >&2; return 1
  fi
}
for entry in "${services[@]}"; do
  name=${entry%%:*} port=${entry##*:}
  [ -x "$bin/$name" ] || { echo "error: $bin/$name is missing: run 'make run' (it builds first)" >&2; exit 1; }
  url=$(amqp_url "$name")
  FA_SF_AMQP_URL=$url FA_SF_HTTP_ADDR=127.0.0.1:$port "$bin/$name" > >(sed -u "s/^/[$name] /") 2>&1 &
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
# sfsim makes the demo org afresh at every start, with the same org id: the
# importer forgets what it knew of the last one (watermarks, customer index,
# looks for purged records), so every `make run` imports it whole and shows
# the whole flow.
psql "${FA_SF_DATABASE_URL:-postgres://postgres@127.0.0.1:5432/fa_salesforce}" -qc \
  "DELETE FROM import_watermarks WHERE tenant_id = 'demo'; DELETE FROM customer_index WHERE tenant_id = 'demo';
   DELETE FROM import_removal_looks WHERE tenant_id = 'demo';" \
  || echo "[make run] could not reset the demo tenant's import state; the first import may show only what changed"

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
org_id=$(python3 -c 'import json, sys; print(json.load(open(sys.argv[1])).get("org_id", ""))' "$demo/credentials.json" 2>/dev/null || true)

# The activity-writer at work: Front Agent user u-demo is linked ([連携]) to a
# salesperson of the demo org, so the Tasks of its calls are theirs (u-demo-2
# is not linked: its Task falls back to the connection's own user); then
# `frontagent-stub assist` sends three assist.completed events as Front Agent
# does when calls end and prints the Task the writer made of each. A failure
# here is printed and the services keep running.
api() { # METHOD URL [BODY]: prints the answer, then the HTTP status on a line of its own
  curl -sS -X "$1" -H "Authorization: Bearer $FA_SF_ADMIN_TOKEN" -H 'Content-Type: application/json' \
    ${3:+--data "$3"} -w '\n%{http_code}' "$2" 2>&1 || true
}
link_demo_user() {
  # A salesperson in the org, as its admin would have one (sfsim's control API).
  curl -sS -o /dev/null -X POST -H 'Content-Type: application/json' \
    --data '{"username":"yamada@demo-shoji.example.com","last_name":"山田","first_name":"太郎","email":"yamada@demo-shoji.example.com"}' \
    "http://127.0.0.1:8090/sfsim/orgs/$org_id/users" || true
  local users sf_user answer
  users=$(api GET http://127.0.0.1:8080/v1/tenants/demo/salesforce/users)
  sf_user=$(python3 -c '
import json, sys
try:
    users = json.loads(sys.argv[1].rsplit("\n", 1)[0])["users"]
except Exception:
    sys.exit(0)
mine = [u for u in users if u.get("username") == "yamada@demo-shoji.example.com"] or users
if mine:
    print(mine[0]["id"], mine[0].get("name", ""))
' "$users")
  if [ -z "$sf_user" ]; then
    echo "[make run] cannot list the demo org's users to link u-demo: $(echo "$users" | tr '\n' ' ')"
    return 1
  fi
  answer=$(api PUT http://127.0.0.1:8080/v1/tenants/demo/user-links/u-demo "{\"salesforce_user_id\":\"${sf_user%% *}\"}")
  echo "[make run] linked Front Agent user u-demo to Salesforce user ${sf_user}: HTTP ${answer##*$'\n'} ${answer%$'\n'*}"
}
wait_for_first_import() {
  local state_json
  for _ in $(seq 1 60); do
    state_json=$(curl -sS -H "Authorization: Bearer $FA_SF_ADMIN_TOKEN" \
      http://127.0.0.1:8081/v1/tenants/demo/imports 2>/dev/null || true)
    if python3 -c '
import json, sys
runs = json.loads(sys.argv[1]).get("runs") or []
sys.exit(0 if runs and all(r.get("status") != "running" for r in runs) and not runs[0].get("more_pending") else 1)
' "$state_json" 2>/dev/null; then
      return 0
    fi
    sleep 1
  done
  echo "[make run] the first import has not finished after 60 s; sending the assist events anyway"
}
# Customers that leave Salesforce leave Front Agent: sales ops convert the
# newest imported Lead and merge the two newest imported Contacts (through
# sfsim's control API, as Salesforce's UI would), then ask for an import; the
# [frontagent] lines show a customer.removed for each, naming the record the
# customer became. (Records the assist demo created are left alone: Front
# Agent got them as customer.linked, not from an import.)
removals_demo() {
  local sf=http://127.0.0.1:8090/sfsim/orgs/$org_id picked lead survivor loser answer
  curl -fsS -o "$state/demo-leads.json" "$sf/records/Lead" && curl -fsS -o "$state/demo-contacts.json" "$sf/records/Contact" || return 1
  picked=$(python3 - "$state/demo-leads.json" "$state/demo-contacts.json" "$imported_before" <<'PY'
import json, sys
imported = lambda r: (r.get("CreatedDate") or "")[:19] < sys.argv[3]
live = lambda path: [r for r in json.load(open(path))
                     if not r.get("IsDeleted") and not r.get("IsConverted") and r.get("LastName") and imported(r)]
newest = lambda records: sorted(records, key=lambda r: r["SystemModstamp"], reverse=True)
leads, contacts = newest(live(sys.argv[1])), newest(live(sys.argv[2]))
if leads and len(contacts) >= 2:
    print(leads[0]["Id"], contacts[0]["Id"], contacts[1]["Id"])
PY
)
  read -r lead survivor loser <<< "$picked"
  if [ -z "${loser:-}" ]; then echo "[make run] the demo org has no Lead and two Contacts to convert and merge"; return 1; fi
  answer=$(curl -sS -X POST "$sf/leads/$lead/convert")
  echo "[make run] converted Lead $lead in sfsim, as sales ops would: $answer"
  answer=$(curl -sS -X POST -H 'Content-Type: application/json' \
    --data "{\"master_id\":\"$survivor\",\"merged_ids\":[\"$loser\"]}" "$sf/records/Contact/merge")
  echo "[make run] merged Contact $loser into $survivor in sfsim: $answer"
  answer=$(api POST http://127.0.0.1:8081/v1/tenants/demo/imports)
  echo "[make run] asked for an import (HTTP ${answer##*$'\n'}): expect customer.removed for Lead $lead (converted) and Contact $loser (merged) in the [frontagent] lines"
  sleep 3
}
if [ -n "$org_id" ] && [[ "${status:-}" == 2?? ]]; then
  link_demo_user || true
  wait_for_first_import
  imported_before=$(date -u +%Y-%m-%dT%H:%M:%S)
  sleep 3 # a few seconds for the imported customers to settle, as in real life
  echo "[make run] sending three assisted calls as Front Agent would: frontagent-stub assist --org $org_id"
  if "$bin/frontagent-stub" assist --sfsim-url http://127.0.0.1:8090 --org "$org_id" --tenant demo \
    --user u-demo --user-name "山田 太郎" --other-user u-demo-2 2>&1 | sed -u "s/^/[assist] /"; then
    echo "[make run] the assist demo is done: three Tasks in sfsim, one per assist.completed"
  else
    echo "[make run] the assist demo FAILED (see the [assist] lines above and the [activity-writer] lines); the services keep running"
  fi
  removals_demo || echo "[make run] the removals demo FAILED (see above); the services keep running"
else
  echo "[make run] skipping the assist and removals demos: the demo org is not connected (see above)"
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
and is printed as [frontagent] lines: customers, imports, and the activity-writer's
activity.written / activity.failed / customer.linked.
Assisted calls: the [assist] lines above sent three assist.completed events (a Lead's
call, a known number, a new number) and showed the Task the writer made of each.
Customers that left: a converted Lead and a merged Contact arrived as customer.removed
lines (the recycle bin and merges: curl http://127.0.0.1:8090/sfsim/orgs/${org_id:-<org_id>}/recycle-bin).
Assisted calls again:
  $bin/frontagent-stub assist --org ${org_id:-<org_id from $demo/credentials.json>}
  curl http://127.0.0.1:8090/sfsim/orgs/${org_id:-<org_id>}/records/Task
RabbitMQ: vhost / at 127.0.0.1:5672; each service logs in as its own user (token-broker,
importer, activity-writer; passwords in $state/rabbitmq/), Front Agent's stub as guest.
PostgreSQL: postgres://postgres@127.0.0.1:5432/fa_salesforce
Press Ctrl-C to stop.
EOM
wait
