"""Derive the code dependencies of every DVC stage from what its ``kedro run`` imports.

Each stage in ``dvc.yaml`` runs ``kedro run --pipelines=X [--namespaces=Y]``. Such a run imports
the project's CLI (Kedro merges ``fashiongan.cli`` into its own), the settings (and with them the
hooks), the pipeline registry, the package ``fashiongan.pipelines.X`` (Kedro 1.7 imports only the
pipelines asked for) and the dataset classes that the catalog names. The stage's code
dependencies are the ``fashiongan`` modules those import, transitively, found by a static walk of
each module's syntax tree:

- ``import`` and ``from … import`` anywhere in a module, inside functions too (a node imports its
  heavy libraries when it runs), but not under ``if TYPE_CHECKING:`` (never run);
- a string that is a whole module path (``"fashiongan.datasets.faiss_index"``): what
  ``importlib.import_module`` loads by name; a prefix such as ``"fashiongan.models."`` is not;
- every package above a module (its ``__init__.py`` runs first; an empty one is left out, as
  DVC warns about an empty dependency), and the files in a package's non-package folders
  (``reporting/templates/*.j2``), which the package reads;
- in ``pipeline_registry.py``, a ``create_<name>_pipeline`` function counts only for the stage
  of pipeline ``<name>`` (the registry calls it only then); a bare string in it such as
  ``"fashioniq_processing"`` is the pipeline package of that name.

A model class that ``TorchModelDataset`` rebuilds from a file's metadata is not an import: a
change to it reaches the stages that read the model through the model file, which the training
stage that imports the class writes again.

Files are listed one by one, never as folders: a folder dependency is hashed with its
``__pycache__`` (DVC reads no ``.gitignore``), so running Python in it would mark stages changed,
and it would take in modules the stage never imports.

    python tools/dvc_deps.py           # rewrite the src/ deps of every stage in dvc.yaml
    python tools/dvc_deps.py --check   # exit 1, listing what differs, if dvc.yaml is stale
"""

from __future__ import annotations

import argparse
import ast
import re
import shlex
import sys
from collections.abc import Iterator
from functools import cache
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = "fashiongan"
SRC = ROOT / "src"
#: What every `kedro run` of the project imports before it builds a pipeline.
RUN_MODULES = (f"{PACKAGE}.cli", f"{PACKAGE}.settings", f"{PACKAGE}.pipeline_registry")
REGISTRY = f"{PACKAGE}.pipeline_registry"
COMPOSED = re.compile(r"create_(\w+)_pipeline")
MODULE_STRING = re.compile(rf"{PACKAGE}(\.\w+)+")
DEP_ITEM = re.compile(r"^(?P<indent>\s+- )(?P<path>[^\s#]+)(?P<comment>\s+#.*)?$")


class StageError(ValueError):
    """A stage whose command this tool cannot read (not ``kedro run --pipelines=X``)."""


def module_file(src: Path, name: str) -> Path | None:
    """The file that defines module ``name`` under ``src``, or None when there is none."""
    base = src.joinpath(*name.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def resolve(src: Path, name: str) -> str | None:
    """The longest prefix of the dotted ``name`` that is a project module (``a.b.Class`` → ``a.b``)."""
    parts = name.split(".")
    while parts and parts[0] == PACKAGE:
        if module_file(src, ".".join(parts)):
            return ".".join(parts)
        parts.pop()
    return None


def _is_type_checking(node: ast.AST) -> bool:
    test = getattr(node, "test", None) if isinstance(node, ast.If) else None
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _walk(node: ast.AST) -> Iterator[ast.AST]:
    """Every node under ``node`` but those of ``if TYPE_CHECKING:`` blocks."""
    for child in ast.iter_child_nodes(node):
        if not _is_type_checking(child):
            yield child
            yield from _walk(child)


def _is_command(function: ast.FunctionDef | ast.AsyncFunctionDef) -> bool:
    """Whether ``function`` is a click command or group (``@cli.command()``, ``@click.group``)."""
    for decorator in function.decorator_list:
        target = decorator.func if isinstance(decorator, ast.Call) else decorator
        name = target.attr if isinstance(target, ast.Attribute) else getattr(target, "id", "")
        if name in {"command", "group"}:
            return True
    return False


def _called(node: ast.AST) -> set[str]:
    return {
        n.func.id for n in _walk(node) if isinstance(n, ast.Call) and isinstance(n.func, ast.Name)
    }


def _run_functions(tree: ast.Module) -> set[str]:
    """The module's top-level functions that a ``kedro run`` may execute.

    In a module of click commands (the project CLI, which Kedro imports to merge its commands),
    a command's body runs only when that command is invoked, and ``kedro run`` invokes none of
    them: the commands and the private helpers that only they call are left out. What runs at
    import, the classes' methods and the public functions stay.
    """
    functions = {
        n.name: n for n in tree.body if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef)
    }
    commands = {name for name, function in functions.items() if _is_command(function)}
    if not commands:
        return set(functions)
    todo = {name for name in functions if not name.startswith("_")}
    for statement in (
        n for n in tree.body if n.__class__ not in (ast.FunctionDef, ast.AsyncFunctionDef)
    ):
        todo |= _called(statement)
    reached: set[str] = set()
    while todo:
        name = todo.pop()
        if name in functions and name not in commands and name not in reached:
            reached.add(name)
            todo |= _called(functions[name])
    return reached


def _names(node: ast.AST, module: str, is_package: bool) -> Iterator[str]:
    """The dotted names one node may import (some are attributes, resolved later)."""
    if isinstance(node, ast.Import):
        yield from (alias.name for alias in node.names)
    elif isinstance(node, ast.ImportFrom):
        base = node.module or ""
        if node.level:
            anchor = module.split(".")[: len(module.split(".")) - node.level + is_package]
            base = ".".join([*anchor, *([base] if base else [])])
        yield base
        yield from (f"{base}.{alias.name}" for alias in node.names)
    elif isinstance(node, ast.Constant) and isinstance(node.value, str):
        yield from ([node.value] if MODULE_STRING.fullmatch(node.value) else [])


def _syntax(src: Path, module: str) -> tuple[ast.Module, bool]:
    path = module_file(src, module)
    assert path is not None, module
    return ast.parse(path.read_text(), filename=str(path)), path.name == "__init__.py"


@cache
def imports(src: Path, module: str) -> frozenset[str]:
    """The project modules that ``module`` imports directly when a ``kedro run`` executes it
    (the registry's compositions left out: :func:`composed_imports`)."""
    tree, is_package = _syntax(src, module)
    run = _run_functions(tree)
    kept = [
        node
        for node in tree.body
        if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
        or (node.name in run and not (module == REGISTRY and COMPOSED.fullmatch(node.name)))
    ]
    nodes = _walk(ast.Module(body=kept, type_ignores=[]))
    found = {resolve(src, name) for node in nodes for name in _names(node, module, is_package)}
    return frozenset(found - {None, module})


def composed_imports(src: Path, pipeline: str) -> set[str]:
    """What the registry's ``create_<pipeline>_pipeline`` imports, if it composes that pipeline."""
    tree, _ = _syntax(src, REGISTRY)
    functions = [n for n in tree.body if isinstance(n, ast.FunctionDef)]
    found: set[str | None] = set()
    for function in (f for f in functions if f.name == f"create_{pipeline}_pipeline"):
        for node in _walk(function):
            found |= {resolve(src, name) for name in _names(node, REGISTRY, False)}
            package = f"{PACKAGE}.pipelines.{getattr(node, 'value', '')}"
            if isinstance(node, ast.Constant) and isinstance(node.value, str):
                found.add(package if module_file(src, package) else None)
    return found - {None}


def closure(src: Path, roots: set[str]) -> set[str]:
    """``roots`` and every project module they import, transitively, with their packages."""
    seen: set[str] = set()
    todo = list(roots)
    while todo:
        module = todo.pop()
        if module in seen:
            continue
        seen.add(module)
        parts = module.split(".")
        todo += [".".join(parts[:i]) for i in range(1, len(parts))]
        todo += imports(src, module)
    return seen


def package_data(src: Path, modules: set[str]) -> set[Path]:
    """Files in the non-package folders of the packages in ``modules`` (templates a package reads)."""
    found: set[Path] = set()
    for module in modules:
        path = module_file(src, module)
        if path is None or path.name != "__init__.py":
            continue
        for folder in (p for p in path.parent.iterdir() if p.is_dir()):
            if folder.name != "__pycache__" and not (folder / "__init__.py").exists():
                found |= {
                    f for f in folder.rglob("*") if f.is_file() and "__pycache__" not in f.parts
                }
    return found


def _scalars(value: object) -> Iterator[str]:
    if isinstance(value, dict):
        for item in value.values():
            yield from _scalars(item)
    elif isinstance(value, list):
        for item in value:
            yield from _scalars(item)
    elif isinstance(value, str):
        yield value


def configured_modules(src: Path, conf: Path) -> set[str]:
    """Project modules that the configuration names by path (the catalog's dataset types)."""
    names = {
        text
        for path in sorted(conf.glob("*.yml"))
        for text in _scalars(yaml.safe_load(path.read_text()))
        if MODULE_STRING.fullmatch(text)
    }
    return {module for module in map(lambda n: resolve(src, n), names) if module}


def pipeline_of(cmd: str) -> str:
    """The pipeline that the stage command ``kedro run --pipelines=X [--namespaces=Y]`` runs."""
    words = shlex.split(cmd)
    options = dict(
        w.removeprefix("--").partition("=")[::2] for w in words[2:] if w.startswith("--")
    )
    if words[:2] != ["kedro", "run"] or not options.get("pipelines"):
        raise StageError(f"not `kedro run --pipelines=X`: {cmd!r}")
    if "," in options["pipelines"]:
        raise StageError(f"one pipeline per stage, not {options['pipelines']!r}: {cmd!r}")
    return options["pipelines"]


def code_deps(root: Path, pipeline: str) -> list[str]:
    """The sorted ``src/…`` files a ``kedro run --pipelines=<pipeline>`` imports or reads."""
    src, conf = root / "src", root / "conf" / "base"
    if module_file(src, f"{PACKAGE}.pipelines.{pipeline}") is None:
        raise StageError(f"no pipeline package {PACKAGE}.pipelines.{pipeline}")
    roots = {*RUN_MODULES, f"{PACKAGE}.pipelines.{pipeline}", *configured_modules(src, conf)}
    modules = closure(src, roots | composed_imports(src, pipeline))
    files = {module_file(src, m) for m in modules} | package_data(src, modules)
    # An empty file holds no code, and DVC warns about an empty dependency on every run.
    kept = (p for p in files if p is not None and p.stat().st_size)
    return sorted(p.relative_to(root).as_posix() for p in kept)


def derived_deps(root: Path) -> dict[str, list[str]]:
    """Stage name → its code dependencies, for every stage of ``root/dvc.yaml``."""
    stages = yaml.safe_load((root / "dvc.yaml").read_text())["stages"]
    return {name: code_deps(root, pipeline_of(stage["cmd"])) for name, stage in stages.items()}


def listed_deps(root: Path) -> dict[str, list[str]]:
    """Stage name → the ``src/…`` deps that ``root/dvc.yaml`` lists now."""
    stages = yaml.safe_load((root / "dvc.yaml").read_text())["stages"]
    return {
        name: [dep for dep in stage.get("deps", []) if dep.startswith("src/")]
        for name, stage in stages.items()
    }


def differences(root: Path) -> list[str]:
    """One line per dependency that dvc.yaml lacks or lists without the stage importing it."""
    listed = listed_deps(root)
    lines = []
    for stage, wanted in derived_deps(root).items():
        have = set(listed.get(stage, []))
        lines += [f"{stage}: missing {path}" for path in wanted if path not in have]
        lines += [f"{stage}: not imported {path}" for path in sorted(have - set(wanted))]
    return lines


def _replace_block(block: list[str], code: list[str]) -> list[str]:
    """A stage's ``deps:`` item lines with its ``src/`` items replaced by ``code``, in place of
    the first one; the comment on a path that stays is kept."""
    items = [(line, DEP_ITEM.match(line.rstrip("\n"))) for line in block]
    indent = next((m["indent"] for _, m in items if m), "      - ")
    comments = {m["path"]: m["comment"] or "" for _, m in items if m}
    new = [f"{indent}{path}{comments.get(path, '')}\n" for path in code]
    out: list[str] = []
    for line, match in items:
        if match and match["path"].startswith("src/"):
            out += new
            new = []
        else:
            out.append(line)
    return out + new


def rewrite(text: str, code: dict[str, list[str]]) -> str:
    """``dvc.yaml``'s text with each stage's ``src/`` deps replaced; everything else as it was."""
    lines = text.splitlines(keepends=True)
    out: list[str] = []
    section = stage = None
    i = 0
    while i < len(lines):
        line = lines[i]
        if top := re.match(r"^(\w+):", line):
            section, stage = top[1], None
        elif section == "stages" and (header := re.match(r"^  (\S+):\s*$", line)):
            stage = header[1]
        out.append(line)
        i += 1
        if stage in code and re.match(r"^    deps:\s*$", line):
            end = i
            while end < len(lines) and (DEP_ITEM.match(lines[end].rstrip("\n"))):
                end += 1
            out += _replace_block(lines[i:end], code[stage])
            i = end
    return "".join(out)


def main(argv: list[str] | None = None) -> int:
    """Rewrite dvc.yaml's code deps, or with ``--check`` report where they differ."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="only report; exit 1 if stale")
    args = parser.parse_args(argv)
    try:
        stale = differences(ROOT)
        if args.check:
            print("\n".join(stale) or "dvc.yaml: every stage's code deps are its imports")
            return 1 if stale else 0
        path = ROOT / "dvc.yaml"
        path.write_text(rewrite(path.read_text(), derived_deps(ROOT)))
    except (StageError, SyntaxError, OSError) as err:
        print(f"dvc_deps: {err}", file=sys.stderr)
        return 2
    print(f"dvc.yaml: {len(stale)} dependency lines changed" if stale else "dvc.yaml: up to date")
    return 0


if __name__ == "__main__":
    sys.exit(main())
