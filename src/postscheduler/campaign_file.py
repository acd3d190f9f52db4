"""Reading a campaign file from disk: TOML → validated models → statement and media facts.

Everything that touches the file system for a campaign happens here, so that the domain
stays pure. Every problem is reported with the file, the place in it (``posts[3].media[0]``)
and, where it can be found, the line; all problems are collected before giving up.
"""

from __future__ import annotations

import bisect
import difflib
import hashlib
import mimetypes
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

try:  # tomli is tomllib's parser compiled with mypyc: three times faster on large files.
    import tomli as tomllib
except ImportError:  # pragma: no cover - the pure-Python twin in the standard library
    import tomllib  # type: ignore[no-redef]

from postscheduler.domain.campaign import CampaignFile, Media
from postscheduler.domain.excerpts import ExcerptError, Statement
from postscheduler.domain.plan import MediaFile
from postscheduler.domain.problems import Problem
from postscheduler.errors import CampaignInvalid, ConfigError

#: Media types Mastodon accepts, by file extension, with its size limits (bytes).
MEDIA_TYPES: dict[str, tuple[str, int]] = {
    ".jpg": ("image/jpeg", 16 * 1024 * 1024),
    ".jpeg": ("image/jpeg", 16 * 1024 * 1024),
    ".png": ("image/png", 16 * 1024 * 1024),
    ".gif": ("image/gif", 16 * 1024 * 1024),
    ".webp": ("image/webp", 16 * 1024 * 1024),
    ".heic": ("image/heic", 16 * 1024 * 1024),
    ".heif": ("image/heif", 16 * 1024 * 1024),
    ".avif": ("image/avif", 16 * 1024 * 1024),
    ".mp4": ("video/mp4", 99 * 1024 * 1024),
    ".m4v": ("video/mp4", 99 * 1024 * 1024),
    ".mov": ("video/quicktime", 99 * 1024 * 1024),
    ".webm": ("video/webm", 99 * 1024 * 1024),
    ".mp3": ("audio/mpeg", 99 * 1024 * 1024),
    ".ogg": ("audio/ogg", 99 * 1024 * 1024),
    ".oga": ("audio/ogg", 99 * 1024 * 1024),
    ".opus": ("audio/opus", 99 * 1024 * 1024),
    ".wav": ("audio/wave", 99 * 1024 * 1024),
    ".flac": ("audio/flac", 99 * 1024 * 1024),
    ".m4a": ("audio/mp4", 99 * 1024 * 1024),
    ".aac": ("audio/aac", 99 * 1024 * 1024),
}

#: The first bytes of image types, so that a renamed or broken file is caught at ``check``.
_SIGNATURES: dict[str, tuple[bytes, ...]] = {
    "image/jpeg": (b"\xff\xd8\xff",),
    "image/png": (b"\x89PNG\r\n\x1a\n",),
    "image/gif": (b"GIF87a", b"GIF89a"),
}


@dataclass(frozen=True)
class LoadedCampaign:
    """A campaign file read and validated, with what it refers to."""

    path: Path
    campaign: CampaignFile
    statement: Statement | None
    media: dict[str, MediaFile]
    source: str
    warnings: tuple[Problem, ...] = ()


def load_campaign(path: str | Path) -> LoadedCampaign:
    """Read, parse and validate the campaign file at ``path``.

    Raises :class:`ConfigError` when the file cannot be read or parsed, and
    :class:`CampaignInvalid` (with every problem) when its content is wrong.
    """
    file = Path(path)
    shown = str(path)
    source = _read_text(file, shown)
    try:
        data = tomllib.loads(source)
    except tomllib.TOMLDecodeError as error:
        raise _syntax_error(shown, error) from None
    try:
        campaign = CampaignFile.model_validate(data)
    except ValidationError as error:
        raise CampaignInvalid(shown, _schema_problems(error, source)) from None

    problems: list[Problem] = []
    base = file.parent
    statement = _load_statement(campaign, base, problems)
    media = _load_media(campaign, base, problems)
    located = locate(problems, source)
    if any(p.severity == "error" for p in located):
        raise CampaignInvalid(shown, located)
    return LoadedCampaign(file, campaign, statement, media, source, tuple(located))


def locate(problems: Iterable[Problem], source: str) -> list[Problem]:
    """``problems`` with the line of their place in ``source`` filled in where found."""
    index = SourceIndex(source)
    return [index.locate(p) for p in problems]


# -- reading --------------------------------------------------------------------------------


def _read_text(file: Path, shown: str) -> str:
    try:
        raw = file.read_bytes()
    except FileNotFoundError:
        raise ConfigError(shown, "no such file") from None
    except IsADirectoryError:
        raise ConfigError(shown, "is a directory, not a campaign file") from None
    except PermissionError:
        raise ConfigError(shown, "cannot be read (permission denied)") from None
    except OSError as error:
        raise ConfigError(shown, f"cannot be read: {error.strerror or error}") from None
    try:
        return raw.decode("utf-8").removeprefix("\ufeff")
    except UnicodeDecodeError as error:
        line = raw[: error.start].count(b"\n") + 1
        raise ConfigError(shown, "is not UTF-8 text: save it as UTF-8", line=line) from None


def _syntax_error(shown: str, error: tomllib.TOMLDecodeError) -> ConfigError:
    message = str(error)
    match = re.search(r"\(at line (\d+), column (\d+)\)", message)
    if match is None:
        return ConfigError(shown, f"TOML syntax error: {message}")
    text = message[: match.start()].strip()
    return ConfigError(
        shown,
        f"TOML syntax error at column {match.group(2)}: {text[:1].lower()}{text[1:]}",
        line=int(match.group(1)),
    )


def _load_statement(
    campaign: CampaignFile, base: Path, problems: list[Problem]
) -> Statement | None:
    name = campaign.campaign.statement
    if name is None:
        return None
    where = "campaign.statement"
    target = base / name
    try:
        text = target.read_text(encoding="utf-8")
    except FileNotFoundError:
        problems.append(
            Problem(where, f"{name}: no such file (paths are relative to the campaign file)")
        )
        return None
    except UnicodeDecodeError:
        problems.append(Problem(where, f"{name}: is not UTF-8 text"))
        return None
    except OSError as error:
        problems.append(Problem(where, f"{name}: cannot be read ({error.strerror or error})"))
        return None
    try:
        return Statement.parse(text)
    except ExcerptError as error:
        problems.append(Problem(where, f"{name}: {error}"))
        return None


def _load_media(
    campaign: CampaignFile, base: Path, problems: list[Problem]
) -> dict[str, MediaFile]:
    found: dict[str, MediaFile] = {}
    root = base.resolve()
    entries: list[tuple[str, Sequence[Media]]] = [
        (f"posts[{i}]", post.media) for i, post in enumerate(campaign.posts)
    ]
    entries += [(f"series[{i}]", series.media) for i, series in enumerate(campaign.series)]
    for owner, media in entries:
        for index, item in enumerate(media):
            where = f"{owner}.media[{index}].path"
            if item.path in found:
                continue
            try:
                found[item.path] = _inspect_media(item, root)
            except ValueError as error:
                problems.append(Problem(where, f"{item.path}: {error}"))
            except (OSError, RuntimeError) as error:  # unreadable, or a symlink loop
                reason = getattr(error, "strerror", None) or error
                problems.append(Problem(where, f"{item.path}: cannot be read ({reason})"))
    return found


def _inspect_media(item: Media, root: Path) -> MediaFile:
    target = (root / item.path).resolve()
    if not target.is_relative_to(root):
        raise ValueError("media must be inside the campaign's folder")
    if not target.exists():
        raise ValueError("no such file (paths are relative to the campaign file)")
    if not target.is_file():
        raise ValueError("is not a regular file")
    suffix = target.suffix.lower()
    if suffix not in MEDIA_TYPES:
        guessed = mimetypes.guess_type(target.name)[0] or "an unknown type"
        raise ValueError(
            f"is {guessed}; servers accept images (jpg, png, gif, webp, heic, avif), "
            "video (mp4, mov, webm) and audio (mp3, ogg, opus, wav, flac, m4a)"
        )
    mime, limit = MEDIA_TYPES[suffix]
    data = target.read_bytes()
    if len(data) == 0:
        raise ValueError("is empty")
    if len(data) > limit:
        raise ValueError(
            f"is {len(data) / 1e6:.1f} MB; servers accept {limit / 1e6:.0f} MB for {mime}"
        )
    signatures = _SIGNATURES.get(mime)
    if signatures and not data.startswith(signatures):
        raise ValueError(f"does not look like {mime} (its content does not match its name)")
    if mime == "image/webp" and not (data[:4] == b"RIFF" and data[8:12] == b"WEBP"):
        raise ValueError("does not look like image/webp (its content does not match its name)")
    return MediaFile(
        path=item.path,
        alt=item.alt,
        mime=mime,
        size=len(data),
        sha256=hashlib.sha256(data).hexdigest(),
        focus=item.focus,
    )


# -- schema errors --------------------------------------------------------------------------


def _schema_problems(error: ValidationError, source: str) -> list[Problem]:
    index = SourceIndex(source)
    problems = []
    for item in error.errors(include_url=False):
        loc = tuple(item["loc"])
        kind = item["type"]
        message = str(item["msg"])
        if kind == "extra_forbidden":
            where, key = _path(loc[:-1]), str(loc[-1])
            message = f"unknown key {key!r}{_suggest(key, _fields_at(loc[:-1]))}"
            # The line of the unknown key itself, rather than of the table holding it.
            problems.append(Problem(where, message, line=index.find_line(list(loc))))
            continue
        if kind == "missing":
            where, key = _path(loc[:-1]), str(loc[-1])
            problems.append(Problem(where, f"missing required key {key!r}"))
            continue
        message = message.removeprefix("Value error, ").removeprefix("Assertion failed, ")
        if "input" in item and kind.endswith("_type"):
            message = f"{message} (got {_describe(item['input'])})"
        problems.append(Problem(_path(loc), message))
    return [index.locate(p) for p in problems]


def _path(loc: Sequence[int | str]) -> str:
    text = ""
    for part in loc:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text += f".{part}" if text else str(part)
    return text


def _fields_at(loc: Sequence[int | str]) -> list[str]:
    model: Any = CampaignFile
    for part in loc:
        if isinstance(part, int):
            continue
        if isinstance(model, type) and issubclass(model, BaseModel):
            field = model.model_fields.get(str(part))
            if field is None:
                # A dict entry such as accounts.NAME: the value type is the next model.
                continue
            model = _model_of(field.annotation)
        else:
            model = None
    if isinstance(model, type) and issubclass(model, BaseModel):
        return list(model.model_fields)
    return []


def _model_of(annotation: Any) -> Any:
    for candidate in (annotation, *getattr(annotation, "__args__", ())):
        if isinstance(candidate, type) and issubclass(candidate, BaseModel):
            return candidate
        inner = _model_of_args(candidate)
        if inner is not None:
            return inner
    return None


def _model_of_args(annotation: Any) -> Any:
    for arg in getattr(annotation, "__args__", ()):
        if isinstance(arg, type) and issubclass(arg, BaseModel):
            return arg
    return None


def _suggest(key: str, fields: list[str]) -> str:
    close = difflib.get_close_matches(key, fields, n=1, cutoff=0.6)
    if close:
        return f" (did you mean {close[0]!r}?)"
    if fields:
        return f"; known keys: {', '.join(fields)}"
    return ""


def _describe(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:39] + "…"


# -- locating a place in the TOML source ----------------------------------------------------

_HEADER = re.compile(r"^\s*(\[\[?)\s*([^\]]+?)\s*\]\]?\s*(?:#.*)?$")
_KEY = re.compile(r"""^\s*("[^"]*"|'[^']*'|[A-Za-z0-9_-]+)\s*(?:\.|=)""")


class SourceIndex:
    """The table headers and keys of a TOML source, scanned once, to find a place's line."""

    def __init__(self, source: str) -> None:
        self.lines = source.splitlines()
        self.headers: list[tuple[int, bool, list[str]]] = []
        for number, text in enumerate(self.lines):
            match = _HEADER.match(text)
            if match:
                names = [n.strip().strip("\"'") for n in match.group(2).split(".")]
                self.headers.append((number, match.group(1) == "[[", names))
        self._by_names: dict[tuple[str, ...], list[tuple[int, bool, list[str]]]] = {}
        for header in self.headers:
            self._by_names.setdefault(tuple(header[2]), []).append(header)
        self._positions = [h[0] for h in self.headers]

    def locate(self, problem: Problem) -> Problem:
        """``problem`` with its line filled in, when its place can be found."""
        if problem.line is not None or not problem.where:
            return problem
        line = self.find_line(_parse_where(problem.where))
        if line is None:
            return problem
        return Problem(problem.where, problem.message, problem.severity, line)

    def find_line(self, path: list[str | int]) -> int | None:
        """The 1-based line where ``path`` is written, as near as a line scanner can tell.

        Follows table headers (``[campaign]``, ``[accounts.alba]``, the n-th ``[[posts]]``)
        as deep as the path names them, then looks for the next key inside that section.
        """
        start, end = -1, self.headers[0][0] if self.headers else len(self.lines)
        found: int | None = None
        prefix: list[str] = []
        position = 0
        while position < len(path) and isinstance(path[position], str):
            chosen = None
            for depth in range(len(path) - position, 0, -1):
                names = path[position : position + depth]
                if not all(isinstance(n, str) for n in names):
                    continue
                inside = [
                    h
                    for h in self._by_names.get((*prefix, *map(str, names)), [])
                    if found is None or start < h[0] < end
                ]
                if not inside:
                    continue
                index = path[position + depth] if position + depth < len(path) else None
                if inside[0][1] and isinstance(index, int):
                    if index < len(inside):
                        chosen, position = inside[index], position + depth + 1
                else:
                    chosen, position = inside[0], position + depth
                break
            if chosen is None:
                break
            start = chosen[0]
            end = self._section_end(chosen)
            found = start + 1
            prefix = chosen[2]

        if position < len(path) and isinstance(path[position], str):
            key = str(path[position])
            for number in range(start + 1, end):
                match = _KEY.match(self.lines[number])
                if match and match.group(1).strip("\"'") == key:
                    return number + 1
        return found

    def _section_end(self, chosen: tuple[int, bool, list[str]]) -> int:
        """The line where the section opened by ``chosen`` ends (its sub-tables included)."""
        names = chosen[2]
        first = bisect.bisect_right(self._positions, chosen[0])
        for number, _array, other in self.headers[first:]:
            if other == names or other[: len(names)] != names:
                return number
        return len(self.lines)


def _parse_where(where: str) -> list[str | int]:
    parts: list[str | int] = []
    for name, index in re.findall(r"([^.\[\]]+)|\[(\d+)\]", where):
        parts.append(int(index) if index else name)
    return parts
