"""The command line: `python -m harness validate | kit ... | tenant add ...`."""

from __future__ import annotations

import argparse
import dataclasses
import sys
import time
from pathlib import Path

from harness.core.errors import HarnessError
from harness.core.progress import format_duration, say
from harness.core.versions import REPO_ROOT, Versions, load_versions


def _kit_parts() -> tuple[str, ...]:
    """What the kit builds for the policy engine this tree deploys."""
    from harness.e2e.engines import engine_of

    return engine_of(REPO_ROOT).kit_parts


def _validate(args: argparse.Namespace) -> int:
    from harness.e2e.engines import engine_of
    from harness.kit.images import KYVERNO_PART
    from harness.kit.requirements import check
    from harness.kit.tools import validation_kit
    from harness.manifests.validate import validate

    check("validate")
    versions = load_versions()
    repo = Path(args.repo)
    engine = engine_of(repo)
    kit = validation_kit(versions, _kit_source(None), controllers=KYVERNO_PART in engine.kit_parts)
    report = validate(repo, kit.tools, kit.sources, versions, engine.offline_checks)
    for finding in report.findings:
        print(finding)
    verdict = "FAILED" if report.findings else "passed"
    say(
        f"validate {verdict}: {len(report.findings)} finding(s) in {report.renders} renders, "
        f"{report.objects} objects, in {format_duration(report.seconds)}"
    )
    return 1 if report.findings else 0


def _lint_ci(args: argparse.Namespace) -> int:
    from harness.kit.requirements import check
    from harness.kit.tools import ci_config_tools
    from harness.manifests.ci import check_all

    check("validate")
    tools = ci_config_tools(load_versions())
    findings = check_all(tools.actionlint, tools.renovate_validator, Path(args.repo))
    for finding in findings:
        print(finding)
    say(f"CI configuration {'FAILED' if findings else 'passed'}: actionlint, Renovate's validator, "
        f"Renovate rules for every pin; {len(findings)} finding(s)")
    return 1 if findings else 0


def _chosen_versions(args: argparse.Namespace) -> Versions:
    """--versions, else FLEET_E2E_VERSIONS (make VERSIONS=...), else versions.yaml."""
    from harness.core.config import versions_file

    return load_versions(versions_file(getattr(args, "versions", None)))


def _kit_build(args: argparse.Namespace) -> int:
    from harness.kit.build import build_kit, summary

    started = time.monotonic()
    versions = _chosen_versions(args)
    say(f"kit for version set {versions.name}")
    kit = build_kit(versions, _kit_source(args.source), _kit_parts())  # type: ignore[arg-type]
    print(summary(kit))
    say(f"kit ready in {format_duration(time.monotonic() - started)}")
    return 0


def _kit_check(args: argparse.Namespace) -> int:
    from harness.e2e.smoke import run_smoke
    from harness.kit.build import build_kit, fingerprint
    from harness.kit.cache import cache_root
    from harness.kit.host import prepare_host

    prepare_host("e2e")
    versions = load_versions()
    kit = build_kit(versions, _kit_source(None), _kit_parts())  # type: ignore[arg-type]
    # The fingerprint of the last kit that passed, kept in the kit cache (and so in CI's cache).
    stamp = cache_root() / "checks" / f"kit-check-{versions.name}-{kit.source}.passed"
    kit_id = fingerprint(kit)
    if args.if_changed and stamp.is_file() and stamp.read_text().strip() == kit_id:
        say(f"kit check skipped: the kit is the one that passed it last (fingerprint {kit_id[:12]}, "
            f"{stamp}); run `make kit-check` to check it anyway")
        return 0
    seconds = run_smoke(versions, kit)
    stamp.parent.mkdir(parents=True, exist_ok=True)
    stamp.write_text(kit_id + "\n")
    say(f"kit check passed in {format_duration(seconds)}; nothing left behind")
    return 0


def _kind_binary() -> str:
    from harness.kit import gomod, recipes
    from harness.kit.tools import log_dir

    return str(gomod.build(recipes.kind(load_versions()), log_dir()).path / "bin" / "kind")


def _sweep(args: argparse.Namespace) -> int:
    from harness.e2e.environment import live_runs
    from harness.e2e.sweep import sweep

    removed, kept = sweep(_kind_binary(), live_runs())
    for item in removed:
        print(f"removed {item}")
    for item in kept:
        print(f"kept {item}: its run is live (a running e2e, or `make up`'s environment: make down)")
    say(f"sweep: removed {len(removed)} leftover(s), kept {len(kept)} of live runs")
    return 0


def _up(args: argparse.Namespace) -> int:
    from harness.core.config import build_config
    from harness.e2e.environment import up
    from harness.kit.build import build_kit
    from harness.kit.host import prepare_host

    started = time.monotonic()
    config = build_config({"versions": args.versions})
    prepare_host("e2e")
    record = up(config, build_kit(load_versions(config.versions_file), config.kit_source, _kit_parts()))
    print(record.how_to_reach())
    say(f"up in {format_duration(time.monotonic() - started)}")
    return 0


def _down(args: argparse.Namespace) -> int:
    from harness.e2e.environment import down

    for item in down(_kind_binary()):
        print(f"removed {item}")
    return 0


def _git_server(args: argparse.Namespace) -> int:
    from harness.e2e.gitserver import run_server

    run_server(args.address, Path(args.root))
    return 0


def _host_prepare(args: argparse.Namespace) -> int:
    from harness.kit.host import prepare_host

    prepare_host(args.purpose)
    return 0


def _bench(args: argparse.Namespace) -> int:
    import tempfile

    from harness.core.config import build_config
    from harness.e2e.bench import run_bench
    from harness.e2e.environment import CLUSTER_SLOTS, e2e_slots
    from harness.kit.build import build_kit
    from harness.kit.host import prepare_host

    prepare_host("e2e")
    config = build_config()
    kit = build_kit(load_versions(config.versions_file), config.kit_source, _kit_parts())
    with (e2e_slots(CLUSTER_SLOTS, "make bench"),
          tempfile.TemporaryDirectory(prefix="fleet-bench-") as workdir):
        result = run_bench(config, kit, Path(workdir))
    print(result.report())
    return 0


def _side_by_side(args: argparse.Namespace) -> int:
    from harness.core.sidebyside import SideBySideError, run_side_by_side

    commands: dict[str, str] = {}
    for item in args.commands:
        name, sep, line = item.partition("=")
        if not sep or not name or not line.strip():
            raise SideBySideError(f"{item!r}: each command is NAME=COMMAND LINE")
        commands[name] = line
    outcomes = run_side_by_side(commands, Path(args.logs), args.fail_fast)
    for outcome in outcomes:
        say(outcome.describe())
    # The status of the failure that came first, not of a command it had stopped.
    return next((o.returncode for o in outcomes if o.returncode != 0 and o.stopped_by is None),
                next((o.returncode for o in outcomes if o.returncode != 0), 0))


def _host_check(args: argparse.Namespace) -> int:
    from harness.kit.requirements import check

    check(args.purpose)
    say(f"host: ready for the {args.purpose}")
    return 0


def _kit_source(value: str | None) -> str:
    """--source, else FLEET_E2E_KIT_SOURCE (the e2e's own setting), else build."""
    from harness.core.config import kit_source

    return kit_source(value)


def _tenant_add(args: argparse.Namespace) -> int:
    from harness.manifests.tenants import Quota, add_tenant

    quota = Quota(**{f.name: getattr(args, f.name) for f in dataclasses.fields(Quota)})
    written = add_tenant(Path(args.repo), args.name, args.namespace, args.git_url, args.branch,
                         tuple(args.allow), quota)
    for path in written:
        print(f"wrote {path}")
    return 0


def _native_write(args: argparse.Namespace) -> int:
    from harness.manifests.native import write_variant

    written, removed = write_variant(Path(args.repo))
    for path in written:
        print(f"wrote {path}")
    for path in removed:
        print(f"removed {path}")
    print("the fleet now deploys native admission policies and no policy engine; commit the result")
    return 0


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(prog="python -m harness", description=__doc__)
    top.add_argument("--repo", default=str(REPO_ROOT), help="fleet repo root (default: this checkout)")
    sub = top.add_subparsers(dest="command", required=True)

    validate = sub.add_parser("validate", help="offline manifest checks (make validate)")
    validate.set_defaults(func=_validate)

    lint_ci = sub.add_parser("lint-ci", help="check the workflows and the Renovate config (make lint)")
    lint_ci.set_defaults(func=_lint_ci)

    kit = sub.add_parser("kit", help="the offline kit of tools and images")
    kit_sub = kit.add_subparsers(dest="kit_command", required=True)
    kit_build = kit_sub.add_parser("build", help="build (or reuse) every kit artifact (make kit)")
    kit_build.add_argument("--source", choices=("build", "upstream"), default=None,
                           help="build images and charts here, or pull them from upstream "
                                "(default: $FLEET_E2E_KIT_SOURCE, else build)")
    kit_build.add_argument("--versions", metavar="FILE", default=None,
                           help="version set to build for (default: $FLEET_E2E_VERSIONS, else versions.yaml)")
    kit_build.set_defaults(func=_kit_build)
    kit_check = kit_sub.add_parser("check", help="smoke-test the kit on a throwaway kind cluster")
    kit_check.add_argument("--if-changed", action="store_true",
                           help="skip the check when the kit is the one that passed it last "
                                "(nothing rebuilt since)")
    kit_check.set_defaults(func=_kit_check)

    bench = sub.add_parser("bench", help="time the e2e's bring-up beside the seed project's CI steps "
                                         "replayed on the same kit (make bench)")
    bench.set_defaults(func=_bench)

    side = sub.add_parser("side-by-side", help="run commands at once, each output line named (make test)")
    side.add_argument("--logs", default="artifacts", help="folder for each command's whole output, NAME.log")
    side.add_argument("--fail-fast", action="store_true",
                      help="terminate the other commands as soon as one fails (as make stops at its first failure)")
    side.add_argument("commands", nargs="+", metavar="NAME=COMMAND", help="a name and the command line it runs")
    side.set_defaults(func=_side_by_side)

    host = sub.add_parser("host", help="prepare this machine to run kind")
    host_sub = host.add_subparsers(dest="host_command", required=True)
    purposes = ("validate", "kit", "e2e")
    host_prepare = host_sub.add_parser(
        "prepare", help="install and configure what the project needs (packages, Docker, sysctls)")
    host_prepare.add_argument("--for", dest="purpose", choices=purposes, default="e2e",
                              help="what the host must be ready for (default: e2e, which includes the kit)")
    host_prepare.set_defaults(func=_host_prepare)
    host_check = host_sub.add_parser("check", help="say what the host lacks, installing nothing")
    host_check.add_argument("--for", dest="purpose", choices=purposes, default="e2e",
                            help="what the host must be ready for (default: e2e)")
    host_check.set_defaults(func=_host_check)

    sweeper = sub.add_parser("sweep", help="remove what killed runs left (clusters, containers, networks); "
                                                  "live runs and other projects' objects are left alone")
    sweeper.set_defaults(func=_sweep)

    up = sub.add_parser("up", help="bring the e2e environment up and leave it running (make up)")
    up.add_argument("--versions", metavar="FILE", default=None,
                    help="version set to bring up (default: $FLEET_E2E_VERSIONS, else versions.yaml)")
    up.set_defaults(func=_up)
    down = sub.add_parser("down", help="remove the environment `make up` left running (make down)")
    down.set_defaults(func=_down)
    git_server = sub.add_parser("git-server", help="serve a Git root over smart HTTP (used by make up)")
    git_server.add_argument("--address", required=True)
    git_server.add_argument("--root", required=True)
    git_server.set_defaults(func=_git_server)

    native = sub.add_parser("native", help="the fleet's variant without a policy engine")
    native_sub = native.add_subparsers(dest="native_command", required=True)
    native_write = native_sub.add_parser(
        "write", help="turn the fleet into its native variant, or regenerate its admission policies from "
                      "the Kyverno policies after an edit (make native)")
    native_write.set_defaults(func=_native_write)

    tenant = sub.add_parser("tenant", help="manage tenants of the fleet repo")
    tenant_sub = tenant.add_subparsers(dest="tenant_command", required=True)
    add = tenant_sub.add_parser("add", help="onboard a tenant: tenants/base/NAME and both overlays")
    add.add_argument("name", help="tenant name (DNS label), e.g. dev-team")
    add.add_argument("--namespace", required=True, help="namespace the tenant will own")
    add.add_argument("--git-url", required=True, help="URL of the tenant's own Git repository")
    add.add_argument("--branch", default="main", help="branch of the tenant repo (default: main)")
    add.add_argument("--allow", action="append", default=[], metavar="PREFIX",
                     help="another URL prefix the tenant's sources may use (repeatable); its own "
                          "repository is always on its allowlist")
    quota = add.add_argument_group("quota", "the tenant's ResourceQuota: totals over all its pods "
                                            "(object counts and per-container defaults are in quota.yaml)")
    from harness.manifests.tenants import Quota

    for f in dataclasses.fields(Quota):
        quota.add_argument(f"--{f.name.replace('_', '-')}", default=f.default, metavar="QUANTITY",
                           help=f"(default: {f.default})")
    add.set_defaults(func=_tenant_add)
    return top


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        return int(args.func(args))
    except HarnessError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
