"""The Flux multi-tenancy lockdown: the flags each controller must run with, judged by their
effective value (a flag given twice takes its last value, as Go's flag parsing does), and the
flags no controller may run with."""

from __future__ import annotations

# The lockdown every cluster's controllers must run with (threat model: lockdown flags).
LOCKDOWN_FLAGS: dict[str, dict[str, str]] = {
    "kustomize-controller": {"--no-cross-namespace-refs": "true", "--no-remote-bases": "true",
                             "--default-service-account": "default"},
    "helm-controller": {"--no-cross-namespace-refs": "true", "--default-service-account": "default"},
    "notification-controller": {"--no-cross-namespace-refs": "true"},
}
# Controllers this fleet does not install. Image automation pushes to Git with the platform's
# credentials (threat model row 10): a fleet that adds them must lock them down too, and govern
# ImageUpdateAutomation in tenant namespaces by policy.
OPTIONAL_LOCKDOWN_FLAGS: dict[str, dict[str, str]] = {
    "image-reflector-controller": {"--no-cross-namespace-refs": "true"},
    "image-automation-controller": {"--no-cross-namespace-refs": "true"},
}
IMAGE_AUTOMATION = "image-automation-controller"
IMAGE_AUTOMATION_RESOURCE = "imageupdateautomations"
# Flags that would let a tenant's kubeConfig reach out with exec plugins or other clusters'
# credentials: never on a lockdown cluster, whatever their value.
FORBIDDEN_PREFIXES = ("--insecure-kubeconfig-",)


def effective_flags(args: list[str]) -> dict[str, str]:
    """Each --flag's value as the controller sees it: `--flag=v`, or `--flag` alone (true); the
    last occurrence wins. (Flux's controllers take `--flag=value`; `--flag value` is not used.)"""
    flags: dict[str, str] = {}
    for arg in args:
        if arg.startswith("--"):
            name, sep, value = arg.partition("=")
            flags[name] = value if sep else "true"
    return flags


def lockdown_problems(controller: str, args: list[str]) -> list[str]:
    """Why `args` break the lockdown for `controller`; empty when they keep it."""
    flags = effective_flags(args)
    problems = []
    wanted_flags = LOCKDOWN_FLAGS.get(controller) or OPTIONAL_LOCKDOWN_FLAGS.get(controller, {})
    for flag, wanted in wanted_flags.items():
        if flag not in flags:
            problems.append(f"missing lockdown flag {flag}={wanted}")
        elif flags[flag] != wanted:
            problems.append(f"lockdown flag {flag} is {flags[flag]!r} in effect (the last occurrence "
                            f"wins), must be {wanted!r}")
    for flag, value in flags.items():
        if flag.startswith(FORBIDDEN_PREFIXES):
            problems.append(f"{flag}={value} must not be set on a multi-tenant cluster")
    return problems
