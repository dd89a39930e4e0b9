"""Text from a link, a CSV or a file name renders as itself: never a link, an image, markup, HTML or LaTeX."""

from __future__ import annotations

import re
import string
import tomllib
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from streamlit.testing.v1 import AppTest

from bayesdemo.core.data import DataConfig, Dataset, generate, parse_csv
from bayesdemo.core.exact import exact_posterior
from bayesdemo.core.markup import OUT_OF_RANGE, SINGULAR, escape_markdown
from bayesdemo.core.priors import Model
from bayesdemo.core.scenario import Scenario
from bayesdemo.core.validation import ConfigError
from bayesdemo.page import explore
from bayesdemo.references.mean_field import mean_field_optimum
from bayesdemo.references.parameter_space import centred
from bayesdemo.teaching import explain

APP = str(Path(__file__).resolve().parent.parent / "app.py")
TIMEOUT_S = 60  # AppTest's default of 3 s is too short for a first run that imports torch and pyro
LINK = "[Get the exam answers](https://evil.example/x)"
IMAGE = "![x](https://evil.example/pix.png)"
# CommonMark's line endings (\r, \n), and the line and paragraph separators, vertical tab, form feed and next line that
# other renderers may break at: a new line could start a heading, a list, a table or a link definition.
LINE_BREAKS = "\r\n\u2028\u2029\x0b\x0c\x85"
# Markup wherever they stand: links and images, emphasis, code, headings, tables, HTML and entities, LaTeX, the @ of an
# e-mail address (autolinked), the backslash.
ANYWHERE = "\\`*[]()!<>#|~$&@"
HOSTILE = [
    LINK,
    IMAGE,
    "[answers][1]\n\n[1]: https://evil.example/x",  # a reference-style link, its definition on a new line
    "<https://evil.example/x>",  # an autolink
    "https://evil.example/x and www.evil.example",  # bare URLs that GitHub-flavoured Markdown links by itself
    "<img src=x onerror=alert(1)>",
    "**bold** _it_ ~~gone~~ `code`",
    "# Heading\n---\n| a | b |\n|---|---|",
    "$\\href{https://evil.example}{click}$",  # LaTeX between $ signs, as Streamlit renders it
    ":red[alarm] :material/warning: :skull:",  # Streamlit's colour and icon directives
    "a\\[b](c)",  # a backslash of its own must not cancel the escape that follows
    "line one\r\nline two\u2028three",
    "- item",
    "1. first",
    "mail me@evil.example, www.evil.example, WWW.EVIL.EXAMPLE",
    "_emphasis_ and __strong__ but noise_sd and x_max stay",
]


def commonmark_literal(markdown: str) -> str | None:
    """The text `markdown` shows, or None when a character of it could act as markup.

    CommonMark shows a backslash before ASCII punctuation as that character. Unescaped, each of ANYWHERE starts
    markup; so does an underscore unless a letter or digit stands on each side (intraword, it opens no emphasis),
    "www." and a colon before a slash (a bare URL, autolinked), a colon opening a :code: (Streamlit's emoji and
    :material/icon:), a line break, and -, +, = or "12." at the start of the text (a list or a heading).
    """
    if re.match(r"\s*([-+=]|\d+\.)", markdown) or "www." in markdown.lower():
        return None
    shown, index = [], 0
    while index < len(markdown):
        char = markdown[index]
        if char == "\\":
            if index + 1 == len(markdown) or markdown[index + 1] not in string.punctuation:
                return None
            shown.append(markdown[index + 1])
            index += 2
            continue
        intraword = 0 < index < len(markdown) - 1 and all(
            neighbour.isascii() and neighbour.isalnum() for neighbour in markdown[index - 1 : index + 2 : 2]
        )
        opens_code = char == ":" and re.match(r"/|[A-Za-z0-9_+/-]+:", markdown[index + 1 :])
        if char in ANYWHERE or char in LINE_BREAKS or (char == "_" and not intraword) or opens_code:
            return None
        shown.append(char)
        index += 1
    return "".join(shown)


def one_line(text: str) -> str:
    """`text` as it is shown: each run of line breaks one space."""
    shown, after_break = [], False
    for char in text:
        if char not in LINE_BREAKS:
            shown.append(char)
        elif not after_break:
            shown.append(" ")
        after_break = char in LINE_BREAKS
    return "".join(shown)


@pytest.mark.parametrize("text", HOSTILE)
def test_hostile_text_is_shown_as_itself_without_markup(text):
    escaped = escape_markdown(text)
    assert commonmark_literal(escaped) == one_line(text)
    assert "https://" not in escaped and "](" not in escaped.replace("\\](", "")


@settings(max_examples=200, deadline=None, derandomize=True)
@given(text=st.text(alphabet=st.characters(codec="utf-8"), max_size=60) | st.text(string.printable, max_size=60))
def test_any_text_is_shown_as_itself_on_one_line(text):
    assert commonmark_literal(escape_markdown(text)) == one_line(text)


def test_error_messages_quoting_a_csv_header_are_escaped_for_the_page():
    with pytest.raises(ConfigError) as caught:
        parse_csv(f"{LINK},y\n1,2\n3,4\n".encode())
    message = explore.describe_error(caught.value)
    quoted = message.split("**: ", 1)[1]  # after the widget's name, which is the page's own bold label
    assert commonmark_literal(quoted) == str(caught.value)


def test_an_uploaded_file_name_in_the_explain_text_is_not_markup():
    generated = generate(DataConfig())
    dataset = Dataset(generated.x, generated.y, source=IMAGE)
    scenario = Scenario()
    sections = explain.sections(exact_posterior(dataset, scenario.model), dataset, scenario, {})
    text = " ".join(body for kind, body in sections if kind == "markdown")
    assert escape_markdown(IMAGE) in text and IMAGE not in text and "https://" not in text


@pytest.mark.parametrize("value", [LINK, IMAGE])
def test_a_link_value_shows_in_the_warning_as_text_not_as_a_link_or_an_image(value):
    page = AppTest.from_file(APP, default_timeout=TIMEOUT_S)
    page.query_params.update({"m": value})
    page.run()
    assert not page.exception, [e.value for e in page.exception]
    (warning,) = [w.value for w in page.warning if w.value.startswith("Shared link")]
    assert_no_link_or_image(warning)


def assert_no_link_or_image(markdown: str) -> None:
    """No unescaped [, ], (, ), !, < or > anywhere (so no link, image or autolink), and no bare URL to autolink."""
    for position, char in enumerate(markdown):
        if char in "[]()!<>":
            assert markdown[position - 1] == "\\", (char, position, markdown)
    assert "https://" not in markdown and "evil" in markdown


def test_an_uploaded_file_name_and_its_header_cells_show_as_text():
    page = AppTest.from_file(APP, default_timeout=TIMEOUT_S)
    page.run()
    page.file_uploader(key="upload").set_value((f"{LINK}.csv", f"{IMAGE},y\n1,2\n3,4\n".encode(), "text/csv")).run()
    assert not page.exception, [e.value for e in page.exception]
    (error,) = [e.value for e in page.error if "CSV upload" in e.value]
    assert_no_link_or_image(error)
    page.file_uploader(key="upload").set_value((f"{IMAGE}.csv", b"x,y\n1,2\n3,4\n2,5\n", "text/csv")).run()
    assert not page.exception and not page.error, [e.value for e in page.error]
    (caption,) = [c.value for c in page.caption if "n = 3" in c.value]
    assert_no_link_or_image(caption.split("data: ", 1)[1])  # the caption's own words before it have parentheses


def test_a_singular_matrix_is_told_in_a_plain_sentence_whose_cure_works():
    # x near 1e15 with a spread of 4 and a small noise sd: the mean-field optimum's solve is singular in float64.
    dataset = Dataset(1e15 - np.arange(5.0), np.arange(5.0))
    model = Model(noise_sd=1e-3)
    with pytest.raises(ValueError) as caught:
        mean_field_optimum(dataset, model)
    message = explore.describe_error(caught.value)
    assert "Singular matrix" not in message and "**value**" not in message
    assert message == SINGULAR and "Centre x" in message
    optimum = mean_field_optimum(centred(dataset), model)  # the cure the message names
    assert np.all(np.isfinite(optimum.q.mean))


def test_any_other_error_without_a_field_is_told_in_a_plain_sentence():
    message = explore.describe_error(ValueError("Expected value argument (Tensor of shape (96,)) to be within"))
    assert message == OUT_OF_RANGE


def test_the_upload_help_gives_the_limit_in_the_uploaders_unit():
    page = AppTest.from_file(APP, default_timeout=TIMEOUT_S)
    page.run()
    (uploader,) = page.get("file_uploader")
    config = tomllib.loads((Path(APP).parent / ".streamlit" / "config.toml").read_text())
    assert uploader.proto.max_upload_size_mb == config["server"]["maxUploadSize"]
    assert f"At most {config['server']['maxUploadSize']} MB." in uploader.proto.help
