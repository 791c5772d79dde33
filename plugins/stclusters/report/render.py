"""The report's Jinja2 environments: every page and fragment is a template in ``templates/``,
autoescaped, with undefined names an error (StrictUndefined); the data is prepared in Python
(sections.py, figures.py, gii2023.py) and the templates only lay it out."""

from __future__ import annotations

import functools
import html
from pathlib import Path
from typing import Any

import jinja2
from markupsafe import Markup

TEMPLATES = Path(__file__).with_name("templates")


def _escape_as_published(value: Any) -> Any:
    """The page environment's ``finalize``: escape every printed value the way report.html has
    always been escaped (``html.escape``: ``&quot;`` and ``&#x27;``, where markupsafe writes
    ``&#34;`` and ``&#39;``), so that the same edition gives the same bytes as before the
    templates and re-publishing an edition reproduces its published report.html. Markup (a
    macro's output, a value marked safe) passes through; None prints as nothing."""
    if hasattr(value, "__html__"):
        return value
    return Markup(html.escape("" if value is None else str(value), quote=True))


@functools.cache
def page_environment() -> jinja2.Environment:
    """report.html and its fragments (sections, SVG figures)."""
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(TEMPLATES)),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        finalize=_escape_as_published,
    )


@functools.cache
def validation_environment() -> jinja2.Environment:
    """validation.html and its table (markupsafe's escaping, as they were published from the start)."""
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(TEMPLATES)),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
    )


def macros(name: str) -> Any:
    """The macros of a fragment template (``figures.svg.j2``, ...), callable from Python; each call
    returns Markup rendered by the autoescaping page environment."""
    return page_environment().get_template(name).module
