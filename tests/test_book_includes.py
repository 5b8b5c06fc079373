"""Every ``{literalinclude}`` of the book resolves: Sphinx only warns when one breaks.

The chapters show the package's code next to the equations it implements; a renamed function
or a moved file must fail here, not leave an empty box in the built book. Each include is read
with Sphinx's own reader (the code the build uses), so ``:pyobject:``, ``:start-at:`` and
``:end-before:`` are checked exactly as the build applies them.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from sphinx.config import Config
from sphinx.directives.code import LiteralIncludeReader

BOOK = Path(__file__).resolve().parents[1] / "book"
DIRECTIVE = re.compile(r"```\{literalinclude\}[ \t]+(\S+)[ \t]*\n((?::[\w-]+:.*\n)*)```")


def _includes() -> list[tuple[Path, str, dict]]:
    out = []
    for chapter in sorted(BOOK.glob("*.md")):
        for m in DIRECTIVE.finditer(chapter.read_text()):
            options = {}
            for line in m.group(2).splitlines():
                key, _, value = line[1:].partition(":")
                options[key.strip()] = value.strip()
            out.append((chapter, m.group(1), options))
    return out


INCLUDES = _includes()


def test_the_book_shows_code_next_to_its_equations():
    chapters = {c.name for c, _, _ in INCLUDES}
    assert {"cam.md", "prototypes.md", "optimal_transport.md", "transformers.md", "foundation_prompts.md"} <= chapters
    assert len(INCLUDES) >= 25


@pytest.mark.parametrize("chapter,target,options", INCLUDES,
                         ids=[f"{c.stem}:{o.get('pyobject', t)}" for c, t, o in INCLUDES])
def test_literalinclude_resolves(chapter, target, options):
    path = (chapter.parent / target).resolve()
    assert path.is_file(), f"{chapter.name}: literalinclude of a missing file {target}"
    config = Config({}, {})
    config.init_values()
    config.source_encoding = "utf-8-sig"
    lines, _ = LiteralIncludeReader(str(path), options, config).read()
    assert lines.strip(), f"{chapter.name}: the include of {target} {options} is empty"
    if "pyobject" in options:  # the object itself is shown, not something that merely mentions it
        name = options["pyobject"].split(".")[-1]
        assert re.search(rf"(def|class) {re.escape(name)}\b", lines) or "start-at" in options, lines[:200]
