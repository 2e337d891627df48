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

# promtool passes an alert no test names, and a test naming an alert that
# does not exist: every alert must have a case in alert_rule_test, and a
# section in k8s/RUNBOOK.md under the anchor its `runbook` annotation uses.
python3 - deploy/prometheus/alerts.yaml deploy/prometheus/alerts_test.yaml k8s/RUNBOOK.md <<'PY'
import re, sys

rules_path, tests_path, runbook_path = sys.argv[1:4]
rules = open(rules_path, encoding="utf-8").read()
tests = open(tests_path, encoding="utf-8").read()
runbook = open(runbook_path, encoding="utf-8").read()

# Each alert's block runs from its `- alert:` line to the next rule or group.
alerts = {}
for block in re.split(r"(?m)^(?=\s*- (?:alert|record|name):)", rules):
    m = re.match(r"\s*- alert:\s*(\S+)", block)
    if m:
        link = re.search(r"(?m)^\s*runbook(?:_url)?:\s*['\"]?(\S+?)['\"]?\s*$", block)
        alerts[m.group(1)] = link.group(1) if link else None

tested = set(re.findall(r"(?m)^[ \t-]*alertname:\s*['\"]?([A-Za-z0-9_:]+)", tests))

def anchor(heading):
    # GitHub's: lower case, punctuation other than - and _ dropped, spaces to -.
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")

anchors = {anchor(h) for h in re.findall(r"(?m)^#+\s+(.+?)\s*$", runbook)}

errors = []
untested = sorted(set(alerts) - tested)
if untested:
    errors.append(f"{tests_path}: no alert_rule_test case names these alerts (add a case where each "
                  "fires and one where it does not): " + ", ".join(untested))
unknown = sorted(tested - set(alerts))
if unknown:
    errors.append(f"{tests_path}: these alertnames are not alerts of {rules_path} "
                  "(a typo makes the case pass without testing anything): " + ", ".join(unknown))
for name, link in sorted(alerts.items()):
    if not link:
        errors.append(f"{rules_path}: alert {name} has no runbook annotation")
    elif not link.startswith("k8s/RUNBOOK.md#"):
        errors.append(f"{rules_path}: alert {name}: runbook {link} does not point into k8s/RUNBOOK.md")
    elif link.split("#", 1)[1] not in anchors:
        errors.append(f"{runbook_path}: no section for alert {name} (its runbook links to "
                      f"#{link.split('#', 1)[1]}; add a '## {name}' section)")
if errors:
    print("\n".join("error: " + e for e in errors), file=sys.stderr)
    sys.exit(1)
print(f"  SUCCESS: all {len(alerts)} alerts have a unit test and a runbook section")
PY

deploy/prometheus/sync-prometheusrule.sh --check
echo "k8s/base/prometheusrule.yaml is in sync with deploy/prometheus/alerts.yaml"
