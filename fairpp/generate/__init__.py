"""The generation framework: the question bank, role-play personas and generation runs.

:mod:`~fairpp.generate.bank` (taxonomy + templates file: load, validate, expand into questions),
:mod:`~fairpp.generate.personas` (built-in and user-defined personas),
:mod:`~fairpp.generate.run` (role-play runs through the probe engine),
:mod:`~fairpp.generate.batch` (OpenAI Batch API files: write, submit and poll, ingest),
:mod:`~fairpp.generate.scenario` (template questions rewritten as vignettes per option, question set
``scenario-generated``),
:mod:`~fairpp.generate.cli` (``fairpp questions``, ``fairpp personas``, ``fairpp generate [scenarios]``).
Submodules are imported on use; importing this package is cheap.
"""
