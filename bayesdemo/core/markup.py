"""Messages for the page: text from outside the program (link values, CSV cells, file names) made safe to show as
Markdown, and plain sentences for numerical failures that name no field."""

from __future__ import annotations

import re

import numpy as np

# Characters that start Markdown, HTML, LaTeX or Streamlit markup anywhere in a line: links and images ([ ] ( ) !),
# emphasis and strikethrough (* _ ~), code (`), headings (#), tables (|), raw HTML, autolinks and entities (< > &),
# LaTeX ($), e-mail autolinks (@), the backslash itself (a backslash of the text's own must not cancel the escape that
# follows), the colon of https:// and the dot of "www." (GitHub-flavoured Markdown links bare URLs), and the opening
# colon of Streamlit's :emoji: and :material/icon: codes. CommonMark shows a backslash before ASCII punctuation as
# that character. An underscore between two letters or digits (noise_sd) opens no emphasis and is left as it is; so is
# any other colon (Streamlit's :colour[...] needs the bracket, escaped already).
MARKUP = re.compile(r"[\\`*\[\]()!<>#|~$&@]|:(?=/|[\w+/-]+:)|_(?![A-Za-z0-9])|(?<![A-Za-z0-9])_|(?i:(?<=www)\.)")
LINE_START = re.compile(r"^(\s*)(?=[-+=])|^(\s*\d{1,9})(?=\.)")  # a list item, setext underline, ordered list
LINE_BREAKS = re.compile(r"[\r\n\u2028\u2029\x0b\x0c\x85]+")


def escape_markdown(text: object) -> str:
    """`str(text)` as Markdown that renders as these characters on one line: no link, image, markup, HTML or LaTeX.

    Every run of line breaks becomes one space (a new line could start a heading, list, table or link definition);
    markup characters get a backslash before them.
    """
    one_line = LINE_BREAKS.sub(" ", str(text))
    escaped = MARKUP.sub(lambda match: "\\" + match.group(0), one_line)
    return LINE_START.sub(lambda match: match.group(0) + "\\", escaped, count=1)


SINGULAR = (
    "These data are numerically too extreme for this computation: a matrix it inverts is singular in floating point, "
    "as when x lies far from 0 compared with its spread. Centre x (subtract its mean) and try again."
)
OUT_OF_RANGE = (
    "This computation failed on these data and settings: a number left the range it can handle. Rescale x or y, "
    "or change the prior or the noise sd."
)


def failure_sentence(error: BaseException) -> str:
    """A plain sentence for an error that names no field (numpy's "Singular matrix", torch's support checks, ...)."""
    return SINGULAR if isinstance(error, np.linalg.LinAlgError) else OUT_OF_RANGE
