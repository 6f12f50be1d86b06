"""The package's shape: no import cycle, one owner of the core network (the engine), one formula
for the batch count, and bindings that only bind.

Read from the installed package's sources with ``ast``: every ``import`` counts,
module-level or inside a function, except those under ``if TYPE_CHECKING:`` (type
annotations only; they never run).
"""

import ast
import re
from pathlib import Path

import pydfn

PACKAGE = Path(pydfn.__file__).parent


def modules():
    return {path.stem if path.stem != "__init__" else "pydfn": path for path in sorted(PACKAGE.glob("*.py"))}


def _is_type_checking(node):
    return isinstance(node, ast.If) and isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING"


def imports_of(path, known):
    """The package's modules that ``path`` imports at run time."""
    found = set()

    def visit(node):
        if _is_type_checking(node):
            return
        if isinstance(node, ast.ImportFrom) and node.level == 1:  # from . import x / from .x import y
            if node.module:
                found.add(node.module.split(".")[0])
            else:
                found.update(alias.name for alias in node.names if alias.name in known)
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("pydfn"):
            parts = node.module.split(".")
            found.add(parts[1] if len(parts) > 1 else "pydfn")
        elif isinstance(node, ast.Import):
            found.update(a.name.split(".")[1] for a in node.names if a.name.startswith("pydfn."))
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(ast.parse(path.read_text()))
    return {m for m in found if m in known}


def import_graph():
    mods = modules()
    return {name: imports_of(path, mods) for name, path in mods.items()}


def find_cycle(graph):
    """One import cycle as a list of modules, or None."""
    state = {}  # 1: on the current path, 2: done

    def dfs(node, path):
        state[node] = 1
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                return path[path.index(nxt):] + [nxt]
            if nxt not in state:
                cycle = dfs(nxt, path + [nxt])
                if cycle:
                    return cycle
        state[node] = 2
        return None

    for start in sorted(graph):
        if start not in state:
            cycle = dfs(start, [start])
            if cycle:
                return cycle
    return None


def test_the_package_has_no_import_cycle():
    graph = import_graph()
    assert {"model", "_engine", "training", "checkpoint", "callbacks", "history"} <= set(graph)
    graph.pop("pydfn")  # __init__ imports the package's modules; none imports it back (checked below)
    assert all("pydfn" not in deps for deps in graph.values())
    assert find_cycle(graph) is None, f"import cycle: {' -> '.join(find_cycle(graph))}"


def test_the_cycle_finder_finds_cycles():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


def test_type_checking_imports_do_not_count(tmp_path):
    source = tmp_path / "m.py"
    source.write_text("from typing import TYPE_CHECKING\nfrom . import a\nif TYPE_CHECKING:\n    from .b import B\n"
                      "def f():\n    from .c import C\n")
    assert imports_of(source, {"a", "b", "c"}) == {"a", "c"}


def test_only_the_engine_touches_the_core_network():
    for name, path in modules().items():
        tree = ast.parse(path.read_text())
        names = {n.attr for n in ast.walk(tree) if isinstance(n, ast.Attribute)}
        if name != "_engine":
            assert "Network" not in names and "_net" not in names, name
        # no module reaches into another object's private attributes: only self._x, cls._x
        for node in ast.walk(tree):
            if isinstance(node, ast.Attribute) and node.attr.startswith("_") and not node.attr.startswith("__"):
                owner = node.value
                ok = (isinstance(owner, ast.Name) and owner.id in ("self", "cls", "_core", "_data", "MLP")
                      or isinstance(owner, ast.Call))  # super()._x
                assert ok, f"{name}.py line {node.lineno}: .{node.attr} of {ast.unparse(owner)}"


def _divisions_by_batch_size(tree):
    """(line, enclosing function) of each ``... / batch_size`` or ``... // batch_size`` in ``tree``."""
    found = []

    def visit(node, function):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            function = node.name
        if isinstance(node, ast.BinOp) and isinstance(node.op, (ast.Div, ast.FloorDiv)):
            right = node.right
            name = right.id if isinstance(right, ast.Name) else right.attr if isinstance(right, ast.Attribute) else None
            if name == "batch_size":
                found.append((node.lineno, function))
        for child in ast.iter_child_nodes(node):
            visit(child, function)

    visit(tree, None)
    return found


def test_one_formula_counts_the_batches_of_an_epoch():
    # Python: _engine.batches_per_epoch; C++: mlp.cpp's batch_count. Every other caller asks them.
    places = [(name, line, fn) for name, path in modules().items()
              for line, fn in _divisions_by_batch_size(ast.parse(path.read_text()))]
    assert [(name, fn) for name, _, fn in places] == [("_engine", "batches_per_epoch")], places
    assert _divisions_by_batch_size(ast.parse("n = -(-rows // self.batch_size)\n")) == [(1, None)]
    core = Path(__file__).resolve().parents[1] / "csrc"
    code = {p.name: re.sub(r"//.*", "", p.read_text()) for p in core.rglob("*.[ch]pp")}  # comments out
    counts = {name: len(re.findall(r"/\s*batch_size\b", text)) for name, text in code.items()}
    assert {name: n for name, n in counts.items() if n} == {"mlp.cpp": 1}


def test_the_bindings_only_bind():
    # Rules live in the core (design: two front ends, one core): the bindings throw nothing
    # themselves (the core's check() does) and parse no names into enums.
    csrc = Path(__file__).resolve().parents[1] / "csrc"
    for path in (csrc / "bindings.cpp", csrc / "bindings_testing.cpp"):
        text = path.read_text()
        assert "throw " not in text, f"{path.name} throws: move the rule into the core"
        assert not re.search(r'if \(\w+ == "\w+"\) return', text), f"{path.name} parses a name: the core does"
        assert "std::shared_mutex>" not in text.replace("std::unique_lock<std::shared_mutex>", "").replace(
            "std::shared_lock<std::shared_mutex>", ""), f"{path.name} owns a lock: the core's Model does"
