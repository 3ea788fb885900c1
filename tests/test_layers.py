"""Imports inside chathuman_hf only point down the layers each package's ``__init__`` docstring names."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "chathuman_hf"
# lowest first: a module may import its own package and the packages before it
LAYERS = ["core", "korean", "data", "tokens", "models", "evaluation", "training", "publishing", "skills", "chat",
          "serving"]


def imported_modules(path: Path, root: Path) -> list[tuple[int, str]]:
    """Every ``chathuman_hf`` module a file imports (top level or inside functions), absolute dotted names."""
    parts = path.relative_to(root.parent).with_suffix("").parts
    package = parts[:-1]
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(package[: len(package) - node.level + 1] + ((base,) if base else ()))
            found.append((node.lineno, base))
    return [(line, name) for line, name in found if name.split(".")[0] == "chathuman_hf"]


def layer_of(dotted: str) -> str | None:
    parts = dotted.split(".")
    return parts[1] if len(parts) > 1 else None


def upward_imports(root: Path = PACKAGE) -> list[str]:
    problems = []
    for path in sorted(root.rglob("*.py")):
        rel = path.relative_to(root)
        if len(rel.parts) == 1:
            if rel.name != "__init__.py":
                problems.append(f"{rel}: a module outside the layer packages")
            continue
        own = rel.parts[0]
        for line, name in imported_modules(path, root):
            target = layer_of(name)
            if target is None or target == own:
                continue
            if target not in LAYERS or LAYERS.index(target) > LAYERS.index(own):
                problems.append(f"{rel}:{line} imports {name} ({own} may not import {target})")
    return problems


def test_every_package_is_a_layer():
    packages = sorted(p.name for p in PACKAGE.iterdir() if (p / "__init__.py").is_file())
    assert packages == sorted(LAYERS)


def test_imports_only_point_down():
    assert upward_imports() == []


def test_the_check_sees_an_upward_import(tmp_path):
    root = tmp_path / "chathuman_hf"
    for layer, source in [("data", "from chathuman_hf.training.build import x\n"),
                          ("tokens", "def f():\n    from ..data import y\n    import chathuman_hf.core.cli\n")]:
        (root / layer).mkdir(parents=True)
        (root / layer / "__init__.py").write_text("")
        (root / layer / "m.py").write_text(source)
    (root / "loose.py").write_text("")
    assert upward_imports(root) == ["data/m.py:1 imports chathuman_hf.training.build (data may not import training)",
                                    "loose.py: a module outside the layer packages"]


def test_no_recipe_shadows_a_library():
    """``python recipes/X.py`` puts ``recipes/`` first on ``sys.path``: a recipe named like a library hides it."""
    import importlib.util

    recipes = sorted(p.stem for p in (PACKAGE.parent / "recipes").glob("*.py"))
    assert "train" in recipes
    assert [name for name in recipes if importlib.util.find_spec(name) is not None] == []


def test_the_developer_guide_names_every_module():
    """docs/developing.md's layer table says where each module lives (skills, data formats and metrics by folder)."""
    guide = (PACKAGE.parent / "docs" / "developing.md").read_text(encoding="utf-8")
    table = "\n".join(line for line in guide.splitlines() if line.startswith("| `"))
    modules = [p for p in PACKAGE.rglob("*.py") if p.name not in ("__init__.py", "__main__.py")
               and not {"skills", "formats", "metrics"} & set(p.relative_to(PACKAGE).parts[:-1])]
    assert len(modules) > 60
    assert sorted(str(p.relative_to(PACKAGE)) for p in modules if f"`{p.name}`" not in table) == []
