"""The native variant enforces the same rules as Kyverno: each native ValidatingAdmissionPolicy
the variant writes is the one Kyverno generated live from the same policy (the variant's own
e2e run, `make e2e-native`, then proves the rules hold without Kyverno).

A fresh install is where this is judged (`fresh_install`): there the running Kyverno generated
every admission policy itself, while an upgraded one may keep what its predecessor wrote."""

from __future__ import annotations

import json
from typing import Any

import pytest

from harness.core.versions import REPO_ROOT
from harness.e2e.handles import ClusterHandle, Fleet
from harness.e2e.repos import rewrites_for
from harness.manifests.native import ADMISSION_API, admission_policy, applied_policies

pytestmark = [pytest.mark.e2e, pytest.mark.admission, pytest.mark.fresh_install, pytest.mark.policy_engine("kyverno")]
# What the API server fills in when a field is left out (as the variant leaves them).
DEFAULTS = {"matchPolicy": "Equivalent", "objectSelector": {}, "namespaceSelector": {}}


def _normalized(spec: dict[str, Any], written: dict[str, Any]) -> Any:
    """`spec` without the API server's defaults for what `written` leaves out, and with every
    string's whitespace collapsed (YAML parsers disagree on the line breaks of folded
    expressions; CEL ignores them)."""
    spec = json.loads(json.dumps(spec))
    constraints, ours = spec.get("matchConstraints") or {}, written.get("matchConstraints") or {}
    for field, default in DEFAULTS.items():
        if field not in ours and constraints.get(field) == default:
            constraints.pop(field)
    for rule in constraints.get("resourceRules") or []:
        if rule.get("scope") == "*":
            rule.pop("scope")

    def collapse(value: Any) -> Any:
        if isinstance(value, str):
            return " ".join(value.split())
        if isinstance(value, list):
            return [collapse(v) for v in value]
        if isinstance(value, dict):
            return {k: collapse(v) for k, v in value.items()}
        return value

    return collapse(spec)


def test_the_native_variant_is_what_kyverno_generates(fleet: Fleet, cluster: ClusterHandle) -> None:
    rewrites = rewrites_for(fleet.server, fleet.kit.versions)
    policies = applied_policies(REPO_ROOT)
    assert policies, "the fleet applies no ValidatingPolicy: nothing would be compared"
    differing = {}
    for _, policy in policies:
        vap, binding = admission_policy(policy)
        text = json.dumps(vap["spec"])
        for rewrite in rewrites:  # the clusters run the served repo, whose URLs point here
            text = text.replace(json.dumps(rewrite.old)[1:-1], json.dumps(rewrite.new)[1:-1])
        written = json.loads(text)
        name = policy["metadata"]["name"]
        live = cluster.kube.get(ADMISSION_API, "ValidatingAdmissionPolicy", f"vpol-{name}")
        assert live is not None, f"Kyverno generated no ValidatingAdmissionPolicy for {name}"
        if _normalized(live["spec"], written) != _normalized(written, written):
            differing[name] = {"kyverno": live["spec"], "native": written}
        live_binding = cluster.kube.get(ADMISSION_API, "ValidatingAdmissionPolicyBinding", f"vpol-{name}-binding")
        assert live_binding is not None and live_binding["spec"]["validationActions"] == binding["spec"]["validationActions"]
    assert not differing, json.dumps(differing, indent=1)[:4000]
