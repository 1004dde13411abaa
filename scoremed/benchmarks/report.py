"""Write benchmark tables into a shared Markdown report, one marked section per benchmark."""
from __future__ import annotations

import os
import re
from pathlib import Path

from scoremed.io.atomic import atomic_write_text


def markdown_table(header: list[str], rows: list[list[object]]) -> str:
    """A GitHub Markdown table; floats are printed with 4 significant digits."""
    def cell(v: object) -> str:
        return f"{v:.4g}" if isinstance(v, float) else str(v)

    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)


def write_report_section(path: str | os.PathLike, section: str, markdown: str) -> Path:
    """Replace (or append) the section ``section`` of the report at ``path`` with ``markdown``.

    Sections are delimited by ``<!-- begin NAME -->`` / ``<!-- end NAME -->`` so several
    benchmark scripts can share one file without overwriting each other.
    """
    path = Path(path)
    begin, end = f"<!-- begin {section} -->", f"<!-- end {section} -->"
    block = f"{begin}\n{markdown.strip()}\n{end}"
    text = path.read_text() if path.exists() else "# scoremed benchmarks\n"
    pattern = re.compile(re.escape(begin) + r".*?" + re.escape(end), re.S)
    text = pattern.sub(lambda _: block, text) if pattern.search(text) else text.rstrip() + "\n\n" + block + "\n"
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(path, text)
    return path
