"""One finding of ``flask checkout doctor``, as plain data."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Literal

Level = Literal["ok", "warning", "error"]


@dataclass(frozen=True)
class Finding:
    """One result of a check: ``error`` is a problem (exit 1), ``warning`` deserves a look."""

    level: Level
    check: str
    message: str
    fix: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)
