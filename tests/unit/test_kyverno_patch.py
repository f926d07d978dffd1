"""A policy patched while Kyverno's policy webhook is not reachable yet: retried until the call
goes through, while any other refusal fails at once."""

from __future__ import annotations

import json
from typing import Any

import pytest
from kubernetes.client.exceptions import ApiException

from harness.core.waits import WaitTimeoutError
from harness.e2e import kyverno

UNREACHABLE = ('failed calling webhook "validate-policy.kyverno.svc": failed to call webhook: Post '
               '"https://kyverno-svc.kyverno.svc:443/policyvalidate?timeout=10s": dial tcp 10.96.40.112:443: '
               'connect: connection refused')


def _refusal(status: int, message: str) -> ApiException:
    exc = ApiException(status=status, reason="refused")
    exc.body = json.dumps({"kind": "Status", "message": message, "code": status})
    return exc


class FakeKube:
    """Refuses the first patches as the API server does while the webhook's Service has no route."""

    def __init__(self, refusals: list[ApiException]) -> None:
        self.refusals = refusals
        self.patched: list[dict[str, Any]] = []

    def patch(self, api_version: str, kind: str, name: str, namespace: str | None,
              body: dict[str, Any]) -> dict[str, Any]:
        if self.refusals:
            raise self.refusals.pop(0)
        self.patched.append(body)
        return body


def test_a_patch_refused_for_an_unreachable_webhook_is_made_once_it_answers() -> None:
    kube = FakeKube([_refusal(500, f"Internal error occurred: {UNREACHABLE}")] * 2)
    kyverno.patch_policy(kube, "p", {"failurePolicy": "Fail"}, timeout_s=30.0)  # type: ignore[arg-type]
    assert kube.patched == [{"spec": {"failurePolicy": "Fail"}}]


def test_a_patch_refused_for_another_reason_fails_at_once() -> None:
    kube = FakeKube([_refusal(422, "ValidatingPolicy.policies.kyverno.io \"p\" is invalid")])
    with pytest.raises(ApiException):
        kyverno.patch_policy(kube, "p", {"failurePolicy": "Fail"}, timeout_s=30.0)  # type: ignore[arg-type]
    assert kube.patched == []


def test_a_webhook_that_never_answers_ends_in_a_timeout_naming_it() -> None:
    kube = FakeKube([_refusal(500, f"Internal error occurred: {UNREACHABLE}")] * 100)
    with pytest.raises(WaitTimeoutError, match="connection refused"):
        kyverno.patch_policy(kube, "p", {}, timeout_s=0.5)  # type: ignore[arg-type]
