"""Lesson Markdown to HTML: CommonMark with tables, highlighted code (classes, no styles), maths
as MathML, and nothing an author could use to run script in a learner's browser."""

from __future__ import annotations

import re

from lmsd.portal.markdown import mathml, render


def test_headings_paragraphs_and_tables() -> None:
    html = render("# Title\n\n## Part\n\nSome *text*.\n\n| a | b |\n|:-|-:|\n| 1 | 2 |\n")
    assert "<h1>Title</h1>" in html and "<h2>Part</h2>" in html and "<em>text</em>" in html
    assert '<th class="align-left" scope="col">a</th>' in html and '<td class="align-right">2</td>' in html
    assert "style=" not in html
    # below a page's own h1: every heading one level down, never past h6
    shifted = render("# Title\n\n###### Deep\n", heading_offset=1)
    assert "<h2>Title</h2>" in shifted and "<h6>Deep</h6>" in shifted and "<h1>" not in shifted


def test_fenced_code_is_highlighted_with_classes() -> None:
    html = render("```python\ndef f(x):\n    return x  # done\n```\n")
    assert html.startswith('<pre class="highlight"><code class="language-python">')
    assert '<span class="k">def</span>' in html and '<span class="c1"># done</span>' in html
    assert "style=" not in html
    # an unknown language is plain escaped code; the info string cannot break out of the attribute
    html = render('```no"such <b>\n<i>x</i>\n```\n')
    assert "&lt;i&gt;x&lt;/i&gt;" in html and "<i>" not in html and '"such' not in html


def test_inline_and_block_maths_become_mathml() -> None:
    html = render("Inline $x^2 + y^2$ here.\n\n$$\n\\frac{a}{b}\n$$\n")
    assert '<span class="math inline"><math xmlns="http://www.w3.org/1998/Math/MathML" display="inline">' in html
    assert '<math xmlns="http://www.w3.org/1998/Math/MathML" display="block">' in html and "<mfrac>" in html
    assert "<msup><mi>x</mi><mn>2</mn></msup>" in html
    # prices are not maths
    assert "<math" not in render("It costs $5 and $10.")


def test_raw_html_and_script_urls_are_neutralised() -> None:
    html = render('<script>alert("x")</script>\n\n<img src=x onerror=alert(1)>\n\n'
                  "[click](javascript:alert(1)) [v](vbscript:x) [d](data:text/html,<b>) ![i](javascript:alert(2))\n")
    assert "<script" not in html and "&lt;script&gt;" in html and "<img src=x" not in html
    assert "javascript:" not in re.sub(r">[^<]*<", "><", html).replace("&gt;", "")  # only as visible text
    assert not re.search(r'(href|src)="(javascript|vbscript|data:text)', html)
    html = render("[site](https://example.org) [here](/courses) [mail](mailto:a@example.org)")
    assert '<a href="https://example.org" rel="noopener noreferrer">site</a>' in html
    assert '<a href="/courses">here</a>' in html and 'href="mailto:a@example.org"' in html


def test_maths_cannot_smuggle_markup() -> None:
    html = render("$\\text{<script>alert(1)</script>}$ and $\\href{javascript:alert(1)}{x}$ and $\\color{red}{x}$")
    assert "<script" not in html and "&lt;script&gt;" in html
    assert "href=" not in html and "javascript" not in html and "mathcolor" not in html and "style=" not in html


def test_a_broken_formula_is_shown_as_code() -> None:
    html = render("Bad: $\\frac{$ and fine: $x$\n\n$$\n\\begin{matrix\n$$\n")
    assert '<code class="math-error">\\frac{</code>' in html and "<mi>x</mi>" in html
    assert mathml("\\frac{", display=True) == '<code class="math-error">\\frac{</code>'
    assert mathml("a & b < c", display=False).count("&amp;") == 1 and "&lt;" in mathml("a < b", display=False)
