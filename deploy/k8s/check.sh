#!/usr/bin/env bash
# Checks the Kubernetes manifests (run by `make test`), offline:
#  1. renders k8s/base and every overlay under k8s/overlays with
#     `kubectl kustomize`;
#  2. validates every rendered object against its schema: core kinds against
#     Kubernetes' own (kubernetes-validate, strict, so an unknown field
#     fails), custom resources (KEDA, Prometheus Operator) against
#     deploy/k8s/schemas/; a kind with no schema fails. Also: every ConfigMap
#     a pod names is rendered (kustomize rewrote generated names), every
#     workload has a ServiceAccount of its own without a mounted token, and
#     the local RabbitMQ's users match deploy/rabbitmq/permissions;
#  3. proves step 2 fails on a misspelt field (a ScaledObject's and a
#     Deployment's);
#  4. runs checkov (--framework kubernetes) over everything rendered: each
#     finding must be listed, with its reason, in deploy/k8s/checkov-skips.txt.
# Needs kubectl and the Python tools of deploy/k8s/requirements.txt in
# .local/k8s-venv: `make deps` (deploy/local/deps.sh) installs them.
# FA_K8S_VERSION (default 1.32) is the Kubernetes version validated against.
set -euo pipefail
cd "$(dirname "$0")/../.."

venv=${FA_K8S_VENV:-.local/k8s-venv}
k8s_version=${FA_K8S_VERSION:-1.32}
here=deploy/k8s

if command -v kubectl >/dev/null; then
  kubectl=kubectl
elif [ -x "$venv/bin/kubectl" ]; then
  kubectl=$venv/bin/kubectl
else
  cat >&2 <<'MSG'
error: kubectl is missing, so the manifests cannot be rendered (kubectl kustomize).
  Install it with `make deps` (deploy/local/deps.sh), or put kubectl >= 1.27
  on PATH (https://kubernetes.io/docs/tasks/tools/). Debian's own
  kubernetes-client package is too old (its kustomize lacks `labels:`).
MSG
  exit 1
fi
if [ ! -x "$venv/bin/checkov" ] || ! "$venv/bin/python" -c 'import kubernetes_validate, jsonschema, yaml' 2>/dev/null; then
  cat >&2 <<MSG
error: the Python tools of the manifest checks are missing from $venv
  (kubernetes-validate, jsonschema, checkov: $here/requirements.txt).
  Install them with \`make deps\` (deploy/local/deps.sh), or by hand:
    python3 -m venv $venv && $venv/bin/pip install -r $here/requirements.txt
MSG
  exit 1
fi

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
mkdir "$tmp/rendered"

# 1. Render. The file name is the name the messages and the skips use.
targets=()
for dir in k8s/base k8s/overlays/*/; do
  dir=${dir%/}
  name=$(basename "$dir")
  if ! "$kubectl" kustomize "$dir" > "$tmp/rendered/$name.yaml" 2> "$tmp/kustomize.err"; then
    cat "$tmp/kustomize.err" >&2
    echo "error: kubectl kustomize could not render $dir" >&2
    exit 1
  fi
  targets+=("$name=$tmp/rendered/$name.yaml")
done
echo "rendered: ${targets[*]%%=*}"

# 2. Validate.
py=$venv/bin/python
"$py" "$here/validate.py" objects "$k8s_version" "$here/schemas" "${targets[@]}"
"$py" "$here/validate.py" rabbitmq-definitions k8s/overlays/local/rabbitmq-definitions.json deploy/rabbitmq/permissions

# 3. Proof that validation catches a misspelt field in a custom resource and
# in a core kind.
sed -e 's/^  minReplicaCount:/  minReplicaCont:/' -e 's/^  revisionHistoryLimit:/  revisionHistoryLimt:/' \
  "$tmp/rendered/base.yaml" > "$tmp/broken.yaml"
if "$py" "$here/validate.py" objects "$k8s_version" "$here/schemas" "broken=$tmp/broken.yaml" > "$tmp/broken.out" 2>&1; then
  cat "$tmp/broken.out" >&2
  echo "error: validation accepted a misspelt field (minReplicaCont, revisionHistoryLimt): the check is broken" >&2
  exit 1
fi
for field in minReplicaCont revisionHistoryLimt; do
  if ! grep -q "'$field' was unexpected" "$tmp/broken.out"; then
    cat "$tmp/broken.out" >&2
    echo "error: validation did not name the misspelt field $field: the check is broken" >&2
    exit 1
  fi
done
echo "validation refuses misspelt fields (a ScaledObject's minReplicaCont, a Deployment's revisionHistoryLimt), as it should"

# 4. checkov: exit 0 (no finding) or 1 (findings, reviewed below); anything
# else is checkov failing.
rc=0
"$venv/bin/checkov" -d "$tmp/rendered" --framework kubernetes --skip-download --quiet --compact \
  -o json > "$tmp/checkov.json" 2> "$tmp/checkov.err" || rc=$?
if [ "$rc" -gt 1 ] || [ ! -s "$tmp/checkov.json" ]; then
  cat "$tmp/checkov.err" >&2
  echo "error: checkov failed (exit $rc)" >&2
  exit 1
fi
"$py" "$here/validate.py" checkov "$tmp/checkov.json" "$here/checkov-skips.txt"
echo "k8s manifests: all checks passed"
