"""Griffe extension: reads a Google-style "Example:" section as "Examples:".

softeq's docstrings head their doctests with "Example:" (the singular form that
Napoleon also accepts). Griffe knows only the plural as the examples section and
would render the singular as a plain admonition, turning the ">>>" prompts into
nested block quotes. This extension renames the heading before the docstring is
parsed, so the doctests are shown as Python console code.
"""

from __future__ import annotations

import re

import griffe

_SINGULAR = re.compile(r"^(?P<indent>[ \t]*)Example:[ \t]*$", re.MULTILINE)


class ExampleSections(griffe.Extension):
    """Renames "Example:" section headings to "Examples:" in every docstring."""

    def on_instance(self, *, obj: griffe.Object, **kwargs) -> None:
        if obj.docstring is not None:
            obj.docstring.value = _SINGULAR.sub(r"\g<indent>Examples:", obj.docstring.value)
