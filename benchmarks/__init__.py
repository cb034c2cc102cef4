"""Benchmarks for the pipeline: ratios measured side by side in one run (`make bench`).

Not tests: nothing here asserts a time. Each goal prints one line with what was measured, the goal
and PASS or FAIL. Run `python -m benchmarks --help`.
"""
