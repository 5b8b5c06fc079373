"""The package's shape: imports follow the stage map one way, and modules use each other's public names.

Stage map: data -> models -> cam -> densify -> pseudo -> train -> eval. A module may import
the foundations, its own stage and the stages before it; orchestration (``pipeline``), figures
(``viz``) and the top-level conveniences (``config``, ``presets``) sit above every stage.
Read statically (``ast``), so an import inside a function counts too.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "s2d_core"
FOUNDATIONS = ("arrays", "cache", "configbase", "devices", "progress", "registry", "tables")
STAGES = ("data", "models", "cam", "densify", "pseudo", "train", "eval")
ABOVE = ("viz", "pipeline", "config", "presets")  # may import anything below them
LEVEL = {**{f: 0 for f in FOUNDATIONS}, **{s: i + 1 for i, s in enumerate(STAGES)},
         "viz": len(STAGES) + 1, "pipeline": len(STAGES) + 2, "config": len(STAGES) + 3, "presets": len(STAGES) + 3}


def _modules() -> list[tuple[str, Path]]:
    out = []
    for path in sorted(PACKAGE.rglob("*.py")):
        rel = path.relative_to(PACKAGE.parent).with_suffix("")
        parts = list(rel.parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out.append((".".join(parts), path))
    return out


def _unit(module: str) -> str | None:
    """The stage (or foundation / upper layer) a module ``s2d_core.X...`` belongs to."""
    parts = module.split(".")
    if parts[0] != "s2d_core" or len(parts) < 2:
        return None
    return parts[1]


def _imports(module: str, path: Path) -> list[tuple[str, list[str], int]]:
    """(imported module, names, line) of every s2d_core import in ``path``, relative ones resolved."""
    tree = ast.parse(path.read_text(), filename=str(path))
    package = module if path.name == "__init__.py" else module.rsplit(".", 1)[0]
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out += [(a.name, [], node.lineno) for a in node.names if a.name.startswith("s2d_core")]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if target.startswith("s2d_core"):
                names = [a.name for a in node.names]
                if node.module is None or target in ("s2d_core",) or target.count(".") == 0:
                    out += [(f"{target}.{n}", [], node.lineno) for n in names]  # `from .. import cache`
                else:
                    out.append((target, names, node.lineno))
    return out


def _edges():
    for module, path in _modules():
        for target, names, line in _imports(module, path):
            yield module, path, target, names, line


def test_every_module_belongs_to_a_known_layer():
    unknown = {_unit(m) for m, _ in _modules()} - set(LEVEL) - {None}
    assert not unknown, f"modules outside the stage map: {sorted(unknown)}; add them to LEVEL in this test"


def test_imports_follow_the_stage_map_one_way():
    bad = []
    for module, path, target, _, line in _edges():
        src, dst = _unit(module), _unit(target)
        if src is None or dst is None or src == dst:
            continue
        if LEVEL[dst] > LEVEL[src]:
            bad.append(f"{path.relative_to(PACKAGE.parent)}:{line} ({src}) imports {target} ({dst})")
    assert not bad, "imports that run up the stage map:\n" + "\n".join(bad)


def test_stage_modules_use_their_own_configuration_not_the_facade():
    bad = [f"{path.relative_to(PACKAGE.parent)}:{line}" for module, path, target, _, line in _edges()
           if _unit(module) not in ("config", "presets") and target in ("s2d_core.config", "s2d_core.presets")]
    assert not bad, "modules importing the configuration façade (import the stage's own config module):\n" + "\n".join(bad)


def test_no_private_names_across_modules():
    bad = []
    for module, path, target, names, line in _edges():
        if target != module:
            bad += [f"{path.relative_to(PACKAGE.parent)}:{line} imports {target}.{n}" for n in names
                    if n.startswith("_") and n != "__version__"]
    assert not bad, "private helpers imported by other modules (make them public or move them):\n" + "\n".join(bad)


def test_imports_inside_functions_are_third_party_only():
    """Package imports inside functions hide the dependency structure (they were used to dodge cycles)."""
    bad = []
    for module, path in _modules():
        tree = ast.parse(path.read_text())
        for fn in ast.walk(tree):
            # the package root's module-level __getattr__ loads the pipeline on first use (import speed, not a cycle)
            if isinstance(fn, (ast.FunctionDef, ast.AsyncFunctionDef)) and not (module == "s2d_core" and fn.name == "__getattr__"):
                for node in ast.walk(fn):
                    if isinstance(node, ast.ImportFrom) and (node.level or (node.module or "").startswith("s2d_core")):
                        bad.append(f"{path.relative_to(PACKAGE.parent)}:{node.lineno} in {fn.name}()")
    assert not bad, "package imports inside functions:\n" + "\n".join(bad)


@pytest.mark.parametrize("stage", STAGES)
def test_each_stage_imports_without_the_layers_above(stage):
    """Importing a stage must not pull in a later stage or the pipeline (checked in a fresh interpreter)."""
    import subprocess
    import sys

    later = [s for s in STAGES[STAGES.index(stage) + 1:]] + ["pipeline", "viz"]
    code = (f"import sys, s2d_core.{stage}; "
            f"loaded = [m for m in {later!r} if 's2d_core.' + m in sys.modules]; "
            f"print(','.join(loaded))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300,
                         cwd=str(PACKAGE.parent))
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip() == "", f"importing s2d_core.{stage} also imported: {out.stdout.strip()}"
