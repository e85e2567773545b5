"""Figures, targets and the printed table."""

from __future__ import annotations

import json
import os
import platform
import sqlite3
import statistics
import subprocess
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any


@dataclass
class Target:
    """A figure held against its limit (``measured <= limit``)."""

    name: str
    measured: float | None
    limit: float
    unit: str = ""

    @property
    def met(self) -> bool:
        return self.measured is not None and self.measured <= self.limit

    def line(self) -> str:
        shown = "n/a" if self.measured is None else f"{self.measured:.2f}{self.unit}"
        verdict = "met" if self.met else "MISSED"
        return f"{self.name:<58} {shown:>10}  (target <= {self.limit:g}{self.unit})  {verdict}"


@dataclass
class Section:
    """One table of the report, with its targets."""

    title: str
    header: Sequence[str]
    rows: list[Sequence[Any]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    targets: list[Target] = field(default_factory=list)

    def render(self) -> str:
        cells = [[str(h) for h in self.header]] + [[_cell(v) for v in r] for r in self.rows]
        widths = [max(len(row[i]) for row in cells) for i in range(len(self.header))]
        lines = [self.title, "-" * len(self.title)]
        for n, row in enumerate(cells):
            lines.append(
                "  ".join(
                    c.ljust(w) if i == 0 else c.rjust(w)
                    for i, (c, w) in enumerate(zip(row, widths, strict=True))
                )
            )
            if n == 0:
                lines.append("  ".join("-" * w for w in widths))
        lines += [f"  {n}" for n in self.notes]
        lines += [f"  {t.line()}" for t in self.targets]
        return "\n".join(lines)

    def markdown(self) -> str:
        out = [f"**{self.title}**", ""]
        out.append("| " + " | ".join(str(h) for h in self.header) + " |")
        out.append("|" + "|".join("---" for _ in self.header) + "|")
        for r in self.rows:
            out.append("| " + " | ".join(_cell(v).replace("|", "\\|") for v in r) + " |")
        if self.targets:
            out += ["", "| target | measured | limit | |", "|---|---|---|---|"]
        for t in self.targets:
            shown = "n/a" if t.measured is None else f"{t.measured:.2f}{t.unit}"
            verdict = "met" if t.met else "**missed**"
            name = t.name.replace("|", "\\|")
            out.append(f"| {name} | {shown} | <= {t.limit:g}{t.unit} | {verdict} |")
        out += [""] + [f"- {n}" for n in self.notes]
        return "\n".join(out)


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        if abs(value) >= 100:
            return f"{value:,.0f}"
        if abs(value) >= 10:
            return f"{value:.1f}"
        return f"{value:.2f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def median(values: Iterable[float]) -> float:
    return float(statistics.median(list(values)))


def percentile(values: Sequence[float], p: float) -> float:
    """The ``p``-th percentile (nearest rank) of ``values``."""
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    rank = max(0, min(len(ordered) - 1, round(p / 100 * len(ordered) + 0.5) - 1))
    return ordered[rank]


def machine() -> dict[str, str]:
    """What the figures were measured on."""
    cpu = "?"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    memory = "?"
    try:
        kb = int(Path("/proc/meminfo").read_text().split()[1])
        memory = f"{kb / 1024 / 1024:.1f} GiB"
    except (OSError, ValueError, IndexError):
        pass
    data = Path(__file__).resolve().parent / ".data"
    data.mkdir(exist_ok=True)
    disk = "?"
    try:
        out = (
            subprocess.run(["df", "-T", str(data)], capture_output=True, text=True, check=True)
            .stdout.splitlines()[-1]
            .split()
        )
        disk = f"{out[0]} ({out[1]})"
    except (OSError, subprocess.CalledProcessError, IndexError):
        pass
    return {
        "cpu": f"{cpu}, {os.cpu_count()} cores",
        "memory": memory,
        "os": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
        "sqlite": sqlite3.sqlite_version,
        "data disk": disk,
        "load": " ".join(f"{x:.2f}" for x in os.getloadavg()),
    }


def versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    out = {}
    for name in (
        "flask",
        "werkzeug",
        "sqlalchemy",
        "flask-sqlalchemy",
        "stripe",
        "psycopg",
        "gunicorn",
    ):
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            out[name] = "missing"
    return out


def save(path: Path, sections: list[Section], info: dict[str, Any]) -> None:
    """The figures as JSON, for comparing runs."""
    path.parent.mkdir(exist_ok=True)
    body = {
        "info": info,
        "sections": [
            {
                **asdict(s),
                "targets": [{**asdict(t), "met": t.met} for t in s.targets],
            }
            for s in sections
        ],
    }
    path.write_text(json.dumps(body, indent=2, default=str))
