"""HTML the sandbox writes: a status's ``content``, the timeline, and the OAuth pages.

``content`` follows Mastodon's plain-text formatter: the text is HTML-escaped; URLs,
hashtags and mentions of local accounts become links; paragraphs (split on blank lines) are
wrapped in ``<p>`` and single newlines become ``<br />`` (Rails' ``simple_format``).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence

from postscheduler.sandbox.model import Account, Status, iso_time
from postscheduler.sandbox.text import find_entities

__all__ = [
    "authorize_page",
    "content_html",
    "escape",
    "message_page",
    "status_page",
    "timeline_page",
]

_ESCAPES = {"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;"}
_URL_PREFIX = re.compile(r"\Ahttps?://(?:www\.)?")
_URL_DISPLAY_LENGTH = 30


def escape(text: str) -> str:
    """``text`` with ``& < > " '`` escaped as Rails' ``h`` does."""
    return "".join(_ESCAPES.get(character, character) for character in text)


def _link_url(url: str) -> str:
    prefix = _URL_PREFIX.match(url)
    scheme = prefix.group() if prefix else ""
    rest = url[len(scheme) :]
    shown, hidden = rest[:_URL_DISPLAY_LENGTH], rest[_URL_DISPLAY_LENGTH:]
    ellipsis = "ellipsis" if hidden else ""
    return (
        f'<a href="{escape(url)}" target="_blank" rel="nofollow noopener" translate="no">'
        f'<span class="invisible">{escape(scheme)}</span>'
        f'<span class="{ellipsis}">{escape(shown)}</span>'
        f'<span class="invisible">{escape(hidden)}</span></a>'
    )


def _link_hashtag(name: str, base_url: str) -> str:
    return (
        f'<a href="{escape(base_url)}/tags/{escape(name.lower())}" class="mention hashtag" '
        f'rel="tag">#<span>{escape(name)}</span></a>'
    )


def _link_mention(account: Account, base_url: str) -> str:
    return (
        f'<span class="h-card" translate="no"><a href="{escape(base_url)}/@'
        f'{escape(account.username)}" class="u-url mention">@<span>'
        f"{escape(account.username)}</span></a></span>"
    )


def _simple_format(html: str) -> str:
    html = html.replace("\r\n", "\n").replace("\r", "\n")
    paragraphs = re.split(r"\n\n+", html)
    formatted = (re.sub(r"([^\n]\n)(?=[^\n])", r"\1<br />", p) for p in paragraphs)
    return "".join(f"<p>{p}</p>" for p in formatted).replace("\n", "")


def content_html(
    text: str, base_url: str, resolve: Callable[[str, str | None], Account | None]
) -> tuple[str, list[Account], list[str]]:
    """The HTML of ``text``, the local accounts it mentions, and its hashtags (lower case).

    ``resolve(username, domain)`` returns the local account a mention names, or None: a
    mention of an unknown account stays plain text, as on a server that cannot resolve it.
    """
    pieces: list[str] = []
    mentions: list[Account] = []
    tags: list[str] = []
    position = 0
    for entity in find_entities(text):
        link = None
        if entity.kind == "url":
            link = _link_url(entity.value)
        elif entity.kind == "hashtag":
            link = _link_hashtag(entity.value, base_url)
            if entity.value.lower() not in tags:
                tags.append(entity.value.lower())
        else:
            account = resolve(entity.value, entity.domain)
            if account is not None:
                link = _link_mention(account, base_url)
                if account not in mentions:
                    mentions.append(account)
        if link is None:
            continue
        pieces.append(escape(text[position : entity.start]))
        pieces.append(link)
        position = entity.end
    pieces.append(escape(text[position:]))
    return _simple_format("".join(pieces)), mentions, tags


_STYLE = """
body { font-family: sans-serif; max-width: 42em; margin: 2em auto; color: #222; }
article { border-bottom: 1px solid #ccc; padding: 1em 0; }
header { color: #555; font-size: 0.9em; }
figure { margin: 0.5em 0; } img, video { max-width: 100%; }
figcaption { font-size: 0.85em; color: #555; }
.invisible { display: none; } .ellipsis::after { content: "…"; }
"""


def _page(title: str, body: str) -> str:
    return (
        '<!DOCTYPE html>\n<html><head><meta charset="utf-8">'
        f"<title>{escape(title)}</title><style>{_STYLE}</style></head>"
        f"<body>{body}</body></html>\n"
    )


def _status_article(status: Status, base_url: str, domain: str) -> str:
    user = status.account.username
    url = f"{base_url}/@{user}/{status.id}"
    header = (
        f"<header><strong>@{escape(user)}@{escape(domain)}</strong> · "
        f'<a href="{escape(url)}"><time datetime="{iso_time(status.created_at)}">'
        f"{iso_time(status.created_at)}</time></a> · {escape(status.visibility)}"
    )
    if status.language:
        header += f" · {escape(status.language)}"
    if status.in_reply_to is not None:
        parent = status.in_reply_to
        header += (
            f' · in reply to <a href="#status-{escape(parent.id)}">'
            f"@{escape(parent.account.username)}/{escape(parent.id)}</a>"
        )
    header += "</header>"
    figures = []
    for media in status.media:
        source = f"{base_url}/media/{media.id}/{media.filename}"
        if media.kind in ("video", "gifv"):
            element = (
                f'<video controls src="{escape(source)}" '
                f'aria-label="{escape(media.description)}"></video>'
            )
        elif media.kind == "audio":
            element = f'<audio controls src="{escape(source)}"></audio>'
        else:
            element = f'<img src="{escape(source)}" alt="{escape(media.description)}">'
        caption = escape(media.description) if media.description else "<em>no alt text</em>"
        figures.append(f"<figure>{element}<figcaption>{caption}</figcaption></figure>")
    body = status.content + "".join(figures)
    if status.spoiler_text:
        body = f"<details><summary>{escape(status.spoiler_text)}</summary>{body}</details>"
    return f'<article id="status-{escape(status.id)}">{header}{body}</article>'


def timeline_page(title: str, statuses: Sequence[Status], base_url: str, domain: str) -> str:
    """The public timeline as followers would see it: ``statuses`` in the given order."""
    articles = "".join(_status_article(s, base_url, domain) for s in statuses)
    if not articles:
        articles = "<p>Nothing has been published yet.</p>"
    return _page(title, f"<h1>{escape(title)}</h1>{articles}")


def status_page(status: Status, base_url: str, domain: str) -> str:
    """One status on a page of its own (the target of its ``url``)."""
    return _page(f"@{status.account.username}", _status_article(status, base_url, domain))


def authorize_page(code: str, app_name: str, username: str) -> str:
    """The out-of-band authorization page: it shows the code to paste into the app."""
    body = (
        "<h1>Authorization code</h1>"
        f"<p>{escape(app_name)} may now act as @{escape(username)}. "
        "Copy this code and paste it into the application.</p>"
        f'<input class="oauth-code" readonly type="text" value="{escape(code)}">'
        f'<p><code id="authorization-code">{escape(code)}</code></p>'
    )
    return _page("Authorization code", body)


def message_page(title: str, message: str) -> str:
    """A small page with a title and one message (errors of the OAuth pages)."""
    return _page(title, f"<h1>{escape(title)}</h1><p>{escape(message)}</p>")
