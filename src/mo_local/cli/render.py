"""Tables and lines for people; scripts use --json instead."""

from __future__ import annotations

import sys
from collections.abc import Mapping, Sequence

from rich.console import Console
from rich.table import Table
from rich.text import Text


def _console() -> Console:
    return Console(file=sys.stdout, highlight=False, soft_wrap=False)


def table(title: str, columns: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """Render a table to text (coloured only on a terminal)."""
    console = _console()
    grid = Table(title=title, show_lines=False, title_justify="left")
    for column in columns:
        grid.add_column(column, overflow="fold")
    for row in rows:
        # Text, not str: rich would read user text such as "[/b]" as markup and crash.
        grid.add_row(*(Text("" if cell is None else str(cell)) for cell in row))
    with console.capture() as capture:
        console.print(grid)
    return capture.get()


def goal_rows(goals: Sequence[Mapping[str, object]]) -> str:
    """Goals as a table."""
    return table(
        "Goals",
        ["id", "summary", "slice", "priority", "month", "state", "projects", "v"],
        [
            [
                g["id"],
                g["summary"],
                g["slice"],
                g["priority"],
                g["target_month"],
                "archived" if g["archived"] else ("achieved" if g["achieved"] else "open"),
                len(g["project_ids"]) if isinstance(g["project_ids"], list) else 0,
                g["version"],
            ]
            for g in goals
        ],
    )


def project_rows(projects: Sequence[Mapping[str, object]]) -> str:
    """Projects as a table."""
    return table(
        "Projects",
        ["id", "name", "status", "start", "target", "goal", "milestones", "v"],
        [
            [
                p["id"],
                p["name"],
                "archived" if p["archived"] else p["status"],
                p["start_date"],
                p["target_date"],
                p["goal_id"] or "-",
                len(p["milestones"]) if isinstance(p["milestones"], list) else 0,
                p["version"],
            ]
            for p in projects
        ],
    )


def goal_detail(goal: Mapping[str, object]) -> str:
    """One goal, field by field."""
    return "\n".join(f"{k:>13}: {v}" for k, v in goal.items())


def project_detail(project: Mapping[str, object]) -> str:
    """One project, field by field, milestones below."""
    lines = [f"{k:>13}: {v}" for k, v in project.items() if k != "milestones"]
    milestones = project.get("milestones")
    if isinstance(milestones, list) and milestones:
        lines.append("   milestones:")
        lines.extend(f"      {m['target_date']}  {m['name']}  ({m['id']})" for m in milestones)
    return "\n".join(lines)
