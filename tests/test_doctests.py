"""The examples in the package's docstrings run and print what they show (``doctest``), so they stay true."""
from __future__ import annotations

import doctest
import importlib
from pathlib import Path

import pytest

import fairpp

_ROOT = Path(fairpp.__file__).parent
# every module of the package whose docstrings hold an example (``__init__`` files name their package)
MODULES = sorted(".".join(("fairpp", *f.relative_to(_ROOT).with_suffix("").parts)).removesuffix(".__init__")
                 for f in _ROOT.rglob("*.py") if ">>> " in f.read_text(encoding="utf-8"))


def test_the_package_has_examples():
    assert len(MODULES) >= 10, MODULES  # a walk that found nothing would pass every module test vacuously


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples_run(name):
    result = doctest.testmod(importlib.import_module(name), optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 0, f"{name} has no runnable example"
    assert result.failed == 0, f"{result.failed} of {result.attempted} examples in {name} failed (printed above)"
