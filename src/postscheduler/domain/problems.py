"""Problems found in a campaign: errors that stop it, warnings that an organiser should read."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Severity = Literal["error", "warning"]


@dataclass(frozen=True)
class Problem:
    """One thing wrong (or doubtful) in a campaign file, located for the organiser.

    ``where`` is a path into the file such as ``posts[3].hashtags[1]`` (empty for the file
    as a whole); ``line`` is the 1-based line in the file when it could be found.
    """

    where: str
    message: str
    severity: Severity = "error"
    line: int | None = None

    def render(self, path: str) -> str:
        """The one line shown to the organiser: ``file:line: where: message``."""
        location = f"{path}:{self.line}" if self.line is not None else path
        prefix = f"{location}: {self.where}: " if self.where else f"{location}: "
        label = "warning: " if self.severity == "warning" else ""
        return f"{prefix}{label}{self.message}"
