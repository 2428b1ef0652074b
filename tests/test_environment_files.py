"""One set of pins: every dependency is pinned in requirements/constraints.txt and environment.yml agrees."""

import importlib.util
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
spec = importlib.util.spec_from_file_location("sync", ROOT / "tools" / "sync_environment_yml.py")
sync = importlib.util.module_from_spec(spec)
spec.loader.exec_module(sync)


def test_every_direct_dependency_is_pinned():
    pins = sync.pins()
    unpinned = [n for n in sync.direct_dependencies() if sync.canonical(n) not in pins]
    assert not unpinned, f"add exact pins for {unpinned} to requirements/constraints.txt"


def test_environment_yml_mirrors_the_constraints():
    yml = (ROOT / "environment.yml").read_text()
    pins = sync.pins()
    for name, version in re.findall(r"^\s+- ([A-Za-z0-9_.\-]+)==(\S+)$", yml, flags=re.M):
        assert pins[sync.canonical(name)] == f"{name}=={version}", f"environment.yml pins {name}=={version}"
    assert yml == sync.render(), "environment.yml is stale: run python tools/sync_environment_yml.py"


def test_installed_versions_match_the_pins():
    """The environment the tests run in is the pinned one (catches a constraint file that was not applied)."""
    from importlib.metadata import PackageNotFoundError, version

    pins = sync.pins()
    for name in sync.direct_dependencies():
        try:
            installed = version(name)
        except PackageNotFoundError:
            continue
        expected = pins[sync.canonical(name)].split("==")[1]
        assert installed.split("+")[0] == expected, f"{name}: installed {installed}, pinned {expected}"
