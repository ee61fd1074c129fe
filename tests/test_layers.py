"""The package's layers (docs/ARCHITECTURE.md) hold: every import, function-local ones
included, goes to the same layer or down, and no import cycle exists between modules; every
function-local import says why it is not at the top (a comment)."""

from __future__ import annotations

import ast
from pathlib import Path

from helpers import REPO

#: layer of each module (the longest matching prefix wins); imports may only go to a lower or the same layer
LAYERS = {
    "renas.errors": 0, "renas.config": 0, "renas.schema": 0,
    "renas.tracking": 1, "renas.space": 1, "renas.data": 1,
    "renas.build": 2,  # instantiate by _target_ with one-line errors: names upper layers only as strings
    "renas.train": 3,
    "renas.evaluate": 4,
    "renas.search": 5,
    # drivers: one composed config -> a run
    "renas.search.run": 6, "renas.search.resume": 6, "renas.train.final": 6, "renas.benchmark": 6,
    # entry points
    "renas.benchmark.__main__": 7, "renas.cli": 7, "renas.main": 7, "renas.compare": 7, "renas.tools": 7,
    "renas": 7,
}


def layer(module: str) -> int:
    parts = module.split(".")
    for end in range(len(parts), 0, -1):
        if ".".join(parts[:end]) in LAYERS:
            return LAYERS[".".join(parts[:end])]
    raise AssertionError(f"{module} has no layer in LAYERS")


def imports() -> dict[str, set[str]]:
    """Module -> the renas modules it imports (at the top or inside functions)."""
    files = {}
    for path in sorted((REPO / "renas").rglob("*.py")):
        parts = path.relative_to(REPO).with_suffix("").parts
        files[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    graph: dict[str, set[str]] = {}
    for module, path in files.items():
        targets: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "renas":
                # `from renas.train import module` imports the submodule renas.train.module
                for alias in node.names:
                    sub = f"{node.module}.{alias.name}"
                    targets.add(sub if sub in files else node.module)
            elif isinstance(node, ast.Import):
                targets |= {a.name for a in node.names if a.name.split(".")[0] == "renas"}
        graph[module] = targets - {module}
    return graph


def test_imports_go_down_the_layers():
    upward = [f"{m} (layer {layer(m)}) imports {t} (layer {layer(t)})"
              for m, targets in imports().items() for t in sorted(targets) if layer(t) > layer(m)]
    assert not upward, "\n".join(upward)


def test_no_import_cycle():
    graph = imports()
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    cycles: list[list[str]] = []

    def visit(m: str, path: list[str]) -> None:
        state[m] = 1
        for t in sorted(graph.get(m, ())):
            if state.get(t) == 1:
                cycles.append(path[path.index(t):] + [t] if t in path else [m, t])
            elif t not in state:
                visit(t, path + [t])
        state[m] = 2

    for m in sorted(graph):
        if m not in state:
            visit(m, [m])
    assert not cycles, cycles


def test_the_layer_table_knows_every_module():
    for module in imports():
        layer(module)
    assert Path(REPO / "docs" / "ARCHITECTURE.md").read_text().count("renas/build.py") >= 1


def _statement_lists_of(node: ast.AST, in_function: bool):
    """``(statements, inside a function)`` for every statement list in ``node`` and under it."""
    in_function = in_function or isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))
    for field in ("body", "orelse", "finalbody"):
        stmts = getattr(node, field, None)
        if isinstance(stmts, list) and stmts and isinstance(stmts[0], ast.stmt):
            yield stmts, in_function
    for child in ast.iter_child_nodes(node):
        yield from _statement_lists_of(child, in_function)


def test_function_local_imports_say_why():
    """Function-local imports only keep a heavy import off a fast path, an optional dependency
    off the import, or the like, and say so: a comment on the import's line or on the line
    directly above it (one comment above the first of consecutive imports covers them all)."""
    silent = []
    for path in sorted((REPO / "renas").rglob("*.py")):
        lines = path.read_text().splitlines()
        tree = ast.parse("\n".join(lines), str(path))

        def above(stmt: ast.stmt) -> bool:
            return stmt.lineno > 1 and lines[stmt.lineno - 2].lstrip().startswith("#")

        def on_line(stmt: ast.stmt) -> bool:  # an import statement holds no string: any # starts a comment
            return any("#" in line for line in lines[stmt.lineno - 1:stmt.end_lineno])

        for stmts, in_function in _statement_lists_of(tree, False):
            if not in_function:
                continue
            block_covered = False
            for i, stmt in enumerate(stmts):
                if not isinstance(stmt, (ast.Import, ast.ImportFrom)):
                    block_covered = False
                    continue
                if i == 0 or not isinstance(stmts[i - 1], (ast.Import, ast.ImportFrom)):
                    block_covered = above(stmt)  # the first of a block
                if not (block_covered or above(stmt) or on_line(stmt)):
                    silent.append(f"{path.relative_to(REPO)}:{stmt.lineno}: {lines[stmt.lineno - 1].strip()}")
    assert not silent, "function-local imports without a comment saying why (move them to the top, or say why not):\n" + "\n".join(silent)


def test_every_module_says_what_it_is_for():
    """Each module opens with a docstring (its first line: what the module is for)."""
    missing = [str(p.relative_to(REPO)) for p in sorted((REPO / "renas").rglob("*.py"))
               if not (ast.get_docstring(ast.parse(p.read_text())) or "").strip()]
    assert not missing, missing
