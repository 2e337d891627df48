"""Offline validation of rendered Kubernetes manifests (run by check.sh).

    validate.py objects K8S_VERSION SCHEMA_DIR NAME=RENDERED.yaml...
        Every object of every rendered file: core kinds against Kubernetes'
        own schemas (kubernetes-validate, strict: unknown fields fail), every
        other kind against SCHEMA_DIR/<group>_<version>_<Kind>.yaml (JSON
        Schema); a kind with neither fails. Then what schemas cannot see:
        each ConfigMap a pod uses is rendered (so kustomize rewrote the
        generated names) or known to be created out of band, and each
        workload runs as a rendered ServiceAccount that mounts no token.

    validate.py rabbitmq-definitions DEFINITIONS.json PERMISSIONS
        The users and permissions of the local overlay's RabbitMQ must be
        those of deploy/rabbitmq/permissions (plus its admin user).

    validate.py checkov CHECKOV.json SKIPS
        Every failed checkov check must match a line of SKIPS
        (CHECK_ID OVERLAY:RESOURCE-GLOB REASON), and every line must still
        match a failure (no stale skips).
"""

import fnmatch
import json
import os
import sys

import jsonschema
import kubernetes_validate
import yaml

# ConfigMaps that pods may name although no overlay renders them: created out
# of band before the first apply (overlays/production/kustomization.yaml).
OUT_OF_BAND_CONFIGMAPS = {"rabbitmq-ca"}

POD_OWNERS = {"Deployment", "StatefulSet", "DaemonSet", "Job", "ReplicaSet"}


def where(path):
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "(top level)"


def load_schemas(schema_dir):
    schemas = {}
    for name in sorted(os.listdir(schema_dir)):
        if not name.endswith(".yaml"):
            continue
        with open(os.path.join(schema_dir, name)) as f:
            schema = yaml.safe_load(f)
        jsonschema.Draft202012Validator.check_schema(schema)
        schemas[name[: -len(".yaml")]] = jsonschema.Draft202012Validator(schema)
    return schemas


def schema_key(obj):
    api_version = obj.get("apiVersion", "")
    group, _, version = api_version.rpartition("/")
    return f"{group}_{version}_{obj.get('kind')}"


def pod_spec(obj):
    spec = obj.get("spec") or {}
    if obj.get("kind") == "CronJob":
        spec = ((spec.get("jobTemplate") or {}).get("spec")) or {}
    return ((spec.get("template") or {}).get("spec")) or None


def configmaps_used(pod):
    for container in (pod.get("initContainers") or []) + (pod.get("containers") or []):
        for source in container.get("envFrom") or []:
            if "configMapRef" in source:
                yield source["configMapRef"].get("name")
        for env in container.get("env") or []:
            ref = (env.get("valueFrom") or {}).get("configMapKeyRef")
            if ref:
                yield ref.get("name")
    for volume in pod.get("volumes") or []:
        if "configMap" in volume:
            yield volume["configMap"].get("name")
        for source in (volume.get("projected") or {}).get("sources") or []:
            if "configMap" in source:
                yield source["configMap"].get("name")


def validate_objects(k8s_version, schema_dir, rendered):
    schemas = load_schemas(schema_dir)
    errors = []
    for item in rendered:
        name, _, path = item.partition("=")
        with open(path) as f:
            objects = [o for o in yaml.safe_load_all(f) if o]
        core = custom = 0
        configmaps = {o["metadata"]["name"] for o in objects if o.get("kind") == "ConfigMap"}
        accounts = {o["metadata"]["name"]: o for o in objects if o.get("kind") == "ServiceAccount"}
        for obj in objects:
            kind = obj.get("kind", "?")
            ident = f"{kind}/{(obj.get('metadata') or {}).get('name', '?')}"
            key = schema_key(obj)
            if key in schemas:
                custom += 1
                for e in sorted(schemas[key].iter_errors(obj), key=lambda e: list(e.absolute_path)):
                    errors.append(f"{name}: {ident}: {where(e.absolute_path)}: {e.message}"
                                  f" (deploy/k8s/schemas/{key}.yaml)")
                continue
            try:
                kubernetes_validate.validate(obj, k8s_version, strict=True)
                core += 1
            except kubernetes_validate.SchemaNotFoundError:
                errors.append(f"{name}: {ident}: no schema for kind {kind} ({obj.get('apiVersion')}):"
                              f" neither Kubernetes {k8s_version} defines it nor"
                              f" deploy/k8s/schemas/{key}.yaml exists; write one from its CRD")
            except kubernetes_validate.ValidationError as e:
                errors.append(f"{name}: {ident}: {where(e.absolute_path)}: {e.message}"
                              f" (Kubernetes {e.version} schema)")
            pod = pod_spec(obj)
            if pod is None:
                continue
            for cm in configmaps_used(pod):
                if cm not in configmaps and cm not in OUT_OF_BAND_CONFIGMAPS:
                    errors.append(f"{name}: {ident}: uses ConfigMap {cm!r}, which is not rendered"
                                  f" (rendered: {', '.join(sorted(configmaps)) or 'none'}):"
                                  " a generated name kustomize did not rewrite?")
            if kind in POD_OWNERS - {"Job"}:
                sa = pod.get("serviceAccountName")
                if not sa or sa not in accounts:
                    errors.append(f"{name}: {ident}: runs as ServiceAccount {sa or 'default'!r},"
                                  " which is not rendered: give it one of its own")
                elif accounts[sa].get("automountServiceAccountToken") is not False:
                    errors.append(f"{name}: ServiceAccount/{sa}: automountServiceAccountToken must be false")
                if pod.get("automountServiceAccountToken") is not False:
                    errors.append(f"{name}: {ident}: automountServiceAccountToken must be false")
        print(f"{name}: {len(objects)} objects: {core} against Kubernetes {k8s_version} (strict),"
              f" {custom} against deploy/k8s/schemas")
    return errors


def check_rabbitmq_definitions(definitions_path, permissions_path):
    with open(definitions_path) as f:
        definitions = json.load(f)
    want = {}
    with open(permissions_path) as f:
        for line in f:
            fields = line.split()
            if not fields or fields[0].startswith("#"):
                continue
            user, configure, write, read = fields
            want[user] = (configure, write, read)
    have = {p["user"]: (p["configure"], p["write"], p["read"])
            for p in definitions.get("permissions", []) if p.get("vhost") == "/"}
    users = {u["name"] for u in definitions.get("users", [])}
    errors = []
    for user, perms in want.items():
        if user not in users:
            errors.append(f"{definitions_path}: no user {user!r} (deploy/rabbitmq/permissions has one)")
        if have.get(user) != perms:
            errors.append(f"{definitions_path}: permissions of {user!r} on vhost / are {have.get(user)},"
                          f" deploy/rabbitmq/permissions says {perms}")
    for user in set(have) - set(want) - {"admin"}:
        errors.append(f"{definitions_path}: user {user!r} is not in deploy/rabbitmq/permissions")
    if not errors:
        print(f"{definitions_path}: users and permissions match deploy/rabbitmq/permissions")
    return errors


def check_checkov(report_path, skips_path):
    with open(report_path) as f:
        report = json.load(f)
    reports = report if isinstance(report, list) else [report]
    skips = []
    with open(skips_path) as f:
        for number, line in enumerate(f, 1):
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            parts = line.split(None, 2)
            if len(parts) < 3:
                sys.exit(f"{skips_path}:{number}: want CHECK_ID OVERLAY:RESOURCE-GLOB REASON")
            skips.append({"line": number, "check": parts[0], "glob": parts[1], "reason": parts[2], "used": 0})
    errors = []
    failed = passed = 0
    for r in reports:
        summary = r.get("summary", {})
        passed += summary.get("passed", 0)
        if summary.get("parsing_errors"):
            errors.append(f"checkov could not parse {summary['parsing_errors']} file(s)")
        for check in r.get("results", {}).get("failed_checks", []):
            failed += 1
            overlay = os.path.basename(check["file_path"]).rsplit(".", 1)[0]
            target = f"{overlay}:{check['resource']}"
            matched = [s for s in skips if s["check"] == check["check_id"] and fnmatch.fnmatchcase(target, s["glob"])]
            for s in matched:
                s["used"] += 1
            if not matched:
                errors.append(f"checkov {check['check_id']} ({check['check_name']}) fails on {target}:"
                              f" fix it, or add it to {skips_path} with the reason")
    for s in skips:
        if not s["used"]:
            errors.append(f"{skips_path}:{s['line']}: {s['check']} {s['glob']} matches no finding any more: remove it")
    if not errors:
        print(f"checkov: {passed} checks passed, {failed} findings, each listed in {skips_path}")
    return errors


def main(argv):
    if len(argv) >= 4 and argv[0] == "objects":
        errors = validate_objects(argv[1], argv[2], argv[3:])
    elif len(argv) == 3 and argv[0] == "rabbitmq-definitions":
        errors = check_rabbitmq_definitions(argv[1], argv[2])
    elif len(argv) == 3 and argv[0] == "checkov":
        errors = check_checkov(argv[1], argv[2])
    else:
        sys.exit(__doc__)
    for e in errors:
        print(f"error: {e}", file=sys.stderr)
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
