"""No module in ``impl/`` or ``fuzz/`` grows past :data:`LIMIT` lines without saying why.

A module a newcomer can hold in their head has one job; past a few hundred lines it usually has
two. A module that is honestly one job and still long (a table of policy, a catalogue of
mutants, one class whose checks sit beside the argument that makes them sound) says so in one
line of its module docstring that starts with ``Why one module:``, so the next reader knows it
was a decision rather than drift.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CHECKED = (ROOT / "impl" / "raftkube", ROOT / "fuzz" / "raftkube_fuzz")
LIMIT = 520
"""Lines a module may have without a stated reason (the target is ~500; a little slack so that
one added function does not force a split in the middle of someone else's change)."""
REASON = "Why one module:"


def states_reason(path: Path) -> bool:
    """Whether the module docstring has a line starting with :data:`REASON`."""
    doc = ast.get_docstring(ast.parse(path.read_text(), str(path))) or ""
    return any(line.strip().startswith(REASON) for line in doc.splitlines())


def line_count(path: Path) -> int:
    return len(path.read_text().splitlines())


def test_every_long_module_is_split_or_says_why() -> None:
    offenders = [
        f"{path.relative_to(ROOT)} ({line_count(path)} lines)"
        for root in CHECKED
        for path in sorted(root.rglob("*.py"))
        if line_count(path) > LIMIT and not states_reason(path)
    ]
    assert not offenders, (
        f"modules over {LIMIT} lines without a '{REASON}' line in their docstring (split them "
        "by job, or state in one sentence why they are one job): " + ", ".join(offenders)
    )


def test_the_rule_sees_a_reason_only_in_the_module_docstring(tmp_path: Path) -> None:
    """The check reads the module docstring, not any comment or string that happens to
    contain the words."""
    with_reason = tmp_path / "a.py"
    with_reason.write_text('"""Long.\n\nWhy one module: one table.\n"""\n\nX = 1\n')
    elsewhere = tmp_path / "b.py"
    elsewhere.write_text('"""Long."""\n\n# Why one module: not here\nX = "Why one module: no"\n')
    assert states_reason(with_reason)
    assert not states_reason(elsewhere)
