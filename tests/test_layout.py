"""The house rules: data flows one way through the package, HSModel knows no head, and only the
heads compute next words."""

from __future__ import annotations

import ast
from pathlib import Path

import spacy_hs

PACKAGE = Path(spacy_hs.__file__).parent
# Stages, earliest first: a module may import only from its own stage or earlier ones.
STAGES = [
    {"errors", "registry", "util", "progress", "orth_table", "dask_cluster"},
    {"corpus"},
    {"tree", "_tree_search", "heads", "validation", "cache", "document"},
    {"hs_vocab", "hs_gensim", "hs_format", "hs_model"},
    {"training", "evaluation"},
    {"pipeline"},
    {"view"},
    {"scoring"},
    {"cli", "__init__", "__main__"},
]


def _modules() -> dict[str, Path]:
    modules = {}
    for path in PACKAGE.rglob("*.py"):
        parts = list(path.relative_to(PACKAGE).with_suffix("").parts)
        if parts[-1] == "__init__" and len(parts) > 1:
            parts = parts[:-1]
        modules[".".join(parts)] = path
    return modules


def _imports(name: str, path: Path) -> set[str]:
    """Modules of the package that ``name`` imports, function-level imports included and
    ``if TYPE_CHECKING:`` blocks left out."""
    tree = ast.parse(path.read_text(encoding="utf8"))
    skipped = {
        id(sub)
        for node in ast.walk(tree)
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test)
        for stmt in node.body
        for sub in ast.walk(stmt)
    }
    package = name.split(".")[:-1] if path.name != "__init__.py" else name.split(".")
    found = set()
    for node in ast.walk(tree):
        if id(node) in skipped or not isinstance(node, ast.ImportFrom):
            continue
        if node.level:
            base = package[: len(package) - node.level + 1]
            target = ".".join(base + ([node.module] if node.module else []))
            found.add(target)
            found.update(f"{target}.{alias.name}".strip(".") for alias in node.names)
        elif node.module and node.module.startswith("spacy_hs"):
            found.add(node.module.removeprefix("spacy_hs").strip("."))
    return found


def _stage(module: str) -> int:
    top = module.split(".")[0] or "__init__"
    return next(i for i, stage in enumerate(STAGES) if top in stage)


def test_no_module_imports_from_a_later_stage_and_there_is_no_cycle() -> None:
    modules = _modules()
    graph = {
        name: {m for m in _imports(name, path) if m in modules and m != name}
        for name, path in modules.items()
    }
    for name, targets in graph.items():
        for target in targets:
            assert _stage(target) <= _stage(name), f"{name} imports the later {target}"
    state: dict[str, int] = {}

    def visit(node: str, trail: list[str]) -> None:
        state[node] = 1
        for target in graph[node]:
            assert state.get(target) != 1, "import cycle: " + " -> ".join([*trail, target])
            if target not in state:
                visit(target, [*trail, target])
        state[node] = 2

    for name in graph:
        if name not in state:
            visit(name, [name])


# The HS model's modules: its vocabulary and arrays, the gensim conversion, the file format and
# the query facade.
HS_MODEL_FAMILY = ("hs_vocab", "hs_gensim", "hs_format", "hs_model")


def _family() -> dict[str, ast.Module]:
    modules = _modules()
    assert set(HS_MODEL_FAMILY) <= set(modules)
    return {name: ast.parse(modules[name].read_text(encoding="utf8")) for name in HS_MODEL_FAMILY}


def test_hs_model_names_no_head_class() -> None:
    for name, tree in _family().items():
        names = {node.id for node in ast.walk(tree) if isinstance(node, ast.Name)}
        names |= {
            alias.name
            for node in ast.walk(tree)
            if isinstance(node, ast.ImportFrom)
            for alias in node.names
        }
        assert not {"DirectionalHead", "CBOWHead", "NgramHead"} & names, name
        head_imports = {
            node.module
            for node in ast.walk(tree)
            if isinstance(node, ast.ImportFrom) and "heads" in (node.module or "")
        }
        assert head_imports <= {"heads.protocol", "heads.base"}, name  # protocol and helpers


def test_the_hs_model_asks_the_heads() -> None:
    """No module of the HS model computes a hidden vector or ``hidden . W``: no matrix product,
    no compiled kernel, no hidden-level query; the heads (heads/) do."""
    for name, tree in _family().items():
        products = [node for node in ast.walk(tree) if isinstance(node, ast.MatMult)]
        assert not products, f"{name} multiplies matrices"
        calls = {
            node.func.id if isinstance(node.func, ast.Name) else getattr(node.func, "attr", "")
            for node in ast.walk(tree)
            if isinstance(node, ast.Call)
        }
        assert not {"dot", "matmul", "einsum", "tensordot"} & calls, name
        imported = {
            alias.name
            for node in ast.walk(tree)
            if isinstance(node, ast.ImportFrom)
            for alias in node.names
        }
        imported |= {
            node.module or "" for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)
        }
        kernels = {"_tree_search", "_hidden", "_path_scores", "_search", "_head_train"}
        assert not kernels & imported, f"{name} calls a kernel"
        attributes = {node.attr for node in ast.walk(tree) if isinstance(node, ast.Attribute)}
        assert not attributes & HIDDEN_LEVEL, f"{name} computes next words itself"
        assert not {"hidden", "hidden_batch"} & attributes, f"{name} asks for hidden vectors"


def test_the_hs_model_is_split_into_rooms_of_at_most_600_lines() -> None:
    modules = _modules()
    for name in (*HS_MODEL_FAMILY, "heads.cbow"):
        assert len(modules[name].read_text(encoding="utf8").splitlines()) <= 600, name


# Consumers of the next-word heads: they ask a head (log_prob, top_k, log_probabilities) or
# HSModel's next-word API, and take head names from the model.
CONSUMERS = ("pipeline", "evaluation", "view", "scoring", "cli")
HIDDEN_LEVEL = {
    "hidden_from_ids",
    "hidden_from_matrix",
    "log_prob_from_matrix",
    "output_weights",
    "top_k_hidden",
    "log_prob_hidden",
    "log_probabilities_hidden",
}
HEAD_NAMES = {"cbow", "directional", "ngram", "recurrent"}


def test_consumers_ask_the_heads_and_name_none() -> None:
    for name, path in _modules().items():
        if name.split(".")[0] not in CONSUMERS:
            continue
        tree = ast.parse(path.read_text(encoding="utf8"))
        attributes = {node.attr for node in ast.walk(tree) if isinstance(node, ast.Attribute)}
        assert not attributes & HIDDEN_LEVEL, f"{name} computes next words itself"
        constants = {
            node.value
            for node in ast.walk(tree)
            if isinstance(node, ast.Constant) and isinstance(node.value, str)
        }
        assert not constants & HEAD_NAMES, f"{name} names a head: {constants & HEAD_NAMES}"


# The stream's math, which the core (``document.Documents``) owns.
STREAM_MATH = {
    "mix_log_probs",
    "cache_counts",
    "window_distribution",
    "mix_top_k",
    "cached_top_k",
    "stream_contexts",
    "contexts_between",
}


def test_the_component_and_evaluation_ask_the_core() -> None:
    """The pipeline and the next-word metrics read the stream through ``Documents``: none of
    them counts a cache, mixes it or cuts contexts itself; the component stays thin."""
    component = PACKAGE / "pipeline" / "component.py"
    assert len(component.read_text(encoding="utf8").splitlines()) <= 300
    for name, path in _modules().items():
        if name.split(".")[0] not in {"pipeline", "view"} and name != "evaluation.next_word":
            continue
        tree = ast.parse(path.read_text(encoding="utf8"))
        names = {node.id for node in ast.walk(tree) if isinstance(node, ast.Name)}
        names |= {node.attr for node in ast.walk(tree) if isinstance(node, ast.Attribute)}
        assert not names & STREAM_MATH, f"{name} does the stream's math itself"
