"""The report's HTML comes from the jinja2 templates in ``monosemantic/report/templates`` (autoescaped: every
string from a result file is shown as text, never parsed as markup).

Templates are laid out readably, yet the page keeps the exact spacing of its inline elements: a line break and the
indentation around it are not output when they touch an HTML tag (``<`` after it, ``>`` before it) or a statement
or comment tag (``{%``, ``%}``, ``{#``, ``#}``); anywhere else, between text or ``{{ expressions }}``, they become
one space. So a paragraph may run over several lines, and a row of tokens, thumbnails or buttons gets no gaps.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from importlib import resources
from typing import Any

from jinja2 import Environment, PackageLoader, StrictUndefined
from markupsafe import Markup

from monosemantic.report.numbers import fmt, fmt_count

Context = dict[str, Any]
"""The variables a template (or a macro) reads."""

_BREAK = re.compile(r"[ \t]*\n\s*")


def spaceless(source: str) -> str:
    """A template's source with its layout removed: a line break and the indentation around it vanish next to a
    tag, and become one space between text (see the module docstring)."""
    def join(m: re.Match[str]) -> str:
        before, after = source[max(0, m.start() - 2) : m.start()], source[m.end() : m.end() + 2]
        tag = before.endswith(">") or before in ("%}", "#}") or after.startswith("<") or after in ("{%", "{#")
        return "" if tag or not before or not after else " "

    return _BREAK.sub(join, source)


class _Loader(PackageLoader):
    """The package's templates, each read through ``spaceless``."""

    def get_source(self, environment: Environment, template: str) -> tuple[str, str | None, Callable[[], bool] | None]:
        source, filename, uptodate = super().get_source(environment, template)
        return spaceless(source), filename, uptodate


def script_json(obj: Any) -> Markup:
    """JSON safe inside a ``<script type="application/json">`` element (no ``</script>``, no HTML comment)."""
    text = json.dumps(obj, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    return Markup(
        text.replace("&", "\\u0026").replace("<", "\\u003c").replace(">", "\\u003e")
        .replace("\u2028", "\\u2028").replace("\u2029", "\\u2029")
    )


def _spec(value: Any, spec: str) -> str:
    """``format(value, spec)``, e.g. ``{{ n | spec(",") }}`` for thousands separators."""
    return format(value, spec)


ENV = Environment(loader=_Loader("monosemantic.report", "templates"), autoescape=True, undefined=StrictUndefined)
ENV.filters.update(fmt=fmt, count=fmt_count, spec=_spec, script_json=script_json)


def render(template: str, **context: Any) -> str:
    """The template ``templates/<template>`` rendered with ``context``."""
    return ENV.get_template(template).render(**context)


def macro(template: str, name: str) -> Any:
    """The macro ``name`` of a template that holds only macros; calling it gives its HTML (``Markup``)."""
    return getattr(ENV.get_template(template).module, name)


def asset(name: str) -> Markup:
    """A file shipped beside the templates (``report.css``, ``report.js``), to inline in a page as it is."""
    return Markup(resources.files("monosemantic.report").joinpath(name).read_text(encoding="utf-8"))
