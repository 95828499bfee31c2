"""Untrusted text shown as text: the one place that escapes what models, speakers, uploads, ffmpeg and
Pillow wrote before it goes into a ``gr.Markdown`` or a toast.

Gradio's Markdown (marked, GFM) turns ``[a](b)``, ``![a](b)``, ``# x``, ``*x*``, backticks, ``|`` tables,
``>`` quotes, ``1.`` lists, HTML tags and bare ``http://`` / ``www.`` / ``a@b.c`` into markup.
``escape_markdown`` backslash-escapes every ASCII punctuation character (CommonMark: an escaped
character is always literal text), so none of that can form; text stays readable for API clients.
LaTeX is the exception: KaTeX runs on the rendered page, after the backslashes are gone, so components
that show untrusted text switch it off with ``UNTRUSTED_MARKDOWN`` options (``latex_delimiters=[]``).

Toasts (``gr.Error``, ``gr.Info``) render their message as sanitised HTML, not Markdown:
``escape_html`` is for those.
"""

from __future__ import annotations

import html
import re
import string

# Options for every gr.Markdown that shows untrusted text (see the module docstring for why).
UNTRUSTED_MARKDOWN = {"latex_delimiters": []}

# Gradio's Markdown swaps "%%%LATEX_BLOCK_<n>%%%" for a stored LaTeX block in the rendered HTML (even
# with LaTeX off); a character reference keeps a typed "%" out of that pattern and still shows "%".
_PERCENT = "&#37;"
_ESCAPES = {character: "\\" + character for character in string.punctuation}
_ESCAPES["%"] = _PERCENT
_LINE_ENDINGS = re.compile(r"\r\n?|\n")


def escape_markdown(text: object, *, one_line: bool = False) -> str:
    """``text`` as Markdown that renders to exactly that text, with no markup of its own.

    Line breaks inside the text become hard line breaks (a backslash before the newline), so no line
    can start a block (heading, list, quote, code, table); with ``one_line`` (for a heading, which
    cannot span lines) they become spaces. Whitespace at either end is dropped: a hard break there
    would show as a stray backslash, and leading spaces could turn the surrounding ``**...**`` into
    literal asterisks."""
    escaped = ("".join(_ESCAPES.get(character, character) for character in line)
               for line in _LINE_ENDINGS.split(str(text).strip()))
    return (" " if one_line else "\\\n").join(escaped)


def escape_html(text: object) -> str:
    """``text`` for a toast (``gr.Error``, ``gr.Info``, ``gr.Warning``), whose message is rendered as HTML."""
    return html.escape(str(text), quote=False)
