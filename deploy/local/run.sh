#!/usr/bin/env bash
# `make run`: the whole connector on this machine, with development
# settings, until Ctrl-C. Expects `make deps` and a release build (the
# Makefile does both first). FA_SF_BIN_DIR picks other binaries
# (`FA_SF_BIN_DIR=target/debug deploy/local/run.sh` after `cargo build --bins`).
#
# It prints a `==>` line as each piece comes up and each step of the demo
# flow finishes (a step that does not finish in time names the log to read),
# every process's output prefixed with its name, and last a summary:
# customers imported per object, Tasks written and how to read them back,
# metrics, the Grafana dashboard, the logs (.local/logs/<name>.log).
set -euo pipefail
cd "$(dirname "$0")/../.."
bin=${FA_SF_BIN_DIR:-target/release}
unset FA_SF_BIN_DIR # the services need not see it
state=.local
logs=$state/logs
demo=$state/sfsim-demo
db=${FA_SF_DATABASE_URL:-postgres://postgres@127.0.0.1:5432/fa_salesforce}
sfsim_url=http://127.0.0.1:8090
mkdir -p "$state" "$logs"

if [ -t 1 ]; then bold=$'\033[1m' red=$'\033[1;31m' plain=$'\033[0m'; else bold='' red='' plain=''; fi
step() { printf '%s==> %s%s\n' "$bold" "$*" "$plain"; }
fail() { printf '%serror: %s%s\n' "$red" "$*" "$plain"; }

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
for entry in sfsim frontagent-stub "${services[@]}"; do
  [ -x "$bin/${entry%%:*}" ] || { fail "$bin/${entry%%:*} is missing: run 'make run' (it builds first), or build and set FA_SF_BIN_DIR"; exit 1; }
done

pids=()             # the binaries' own pids (their output goes through sed by process substitution, so $! is the binary)
declare -A pid_of=() # log name → pid
stop() {
  trap - INT TERM EXIT
  echo
  echo "stopping: ${pids[*]:-nothing}"
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
}
trap stop INT TERM EXIT

# start NAME COMMAND...: runs COMMAND in the background, its output on the
# console prefixed [NAME] and in .local/logs/NAME.log (this run's only,
# without colours).
start() {
  local name=$1; shift
  : > "$logs/$name.log"
  "$@" > >(sed -u -e h -e 's/\x1b\[[0-9;]*m//g' -e "w $logs/$name.log" -e g -e "s/^/[$name] /") 2>&1 &
  pids+=($!)
  pid_of[$name]=$!
}
# wait_for SECONDS WHAT LOG COMMAND...: until COMMAND succeeds; when it does
# not within SECONDS, or the process writing LOG ends, says so, naming the
# log, and fails.
wait_for() {
  local deadline=$((SECONDS + $1)) what=$2 log=$3; shift 3
  until "$@" >/dev/null 2>&1; do
    if [ -n "${pid_of[$log]:-}" ] && ! kill -0 "${pid_of[$log]}" 2>/dev/null; then
      fail "waiting for $what: $log exited; read $logs/$log.log"
      return 1
    fi
    if [ $SECONDS -ge $deadline ]; then
      fail "waiting for $what: not there after $1 s; read $logs/$log.log"
      return 1
    fi
    sleep 0.5
  done
}
api() { # METHOD URL [BODY]: prints the answer, then the HTTP status on a line of its own
  curl -sS -X "$1" -H "Authorization: Bearer $FA_SF_ADMIN_TOKEN" -H 'Content-Type: application/json' \
    ${3:+--data "$3"} -w '\n%{http_code}' "$2" 2>&1 || true
}
imports() { curl -fsS -H "Authorization: Bearer $FA_SF_ADMIN_TOKEN" http://127.0.0.1:8081/v1/tenants/demo/imports; }

# Every `make run` shows the whole flow, the full first import included. sfsim
# keeps nothing between starts and numbers ids from 1 in each process, so the
# demo org it makes is a new org with new records (their SystemModstamps
# generated relative to now) that has the same org id, 00D5j0000000001EAA,
# as last time's. The connector rightly treats a known org id as the same org
# (a real org keeps its id and its records) and would carry on from last
# time's watermark: only the few records generated after it would be
# imported. What the connector knew of tenant `demo` (its connection, user
# links, watermarks, customer index, runs, ...: every table with a tenant_id)
# describes an org that no longer exists, so it is forgotten here, as for a
# tenant never seen, before the services start (so that the importer's
# scheduler cannot pick up the old connection, whose key sfsim no longer
# knows). Only tenant `demo` is touched; the first start, before the services
# made the tables, has nothing to forget.
step "forgetting what the connector knew of tenant 'demo' (last run's demo org is gone; this run's gets a full import)"
if ! psql "$db" -qAtX -v ON_ERROR_STOP=1 >/dev/null <<'SQL'
DO $$
DECLARE t text;
BEGIN
  FOR t IN
    SELECT c.table_name FROM information_schema.columns c
    WHERE c.table_schema = current_schema() AND c.column_name = 'tenant_id'
    -- tables others refer to last
    ORDER BY EXISTS (SELECT 1 FROM pg_constraint k WHERE k.contype = 'f'
                     AND k.confrelid = format('%I.%I', c.table_schema, c.table_name)::regclass), c.table_name
  LOOP
    EXECUTE format('DELETE FROM %I WHERE tenant_id = %L', t, 'demo');
  END LOOP;
END $$;
SQL
then
  fail "could not reset tenant 'demo' in $db (is PostgreSQL up? 'make deps'); the import may show only what changed since last time"
fi

# sfsim first: a local Salesforce with a demo org of generated Japanese
# customers; its credentials land in .local/sfsim-demo/.
step "starting sfsim (a local Salesforce) on $sfsim_url with a demo org"
rm -f "$demo/credentials.json"
start sfsim "$bin/sfsim" serve --addr 127.0.0.1:8090 --demo "$demo"
wait_for 60 "sfsim's demo org" sfsim test -s "$demo/credentials.json" || exit 1
org_id=$(python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))["org_id"])' "$demo/credentials.json")
org_records=$(curl -sS "$sfsim_url/sfsim/orgs/$org_id" 2>/dev/null | python3 -c '
import json, sys
records = json.load(sys.stdin).get("records", {})
print(", ".join(f"{records.get(o, 0)} {o}s" for o in ("Lead", "Contact", "Account")))' 2>/dev/null || echo "records unknown")
step "sfsim ready: demo org $org_id with $org_records"

# Front Agent's side: a queue bound to salesforce.sync, printed. Without a
# bound queue the connector's publishes are unroutable and fail, as they
# should (nothing may be lost).
step "starting the Front Agent stub (queue frontagent.demo bound to salesforce.sync)"
start frontagent "$bin/frontagent-stub"
wait_for 30 "the Front Agent stub's queue" frontagent grep -q '^bound ' "$logs/frontagent.log" || exit 1

# Each service logs in to RabbitMQ as its own user (made by `make deps`
# with production's rights), unless FA_SF_AMQP_URL says otherwise.
amqp_url() {
  local secret=$state/rabbitmq/$1.password
  if [ -n "${FA_SF_AMQP_URL:-}" ]; then echo "$FA_SF_AMQP_URL"
  elif [ -s "$secret" ]; then echo "amqp://$1:$(cat "$secret")@127.0.0.1:5672/%2f"
  else fail "$secret is missing: run 'make deps'" >&2; return 1
  fi
}
for entry in "${services[@]}"; do
  name=${entry%%:*} port=${entry##*:}
  url=$(amqp_url "$name") || exit 1
  step "starting $name on 127.0.0.1:$port"
  start "$name" env FA_SF_AMQP_URL="$url" FA_SF_HTTP_ADDR="127.0.0.1:$port" "$bin/$name"
done
for entry in "${services[@]}"; do
  name=${entry%%:*} port=${entry##*:}
  wait_for 120 "$name ready on http://127.0.0.1:$port/readyz" "$name" curl -fsS "http://127.0.0.1:$port/readyz" || exit 1
  step "$name ready on http://127.0.0.1:$port (/healthz /readyz /metrics)"
done

# Connect the demo org as tenant `demo`, as an admin would on
# [管理者機能] → [salesforce連携]: the token-broker proves the key with a live
# token exchange at sfsim and requests the first import.
step "connecting the demo org as tenant 'demo' (token-broker's admin API, as an admin's [登録] does)"
body=$(python3 - "$demo/credentials.json" <<'PY'
import json, sys
c = json.load(open(sys.argv[1]))
print(json.dumps({"consumer_key": c["consumer_key"], "username": c["username"],
                  "private_key": open(c["private_key_file"]).read(), "login_url": c["login_url"],
                  "objects": ["Lead", "Contact", "Account"]}))
PY
)
answer=$(api PUT http://127.0.0.1:8080/v1/tenants/demo/salesforce/connection "$body")
status=${answer##*$'\n'}
if [[ "$status" == 2?? ]]; then
  step "org connected: $(python3 -c '
import json, sys
c = json.loads(sys.argv[1])
print("tenant %(tenant_id)s %(status)s to org %(organization_id)s as %(username)s (consumer key %(consumer_key_hint)s)" % c)
' "${answer%$'\n'*}" 2>/dev/null || echo "${answer%$'\n'*}")"
else
  fail "connecting the demo org failed (HTTP $status): ${answer%$'\n'*}; read $logs/token-broker.log"
fi

# The first import: the token-broker published import.requested (reason
# `connected`) on connecting; the importer's run shows in its admin API,
# its counts growing batch by batch, and Front Agent gets customer.upsert
# messages and the run's import.completed ([frontagent] lines).
run_field() { # the newest run of REASON: FIELD ... (python expressions over `run`)
  python3 -c '
import json, sys
runs = [r for r in json.load(sys.stdin).get("runs") or [] if r["reason"] in sys.argv[1].split(",")]
if not runs: sys.exit(1)
run = runs[0]
objects = run.get("objects") or []
counts = ", ".join("%s %d" % (o["object"], o.get("published", 0)) for o in objects)
removed = ", ".join("%s %d" % (o["object"], o["removed"]) for o in objects if o.get("removed"))
counts = "published " + counts + ("; removed " + removed if removed else "") if objects else ""
print(eval(sys.argv[2]))' "$1" "$2"
}
follow_import() { # REASONS TIMEOUT: until the newest run of REASONS (and its catch-ups) ended; prints progress
  local reasons=$1 deadline=$((SECONDS + $2)) json line last=''
  until json=$(imports 2>/dev/null) && [ "$(run_field "$reasons" 'run["status"]' <<< "$json" 2>/dev/null)" ]; do
    if [ $SECONDS -ge $deadline ]; then fail "no import run ($reasons) started within $2 s; read $logs/importer.log"; return 1; fi
    sleep 0.5
  done
  step "import requested: $(run_field "$reasons" 'run["run_id"] + " (reason " + run["reason"] + ") started"' <<< "$json")"
  while :; do
    json=$(imports 2>/dev/null) || json='{}'
    line=$(run_field "$reasons,catch_up" 'run["status"] + " " + (counts or "nothing yet") + (" (more pending: a catch-up run follows)" if run["more_pending"] else "")' <<< "$json" 2>/dev/null || true)
    case $line in
      running*) [ "$line" = "$last" ] || step "import running, so far: ${line#running }"; last=$line ;;
      succeeded*'more pending'*) [ "$line" = "$last" ] || step "import run done, more pending: ${line#succeeded }"; last=$line ;;
      succeeded*) step "import finished, customers ${line#succeeded }"; return 0 ;;
      failed*)
        fail "the import failed: $(run_field "$reasons,catch_up" 'json.dumps(run.get("error"), ensure_ascii=False)' <<< "$json"); read $logs/importer.log"
        return 1 ;;
    esac
    if [ $SECONDS -ge $deadline ]; then fail "the import did not finish within $2 s; read $logs/importer.log"; return 1; fi
    sleep 0.5
  done
}

# The activity-writer at work: Front Agent user u-demo is linked ([連携]) to a
# salesperson of the demo org, so the Tasks of its calls are theirs (u-demo-2
# is not linked: its Task falls back to the connection's own user); then
# `frontagent-stub assist` sends three assist.completed events as Front Agent
# does when calls end and prints the Task the writer made of each. A failure
# here is printed and the services keep running.
link_demo_user() {
  # A salesperson in the org, as its admin would have one (sfsim's control API).
  curl -sS -o /dev/null -X POST -H 'Content-Type: application/json' \
    --data '{"username":"yamada@demo-shoji.example.com","last_name":"山田","first_name":"太郎","email":"yamada@demo-shoji.example.com"}' \
    "$sfsim_url/sfsim/orgs/$org_id/users" || true
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
    fail "cannot list the demo org's users to link u-demo: $(echo "$users" | tr '\n' ' '); read $logs/token-broker.log"
    return 1
  fi
  answer=$(api PUT http://127.0.0.1:8080/v1/tenants/demo/user-links/u-demo "{\"salesforce_user_id\":\"${sf_user%% *}\"}")
  step "linked Front Agent user u-demo to Salesforce user ${sf_user} (HTTP ${answer##*$'\n'})"
}
tasks_in_sfsim() { # how many Tasks the org has (none but the writer's: the demo org starts without any)
  curl -fsS "$sfsim_url/sfsim/orgs/$org_id/records/Task" |
    python3 -c 'import json, sys; print(sum(1 for t in json.load(sys.stdin) if not t.get("IsDeleted")))'
}
assist_demo() {
  step "publishing three assist.completed events as Front Agent does when calls end (frontagent-stub assist)"
  : > "$logs/assist.log"
  local ok=0
  timeout 120 "$bin/frontagent-stub" assist --sfsim-url "$sfsim_url" --org "$org_id" --tenant demo \
    --user u-demo --user-name "山田 太郎" --other-user u-demo-2 2>&1 |
    sed -u -e "w $logs/assist.log" -e "s/^/[assist] /" || ok=$?
  published=$(grep -c '^published assist.completed' "$logs/assist.log" || true)
  step "assist events published: $published assist.completed to frontagent.assist"
  tasks=$(tasks_in_sfsim 2>/dev/null || echo 0)
  if [ "$ok" -eq 0 ] && [ "$published" -gt 0 ] && [ "$tasks" -ge "$published" ]; then
    step "Tasks written: $tasks in sfsim by the activity-writer, one per assist.completed"
  else
    fail "the assist demo did not finish: $tasks of $published Tasks written (exit $ok); read $logs/assist.log and $logs/activity-writer.log"
    return 1
  fi
}
# Customers that leave Salesforce leave Front Agent: sales ops convert the
# newest imported Lead and merge the two newest imported Contacts (through
# sfsim's control API, as Salesforce's UI would), then ask for an import; the
# [frontagent] lines show a customer.removed for each, naming the record the
# customer became. (Records the assist demo created are left alone: Front
# Agent got them as customer.linked, not from an import.)
removals_demo() {
  local sf=$sfsim_url/sfsim/orgs/$org_id picked lead survivor loser answer
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
  if [ -z "${loser:-}" ]; then fail "the demo org has no Lead and two Contacts to convert and merge"; return 1; fi
  answer=$(curl -sS -X POST "$sf/leads/$lead/convert")
  step "converted Lead $lead in sfsim, as sales ops would: $answer"
  answer=$(curl -sS -X POST -H 'Content-Type: application/json' \
    --data "{\"master_id\":\"$survivor\",\"merged_ids\":[\"$loser\"]}" "$sf/records/Contact/merge")
  step "merged Contact $loser into $survivor in sfsim: $answer"
  answer=$(api POST http://127.0.0.1:8081/v1/tenants/demo/imports)
  if [[ "${answer##*$'\n'}" != 2?? ]]; then fail "asking for an import failed: ${answer//$'\n'/ }; read $logs/importer.log"; return 1; fi
  step "asked for an import: expect customer.removed for Lead $lead (converted) and Contact $loser (merged) in the [frontagent] lines"
  follow_import manual 120
}

demo_ok=
if [[ "$status" == 2?? ]]; then
  if follow_import connected 300; then
    demo_ok=1
    link_demo_user || true
    imported_before=$(date -u +%Y-%m-%dT%H:%M:%S)
    sleep 3 # a few seconds for the imported customers to settle, as in real life
    assist_demo || true
    removals_demo || fail "the removals demo did not finish (see above); the services keep running"
  fi
else
  fail "skipping the import, assist and removals demos: the demo org is not connected (see above)"
fi

# The summary: what this run did, and where to look.
summary() {
  local json
  json=$(imports 2>/dev/null || echo '{}')
  python3 - "$json" <<'PY'
import json, sys
try:
    runs = json.loads(sys.argv[1]).get("runs") or []
except ValueError:
    runs = []
first = [r for r in runs if r["reason"] in ("connected", "catch_up")]
if not first:
    print("  none: no import ran (see the errors above)")
else:
    total, status = {}, first[0]["status"]
    for run in first:
        for o in run.get("objects") or []:
            total[o["object"]] = total.get(o["object"], 0) + o.get("published", 0)
    ids = ", ".join(r["run_id"] for r in reversed(first))
    for obj in ("Lead", "Contact", "Account"):
        print(f"  {obj + 's':<10}{total.get(obj, 0):>6}")
    print(f"  {'total':<10}{sum(total.values()):>6}   (first import {ids}: {status})")
later = [r for r in runs if r["reason"] in ("manual", "scheduled")]
if later:
    run = later[0]
    removed = ", ".join(f"{o['object']} {o['removed']}" for o in run.get("objects") or [] if o.get("removed")) or "none"
    changed = sum(o.get("published", 0) for o in run.get("objects") or [])
    print(f"  then ({run['run_id']}, {run['reason']}: {run['status']}): removed {removed}; {changed} changed customers published")
PY
}
tasks=$( [ -n "${org_id:-}" ] && tasks_in_sfsim 2>/dev/null || echo 0)
cat <<EOM

${bold}==================== make run: summary ====================${plain}
Customers imported into Front Agent (tenant demo, sfsim org $org_id):
$(summary)
  (the demo org holds ${org_records:-?}, modified over the last two years; a
  first import reaches back FA_SF_IMPORT_LOOKBACK, a year by default: about half)
  the imports as the admin API shows them:
  curl -H "Authorization: Bearer $FA_SF_ADMIN_TOKEN" http://127.0.0.1:8081/v1/tenants/demo/imports

Tasks written into Salesforce (sfsim) by the activity-writer: $tasks
  read them back:  curl -s $sfsim_url/sfsim/orgs/$org_id/records/Task | python3 -m json.tool
  Front Agent's view: the activity.written lines of $logs/frontagent.log
  three more calls: $bin/frontagent-stub assist --org $org_id

Metrics (Prometheus text format):
  token-broker     http://127.0.0.1:8080/metrics
  importer         http://127.0.0.1:8081/metrics
  activity-writer  http://127.0.0.1:8082/metrics
Grafana dashboard: deploy/grafana/connector-dashboard.json (import it into Grafana, over a Prometheus scraping the above)

Logs (this run's, the same lines as above without the [name] prefix):
  $logs/sfsim.log  $logs/frontagent.log  $logs/token-broker.log
  $logs/importer.log  $logs/activity-writer.log  $logs/assist.log

Admin API token: $FA_SF_ADMIN_TOKEN
  curl -H "Authorization: Bearer $FA_SF_ADMIN_TOKEN" http://127.0.0.1:8080/v1/tenants/demo/salesforce/connection
  curl -H "Authorization: Bearer $FA_SF_ADMIN_TOKEN" -X POST http://127.0.0.1:8081/v1/tenants/demo/imports
sfsim: $sfsim_url, the demo org's credentials in $demo/ (credentials.json, server.key);
  the recycle bin and merges: curl $sfsim_url/sfsim/orgs/$org_id/recycle-bin
RabbitMQ: vhost / at 127.0.0.1:5672; each service logs in as its own user (passwords in $state/rabbitmq/),
  Front Agent's stub as guest; what the connector publishes lands in the queue frontagent.demo.
PostgreSQL: $db
${bold}Press Ctrl-C to stop.${plain}
EOM
[ -n "$demo_ok" ] || fail "the demo flow did not finish (see the errors above); the services keep running"
wait
