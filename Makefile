# Entry points for people and CI. Everything runs through the project's virtualenv.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python

# KIT_SOURCE=upstream (pull images, download charts) applies to every target that uses the kit.
ifdef KIT_SOURCE
export FLEET_E2E_KIT_SOURCE := $(KIT_SOURCE)
endif
# VERSIONS=FILE: the version set `make kit`, `make up` and `make e2e` use (default versions.yaml).
ifdef VERSIONS
export FLEET_E2E_VERSIONS := $(VERSIONS)
endif
# UPGRADE_PATH=bootstrap: make upgrade moves Flux with the new CLI's flux bootstrap instead of a commit.
ifdef UPGRADE_PATH
export FLEET_E2E_UPGRADE_PATH := $(UPGRADE_PATH)
endif
# make unit runs the cluster-free tests in one worker per core (pytest-xdist): on 2 cores they
# took 1m30s against 2m51s in one process (2026-12-06). make test runs them in one process: beside
# its two clusters the cores are busy, and two workers made its first step longer (3m36s against
# 3m25s; the unit tests 3m34s, the fresh install 3m00s against 2m10s).
UNIT_WORKERS ?= auto
# UP=1: make e2e runs against the environment `make up` left running.
ifdef UP
export FLEET_E2E_UP := $(UP)
endif

.PHONY: venv validate test unit kit kit-check e2e e2e-fresh e2e-native native upgrade up down lint sweep bench

$(PY): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install -q -e '.[dev]'
	@touch $(PY)

venv: $(PY)

## Offline, cluster-free checks of every manifest (builds the needed tools on first use).
validate: $(PY)
	$(PY) -m harness validate

## The test command, everything with one fleet lifecycle per version set. First, side by side (the
## first failure stops the rest): the cluster-free tests (unit, manifest checks), make e2e-fresh
## (what only a fresh install at the current set can break) and make e2e-native (the native
## variant, fresh), one cluster each, the two a host runs at once; the cluster-free tests use the
## cores the clusters leave idle while they wait on Flux. Then make upgrade alone (the fleet up at
## the previous set, upgraded in place under the probe, then the whole e2e suite on the upgraded
## fleet): nothing else loads the cores while the probe times the upgrade.
test: $(PY)
	$(PY) -m harness side-by-side --fail-fast --logs artifacts \
		"unit=$(PY) -m pytest -m 'not e2e' --junitxml=artifacts/junit.xml $(PYTEST_ARGS)" \
		"e2e-fresh=$(MAKE) --no-print-directory e2e-fresh" "e2e-native=$(MAKE) --no-print-directory e2e-native"
	$(MAKE) --no-print-directory upgrade

## The main job: both clusters, Flux bootstrapped from the local Git server, tenancy proven; then
## the isolation suite on the fleet's native variant (e2e-native).
e2e: $(PY)
	$(PY) -m pytest -m e2e --junitxml=artifacts/junit-e2e.xml $(PYTEST_ARGS)
	$(MAKE) --no-print-directory e2e-native

## The fleet's native variant (the tenant policies as native ValidatingAdmissionPolicies, no policy
## engine) on one cluster: its reconciliation and the isolation suite.
NATIVE_SUITE = tests/e2e/test_reconciliation.py tests/e2e/test_tenant_isolation.py tests/e2e/test_isolation_admission.py \
               tests/e2e/test_isolation_tenant_repo.py tests/e2e/test_isolation_fail_closed.py \
               tests/e2e/test_isolation_workloads.py tests/e2e/test_isolation_network.py tests/e2e/test_probe_cases.py
NATIVE_ENVIRONMENT ?= production
e2e-native: $(PY)
	$(PY) -m pytest -m e2e --e2e-policy-engine=native --e2e-environments=$(NATIVE_ENVIRONMENT) \
		--junitxml=artifacts/junit-e2e-native.xml $(NATIVE_SUITE) $(PYTEST_ARGS)

## A fresh install at the current set on one cluster, judged only by what an upgraded fleet cannot
## show (tests marked fresh_install: the new CLI's bootstrap, every layer from nothing, the charts
## installed, the admission policies the running Kyverno generated). On the cluster e2e-native
## does not bring up, so make test installs each cluster fresh once.
FRESH_ENVIRONMENT ?= staging
e2e-fresh: $(PY)
	$(PY) -m pytest -m "e2e and fresh_install" --e2e-environments=$(FRESH_ENVIRONMENT) \
		--junitxml=artifacts/junit-e2e-fresh.xml $(PYTEST_ARGS)

## Turn this fleet into its native variant, to commit (or, once it is one, regenerate its admission
## policies after an edit of the Kyverno policies they are written from).
native: $(PY)
	$(PY) -m harness native write

## The in-place upgrade: both clusters at UPGRADE_FROM (auto: a pull request's base, else the newest
## commit with an older version set, else versions.previous.yaml; or git:REF, or a set FILE), upgraded
## through Git to the working tree and VERSIONS under an isolation probe, checked, then the whole
## e2e suite on the upgraded fleet.
UPGRADE_FROM ?= auto
upgrade: $(PY)
	$(PY) -m pytest -m e2e --e2e-upgrade-from=$(UPGRADE_FROM) --junitxml=artifacts/junit-upgrade.xml \
		tests/upgrade tests/e2e $(PYTEST_ARGS)

## The whole e2e environment, left running to work in (prints how to reach each part).
up: $(PY)
	$(PY) -m harness up

## Remove the environment `make up` left running.
down: $(PY)
	$(PY) -m harness down

## Cluster-free tests only (seconds once the kit's tools are cached).
unit: $(PY)
	$(PY) -m pytest -m "not e2e" -n $(UNIT_WORKERS) $(PYTEST_ARGS)

## Build every tool and image the e2e needs, from Go modules and Debian packages.
kit: $(PY)
	$(PY) -m harness host prepare --for kit
	$(PY) -m harness kit build

lint: $(PY)
	$(VENV)/bin/ruff check harness tests
	$(VENV)/bin/mypy
	$(VENV)/bin/lint-imports
	$(PY) -m harness lint-ci

## Smoke check of the kit: a throwaway kind cluster from the kit's node image and registry.
## IF_CHANGED=1: only when the kit differs from the one that passed it last (CI).
kit-check: $(PY)
	$(PY) -m harness kit check $(if $(IF_CHANGED),--if-changed)

## A benchmark, not a test: the e2e's bring-up beside the seed project's CI steps on the same kit.
bench: $(PY)
	$(PY) -m harness bench

## Remove what killed runs left behind (only this project's objects, only of runs that are gone).
sweep: $(PY)
	$(PY) -m harness sweep
