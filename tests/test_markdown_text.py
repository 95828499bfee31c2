"""Untrusted text shown as text: ``ui.markdown_text`` checked with a CommonMark renderer (markdown-it-py,
with GFM tables and strikethrough) and the answer formatters of both tabs. The real check, gradio's own
Markdown in a browser, is in tests/test_untrusted_text.py.

    .venv/bin/python -m pytest -q tests/test_markdown_text.py
"""

from __future__ import annotations

import re
from html.parser import HTMLParser
from types import SimpleNamespace

import pytest
from markdown_it import MarkdownIt

from ui.markdown_text import escape_html, escape_markdown

# (hostile text, an element it becomes when rendered unescaped)
MARKUP = [
    ("[click](http://evil.example)", "a"),
    ("![x](http://evil.example/x.png)", "img"),
    ("# Heading", "h1"),
    ("Title\n===", "h1"),
    ("<script>window.__pwned=1</script>", "script"),
    ('<img src=x onerror="window.__pwned=2">', "img"),
    ("<http://auto.example>", "a"),
    ("[ref]\n\n[ref]: http://evil.example", "a"),
    ("**bold** and _em_", "strong"),
    ("`code`", "code"),
    ("```\nfenced\n```", "pre"),
    ("    indented code", "pre"),
    ("| a | b |\n|---|---|\n| 1 | 2 |", "table"),
    ("> quoted", "blockquote"),
    ("1. one\n2. two", "ol"),
    ("- item", "ul"),
    ("~~gone~~", "s"),
    ("text\n\n<div onclick=x>block html</div>", "div"),
    ("said:\n---", "h2"),
]
# Text that CommonMark leaves alone but gradio's Markdown (marked + GFM, KaTeX, its LaTeX placeholders)
# would not, plus edge cases of the escaping itself.
PLAIN_IN_COMMONMARK = [
    "$\\frac{1}{2}$ and $$x^2$$ and \\(a\\) \\[b\\]",
    "http://bare.example www.bare.example mail@evil.example",
    "%%%LATEX_BLOCK_0%%%",
    "&amp; &lt;b&gt; &#60;script&#62; &copy;",
    "ends with a backslash\\",
    "\\*not emphasis\\* C:\\Users\\x",
    "tabs\tand  two spaces",
    "a\r\nb\rc\n\n\nd",
    "naïve – «quoted» 😀 ０１２",
    "  \n surrounding whitespace \n\t",
    "",
]
EVERYTHING = [text for text, _ in MARKUP] + PLAIN_IN_COMMONMARK


class _Parts(HTMLParser):
    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.tags: list[str] = []
        self.text = ""

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)

    def handle_data(self, data):
        self.text += data


def parts(html: str) -> _Parts:
    parser = _Parts()
    parser.feed(html)
    parser.close()
    return parser


def render(markdown: str) -> str:
    return MarkdownIt("commonmark").enable(["table", "strikethrough"]).render(markdown)


def shown(text: str) -> str:
    """What a renderer shows for ``text`` as plain lines: line endings as "\\n", each line trimmed
    (a paragraph's continuation lines lose their indentation), the ends trimmed."""
    return "\n".join(line.strip() for line in re.split(r"\r\n?|\n", text.strip()))


@pytest.mark.parametrize("text, element", MARKUP)
def test_the_hostile_strings_are_markup_when_not_escaped(text, element):
    assert element in parts(render(text)).tags


@pytest.mark.parametrize("text", EVERYTHING)
def test_escaped_text_renders_as_exactly_that_text(text):
    rendered = parts(render(escape_markdown(text)))
    assert set(rendered.tags) <= {"p", "br"}, rendered.tags
    assert rendered.text.strip() == shown(text)


@pytest.mark.parametrize("text", EVERYTHING)
def test_escaped_text_has_nothing_gradio_would_turn_into_markup(text):
    """Gradio's Markdown runs KaTeX when the source contains "$$", swaps "%%%LATEX_BLOCK_<n>%%%" for a
    stored block, and (GFM) links bare URLs: none of these may survive in the escaped source."""
    escaped = escape_markdown(text)
    for pattern in ("$$", "%%%", "://", "www.", "mail@"):
        assert pattern not in escaped


def test_one_line_text_has_no_line_break():
    text = "Title\n===\r\n# h"
    assert escape_markdown(text, one_line=True) == "Title \\=\\=\\= \\# h"
    assert parts(render("## " + escape_markdown(text, one_line=True))).tags == ["h2"]


def test_a_line_can_never_start_a_block():
    text = "first\n# h\n> q\n- l\n1) n\n    code\n| t |\n<div>"
    escaped = escape_markdown(text)
    assert escaped.count("\\\n") == text.count("\n")  # every break is a hard line break in one paragraph
    assert render(escaped).count("<p>") == 1


def _image_result(**hostile):
    fields = dict(label="awe", confidence=1.0, answer="Predicted emotion: awe. Reason: calm.", basis="model answer",
                  backend="openai: m at http://127.0.0.1:1/v1", notes=[], abstained="", limits=[], reason_note="",
                  answer_notes=[])
    return SimpleNamespace(**{**fields, **hostile})


def _video_result(**hostile):
    fields = dict(label="happy", confidence=0.5, reason="smiles.", basis="model answer", reason_note="written by m",
                  backend="m", notes=[], limits=[])
    return SimpleNamespace(**{**fields, **hostile})


def _formatted(kind: str, result) -> str:
    if kind == "image":
        from ui.render import answer_markdown

        return answer_markdown(result)
    from ui.video_tab import _answer_markdown

    return _answer_markdown(result, streaming=False)


HOSTILE = [text for text, _ in MARKUP[:8]] + ["$$x^2$$", "%%%LATEX_BLOCK_0%%%", "&amp;"]


@pytest.mark.parametrize("kind, field", [("image", "answer"), ("image", "basis"), ("image", "backend"),
                                         ("image", "label"), ("image", "notes"), ("video", "reason"),
                                         ("video", "basis"), ("video", "reason_note"), ("video", "backend"),
                                         ("video", "label"), ("video", "notes")])
def test_answers_show_every_untrusted_field_as_text(kind, field):
    make = _image_result if kind == "image" else _video_result
    for text in HOSTILE:
        value = [text, "second note"] if field == "notes" else text
        rendered = parts(render(_formatted(kind, make(**{field: value}))))
        assert set(rendered.tags) <= {"h2", "p", "strong", "em", "br"}, (text, rendered.tags)
        assert rendered.tags.count("h2") == 1
        expected = " ".join(shown(text).split("\n")) if field == "label" else shown(text)  # a heading: one line
        assert expected in rendered.text, (text, rendered.text)


def test_toast_text_shows_html_as_text():
    text = "<img src=http://evil.example/x.png> <a href='http://evil.example'>x</a> &amp; it's <b>"
    escaped = escape_html(text)
    assert parts(escaped).tags == [] and parts(escaped).text == text


def test_user_errors_escape_the_message_of_a_typed_error():
    import gradio as gr

    from emo_core.errors import InvalidInputError
    from ui.errors import user_errors

    message = "the server answered (400: <img src=http://evil.example/x.png> & <script>x()</script>)"

    def handler():
        raise InvalidInputError(message)

    def streaming():
        yield 1
        raise InvalidInputError(message)

    for wrapped in (user_errors(handler), lambda: list(user_errors(streaming)())):
        with pytest.raises(gr.Error) as caught:
            wrapped()
        assert parts(caught.value.message).tags == []
        # shown as text, with the URL hidden like every server address (``redact_paths``)
        assert parts(caught.value.message).text == f"Cannot analyse this input: {message}".replace(
            "http://evil.example/x.png", "<server>")
