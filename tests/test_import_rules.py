"""The import rules of ../shared/DESIGN.md, read from the source with ast (no import is run).

Every `import` and `from ... import` under spotrt/ counts, at module level or inside a function
(a lazy import still runs when its command does). A module's room is its subpackage (spotrt/runtime/
-> runtime) or, for a module at the top, the module itself; errors, fileio, options, imageops,
postprocess, runner (the backends' interface) and draw are the ground every room stands on ("base"). Rules:

- a room imports only the rooms ALLOWED lists (the runtime takes from model/ only its torch-free
  config);
- DESIGN.md's: runtime/ never reaches torch, model/ and data/ never reach tensorrt or CUDA, export/
  never reaches runtime/ -- "reaches" following every import, transitively;
- what a runtime install runs (runtime, eval, calibration, formats, plugins, base) never reaches torch;
- no cycles between rooms.
"""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "spotrt"
BASE = {"errors", "fileio", "options", "imageops", "postprocess", "draw", "runner", "__init__"}
ALLOWED = {
    "base": {"base"},
    "formats": {"base"},
    "plugins": {"base", "formats"},
    "model": {"base", "formats"},
    "data": {"base", "formats", "model"},  # data.charset: the model config's default charset
    "eval": {"base", "formats", "data"},
    "calibration": {"base", "formats", "plugins"},
    "export": {"base", "formats", "plugins", "model", "calibration"},
    "runtime": {"base", "formats", "plugins", "model"},  # model: only model.config (RUNTIME_FROM_MODEL)
    "train": {"base", "formats", "model", "data", "eval"},
    "api": {"base", "formats", "model", "eval", "export", "runtime"},
    "demo": {"base", "formats", "api", "data", "runtime"},
    "bench": {"base", "formats", "plugins", "model", "data", "eval", "export", "calibration", "runtime", "api"},
    "serve": {"base", "formats", "runtime", "api"},  # a Triton model around what api.load_spotter loads
    "cli": set(),  # the top: may import every room (checked: nothing imports it)
}
RUNTIME_FROM_MODEL = {"spotrt.model", "spotrt.model.config"}
TORCH_FREE = ("runtime", "eval", "calibration", "formats", "plugins", "base")
NO_TENSORRT = ("model", "data", "formats", "base")


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _exists(name: str) -> bool:
    rel = Path(*name.split("."))
    return (PACKAGE.parent / rel).with_suffix(".py").is_file() or (PACKAGE.parent / rel / "__init__.py").is_file()


def _imports(path: Path) -> tuple[set[str], set[str]]:
    """(spotrt modules, other top-level modules) that the file at `path` imports anywhere in it."""
    name = _module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    inner, outer = set(), set()

    def add(target: str) -> None:
        if target.split(".")[0] != "spotrt":
            outer.add(target)
            return
        parts = target.split(".")
        for i in range(2, len(parts) + 1):  # importing a.b.c runs a/b/__init__.py too
            if _exists(".".join(parts[:i])):
                inner.add(".".join(parts[:i]))

    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                add(alias.name)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module
            add(module)
            for alias in node.names:  # `from . import nvrtc`: a module, not a name
                if _exists(f"{module}.{alias.name}"):
                    add(f"{module}.{alias.name}")
                if module == "safetensors" and alias.name == "torch":
                    outer.add("safetensors.torch")
    inner.discard(name)
    return inner, outer


GRAPH = {_module_name(p): _imports(p) for p in sorted(PACKAGE.rglob("*.py"))}


def room(module: str) -> str:
    parts = module.split(".")
    if len(parts) == 1:
        return "base"  # spotrt/__init__.py
    if (PACKAGE / parts[1] / "__init__.py").is_file():
        return parts[1]
    return "base" if parts[1] in BASE else parts[1]


def reaches(module: str) -> tuple[set[str], set[str]]:
    """(spotrt modules, outside modules) that importing `module` can run, transitively."""
    seen, outside, todo = set(), set(), [module]
    while todo:
        m = todo.pop()
        if m in seen:
            continue
        seen.add(m)
        inner, outer = GRAPH.get(m, (set(), set()))
        outside |= outer
        todo.extend(inner)
    return seen, outside


def _path_to(start: str, wanted) -> list[str]:
    """One import chain from `start` to a module for which wanted(spotrt module or outside name) holds."""
    parent, todo = {start: None}, [start]
    while todo:
        m = todo.pop(0)
        inner, outer = GRAPH.get(m, (set(), set()))
        hit = next((o for o in sorted(outer) if wanted(o)), None)
        if hit is not None or wanted(m):
            chain = [hit] if hit else []
            while m is not None:
                chain.insert(0, m)
                m = parent[m]
            return chain
        for n in sorted(inner):
            if n not in parent:
                parent[n] = m
                todo.append(n)
    return []


def test_the_walk_sees_the_package():
    assert room("spotrt.runtime.stream") == "runtime" and room("spotrt.options") == "base"
    assert room("spotrt.api") == "api" and room("spotrt.formats") == "formats"
    assert "spotrt.options" in GRAPH["spotrt.runtime.stream"][0]
    assert "torch" in reaches("spotrt.model.infer")[1]  # the walk does find torch where it is


def test_rooms_import_only_what_they_may():
    bad = []
    for module, (inner, _) in GRAPH.items():
        r = room(module)
        allowed = ALLOWED[r] | {r}
        for target in inner:
            t = room(target)
            runtime_from_model = r == "runtime" and t == "model" and target not in RUNTIME_FROM_MODEL
            if r == "cli" or t in allowed and not runtime_from_model:
                continue
            bad.append(f"{module} ({r}) imports {target} ({t})")
    assert not bad, "\n".join(sorted(bad))


@pytest.mark.parametrize("rooms,forbidden,what", [
    (TORCH_FREE, lambda m: m.split(".")[0] == "torch" or m == "safetensors.torch", "torch"),
    (NO_TENSORRT, lambda m: m.split(".")[0] in ("tensorrt", "cuda", "cupy", "pycuda"), "tensorrt or CUDA"),
    (("export",), lambda m: m.startswith("spotrt.runtime"), "spotrt.runtime"),
])
def test_rooms_never_reach(rooms, forbidden, what):
    bad = []
    for module in GRAPH:
        if room(module) in rooms:
            chain = _path_to(module, forbidden)
            if chain:
                bad.append(" -> ".join(chain))
    assert not bad, f"these reach {what}:\n" + "\n".join(bad)


def test_no_cycles_between_rooms():
    edges: dict[str, set[str]] = {}
    for module, (inner, _) in GRAPH.items():
        edges.setdefault(room(module), set()).update(room(t) for t in inner if room(t) != room(module))
    state: dict[str, int] = {}

    def visit(node, stack):
        state[node] = 1
        for nxt in sorted(edges.get(node, ())):
            if state.get(nxt) == 1:
                raise AssertionError("rooms import each other: " + " -> ".join(stack[stack.index(nxt):] + [nxt]))
            if nxt not in state:
                visit(nxt, stack + [nxt])
        state[node] = 2

    for node in sorted(edges):
        if node not in state:
            visit(node, [node])


def test_no_cycles_between_modules():
    """No module imports one that imports it back, at any depth (a module running its package's
    __init__ aside: that is Python's order, not a cycle of ours)."""
    edges = {m: {t for t in inner if not m.startswith(t + ".")} for m, (inner, _) in GRAPH.items()}
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    cycles = []

    def strongconnect(v: str) -> None:  # Tarjan's strongly connected components
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in sorted(edges.get(v, ())):
            if w not in index:
                strongconnect(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))

    for v in sorted(edges):
        if v not in index:
            strongconnect(v)
    assert not cycles, f"modules that import each other: {cycles}"


def test_tensorrt_is_imported_at_module_level_only_by_the_plugin_classes():
    """Importing the TensorRT backend or `spotrt build` must not need tensorrt: they import it when
    used (and say so in one line when it is absent); only the plugin classes subclass its types."""
    bad = []
    for path in sorted(PACKAGE.rglob("*.py")):
        module = _module_name(path)
        for node in ast.parse(path.read_text(encoding="utf-8")).body:  # module level only
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else \
                [node.module or ""] if isinstance(node, ast.ImportFrom) and not node.level else []
            if any(n.split(".")[0] == "tensorrt" for n in names) and not (
                    module.startswith("spotrt.plugins.") and module.rsplit(".", 1)[-1] in ("trt", "trt_base")):
                bad.append(module)
    assert not bad, bad
