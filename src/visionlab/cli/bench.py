"""``visionlab-bench``: the pipeline benchmark (``benchmark/pipeline.py``) as a console script."""

from __future__ import annotations

import sys


def main(argv: list[str] | None = None) -> int:
    """Prints the tables as it measures and exits 0; the figures as data go only to the ``--json`` file (the
    console-script wrapper passes what ``main`` returns to ``sys.exit``, which would print a returned dict and
    exit 1)."""
    from visionlab.benchmark.pipeline import run_bench

    run_bench(argv)
    return 0


if __name__ == "__main__":
    sys.exit(main())
