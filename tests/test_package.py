"""The package's public surface: every stage named in trtlab.STAGES exists, importing trtlab is cheap, and every
public module declares a sorted ``__all__`` that names what it defines."""

import importlib
import importlib.util
import subprocess
import sys

import pytest

import trtlab


def test_every_stage_module_imports():
    for stage in trtlab.STAGES:
        module = importlib.import_module(f"trtlab.{stage}")
        assert module.__doc__, f"trtlab.{stage} needs a docstring saying what the stage is for"


def test_exported_names_resolve():
    for name in trtlab.__all__:
        assert getattr(trtlab, name) is not None


def test_importing_trtlab_imports_no_heavy_dependency():
    code = ("import sys, trtlab, trtlab.check, trtlab.env, trtlab.errors; "
            "print(sorted(m for m in ('torch', 'tensorrt', 'tensorrt_rtx', 'cupy', 'onnxruntime') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def _imports_of_each_module() -> dict[str, set[str]]:
    """{module: the trtlab modules it imports}, read with ast: every import statement, also inside functions (a lazy
    import is still a dependency), except those under ``if TYPE_CHECKING:``."""
    import ast
    from pathlib import Path

    root = Path(trtlab.__file__).parent
    files = {".".join(("trtlab", *p.relative_to(root).with_suffix("").parts)).removesuffix(".__init__"): p
             for p in root.rglob("*.py")}

    def known(name: str) -> str:
        while name not in files:
            name = name.rpartition(".")[0]
        return name

    graph: dict[str, set[str]] = {}
    for name, path in files.items():
        tree = ast.parse(path.read_text())
        typing_only = {id(n) for node in ast.walk(tree) if isinstance(node, ast.If)
                       and "TYPE_CHECKING" in ast.unparse(node.test) for n in ast.walk(node)}
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        deps = set()
        for node in ast.walk(tree):
            if id(node) in typing_only:
                continue
            if isinstance(node, ast.Import):
                deps |= {known(a.name) for a in node.names if a.name.split(".")[0] == "trtlab"}
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    parts = package.split(".")[: len(package.split(".")) - node.level + 1]
                    base = ".".join([*parts, base] if base else parts)
                if base.split(".")[0] == "trtlab":
                    deps |= {f"{base}.{a.name}" if f"{base}.{a.name}" in files else known(base) for a in node.names}
        graph[name] = deps - {name}
    return graph


def _cycles(graph: dict[str, set[str]]) -> list[str]:
    """Every cycle a depth-first walk of ``graph`` closes, as "a → b → a"."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    cycles = []

    def visit(module: str, path: list[str]) -> None:
        state[module] = 1
        for dep in sorted(graph.get(module, ())):
            if state.get(dep) == 1:
                cycles.append(" → ".join([*path[path.index(dep):], module, dep]))
            elif dep not in state:
                visit(dep, [*path, module])
        state[module] = 2

    for module in sorted(graph):
        if module not in state:
            visit(module, [])
    return cycles


def test_cycle_finder_finds_cycles():
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a → b → c → a"]
    assert _cycles({"env": {"_compat"}, "_compat": {"env", "errors"}, "errors": set()}) == ["_compat → env → _compat"]
    assert _cycles({"a": {"b", "c"}, "b": {"c"}, "c": set()}) == []


def test_import_graph_has_no_cycle():
    """No trtlab module imports, directly or through others, a module that imports it back (issue 12)."""
    graph = _imports_of_each_module()
    assert graph["trtlab.engine"] and "trtlab._compat" in graph["trtlab.env"], "the import reader finds nothing"
    cycles = _cycles(graph)
    assert not cycles, "import cycles among trtlab modules:\n" + "\n".join(cycles)


def _public_modules() -> list[str]:
    """Every module of the package whose dotted path has no private part (``trtlab.kernels.plan``, not ``_ort``)."""
    import pathlib

    root = pathlib.Path(trtlab.__file__).parent
    names = []
    for path in sorted(root.rglob("*.py")):
        parts = path.relative_to(root.parent).with_suffix("").parts
        parts = parts[:-1] if parts[-1] == "__init__" else parts
        if not any(p.startswith("_") for p in parts) and not any(p.startswith(".") for p in path.parts):
            names.append(".".join(parts))
    return names


class _Parsed:
    """What the test needs of a module that cannot be imported here (it imports ``tensorrt`` or Triton's backend
    utilities at the top): its ``__all__`` literal and top-level definitions, read from the source."""

    def __init__(self, name: str) -> None:
        import ast

        spec = importlib.util.find_spec(name)
        tree = ast.parse(open(spec.origin).read())
        self.__name__ = name
        self.definitions = [n.name for n in tree.body if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef,
                                                                         ast.ClassDef))]
        assigned = [n for n in tree.body if isinstance(n, ast.Assign) for t in n.targets if isinstance(t, ast.Name)]
        self.names = {t.id for n in assigned for t in n.targets if isinstance(t, ast.Name)}
        self.names |= {a.asname or a.name for n in tree.body if isinstance(n, (ast.Import, ast.ImportFrom))
                       for a in n.names}
        for node in assigned:
            if any(isinstance(t, ast.Name) and t.id == "__all__" for t in node.targets):
                self.__all__ = ast.literal_eval(node.value)


def _load(name: str):
    """The module, or its parsed source when a dependency outside trtlab is missing here."""
    try:
        return importlib.import_module(name)
    except ModuleNotFoundError as err:
        if (err.name or "").startswith("trtlab"):
            raise
        return _Parsed(name)


def _defined_here(module) -> list[str]:
    """Public functions and classes defined in ``module`` itself (not imported into it)."""
    import inspect

    if isinstance(module, _Parsed):
        return sorted(n for n in module.definitions if not n.startswith("_"))
    return sorted(name for name, obj in vars(module).items()
                  if not name.startswith("_") and (inspect.isfunction(obj) or inspect.isclass(obj))
                  and getattr(obj, "__module__", None) == module.__name__)


@pytest.mark.parametrize("name", _public_modules())
def test_all_is_sorted_and_names_every_public_definition(name):
    """As httpx checks its own: ``__all__`` exists, is sorted, resolves, and lists every public function and class the
    module defines (re-exports and constants may be listed too; a private helper may not be)."""
    module = _load(name)
    exported = getattr(module, "__all__", None)
    assert exported is not None, f"{name} has no __all__"
    assert list(exported) == sorted(exported), f"{name}.__all__ is not sorted: sorted(...) gives {sorted(exported)}"
    defined = _defined_here(module)
    known = module.names | set(defined) if isinstance(module, _Parsed) else set(dir(module))
    missing = [n for n in exported if n not in known and not hasattr(module, n)]
    assert not missing, f"{name}.__all__ lists names it does not have: {missing}"
    assert [n for n in exported if n in defined] == defined, (
        f"{name}.__all__ misses public definitions {sorted(set(defined) - set(exported))}")
    assert not [n for n in exported if n.startswith("_") and n != "__version__"], f"{name}.__all__ exports privates"
