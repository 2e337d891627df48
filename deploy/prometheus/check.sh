#!/usr/bin/env bash
# Checks the alerting rules (run by `make test`): deploy/prometheus/alerts.yaml
# must be valid, pass its unit tests (alerts_test.yaml), and match its copy
# in k8s/base/prometheusrule.yaml. Needs promtool (`make deps` installs it).
set -euo pipefail
cd "$(dirname "$0")/../.."

if ! command -v promtool >/dev/null; then
  cat >&2 <<'MSG'
error: promtool is missing, so the alerting rules cannot be checked.
  Install it with `make deps` (Debian package `prometheus`, which provides
  promtool), or put a promtool from https://prometheus.io/download/ on PATH.
MSG
  exit 1
fi

promtool check rules deploy/prometheus/alerts.yaml
promtool test rules deploy/prometheus/alerts_test.yaml
deploy/prometheus/sync-prometheusrule.sh --check
echo "k8s/base/prometheusrule.yaml is in sync with deploy/prometheus/alerts.yaml"
