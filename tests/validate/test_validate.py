"""`make validate` passes on the repo, and each kind of mistake makes it fail by name."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from harness.core.repo import NATIVE_POLICIES_DIR, POLICIES_DIR
from harness.core.versions import Versions
from harness.e2e.engines import engine_of
from harness.kit.tools import ValidationKit
from harness.manifests.findings import Finding
from harness.manifests.native import write_variant
from harness.manifests.validate import Report, validate

Edit = Callable[[Path], None]


def replace(rel: str, old: str, new: str) -> Edit:
    def edit(repo: Path) -> None:
        path = repo / rel
        text = path.read_text()
        assert old in text, f"fixture drift: {old!r} not in {rel}"
        path.write_text(text.replace(old, new, 1))

    return edit


def append(rel: str, text: str) -> Edit:
    def edit(repo: Path) -> None:
        path = repo / rel
        path.write_text(path.read_text() + text)

    return edit


def assert_finding(report: Report, check: str, *fragments: str) -> None:
    """The report holds a finding of this check whose text contains every fragment."""
    __tracebackhide__ = True
    matches = [f for f in report.findings if f.check == check and all(x in str(f) for x in fragments)]
    if not matches:
        listed = "\n  ".join(str(f) for f in report.findings) or "(none)"
        pytest.fail(f"expected a [{check}] finding mentioning {fragments}; findings:\n  {listed}")


def test_repo_passes_validation(repo_root: Path, kit: ValidationKit, versions: Versions) -> None:
    report = validate(repo_root, kit.tools, kit.sources, versions, engine_of(repo_root).offline_checks)
    assert report.findings == (), "\n".join(map(str, report.findings))
    assert report.renders >= 10 and report.objects >= 100  # the fleet was really rendered


def test_unmodified_copy_passes(validate_copy: Callable[[Edit], Report]) -> None:
    """Positive control for the broken copies below: the copy mechanism alone finds nothing."""
    report = validate_copy(lambda repo: None)
    assert report.findings == (), "\n".join(map(str, report.findings))


def install_image_automation(repo: Path) -> None:
    """What `flux bootstrap --components-extra=image-automation-controller` would add, minus
    any lockdown: one more controller Deployment in flux-system."""
    folder = repo / "clusters/staging/flux-system"
    (folder / "image-automation.yaml").write_text(
        "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: image-automation-controller\n"
        "  namespace: flux-system\nspec:\n  selector:\n    matchLabels: {app: image-automation-controller}\n"
        "  template:\n    metadata:\n      labels: {app: image-automation-controller}\n    spec:\n"
        "      containers:\n      - name: manager\n        image: ghcr.io/fluxcd/image-automation-controller:v1.1.1\n"
        "        args: [--watch-all-namespaces]\n")
    replace("clusters/staging/flux-system/kustomization.yaml", "  - gotk-sync.yaml\n",
            "  - gotk-sync.yaml\n  - image-automation.yaml\n")(repo)


BROKEN = [
    pytest.param(
        replace("tenants/base/dev-team/sync.yaml", "  interval: 5m\n", "  intervall: 5m\n"),
        "schema", ("tenants/base/dev-team/sync.yaml", "Kustomization apps/dev-team",
                   "spec.intervall", "unknown field"),
        id="unknown-field",
    ),
    pytest.param(
        replace("tenant-repo-example/base/podinfo-release.yaml",
                "        name: podinfo\n", "        name: podinfo\n        namespace: flux-system\n"),
        "tenancy", ("tenant-repo-example/base/podinfo-release.yaml", "HelmRelease apps/podinfo",
                    "spec.chart.spec.sourceRef.namespace", "cross-namespace"),
        id="cross-namespace-source-ref",
    ),
    pytest.param(
        replace("tenants/base/dev-team/sync.yaml", "  serviceAccountName: dev-team\n", ""),
        "tenancy", ("tenants/base/dev-team/sync.yaml", "Kustomization apps/dev-team",
                    "spec.serviceAccountName", "missing"),
        id="tenant-kustomization-without-service-account",
    ),
    pytest.param(
        replace("tenant-repo-example/base/podinfo-release.yaml",
                "helm.toolkit.fluxcd.io/v2", "helm.toolkit.fluxcd.io/v2beta1"),
        "schema", ("HelmRelease apps/podinfo", "apiVersion",
                   "helm.toolkit.fluxcd.io/v2beta1 HelmRelease is not served"),
        id="removed-flux-api-version",
    ),
    pytest.param(
        append("infrastructure/kyverno/namespace.yaml",
               "---\napiVersion: policy/v1beta1\nkind: PodDisruptionBudget\nmetadata:\n"
               "  name: kyverno\n  namespace: kyverno\nspec:\n  minAvailable: 1\n"),
        "schema", ("PodDisruptionBudget kyverno/kyverno", "policy/v1beta1", "not served",
                   "policy/v1"),
        id="removed-kubernetes-api-version",
    ),
    pytest.param(
        replace("tenant-repo-example/base/podinfo-repository.yaml",
                "https://stefanprodan.github.io/podinfo", "https://charts.example.org/podinfo"),
        "admission", ("tenant-repo-example/base/podinfo-repository.yaml",
                      "HelmRepository apps/podinfo", "flux-tenant-source-allowlist",
                      "https://charts.example.org/podinfo is not on the allowlist of tenant dev-team"),
        id="source-url-off-the-allowlist",
    ),
    pytest.param(
        replace("infrastructure/kyverno-policies/tenant-source-ref.yaml",
                "    validatingAdmissionPolicy:\n      enabled: true\n", "    validatingAdmissionPolicy:\n      enabled: false\n"),
        "enforcement", ("ValidatingPolicy flux-tenant-source-ref", "spec.autogen.validatingAdmissionPolicy.enabled",
                        "Kyverno removes that webhook when scaled to zero"),
        id="policy-enforced-only-by-webhook",
    ),
    pytest.param(
        replace("infrastructure/kyverno-policies/tenant-reconciler-account.yaml",
                "  failurePolicy: Fail\n", "  failurePolicy: Ignore\n"),
        "enforcement", ("ValidatingPolicy flux-tenant-reconciler-account", "spec.failurePolicy", "must be Fail"),
        id="policy-fails-open",
    ),
    pytest.param(
        replace("infrastructure/kyverno-policies/tenant-reconciler-account.yaml",
                "    podControllers:\n      controllers: []\n", ""),
        "enforcement", ("ValidatingPolicy flux-tenant-reconciler-account", "spec.autogen.podControllers.controllers"),
        id="pod-policy-with-autogen",
    ),
    pytest.param(
        install_image_automation,
        "lockdown", ("Deployment flux-system/image-automation-controller",
                     "missing lockdown flag --no-cross-namespace-refs=true"),
        id="image-automation-without-lockdown",
    ),
    pytest.param(
        install_image_automation,
        "lockdown", ("Deployment flux-system/image-automation-controller",
                     "no policy governs imageupdateautomations in tenant namespaces"),
        id="image-automation-without-policy",
    ),
    pytest.param(
        replace("tenant-repo-example/base/podinfo-repository.yaml",
                "https://stefanprodan.github.io/podinfo", "https://stefanprodan.github.io/podinfo/%2e%2e/evil"),
        "admission", ("HelmRepository apps/podinfo", "flux-tenant-source-allowlist",
                      "https://stefanprodan.github.io/podinfo/%2e%2e/evil is not a plain URL"),
        id="source-url-encoded-dot-segments",
    ),
    pytest.param(
        replace("tenants/base/dev-team/rbac.yaml",
                "toolkit.fluxcd.io/tenant: dev-team\n    pod-security.kubernetes.io/enforce: restricted",
                "toolkit.fluxcd.io/tenant: ops-team\n    pod-security.kubernetes.io/enforce: restricted"),
        "admission", ("HelmRepository apps/podinfo",
                      "tenant ops-team has no source allowlist"),
        id="tenant-without-allowlist",
    ),
    pytest.param(
        replace("tenant-repo-example/base/podinfo-release.yaml", "  releaseName: podinfo\n",
                "  releaseName: podinfo\n  storageNamespace: flux-system\n"),
        "admission", ("HelmRelease apps/podinfo", "flux-tenant-target-namespace",
                      "spec.storageNamespace flux-system is not allowed"),
        id="release-storage-namespace-elsewhere",
    ),
    pytest.param(
        append("tenant-repo-example/base/podinfo-release.yaml",
               "---\napiVersion: v1\nkind: Pod\nmetadata:\n  name: shell\nspec:\n"
               "  serviceAccountName: dev-team\n  containers:\n  - name: sh\n    image: busybox\n"),
        "admission", ("Pod apps/shell", "flux-tenant-reconciler-account",
                      "service account dev-team is the tenant reconciler account"),
        id="pod-as-reconciler-account",
    ),
    pytest.param(
        replace("clusters/production/flux-system/kustomization.yaml",
                "value: --no-remote-bases=true", "value: --no-remote-bases=false"),
        "lockdown", ("Deployment flux-system/kustomize-controller",
                     "lockdown flag --no-remote-bases is 'false' in effect", "must be 'true'"),
        id="lockdown-flag-false",
    ),
    pytest.param(
        replace("clusters/staging/flux-system/kustomization.yaml",
                "  # The platform's own sync keeps the controller's rights explicitly.\n",
                "  - patch: |\n      - op: add\n        path: /spec/template/spec/containers/0/args/-\n"
                "        value: --no-cross-namespace-refs=false\n    target:\n      kind: Deployment\n"
                "      name: helm-controller\n"
                "  # The platform's own sync keeps the controller's rights explicitly.\n"),
        "lockdown", ("Deployment flux-system/helm-controller",
                     "lockdown flag --no-cross-namespace-refs is 'false' in effect (the last occurrence wins)"),
        id="lockdown-flag-overridden-later",
    ),
    pytest.param(
        replace("clusters/staging/flux-system/kustomization.yaml",
                "  # The platform's own sync keeps the controller's rights explicitly.\n",
                "  - patch: |\n      - op: add\n        path: /spec/template/spec/containers/0/args/-\n"
                "        value: --insecure-kubeconfig-exec=true\n    target:\n      kind: Deployment\n"
                "      name: kustomize-controller\n"
                "  # The platform's own sync keeps the controller's rights explicitly.\n"),
        "lockdown", ("Deployment flux-system/kustomize-controller",
                     "--insecure-kubeconfig-exec=true must not be set on a multi-tenant cluster"),
        id="insecure-kubeconfig-flag",
    ),
    pytest.param(
        replace("tenant-repo-example/staging/kustomization.yaml",
                "  - ../base\n", "  - ../base\n  - https://github.com/example/manifests//base\n"),
        "remote-base", ("tenant-repo-example/staging/kustomization.yaml",
                        "https://github.com/example/manifests//base", "--no-remote-bases=true"),
        id="remote-base",
    ),
    pytest.param(
        replace("infrastructure/kyverno/release.yaml", 'version: "3.9.1"', 'version: "3.8.0"'),
        "pins", ("HelmRelease flux-system/kyverno", "differs from kyverno.chart"),
        id="chart-version-drift",
    ),
    pytest.param(
        append("infrastructure/kyverno/namespace.yaml",
               "---\napiVersion: kyverno.io/v1\nkind: ClusterPolicy\nmetadata:\n  name: legacy\n"
               "spec:\n  rules: []\n"),
        "deprecated", ("ClusterPolicy legacy", "kyverno.io/v1"),
        id="deprecated-api-version",
    ),
    pytest.param(
        replace("tests/policies/source-ref/kyverno-test.yaml",
                "resources: [platform-source], result: fail", "resources: [platform-source], result: pass"),
        "policy-tests", ("kyverno test failed", "platform-source"),
        id="policy-test-expectation-wrong",
    ),
    pytest.param(
        replace("infrastructure/kyverno-policies/tenant-no-kubeconfig.yaml",
                "name: flux-tenant-no-kubeconfig", "name: flux-tenant-no-kubeconfig-renamed"),
        "policy-tests", ("policy flux-tenant-no-kubeconfig-renamed", "no offline test expecting fail and pass"),
        id="policy-without-tests",
    ),
    pytest.param(
        append("tenant-repo-example/base/podinfo-release.yaml", "  values: [\n"),
        "yaml", ("tenant-repo-example/base/podinfo-release.yaml", "does not parse"),
        id="yaml-syntax-error",
    ),
    pytest.param(
        append("tenant-repo-example/base/podinfo-repository.yaml",
               "---\napiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRoleBinding\n"
               "metadata:\n  name: dev-team-admin\nroleRef:\n  apiGroup: rbac.authorization.k8s.io\n"
               "  kind: ClusterRole\n  name: cluster-admin\nsubjects:\n  - kind: ServiceAccount\n"
               "    name: dev-team\n    namespace: apps\n"),
        "tenancy", ("ClusterRoleBinding dev-team-admin", "cluster-scoped object in a tenant repo"),
        id="cluster-scoped-object-in-tenant-repo",
    ),
    pytest.param(
        replace("tenants/base/dev-team/rbac.yaml", "    pod-security.kubernetes.io/enforce: restricted\n", ""),
        "pod-security", ("tenants/base/dev-team/rbac.yaml", "Namespace apps",
                         "metadata.labels.pod-security.kubernetes.io/enforce", "is None, must be 'restricted'"),
        id="tenant-namespace-without-pod-security",
    ),
    pytest.param(
        replace("tenants/base/dev-team/rbac.yaml", "pod-security.kubernetes.io/enforce-version: v1.34",
                "pod-security.kubernetes.io/enforce-version: latest"),
        "pod-security", ("Namespace apps", "metadata.labels.pod-security.kubernetes.io/enforce-version",
                         "is 'latest', must be 'v1.34'"),
        id="pod-security-not-pinned",
    ),
    pytest.param(
        replace("tenants/base/dev-team/kustomization.yaml", "  - quota.yaml\n", ""),
        "quota", ("Namespace apps", "no ResourceQuota in tenant namespace apps"),
        id="tenant-without-quota",
    ),
    pytest.param(
        replace("tenants/base/dev-team/kustomization.yaml", "  - network.yaml\n", ""),
        "network", ("Namespace apps", "no NetworkPolicy of the platform closes tenant namespace apps"),
        id="tenant-without-network-policy",
    ),
    pytest.param(
        replace("tenants/base/dev-team/network.yaml", "    - Egress\n", ""),
        "network", ("Namespace apps", "no NetworkPolicy of the platform closes tenant namespace apps"),
        id="tenant-network-policy-ingress-only",
    ),
    pytest.param(
        append("tenant-repo-example/base/podinfo-repository.yaml",
               "---\napiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata:\n  name: open\nspec:\n"
               "  podSelector: {}\n  egress:\n    - to:\n        - namespaceSelector: {}\n"),
        "admission", ("NetworkPolicy apps/open", "flux-tenant-network-policies",
                      "egress may only go to pods of its own namespace"),
        id="tenant-network-policy-opening-egress",
    ),
    pytest.param(
        append("tenant-repo-example/base/podinfo-repository.yaml",
               "---\napiVersion: v1\nkind: Service\nmetadata:\n  name: open\nspec:\n  type: NodePort\n"
               "  ports:\n    - port: 80\n"),
        "admission", ("Service apps/open", "flux-tenant-services", "spec.type NodePort is not allowed"),
        id="tenant-node-port-service",
    ),
    pytest.param(
        append("tenant-repo-example/base/podinfo-repository.yaml",
               "---\napiVersion: rbac.authorization.k8s.io/v1\nkind: RoleBinding\nmetadata:\n  name: everyone\n"
               "roleRef:\n  apiGroup: rbac.authorization.k8s.io\n  kind: ClusterRole\n  name: view\n"
               "subjects:\n  - apiGroup: rbac.authorization.k8s.io\n    kind: Group\n    name: system:authenticated\n"),
        "admission", ("RoleBinding apps/everyone", "flux-tenant-role-bindings", "binds Group system:authenticated"),
        id="tenant-binding-for-everyone",
    ),
    pytest.param(
        append("tenant-repo-example/base/podinfo-repository.yaml",
               "---\napiVersion: v1\nkind: Pod\nmetadata:\n  name: cached\nspec:\n  containers:\n"
               "    - name: app\n      image: ghcr.io/stefanprodan/podinfo:6.9.2\n      imagePullPolicy: IfNotPresent\n"),
        "admission", ("Pod apps/cached", "flux-tenant-image-pull", "containers app must set imagePullPolicy: Always"),
        id="tenant-container-with-cached-image",
    ),
    pytest.param(
        replace("tenant-repo-example/base/podinfo-release.yaml", "  releaseName: podinfo\n",
                "  releaseName: podinfo\n  dependsOn:\n    - name: kyverno\n      namespace: flux-system\n"),
        "admission", ("HelmRelease apps/podinfo", "flux-tenant-depends-on", "spec.dependsOn names flux-system/kyverno"),
        id="release-depending-on-another-namespace",
    ),
    pytest.param(
        replace("infrastructure/kyverno-policies/tenant-flux-status.yaml",
                "name: flux-tenant-status", "name: flux-tenant-status-renamed"),
        "policy-tests", ("policy flux-tenant-status-renamed", "matches subresources only",
                         'prove it with a live test under tests/e2e/'),
        id="subresource-policy-without-live-test",
    ),
]


@pytest.mark.parametrize(("edit", "check", "fragments"), BROKEN)
def test_broken_copy_fails_with_named_problem(
    validate_copy: Callable[[Edit], Report], edit: Edit, check: str, fragments: tuple[str, ...]
) -> None:
    report = validate_copy(edit)
    assert not report.ok
    assert_finding(report, check, *fragments)


def test_finding_text_names_file_object_field_and_reason() -> None:
    finding = Finding("schema", "a/b.yaml", "Kustomization apps/x", "spec.intervall", "unknown field")
    assert str(finding) == "[schema] a/b.yaml: Kustomization apps/x: spec.intervall: unknown field"


def _native(repo: Path) -> None:
    write_variant(repo)


def _native_with_source_edited(repo: Path) -> None:
    """The variant committed, then its source policy edited without `make native`: the
    services policy lets a tenant open NodePorts."""
    write_variant(repo)
    source = repo / POLICIES_DIR / "tenant-services.yaml"
    source.write_text(source.read_text().replace("['ClusterIP', 'ExternalName']", "['ClusterIP', 'ExternalName', 'NodePort']"))


def test_a_committed_native_variant_passes_its_engines_checks(validate_copy: Callable[[Edit], Report]) -> None:
    """The native engine's offline checks (harness/e2e/engines.py): the admission policies are
    what the Kyverno source generates, and the source passes the same checks as under Kyverno."""
    report = validate_copy(_native)
    assert report.findings == (), "\n".join(map(str, report.findings))


def test_a_native_variant_whose_source_changed_fails_both_ways(validate_copy: Callable[[Edit], Report]) -> None:
    report = validate_copy(_native_with_source_edited)
    assert_finding(report, "native-variant", f"{NATIVE_POLICIES_DIR}/tenant-services.yaml", "run `make native`")
    assert_finding(report, "policy-tests", "kyverno test failed", "node-port")
