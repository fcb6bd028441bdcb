"""Lesson text: Markdown (CommonMark + tables) to HTML on the server, safe for untrusted authors.

- Raw HTML in the source is shown as text (``html: False``), never passed through.
- Links and images may point to ``http(s):``, ``mailto:`` (links), ``data:image/…`` (images),
  or be relative; anything else (``javascript:``, ``vbscript:``, ``file:``…) stays plain text.
  External links get ``rel="noopener noreferrer"``.
- Fenced code is highlighted by Pygments with CSS classes only (``.highlight .k`` … in
  ``portal.css``), never inline styles, which the portal's CSP would block.
- ``$…$`` and ``$$…$$`` are maths, turned into MathML by latex2mathml. Its output is rebuilt
  from its element tree through an allow-list of MathML elements and attributes (latex2mathml
  passes ``\\text{<script>}`` and ``\\href{javascript:…}`` through as they are). A formula that
  does not convert is shown as code.
- Table column alignment becomes ``class="align-left|center|right"`` instead of a ``style``
  attribute; header cells get ``scope="col"``.
- Headings can be moved down (``heading_offset``) so that a lesson's ``# Title`` sits under the
  page's own ``<h1>``.
"""

from __future__ import annotations

import html
import logging
import re
from typing import Any
from urllib.parse import urlsplit
from xml.etree.ElementTree import Element

from latex2mathml.converter import convert_to_element
from markdown_it import MarkdownIt
from markdown_it.rules_core import StateCore
from mdit_py_plugins.dollarmath import dollarmath_plugin
from pygments import highlight
from pygments.formatters import HtmlFormatter
from pygments.lexers import get_lexer_by_name
from pygments.util import ClassNotFound

log = logging.getLogger("lmsd.portal.markdown")

MATHML_ELEMENTS = frozenset({
    "math", "mrow", "mi", "mn", "mo", "ms", "mtext", "mspace", "msup", "msub", "msubsup", "mfrac", "msqrt",
    "mroot", "mstyle", "mtable", "mtr", "mtd", "mlabeledtr", "mover", "munder", "munderover", "menclose",
    "mpadded", "mphantom", "merror", "mmultiscripts", "mprescripts", "none", "semantics", "maligngroup",
    "malignmark",
})
# presentation attributes only: no href, no style, no colours (contrast is the page's business)
MATHML_ATTRIBUTES = frozenset({
    "display", "mathvariant", "stretchy", "fence", "separator", "lspace", "rspace", "accent", "accentunder",
    "movablelimits", "largeop", "symmetric", "minsize", "maxsize", "columnalign", "rowalign", "columnspacing",
    "rowspacing", "columnlines", "rowlines", "frame", "framespacing", "displaystyle", "scriptlevel",
    "linethickness", "width", "height", "depth", "voffset", "notation", "form", "columnspan", "rowspan",
    "equalrows", "equalcolumns", "align", "side",
})
_ATTRIBUTE_VALUE = re.compile(r"^[A-Za-z0-9 .,:%+\-#]*$")
_LINK_SCHEMES = ("http", "https", "mailto")
_IMAGE_DATA = re.compile(r"^data:image/(gif|png|jpeg|webp);", re.IGNORECASE)
_FORMATTER = HtmlFormatter(nowrap=True)
MAX_FORMULA = 4000


def _mathml_node(node: Element, out: list[str]) -> None:
    tag = node.tag if isinstance(node.tag, str) else ""
    keep = tag in MATHML_ELEMENTS
    if keep:
        attrs = "".join(
            f' {name}="{html.escape(value, quote=True)}"'
            for name, value in sorted(node.attrib.items())
            if name in MATHML_ATTRIBUTES and _ATTRIBUTE_VALUE.match(value)
        )
        if tag == "math":
            attrs = ' xmlns="http://www.w3.org/1998/Math/MathML"' + attrs
        out.append(f"<{tag}{attrs}>")
    if node.text:
        # latex2mathml writes symbols as character references in the text (&#x0222B;): decode
        # them, then escape everything, whatever the author typed
        out.append(html.escape(html.unescape(node.text), quote=False))
    for child in node:
        _mathml_node(child, out)
    if keep:
        out.append(f"</{tag}>")
    if node.tail:
        out.append(html.escape(html.unescape(node.tail), quote=False))


def mathml(latex: str, display: bool) -> str:
    """The formula as sanitised MathML, or the source as escaped code if it does not convert."""
    try:
        if len(latex) > MAX_FORMULA:
            raise ValueError("formula too long")
        tree = convert_to_element(latex, display="block" if display else "inline")
        out: list[str] = []
        _mathml_node(tree, out)
        return "".join(out)
    except Exception as exc:  # latex2mathml raises many kinds on bad input; none may break the page
        log.debug("formula did not convert: %s", exc)
        return f'<code class="math-error">{html.escape(latex)}</code>'


def _math_renderer(content: str, options: dict[str, Any]) -> str:
    return mathml(content, bool(options.get("display_mode")))


def _highlight(code: str, lang: str, _attrs: str) -> str:
    name = (lang or "").strip().split()[0] if (lang or "").strip() else ""
    try:
        lexer = get_lexer_by_name(name) if name else None
    except ClassNotFound:
        lexer = None
    language = f' class="language-{html.escape(name, quote=True)}"' if name else ""
    inner = highlight(code, lexer, _FORMATTER) if lexer is not None else html.escape(code)
    return f'<pre class="highlight"><code{language}>{inner}</code></pre>'


def _validate_link(url: str) -> bool:
    text = url.strip()
    parts = urlsplit(text)
    if not parts.scheme:
        return ":" not in text.split("/", 1)[0] or text.startswith(("/", "#", "?", "."))
    if parts.scheme.lower() in _LINK_SCHEMES:
        return True
    return bool(_IMAGE_DATA.match(text))


def _fix_tokens(offset: int) -> Any:
    def rule(state: StateCore) -> None:
        for token in state.tokens:
            if token.type in ("heading_open", "heading_close") and offset:
                level = min(6, int(token.tag[1]) + offset)
                token.tag = f"h{level}"
            if token.type in ("th_open", "td_open"):
                style = str(token.attrs.pop("style", "") or "")
                found = re.search(r"text-align:\s*(left|center|right)", style)
                if found:
                    token.attrSet("class", f"align-{found.group(1)}")
                if token.type == "th_open":
                    token.attrSet("scope", "col")
            for child in token.children or []:
                if child.type == "link_open":
                    href = str(child.attrGet("href") or "")
                    if href.startswith("data:"):
                        child.attrSet("href", "#")  # data: is for images only
                    elif urlsplit(href).scheme:
                        child.attrSet("rel", "noopener noreferrer")
                elif child.type == "image":
                    src = str(child.attrGet("src") or "")
                    if urlsplit(src).scheme.lower() == "mailto":
                        child.attrSet("src", "")
    return rule


def _parser(offset: int) -> MarkdownIt:
    md = MarkdownIt("commonmark", {"html": False, "highlight": _highlight}).enable("table")
    md.validateLink = _validate_link  # type: ignore[method-assign]
    dollarmath_plugin(md, allow_labels=False, allow_space=False, allow_digits=False, renderer=_math_renderer)
    md.core.ruler.push("lmsd_fix_tokens", _fix_tokens(offset))
    return md


_PARSERS: dict[int, MarkdownIt] = {}


def render(source: str, heading_offset: int = 0) -> str:
    """Lesson Markdown as HTML, safe to put in a page as it is."""
    offset = max(0, min(5, heading_offset))
    md = _PARSERS.get(offset)
    if md is None:
        md = _PARSERS[offset] = _parser(offset)
    html: str = md.render(source)
    return html

