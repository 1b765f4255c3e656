"""The package's layers: no import runs upward, no two modules import each other (directly or
through a cycle), the two models never import each other. Imports inside functions count."""
import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "src_new"
# Lowest first; a module may import its own layer or any layer below it (README, Layout).
LAYERS = ["utils", "datasets", "evaluation", "pipeline", "models", "scripts"]


def module_name(path):
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports_of(path):
    """Every src_new module imported by ``path`` (absolute or relative, at any depth)."""
    name = module_name(path)
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.startswith("src_new")}
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if target.startswith("src_new"):
                found.add(target)
                found |= {f"{target}.{a.name}" for a in node.names}   # `from pkg import module`
    return found


def graph():
    modules = {module_name(p): p for p in PACKAGE.rglob("*.py")}
    return {name: {m for m in imports_of(path) if m in modules and m != name} for name, path in modules.items()}


def layer(module):
    parts = module.split(".")
    return LAYERS.index(parts[1]) if len(parts) > 1 and parts[1] in LAYERS else None


def test_no_import_runs_up_the_layers():
    upward = [f"{a} imports {b}" for a, targets in graph().items() for b in targets
              if layer(a) is not None and layer(b) is not None and layer(b) > layer(a)]
    assert not upward, "imports that run up the layers " + str(LAYERS) + ":\n" + "\n".join(sorted(upward))


def test_the_models_never_import_each_other():
    crossing = [f"{a} imports {b}" for a, targets in graph().items() for b in targets
                if a.startswith("src_new.models.") and b.startswith("src_new.models.")
                and len(a.split(".")) > 3 and len(b.split(".")) > 3 and a.split(".")[2] != b.split(".")[2]]
    assert not crossing, "\n".join(crossing)


def test_no_import_cycles():
    edges = {a: {b for b in targets if not a.startswith(b + ".")}   # a package's own __init__ is not a cycle
             for a, targets in graph().items()}
    state, cycles = {}, []

    def visit(node, stack):
        state[node] = "open"
        for nxt in sorted(edges.get(node, ())):
            if state.get(nxt) == "open":
                cycles.append(" -> ".join(stack[stack.index(nxt):] + [nxt]))
            elif nxt not in state:
                visit(nxt, stack + [nxt])
        state[node] = "done"

    for node in sorted(edges):
        if node not in state:
            visit(node, [node])
    assert not cycles, "import cycles:\n" + "\n".join(cycles)


def test_the_checker_sees_an_upward_and_a_cyclic_import(tmp_path, monkeypatch):
    """The walk resolves relative imports inside functions (what the tests above rely on)."""
    pkg = tmp_path / "src_new"
    (pkg / "utils").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "utils" / "__init__.py").write_text("")
    (pkg / "utils" / "a.py").write_text("def f():\n    from ..pipeline.config import X\n")
    (pkg / "utils" / "b.py").write_text("from .a import f\n")
    monkeypatch.setattr(__import__(__name__), "ROOT", tmp_path)
    assert imports_of(pkg / "utils" / "a.py") == {"src_new.pipeline.config", "src_new.pipeline.config.X"}
    assert "src_new.utils.a" in imports_of(pkg / "utils" / "b.py")
