#!/usr/bin/env bash
# `make deps`: makes sure this machine can build the connector and has
# PostgreSQL and RabbitMQ installed, running and reachable the way the
# default configuration expects:
#   FA_SF_DATABASE_URL = postgres://postgres@127.0.0.1:5432/fa_salesforce
#   FA_SF_AMQP_URL     = amqp://guest:guest@127.0.0.1:5672/%2f
# and gives each service a RabbitMQ user of its own with least privilege
# (deploy/rabbitmq/permissions), its password in .local/rabbitmq/.
# It installs Debian packages only when something is missing, starts only
# what is stopped, and is safe to run again and again.
set -euo pipefail
cd "$(dirname "$0")/../.."

say() { printf '\033[1m==> %s\033[0m\n' "$*"; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }

if [ "$(id -u)" -eq 0 ]; then SUDO=(); else SUDO=(sudo); fi
as_postgres() {
  if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else sudo -u postgres "$@"; fi
}
apt_updated=
apt_install() {
  command -v apt-get >/dev/null || die "$* missing and this is not a Debian-like system: install $* yourself"
  if [ -z "$apt_updated" ]; then "${SUDO[@]}" apt-get update -qq; apt_updated=1; fi
  say "installing $*"
  DEBIAN_FRONTEND=noninteractive "${SUDO[@]}" apt-get install -y -qq "$@" >/dev/null
}
wait_for() { # seconds, description, command...
  local deadline=$((SECONDS + $1)) what=$2; shift 2
  until "$@" >/dev/null 2>&1; do
    [ $SECONDS -lt $deadline ] || die "$what did not come up; see its log"
    sleep 1
  done
}

# --- Build tools -----------------------------------------------------------
command -v cargo >/dev/null || die "Rust is missing: install it with rustup (https://rustup.rs); rust-toolchain.toml pins the version"
command -v cc >/dev/null || apt_install build-essential
command -v curl >/dev/null || apt_install curl
command -v openssl >/dev/null || apt_install openssl

# --- PostgreSQL ------------------------------------------------------------
command -v pg_ctlcluster >/dev/null || apt_install postgresql postgresql-client
if ! pg_isready -q -h 127.0.0.1 -p 5432; then
  version=$(ls /etc/postgresql | sort -V | tail -n 1)
  [ -n "$version" ] || die "PostgreSQL is installed but has no cluster under /etc/postgresql"
  say "starting PostgreSQL $version"
  "${SUDO[@]}" pg_ctlcluster --skip-systemctl-redirect "$version" main start || true
  wait_for 60 "PostgreSQL" pg_isready -q -h 127.0.0.1 -p 5432
fi
# A fresh Debian cluster trusts only local socket peers; the default URL
# connects over TCP as postgres without a password. Trust that, for the
# loopback addresses only (a development machine's setting).
if ! psql "postgres://postgres@127.0.0.1:5432/postgres" -Atc 'SELECT 1' >/dev/null 2>&1; then
  hba=$(as_postgres psql -Atc 'SHOW hba_file')
  say "letting postgres connect over loopback without a password ($hba)"
  tmp=$(mktemp)
  { echo "# Added by the connector's make deps: the default FA_SF_DATABASE_URL has no password."
    echo "host all postgres 127.0.0.1/32 trust"
    echo "host all postgres ::1/128 trust"
    cat "$hba"; } > "$tmp"
  "${SUDO[@]}" cp "$tmp" "$hba"; rm -f "$tmp"
  as_postgres psql -qAtc 'SELECT pg_reload_conf()' >/dev/null
  wait_for 10 "PostgreSQL over loopback" psql "postgres://postgres@127.0.0.1:5432/postgres" -Atc 'SELECT 1'
fi
if [ "$(psql "postgres://postgres@127.0.0.1:5432/postgres" -Atc "SELECT 1 FROM pg_database WHERE datname = 'fa_salesforce'")" != 1 ]; then
  say "creating database fa_salesforce"
  psql "postgres://postgres@127.0.0.1:5432/postgres" -qc 'CREATE DATABASE fa_salesforce'
fi

# --- RabbitMQ ----------------------------------------------------------------
command -v rabbitmq-server >/dev/null || apt_install rabbitmq-server
if ! "${SUDO[@]}" rabbitmqctl -q status >/dev/null 2>&1; then
  say "starting RabbitMQ"
  "${SUDO[@]}" rabbitmq-server -detached >/dev/null 2>&1 || true
  wait_for 120 "RabbitMQ" "${SUDO[@]}" rabbitmqctl -q await_startup
fi
# RabbitMQ's own metrics on :15692 (per queue at /metrics/per-object), which
# deploy/prometheus/prometheus.yml scrapes for the queue-depth panels and
# rules, and which the activity-writer's Prometheus test scrapes. Enabling
# a plugin takes effect on the running broker, no restart.
enabled_plugins=$("${SUDO[@]}" rabbitmq-plugins list -q -e 2>/dev/null || true)
if ! grep -q '\brabbitmq_prometheus\b' <<<"$enabled_plugins"; then
  say "enabling RabbitMQ's Prometheus plugin (metrics on :15692)"
  "${SUDO[@]}" rabbitmq-plugins -q enable rabbitmq_prometheus >/dev/null
fi
# Tests create a vhost of their own with rabbitmqctl, which needs the
# broker's Erlang cookie; a non-root developer gets a copy of it.
if [ "$(id -u)" -ne 0 ] && [ ! -r "$HOME/.erlang.cookie" ] && sudo test -f /var/lib/rabbitmq/.erlang.cookie; then
  sudo cat /var/lib/rabbitmq/.erlang.cookie > "$HOME/.erlang.cookie"; chmod 600 "$HOME/.erlang.cookie"
fi

# Each service logs in as its own user with only the rights it needs
# (deploy/rabbitmq/permissions), as in production; `make run` reads the
# passwords kept in .local/rabbitmq/.
mkdir -p .local/rabbitmq
users=$("${SUDO[@]}" rabbitmqctl -q list_users | awk '{print $1}')
# (rabbitmqctl reads stdin, so the file comes in on descriptor 3)
while read -r service configure write read <&3; do
  case "$service" in ''|'#'*) continue ;; esac
  secret=.local/rabbitmq/$service.password
  if ! grep -qx "$service" <<<"$users"; then
    say "creating RabbitMQ user $service"
    (umask 077; openssl rand -hex 16 > "$secret")
    "${SUDO[@]}" rabbitmqctl -q add_user "$service" "$(cat "$secret")" >/dev/null
  elif [ ! -s "$secret" ]; then
    say "setting a new password for RabbitMQ user $service (its old one is not in $secret)"
    (umask 077; openssl rand -hex 16 > "$secret")
    "${SUDO[@]}" rabbitmqctl -q change_password "$service" "$(cat "$secret")" >/dev/null
  fi
  "${SUDO[@]}" rabbitmqctl -q set_permissions -p / "$service" "$configure" "$write" "$read" >/dev/null
done 3< deploy/rabbitmq/permissions

# --- A Salesforce client nobody here wrote, for sfsim's conformance test ---
venv=.local/venv
if ! "$venv/bin/python" -c 'import simple_salesforce' >/dev/null 2>&1; then
  command -v python3 >/dev/null || apt_install python3
  python3 -c 'import venv, ensurepip' >/dev/null 2>&1 || apt_install python3-venv
  say "installing simple-salesforce into $venv (sfsim's conformance test)"
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q --disable-pip-version-check -r tests/conformance/requirements.txt
fi

# --- promtool, for make test's checks of the alerting rules ------------------
# Debian ships promtool in the prometheus package, whose install also starts
# a Prometheus server on :9090 and enables it at boot. Only promtool is
# needed, so that server is stopped and disabled right after the install
# (a Prometheus installed earlier, deliberately, is left alone).
if ! command -v promtool >/dev/null; then
  command -v apt-get >/dev/null || die "promtool missing and this is not a Debian-like system: install it yourself (https://prometheus.io/download/)"
  # Without its recommended prometheus-node-exporter, another server.
  apt_install --no-install-recommends prometheus
  say "stopping the Prometheus server the package started (only promtool is needed)"
  if [ -d /run/systemd/system ]; then
    "${SUDO[@]}" systemctl disable --now prometheus >/dev/null 2>&1 || true
  else
    "${SUDO[@]}" service prometheus stop >/dev/null 2>&1 || true
    "${SUDO[@]}" update-rc.d prometheus disable >/dev/null 2>&1 || true
  fi
fi

# --- The Kubernetes manifest checks (deploy/k8s/check.sh) --------------------
# A venv of their own holds the validators and checkov, pinned in
# deploy/k8s/requirements.txt; it is (re)installed only when missing or when
# the pins changed. kubectl (its built-in kustomize renders the overlays)
# comes with this machine image; where it is missing, the venv gets kubectl's
# release binary (deploy/k8s/kubectl-requirements.txt, hash-pinned, x86_64).
k8s_venv=.local/k8s-venv
k8s_reqs=deploy/k8s/requirements.txt
if ! cmp -s "$k8s_reqs" "$k8s_venv/.requirements.txt" \
   || [ ! -x "$k8s_venv/bin/checkov" ] \
   || ! "$k8s_venv/bin/python" -c 'import kubernetes_validate, jsonschema' >/dev/null 2>&1; then
  command -v python3 >/dev/null || apt_install python3
  python3 -c 'import venv, ensurepip' >/dev/null 2>&1 || apt_install python3-venv
  say "installing kubernetes-validate, jsonschema and checkov into $k8s_venv ($k8s_reqs)"
  python3 -m venv "$k8s_venv"
  "$k8s_venv/bin/pip" install -q --disable-pip-version-check -r "$k8s_reqs"
  cp "$k8s_reqs" "$k8s_venv/.requirements.txt"
fi
if ! command -v kubectl >/dev/null && [ ! -x "$k8s_venv/bin/kubectl" ]; then
  [ "$(uname -m)" = x86_64 ] || die "kubectl is missing: install kubectl >= 1.27 (https://kubernetes.io/docs/tasks/tools/)"
  say "installing kubectl into $k8s_venv (deploy/k8s/kubectl-requirements.txt)"
  "$k8s_venv/bin/pip" install -q --disable-pip-version-check --require-hashes -r deploy/k8s/kubectl-requirements.txt
fi

say "PostgreSQL, RabbitMQ and the test tools are ready"
