"""Accuracy and speed benchmarks of cwcl_sk, run from the repository root.

Each script is a module: ``python -m benchmarks.digit_images``, ``python -m benchmarks.speed``
and so on. Their shared pieces are :mod:`benchmarks.tasks` (the compared losses and each
task's data, students and scoring), :mod:`benchmarks.overheads` (the speed measurements),
:mod:`benchmarks.results` (the result files) and :mod:`benchmarks.tables` (the documentation's
tables, rendered from the committed results).
"""
