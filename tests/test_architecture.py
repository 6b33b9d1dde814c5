"""The shape of the code: imports run one way, only backends.py names an array library, the kernels know
no library at all, and nothing reaches into another module's private names."""

import ast

from helpers import ROOT

SRC = ROOT / "src" / "xpnet"
ARRAY_LIBRARIES = {"numpy", "cupy", "torch", "jax", "jaxlib", "array_api_strict", "dask", "ndonnx"}
#: The standard library's documented functions whose names begin with an underscore (``os._exit``: leave
#: without the interpreter's teardown, what an interrupted command does).
STDLIB_UNDERSCORED = {("os", "_exit")}


def _modules():
    return {p: ast.parse(p.read_text()) for p in sorted(SRC.rglob("*.py"))}


def _name(path):
    parts = path.relative_to(SRC.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path, tree):
    """Top-level names of every module ``path`` imports (relative imports resolved)."""
    package = _name(path) if path.name == "__init__.py" else _name(path).rpartition(".")[0]
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                module = ".".join(base + ([node.module] if node.module else []))
                found.add(module)
                if not node.module:  # from . import kernels
                    found |= {f"{module}.{alias.name}" for alias in node.names}
            else:
                found.add(node.module)
    return found


def test_xpnet_modules_import_one_way():
    """The graph of imports between xpnet's modules has no cycle (so no import has to hide in a function)."""
    modules = _modules()
    names = {_name(p) for p in modules}
    graph = {_name(p): {m for m in _imports(p, t) if m in names and m != _name(p)} for p, t in modules.items()}
    graph["xpnet"] = set()  # the package's __init__ only gathers names for users
    for name in graph:
        graph[name].discard("xpnet")
    state = {}

    def visit(node, trail):
        if state.get(node) == "done":
            return
        assert state.get(node) != "open", f"import cycle: {' -> '.join(trail + [node])}"
        state[node] = "open"
        for other in sorted(graph[node]):
            visit(other, trail + [node])
        state[node] = "done"

    for name in sorted(graph):
        visit(name, [])


def test_nothing_the_model_imports_imports_it_back():
    """What ``import xpnet.mlp`` pulls in (transitively, from mlp's own imports) never imports mlp."""
    modules = _modules()
    names = {_name(p) for p in modules}
    graph = {_name(p): {m for m in _imports(p, t) if m in names and m not in (_name(p), "xpnet")} for p, t in modules.items()}
    seen, todo = set(), list(graph["xpnet.mlp"])
    while todo:
        name = todo.pop()
        if name not in seen:
            seen.add(name)
            todo += graph[name]
    assert "xpnet.mlp" not in seen and {"xpnet.kernels", "xpnet.train", "xpnet.backends"} <= seen


def test_only_backends_names_an_array_library_and_the_kernels_none():
    """peers.py is the peers' own code (PyTorch's loop, JAX's vmap): it names their libraries, but only
    inside the learners, so that importing it imports none of them."""
    for path, tree in _modules().items():
        libraries = {m.split(".")[0] for m in _imports(path, tree)} & ARRAY_LIBRARIES
        if path.name in ("kernels.py", "functions.py"):
            assert not libraries, f"{path.name} imports {libraries}: kernels are written against xp only"
        elif path.name == "peers.py":
            top = {a.name.split(".")[0] for n in tree.body if isinstance(n, ast.Import) for a in n.names}
            top |= {n.module.split(".")[0] for n in tree.body if isinstance(n, ast.ImportFrom) and n.module and not n.level}
            assert top <= {"numpy", "__future__"}, f"peers.py imports {top} when imported"
        elif path.name != "backends.py":
            assert libraries <= {"numpy"}, f"{path.name} imports {libraries - {'numpy'}}; that belongs in backends.py"


def test_no_module_reads_another_modules_private_names():
    """``thing._name`` is allowed on ``self``/``cls`` and on this module's own names only (and on the
    peers' libraries in peers.py: ``torch._foreach_add_`` is PyTorch's public fused update); private
    names are imported only by sklearn.py from scikit-learn, the library it reproduces."""
    for path, tree in _modules().items():
        own = {n.name for n in tree.body if isinstance(n, (ast.FunctionDef, ast.ClassDef))}
        for node in ast.walk(tree):
            if isinstance(node, ast.Attribute) and node.attr.startswith("_") and not node.attr.startswith("__"):
                owner = node.value.id if isinstance(node.value, ast.Name) else None
                peer = path.name == "peers.py" and owner in ARRAY_LIBRARIES
                documented = (owner, node.attr) in STDLIB_UNDERSCORED
                assert owner in ("self", "cls") or owner in own or peer or documented, (
                    f"{path.name}:{node.lineno} reads {ast.unparse(node)}")
            if isinstance(node, ast.ImportFrom):
                private = [a.name for a in node.names if a.name.startswith("_")]
                # xpnet.sklearn reproduces scikit-learn: its own validation helpers are the reference
                reference = path.name == "sklearn.py" and (node.module or "").startswith("sklearn")
                assert not private or reference, f"{path.name}:{node.lineno} imports private names {private}"
