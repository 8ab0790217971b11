"""``python -m raftkube_fuzz.nemesis.mutant_member MUTANT member ...``: a member with a bug.

Runs ``raftkube member`` exactly as ``python -m raftkube.cluster member ...`` would, with one
of :data:`raftkube_fuzz.mutants.MUTANTS` patched in for the whole process. It exists so that
``raftkube fuzz nemesis --mutant`` can show the harness catches a real violation on real
processes, while production keeps no flag or variable that could switch a bug on.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

from raftkube.cluster.__main__ import main as cluster_main
from raftkube_fuzz.mutants import MUTANTS


def main(argv: Sequence[str]) -> int:
    if not argv or argv[0] not in MUTANTS:
        known = ", ".join(MUTANTS)
        print(f"usage: mutant_member MUTANT member ...; MUTANT is one of {known}", file=sys.stderr)
        return 2
    with MUTANTS[argv[0]].patch():
        return cluster_main(list(argv[1:]))


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
