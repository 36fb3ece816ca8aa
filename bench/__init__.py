"""nnlab's benchmark suite: ``make bench`` (``python -m bench``).

Every figure is a ratio or a count measured side by side in one run: the variants of a
comparison alternate (A, B, A, B, ... with the order rotated each round) and the result is the
median of the per-round figures, never a time compared with a number from another day. The
suite prints a table and writes ``bench/results.md`` with the machine it ran on.

Modules: ``_harness`` (alternation, medians, timing, machine description, the table),
``_inproc`` (goals 1 and 6 and the in-process levers), ``_process`` (goals 2 and 9, whole-process
levers), ``_sweeps`` (goals 3, 4, 5), ``_memory`` (goal 7), ``_reports`` (goal 8). Baseline
scripts live in ``bench/baselines/``, specs in ``bench/specs/``, scratch files in ``bench/.work/``.
"""
