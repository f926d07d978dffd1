"""The upgrade tests are collected only in an upgrade run, and a bad --e2e-upgrade-from is
reported rather than silently deselecting them."""

from __future__ import annotations

import pytest

from harness.core.versions import VERSIONS_FILE

pytest_plugins = ["pytester"]

TESTS = '''
    import pytest

    @pytest.mark.e2e
    @pytest.mark.upgrade
    def test_upgrade():
        pass

    def test_cluster_free():
        pass
    '''


@pytest.fixture
def session(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> pytest.Pytester:
    for name in ("FLEET_E2E_UPGRADE_FROM", "FLEET_E2E_VERSIONS"):
        monkeypatch.delenv(name, raising=False)
    pytester.makeconftest('pytest_plugins = ["harness.entry.plugin"]\n')
    pytester.makeini("[pytest]\nmarkers =\n    e2e: e2e\n    upgrade: upgrade\n")
    pytester.makepyfile(test_probe=TESTS)
    return pytester


def test_upgrade_tests_are_deselected_outside_an_upgrade_run(session: pytest.Pytester) -> None:
    result = session.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=1, deselected=1)


def test_a_bad_upgrade_start_is_reported(session: pytest.Pytester) -> None:
    result = session.runpytest_subprocess("-p", "no:cacheprovider", f"--e2e-upgrade-from={VERSIONS_FILE}")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stdout.fnmatch_lines(["*--e2e-upgrade-from / FLEET_E2E_UPGRADE_FROM:*it is the set the run upgrades to*"])
