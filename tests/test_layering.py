"""The package's imports run one way (STYLE.md): geometry -> views -> data / positional / losses
-> models -> training / inference -> evaluation -> serve -> cli.

Rules checked on the source tree (an AST walk, no imports executed):
1. A module imports only its own package or packages of the same or a lower layer.
2. Schemas are leaves: ``*/schema.py`` import only other schemas (of their layer or lower) and
   ``strict``; ``config.py`` assembles them (it may import any schema, nothing else). Whoever
   needs ``PanoConfig`` sits at the models layer or above.
3. ``commands.py`` modules, ``cli_support`` and ``cli`` are the CLI layer on top: a package owns
   its commands, but nothing below the CLI imports them.
4. No import cycle between modules (lazy ``__init__`` re-exports resolved to their modules).
5. Function-local imports only in the CLI layer (keeps ``--help`` fast) or for optional back ends,
   marked ``# optional back end`` on the line.
"""

from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src" / "panollava"

LAYERS: dict[str, int] = {
    "strict": 0,
    "_lazy": 0,
    "progress": 0,
    "fileutil": 0,
    "geometry": 1,
    "views": 2,
    "data": 3,
    "positional": 3,
    "losses": 3,
    "models": 4,
    "config": 4,
    "training": 5,
    "inference": 5,
    "evaluation": 6,
    "serve": 7,
    "demo": 7,
    "cli_support": 8,
    "cli": 8,
}
CLI_LAYER = 8


def _module_name(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _lazy_table(tree: ast.Module) -> dict[str, str]:
    """``name -> submodule`` of a ``lazy_exports(__name__, {...})`` call in an ``__init__``."""
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Call)
            and getattr(node.func, "id", "") == "lazy_exports"
            and len(node.args) == 2
            and isinstance(node.args[1], ast.Dict)
        ):
            return {
                k.value: v.value
                for k, v in zip(node.args[1].keys, node.args[1].values, strict=True)
                if isinstance(k, ast.Constant) and isinstance(v, ast.Constant)
            }
    return {}


def _layer(module: str) -> int:
    parts = module.split(".")
    if parts[-1] == "commands":
        return CLI_LAYER
    if len(parts) == 1:
        return 0
    if parts[1] not in LAYERS:
        raise KeyError(f"{module}: not in LAYERS; give its top-level package a layer there")
    return LAYERS[parts[1]]


def _is_schema(module: str) -> bool:
    return module.endswith(".schema") or module == "panollava.config"


def collect_imports(root: Path) -> dict[str, list[tuple[str, int, bool, str]]]:
    """``module -> [(imported module, line, function-local, source line)]`` for ``root``'s tree."""
    trees = {_module_name(p, root): (p, ast.parse(p.read_text())) for p in root.rglob("*.py")}
    lazy = {m: _lazy_table(t) for m, (p, t) in trees.items() if p.name == "__init__.py"}
    graph: dict[str, list[tuple[str, int, bool, str]]] = {}
    for module, (path, tree) in trees.items():
        lines = path.read_text().splitlines()
        edges = graph.setdefault(module, [])
        for node in ast.walk(tree):
            targets: list[str] = []
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                for alias in node.names:
                    sub = f"{node.module}.{alias.name}"
                    if sub in trees:
                        targets.append(sub)
                    elif alias.name in lazy.get(node.module, {}):
                        targets.append(f"{node.module}.{lazy[node.module][alias.name]}")
                    else:
                        targets.append(node.module)
            for target in targets:
                if target.split(".")[0] == root.name:
                    edges.append(
                        (target, node.lineno, node.col_offset > 0, lines[node.lineno - 1].strip())
                    )
    return graph


def violations(root: Path = SRC) -> list[str]:
    """Every broken rule in the tree at ``root``, one line each (empty when the layering holds)."""
    graph = collect_imports(root)
    unknown = sorted({m.split(".")[1] for m in graph if "." in m} - set(LAYERS))
    if unknown:
        return [f"no layer for {name!r}: add it to LAYERS" for name in unknown]
    bad: list[str] = []
    for module, edges in graph.items():
        own_pkg = module.split(".")[1] if "." in module else ""
        for target, line, local, text in edges:
            where = f"{module}:{line} imports {target}"
            if _is_schema(module):
                allowed = _is_schema(target) or target == f"{root.name}.strict"
                if not allowed:
                    bad.append(f"{where}: a schema imports only schemas")
                elif module != f"{root.name}.config" and _layer(target) > _layer(module):
                    bad.append(f"{where}: upward (schema of a higher layer)")
                continue
            same_pkg = target.split(".")[1:2] == [own_pkg]
            if not same_pkg and _layer(target) > _layer(module):
                bad.append(f"{where}: upward ({_layer(module)} -> {_layer(target)})")
            if target.endswith(".commands") and _layer(module) < CLI_LAYER:
                bad.append(f"{where}: only the CLI layer imports commands")
            if local and _layer(module) < CLI_LAYER and "optional back end" not in text:
                bad.append(
                    f"{where}: function-local import (hoist it, or mark an optional back end)"
                )
    bad += [f"cycle: {' -> '.join(c)}" for c in _cycles(graph)]
    return bad


def _cycles(graph: dict[str, list[tuple[str, int, bool, str]]]) -> list[list[str]]:
    """Import cycles (each reported once, by depth-first search)."""
    adjacency = {m: sorted({t for t, *_ in edges if t in graph}) for m, edges in graph.items()}
    state: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(node: str) -> None:
        state[node] = 1
        stack.append(node)
        for nxt in adjacency[node]:
            if state.get(nxt) == 1:
                found.append([*stack[stack.index(nxt) :], nxt])
            elif nxt not in state:
                visit(nxt)
        stack.pop()
        state[node] = 2

    for node in sorted(adjacency):
        if node not in state:
            visit(node)
    return found


def test_package_layering_holds() -> None:
    assert violations() == []


def _write(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = root / "panollava" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root / "panollava"


def test_checker_reports_upward_imports_cycles_and_local_imports(tmp_path: Path) -> None:
    """The checker itself: each kind of violation in a synthetic tree is reported."""
    root = _write(
        tmp_path,
        {
            "__init__.py": "",
            "views/__init__.py": "",
            "views/layout.py": "from panollava.models.thing import X\n",
            "views/schema.py": "from panollava.views.layout import Y\n",
            "models/__init__.py": "",
            "models/thing.py": "def f():\n    from panollava.models.other import Z\n",
            "models/other.py": "from panollava.models.thing import f\n",
            "data/__init__.py": "",
            "data/commands.py": "",
            "data/reader.py": "from panollava.data.commands import register\n",
        },
    )
    found = "\n".join(violations(root))
    assert "panollava.views.layout:1 imports panollava.models.thing: upward" in found
    assert "panollava.views.schema:1 imports panollava.views.layout: a schema imports only" in found
    assert "function-local import" in found
    assert "cycle: panollava.models.other -> panollava.models.thing -> panollava.models.other" in (
        found
    )
    assert "only the CLI layer imports commands" in found


def test_lazy_reexports_resolve_to_their_module(tmp_path: Path) -> None:
    root = _write(
        tmp_path,
        {
            "__init__.py": "",
            "views/__init__.py": (
                "from panollava._lazy import lazy_exports\n"
                "__all__, __getattr__ = lazy_exports(__name__, {'build': 'layout'})\n"
            ),
            "views/layout.py": "from panollava.views import build\n",
        },
    )
    assert violations(root) == [
        "cycle: panollava.views.layout -> panollava.views.layout",
    ]
