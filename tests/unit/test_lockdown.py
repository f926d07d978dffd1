"""Lockdown flags are judged by their effective value; insecure kubeconfig flags are refused."""

from __future__ import annotations

from harness.core.lockdown import effective_flags, lockdown_problems

KEPT = ["--events-addr=http://x", "--no-cross-namespace-refs=true", "--no-remote-bases=true",
        "--default-service-account=default"]


def test_the_lockdown_as_installed_is_kept() -> None:
    assert lockdown_problems("kustomize-controller", KEPT) == []


def test_the_last_occurrence_of_a_flag_wins() -> None:
    assert effective_flags(["--a=true", "--a=false"]) == {"--a": "false"}
    problems = lockdown_problems("kustomize-controller", [*KEPT, "--no-cross-namespace-refs=false"])
    assert problems == [("lockdown flag --no-cross-namespace-refs is 'false' in effect (the last occurrence "
                        "wins), must be 'true'")]


def test_a_bare_boolean_flag_is_true() -> None:
    args = ["--no-cross-namespace-refs", "--no-remote-bases", "--default-service-account=default"]
    assert lockdown_problems("kustomize-controller", args) == []


def test_a_missing_flag_is_named_with_its_value() -> None:
    assert lockdown_problems("helm-controller", ["--no-cross-namespace-refs=true"]) == [
        "missing lockdown flag --default-service-account=default"]


def test_insecure_kubeconfig_flags_are_refused_on_any_controller() -> None:
    for controller in ("kustomize-controller", "source-controller"):
        problems = lockdown_problems(controller, [*KEPT, "--insecure-kubeconfig-tls=true"])
        assert "--insecure-kubeconfig-tls=true must not be set on a multi-tenant cluster" in problems
