"""The rules of the house (ARCHITECTURE.md), read from the code: imports run one way, down the
data flow; the ground floors import nothing of the project; `solvers/` never imports geopandas;
no import circle; no folder of `optimizer/` crowded beyond about eight modules."""

from __future__ import annotations

import ast
from pathlib import Path

import networkx as nx
import pytest

ROOT = Path(__file__).resolve().parents[1]
PROJECT = ("instances", "solvers", "optimizer", "benchmarks")
# optimizer's stages, in data-flow order: each may import only itself and the stages before it.
STAGES = ("model", "blocks", "plan", "reporting", "batch", "cli")


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports_of(path: Path) -> set[str]:
    """Every module named by an import anywhere in the file (function-level imports too)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    name = module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                up = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*up, base] if base else up)
            found.add(base)
            # `from optimizer.cli import batch` names the module optimizer.cli.batch
            found.update(f"{base}.{a.name}" for a in node.names)
    return found


def project_files() -> list[Path]:
    return sorted(p for top in PROJECT for p in (ROOT / top).rglob("*.py"))


MODULES = {module_name(p): p for p in project_files()}


def project_imports(path: Path) -> set[str]:
    return {m for m in imports_of(path) if m in MODULES}


def stage(module: str) -> int | None:
    parts = module.split(".")
    if parts[0] != "optimizer" or len(parts) < 2 or parts[1] not in STAGES:
        return None
    return STAGES.index(parts[1])


@pytest.mark.parametrize("ground", ["instances", "solvers"])
def test_ground_floors_import_nothing_of_the_project(ground: str) -> None:
    bad = {
        (mod, imp)
        for mod, path in MODULES.items() if mod.split(".")[0] == ground
        for imp in project_imports(path) if imp.split(".")[0] != ground
    }
    assert not bad, f"{ground}/ imports other floors: {sorted(bad)}"


def test_solvers_never_import_geopandas() -> None:
    geometry = ("geopandas", "shapely", "pyogrio")
    bad = {mod for mod, path in MODULES.items() if mod.startswith("solvers")
           and any(i.split(".")[0] in geometry for i in imports_of(path))}
    assert not bad, f"solvers/ imports geometry libraries: {sorted(bad)}"


def against_flow(graph: dict[str, set[str]]) -> list[tuple[str, str]]:
    """(module, import) pairs where an optimizer stage imports a later stage or the benchmarks."""
    bad = []
    for mod, imported in graph.items():
        mine = stage(mod)
        if mine is None:
            continue
        for imp in imported:
            theirs = stage(imp)
            if imp.split(".")[0] == "benchmarks" or (theirs is not None and theirs > mine):
                bad.append((mod, imp))
    return sorted(bad)


def test_optimizer_stages_import_only_the_stages_before_them() -> None:
    graph = {mod: project_imports(path) for mod, path in MODULES.items()}
    assert not against_flow(graph), f"imports against the data flow: {against_flow(graph)}"


def test_the_direction_rule_flags_a_backward_import() -> None:
    graph = {"optimizer.model.kpi": {"optimizer.cli.common", "optimizer.model.targets"},
             "optimizer.plan.solve": {"optimizer.blocks.search", "benchmarks.run"},
             "optimizer.cli.batch": {"optimizer.batch.sweep"}}
    assert against_flow(graph) == [("optimizer.model.kpi", "optimizer.cli.common"),
                                   ("optimizer.plan.solve", "benchmarks.run")]


def test_nothing_imports_the_benchmarks() -> None:
    bad = {(mod, imp) for mod, path in MODULES.items() if not mod.startswith("benchmarks")
           for imp in project_imports(path) if imp.startswith("benchmarks")}
    assert not bad, sorted(bad)


def test_no_import_circle() -> None:
    graph = nx.DiGraph()
    for mod, path in MODULES.items():
        for imp in project_imports(path):
            # importing a package's module runs the package's __init__ first; that edge is not a
            # circle of the code's own making
            if imp != mod and not mod.startswith(imp + "."):
                graph.add_edge(mod, imp)
    cycles = list(nx.simple_cycles(graph))
    assert not cycles, f"import circles: {cycles[:5]}"


def test_every_stage_exists_and_says_what_it_may_import() -> None:
    for name in STAGES:
        init = ROOT / "optimizer" / name / "__init__.py"
        assert init.exists(), f"optimizer/{name}/ is missing"
        doc = ast.get_docstring(ast.parse(init.read_text(encoding="utf-8"))) or ""
        assert "import" in doc.lower(), f"optimizer/{name}/__init__.py must say what it may import"


def test_no_folder_is_crowded() -> None:
    for folder in [ROOT / "optimizer", *(ROOT / "optimizer").iterdir()]:
        if folder.is_dir() and (folder / "__init__.py").exists():
            siblings = [p for p in folder.glob("*.py")
                        if p.name not in ("__init__.py", "__main__.py")]
            assert len(siblings) <= 9, f"{folder.relative_to(ROOT)} holds {len(siblings)} modules"


def test_nothing_imports_the_api() -> None:
    """optimizer/api.py is the top of the house (notebooks): it may import every stage, and no
    module of the project imports it, so the one-way rule holds with it on top."""
    bad = sorted(mod for mod, path in MODULES.items()
                 if mod != "optimizer.api" and "optimizer.api" in project_imports(path))
    assert not bad, bad
