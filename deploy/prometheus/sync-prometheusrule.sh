#!/usr/bin/env bash
# Writes k8s/base/prometheusrule.yaml: deploy/prometheus/alerts.yaml wrapped in a
# PrometheusRule (kustomize cannot load files outside k8s/, so the rules are
# copied). With --check, fails instead if the copy is out of date (for CI).
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
src="$root/deploy/prometheus/alerts.yaml"
dst="$root/k8s/base/prometheusrule.yaml"

render() {
  cat <<'HEADER'
# GENERATED from deploy/prometheus/alerts.yaml by
# deploy/prometheus/sync-prometheusrule.sh. Edit the source, then rerun.
apiVersion: monitoring.coreos.com/v1
kind: PrometheusRule
metadata:
  name: salesforce-connector
  labels:
    app.kubernetes.io/name: salesforce-connector
spec:
HEADER
  # Drop the source's leading comment block, indent the rest under spec:.
  sed -n '/^groups:/,$p' "$src" | sed -e 's/^\(..*\)$/  \1/'
}

if [[ "${1:-}" == "--check" ]]; then
  if ! diff -u "$dst" <(render); then
    echo "k8s/base/prometheusrule.yaml is stale: run deploy/prometheus/sync-prometheusrule.sh" >&2
    exit 1
  fi
else
  render > "$dst"
fi
