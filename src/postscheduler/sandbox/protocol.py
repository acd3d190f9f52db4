"""What passes between the HTTP handler and the sandbox's rules: parameters in, replies out.

:class:`Params` gives one view of a request's parameters whether they came in the query
string, a form-encoded body, a multipart body or a JSON body (Rails-style ``name[]`` lists
included). :class:`Reply` is an answer not yet written to the socket.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from postscheduler.sandbox.personalities import Answer

__all__ = ["Params", "Reply", "Upload"]

_TRUE = {"true", "1", "on", "yes", "t"}
_FALSE = {"false", "0", "off", "no", "f", ""}


@dataclass(frozen=True)
class Upload:
    """A file sent in a multipart body."""

    filename: str
    content_type: str
    data: bytes


class Params:
    """A request's parameters; later sources (the body) win over earlier ones (the query).

    Values are kept as received: strings from forms and query strings, any JSON value from
    JSON bodies. Accessors convert them.
    """

    def __init__(
        self,
        sources: Iterable[Mapping[str, Sequence[object]]] = (),
        files: Mapping[str, Upload] | None = None,
    ) -> None:
        self._values: dict[str, list[object]] = {}
        for source in sources:
            for name, values in source.items():
                self._values[name] = list(values)
        self._files = dict(files or {})

    @classmethod
    def from_json(cls, document: Mapping[str, object]) -> dict[str, list[object]]:
        """A JSON object as a parameter source (each value a one-element list)."""
        return {name: [value] for name, value in document.items()}

    def _raw(self, name: str) -> list[object]:
        for key in (name, f"{name}[]"):
            if key in self._values:
                return self._values[key]
        return []

    def text(self, name: str) -> str | None:
        """The first value of ``name`` as a string, or None when absent or null."""
        for value in self._raw(name):
            if value is None:
                return None
            if isinstance(value, bool):
                return "true" if value else "false"
            if isinstance(value, list):
                return str(value[0]) if value else None
            return str(value)
        return None

    def values(self, name: str) -> list[str]:
        """Every value of ``name`` or ``name[]`` (a JSON list is flattened), as strings."""
        found: list[str] = []
        for value in self._raw(name):
            if isinstance(value, list):
                found.extend(str(item) for item in value if item is not None)
            elif value is not None:
                found.append(str(value))
        return found

    def flag(self, name: str) -> bool | None:
        """``name`` as a boolean (``true``/``1``/``on``… or ``false``/``0``…), None if absent.

        Raises ``ValueError`` for a value that is neither.
        """
        for value in self._raw(name):
            if isinstance(value, bool):
                return value
            if value is None:
                return None
            word = str(value).strip().lower()
            if word in _TRUE:
                return True
            if word in _FALSE:
                return False
            raise ValueError(f"{name} is not a boolean: {value!r}")
        return None

    def file(self, name: str) -> Upload | None:
        """The file sent as ``name``, if any."""
        return self._files.get(name)


@dataclass
class Reply:
    """An HTTP answer: status, body, content type and extra headers."""

    status: int
    body: bytes = b""
    content_type: str = "application/json; charset=utf-8"
    headers: list[tuple[str, str]] = field(default_factory=list)

    @classmethod
    def json(cls, status: int, document: object, headers: Iterable[tuple[str, str]] = ()) -> Reply:
        """A JSON answer."""
        body = json.dumps(document, ensure_ascii=False).encode("utf-8")
        return cls(status, body, "application/json; charset=utf-8", list(headers))

    @classmethod
    def html(cls, status: int, page: str, headers: Iterable[tuple[str, str]] = ()) -> Reply:
        """An HTML answer."""
        return cls(status, page.encode("utf-8"), "text/html; charset=utf-8", list(headers))

    @classmethod
    def refusal(cls, answer: Answer, headers: Iterable[tuple[str, str]] = ()) -> Reply:
        """A server's refusal: ``{"error": message}``, or the bare message as HTML."""
        if answer.html:
            return cls.html(answer.status, answer.message, headers)
        return cls.json(answer.status, {"error": answer.message}, headers)

    def with_headers(self, headers: Iterable[tuple[str, str]]) -> Reply:
        """The same answer with ``headers`` added."""
        return Reply(self.status, self.body, self.content_type, [*self.headers, *headers])
