"""SQL templates from ``include/sql``, rendered with Jinja under ``StrictUndefined``.

Templates receive identifiers only (already validated and quoted by :mod:`redshift_ingest.config`);
values are never rendered in, they stay ``%(name)s`` placeholders bound by the driver.
"""

from __future__ import annotations

from functools import cache
from typing import Any

import jinja2

from redshift_ingest import paths
from redshift_ingest.config import Settings, quote_identifier


@cache
def _environment() -> jinja2.Environment:
    # SQL, not HTML: autoescaping would corrupt it. Values are bound by the driver, never rendered.
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(paths.sql_dir())),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        autoescape=False,  # noqa: S701
    )


def render(template: str, **identifiers: Any) -> str:
    """Render ``include/sql/<template>`` with the given (quoted) identifiers.

    :raises jinja2.UndefinedError: the template uses a name that was not passed.
    :raises jinja2.TemplateNotFound: no such template.
    """
    return _environment().get_template(template).render(**identifiers)


def render_register(template: str, settings: Settings, **identifiers: Any) -> str:
    """Render ``include/sql/register/<template>`` with the register table's quoted name."""
    return render(
        f"register/{template}",
        register=settings.register_table.quoted,
        register_schema=quote_identifier(settings.register_table.schema_name),
        **identifiers,
    )
