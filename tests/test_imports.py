"""The oracle imports only NumPy and the standard library; importing losscheck loads no framework."""
import ast
import subprocess
import sys
from pathlib import Path

REFERENCE = Path(__file__).resolve().parents[1] / "reference"
FRAMEWORKS = ("torch", "tensorflow", "keras", "jax", "jaxlib", "optax", "scipy")


def test_reference_imports_only_numpy_and_the_standard_library():
    allowed = set(sys.stdlib_module_names) | {"numpy", "__future__"}
    offenders = []
    for path in sorted(REFERENCE.glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0:
                names = [node.module]
            else:
                continue
            offenders += [f"{path.name}:{node.lineno} imports {n}" for n in names if n.split(".")[0] not in allowed]
    assert not offenders, offenders


def _modules_after(code: str) -> set[str]:
    out = subprocess.run([sys.executable, "-c", f"{code}\nimport sys\nprint(' '.join(sys.modules))"],
                         capture_output=True, text=True, check=True)
    return set(out.stdout.split())


def test_importing_the_oracle_loads_nothing_but_numpy():
    modules = sorted(p.stem for p in REFERENCE.glob("*.py") if p.stem != "__init__")
    assert len(modules) >= 12
    loaded = _modules_after("import " + ", ".join(f"losscheck.reference.{m}" for m in modules))
    assert {f"losscheck.reference.{m}" for m in modules} <= loaded
    assert not {m.split(".")[0] for m in loaded} & set(FRAMEWORKS)


def test_import_losscheck_and_the_catalog_load_no_framework():
    loaded = _modules_after("import losscheck, losscheck.catalog, losscheck.runner, losscheck.cli\n"
                            "losscheck.catalog.all_specs()")
    assert not {m.split(".")[0] for m in loaded} & set(FRAMEWORKS)


def test_every_subpackage_is_packaged():
    """pyproject lists packages explicitly (the oracle is mapped from reference/): a new subpackage
    left out would be missing from a non-editable install."""
    import tomllib

    root = REFERENCE.parent
    listed = set(tomllib.loads((root / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    found = {".".join(p.parent.relative_to(root).parts) for p in (root / "losscheck").rglob("__init__.py")}
    assert found - listed == set(), f"add to [tool.setuptools] packages: {sorted(found - listed)}"
