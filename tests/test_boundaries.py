"""Which way dependencies point: the core never imports streamlit; only fairpp.store imports duckdb,
only fairpp.probe imports openai, only fairpp.ui imports streamlit."""
from __future__ import annotations

import ast
import json
import pathlib
import subprocess
import sys

ROOT = pathlib.Path(__file__).resolve().parents[1]
CORE = ["fairpp", "fairpp.schema", "fairpp.config", "fairpp.parse", "fairpp.space", "fairpp.analysis",
        "fairpp.cli", "fairpp.sources.files", "fairpp.sources.published", "fairpp.sources.tidy",
        "fairpp.sources.demo", "fairpp.store"]


def _imported_after(modules):
    code = ("import importlib, json, sys\n"
            f"for m in {modules!r}:\n    importlib.import_module(m)\n"
            "print(json.dumps(sorted(k for k in sys.modules if k.split('.')[0] in "
            "('streamlit', 'duckdb', 'openai', 'umap', 'plotly'))))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True)
    return {m.split(".")[0] for m in json.loads(out.stdout)}


def test_core_never_imports_streamlit_openai_or_umap():
    loaded = _imported_after(CORE)
    assert "streamlit" not in loaded
    assert "openai" not in loaded
    assert "umap" not in loaded  # imported lazily, only when a UMAP view is asked for
    assert "duckdb" in loaded  # through fairpp.store, the one module that owns it


def test_science_modules_do_not_touch_the_database():
    loaded = _imported_after(["fairpp.schema", "fairpp.space", "fairpp.parse", "fairpp.sources.files",
                              "fairpp.sources.published", "fairpp.sources.demo"])
    assert "duckdb" not in loaded and "streamlit" not in loaded


def _imports(path: pathlib.Path) -> set[str]:
    tree = ast.parse(path.read_text())
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


def test_only_the_owning_module_imports_each_dependency():
    owners = {"duckdb": "fairpp/store", "openai": "fairpp/probe", "streamlit": "fairpp/ui"}
    offenders = []
    for path in (ROOT / "fairpp").rglob("*.py"):
        rel = path.relative_to(ROOT).as_posix()
        for dep, owner in owners.items():
            if dep in _imports(path) and not rel.startswith(owner):
                offenders.append(f"{rel} imports {dep}")
    assert offenders == []
