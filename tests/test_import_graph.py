"""The package's layers, read from its imports (function-local and TYPE_CHECKING ones included).

A *room* is a top-level module or package of ``terratorch_specmae`` (``models``, ``masking``,
``layers``, ``weights`` …). The bottom layer imports nothing above it; masking and models do not
import each other's internals; models never import the weights layer above them; and no two
rooms import each other through any chain.
"""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "terratorch_specmae"
BOTTOM = {"bands", "validity", "variants", "atomic"}  # leaves: import no other room, or only each other


def room_of(module: str, package: str = "terratorch_specmae") -> str | None:
    parts = module.split(".")
    return parts[1] if parts[0] == package and len(parts) > 1 else None


def imports(root: Path = PACKAGE) -> dict[str, dict[str, set[str]]]:
    """room → imported room → the files (relative) that import it."""
    graph: dict[str, dict[str, set[str]]] = {}
    for path in sorted(root.rglob("*.py")):
        rel = path.relative_to(root)
        room = rel.parts[0].removesuffix(".py")
        if room == "__init__":
            continue  # the package's own __init__ re-exports for users; not a room
        for node in ast.walk(ast.parse(path.read_text())):
            names = []
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
            elif isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            for name in names[:1] if isinstance(node, ast.ImportFrom) else names:
                target = room_of(name, root.name)
                if target and target != room:
                    graph.setdefault(room, {}).setdefault(target, set()).add(str(rel))
    return graph


def cycles(graph: dict[str, dict[str, set[str]]]) -> list[list[str]]:
    """Every elementary circle between rooms (each once, starting at its smallest room)."""
    found = []

    def walk(start: str, node: str, path: list[str]) -> None:
        for nxt in sorted(graph.get(node, {})):
            if nxt == start:
                found.append(path[:])
            elif nxt > start and nxt not in path:
                walk(start, nxt, path + [nxt])

    for start in sorted(graph):
        walk(start, start, [start])
    return found


def test_the_bottom_layer_imports_nothing_above_it():
    graph = imports()
    for room in ("layers", *BOTTOM):
        above = {t: sorted(f) for t, f in graph.get(room, {}).items() if t not in BOTTOM}
        assert not above, f"{room} imports {above}"


def test_masking_and_models_share_the_bottom_layer_not_each_others_internals():
    graph = imports()
    assert "models" not in graph.get("masking", {}), graph["masking"].get("models")
    assert "masking" not in graph.get("layers", {}) and "models" not in graph.get("layers", {})


def test_the_graph_reader_sees_function_local_imports(tmp_path):
    package = tmp_path / "pkg"
    (package / "sub").mkdir(parents=True)
    (package / "a.py").write_text("import pkg.b\n")
    (package / "b.py").write_text("def f():\n    from pkg.sub.c import g\n    return g\n")
    (package / "sub" / "c.py").write_text("def g():\n    import pkg.a\n")
    graph = imports(package)
    assert graph == {"a": {"b": {"a.py"}}, "b": {"sub": {"b.py"}}, "sub": {"a": {"sub/c.py"}}}
    assert cycles(graph) == [["a", "b", "sub"]]


def test_models_never_import_the_weights_layer():
    graph = imports()
    assert "weights" not in graph.get("models", {}), graph["models"]["weights"]
    assert "models" in graph["weights"]  # it sits above them


def test_no_circle_between_rooms():
    found = cycles(imports())
    assert not found, f"{len(found)} circles: " + "; ".join(" → ".join(c + [c[0]]) for c in found)


def test_nothing_imports_the_integrations():
    """``integrations/`` (adapters to other harnesses) sits on top: it imports the package, nothing imports it."""
    graph = imports()
    importers = {room: sorted(targets["integrations"]) for room, targets in graph.items() if "integrations" in targets}
    assert not importers, importers
    assert "backbones" in graph["integrations"]  # it builds through the registrations


OPTIONAL = ("torchgeo_bench",)  # harnesses only some installs have (torchgeo-bench needs Python >= 3.12)


def test_optional_harnesses_are_imported_only_inside_functions():
    """``import terratorch_specmae.integrations.torchgeo_bench`` works without torchgeo-bench."""
    for path in sorted(PACKAGE.rglob("*.py")):
        for node in ast.parse(path.read_text()).body:  # module level only
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else []
            names += [node.module] if isinstance(node, ast.ImportFrom) and node.module else []
            assert not [n for n in names if n.split(".")[0] in OPTIONAL], f"{path.relative_to(PACKAGE)} imports {names}"
