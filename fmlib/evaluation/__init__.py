"""Stage 5, the evaluation: baselines, the re-synthesis evaluation (Tables 6-9,
:mod:`fmlib.evaluation.evaluate`) and the comparison of estimators.

Named ``evaluation`` so that the package is not confused with its module
``evaluate`` (and the ``evaluate`` command)."""
