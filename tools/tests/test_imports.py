"""Dependencies point one way: no module under tools/, benchmarks/ or packages/ imports an app.

The apps (freqlat.train, freqlat.eval) are commands; a tool or a library that needs what an app
does runs the command (``python -m freqlat.train ...``) or uses the package the app uses.
"""

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
APPS = ("freqlat.train", "freqlat.eval")
CHECKED = ("tools", "benchmarks", "packages")


def imported_modules(path: Path) -> set[str]:
    """Every module ``path`` imports, at any depth (functions included)."""
    modules = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            modules.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            modules.add(node.module)
            modules.update(f"{node.module}.{alias.name}" for alias in node.names)
    return modules


def _imports_an_app(module: str) -> bool:
    return any(module == app or module.startswith(f"{app}.") for app in APPS)


def test_no_tool_benchmark_or_package_module_imports_an_app():
    files = [p for folder in CHECKED for p in sorted((ROOT / folder).rglob("*.py"))]
    assert len(files) > 50, "the folders to check were not found"
    offenders = {
        str(path.relative_to(ROOT)): sorted(m for m in imported_modules(path) if _imports_an_app(m))
        for path in files
    }
    assert {path: found for path, found in offenders.items() if found} == {}


def test_the_check_sees_imports_inside_functions(tmp_path):
    source = tmp_path / "x.py"
    source.write_text(
        "def f():\n    from freqlat.eval.recon import COLUMNS\n    import freqlat.train\n"
    )
    assert {m for m in imported_modules(source) if _imports_an_app(m)} == {
        "freqlat.eval.recon",
        "freqlat.eval.recon.COLUMNS",
        "freqlat.train",
    }
    source.write_text("from freqlat import train\nimport freqlat.training_data\n")
    assert {m for m in imported_modules(source) if _imports_an_app(m)} == {"freqlat.train"}
