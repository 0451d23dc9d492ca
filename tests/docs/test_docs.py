"""The README and the pages in docs/ stay true to the repository.

Checked here, with no service (a ``unit`` test): every relative link and ``#anchor`` resolves to a
file and a heading; every ``make <target>`` quoted in code exists in the Makefile; every path of
the repository quoted in code exists; every YAML block that is a file-type config (or a piece of
one) validates with the ``FileType`` model; every dotted config key quoted in docs/file-types.md
(``batch.max_files``) is a field of the model; the README stays a short front door that links
every page. Anchors follow GitHub's rule: the heading's text lower-cased, punctuation other than
``-`` and ``_`` dropped, spaces as ``-``, a repeated heading suffixed ``-1``, ``-2``...
"""

from __future__ import annotations

import re
import typing
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml
from pydantic import BaseModel, ValidationError

from redshift_ingest.config import FileType, Settings

REPO = Path(__file__).resolve().parents[2]
README = REPO / "README.md"
DOCS = REPO / "docs"
PAGES = (README, *sorted(DOCS.glob("*.md")))
README_MAX_LINES = 220

FENCE = re.compile(r"^\s*(```|~~~)(.*)$")
HEADING = re.compile(r"^(#{1,6})\s+(.+?)\s*#*\s*$")
LINK = re.compile(r"!?\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
CODE_SPAN = re.compile(r"(`+)(.+?)\1")
MAKE = re.compile(r"(?<![\w./-])make\s+([a-z][a-z0-9-]*)")
RULE = re.compile(r"^([A-Za-z0-9][\w.-]*(?:[ \t]+[A-Za-z0-9][\w.-]*)*)[ \t]*:(?![=:])")
# A path of this repository quoted in code: it starts with one of its top-level folders.
REPO_PATH = re.compile(r"^(?:dags|plugins|include|devstack|lambdas|tests|docker|constraints|data|docs)/[\w./-]*$")
CONFIG_KEY = re.compile(r"^[a-z_]+(?:\.[a-z_]+)+$")
FILE_SUFFIXES = {"yaml", "yml", "py", "sql", "md", "csv", "json", "txt", "zip", "gz", "jsonl"}  # file names

# The smallest valid file type: a piece of a config shown in the docs is validated on top of it.
BASE_FILE_TYPE = {
    "name": "docs_example",
    "owner": "docs",
    "source": {"prefix": "landing/docs-example/", "pattern": "*.csv"},
    "target": {"table": "docs.example", "ddl": "ddl/seattle_weather.sql"},
    "format": "csv",
    "copy_options": {"ignore_header": 1},
}


@dataclass(frozen=True)
class Block:
    page: Path
    line: int  # 1-based line of the opening fence
    info: str  # the fence's info string: "yaml", "bash", ""
    text: str


@dataclass(frozen=True)
class Page:
    path: Path
    prose: tuple[tuple[int, str], ...]  # (line number, text) of every line outside code blocks
    blocks: tuple[Block, ...]

    @property
    def code_spans(self) -> list[tuple[int, str]]:
        return [(n, m.group(2).strip()) for n, text in self.prose for m in CODE_SPAN.finditer(text)]


def read_page(path: Path) -> Page:
    """Split a markdown page into its prose lines and its fenced code blocks."""
    prose: list[tuple[int, str]] = []
    blocks: list[Block] = []
    fence: tuple[str, int, str] | None = None
    body: list[str] = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        match = FENCE.match(line)
        if fence is None and match:
            fence, body = (match.group(1), number, match.group(2).strip().lower()), []
        elif fence is not None and match and match.group(1) == fence[0] and not match.group(2).strip():
            blocks.append(Block(path, fence[1], fence[2], "\n".join(body)))
            fence = None
        elif fence is not None:
            body.append(line)
        else:
            prose.append((number, line))
    assert fence is None, f"{path.name}:{fence[1]}: a code block is never closed"
    return Page(path, tuple(prose), tuple(blocks))


def slug(heading: str) -> str:
    """GitHub's anchor of a heading (code spans keep their text, links their label)."""
    text = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", heading)
    text = text.replace("`", "").lower()
    return re.sub(r"[^\w\- ]", "", text).replace(" ", "-")


def anchors(page: Page) -> set[str]:
    seen: dict[str, int] = {}
    found = set()
    for _, text in page.prose:
        match = HEADING.match(text)
        if not match:
            continue
        base = slug(match.group(2))
        count = seen.get(base, 0)
        seen[base] = count + 1
        found.add(base if count == 0 else f"{base}-{count}")
    return found


def relative(path: Path) -> str:
    return str(path.relative_to(REPO))


def make_targets() -> set[str]:
    targets = set()
    for line in (REPO / "Makefile").read_text().splitlines():
        match = RULE.match(line)
        if match:
            targets.update(match.group(1).split())
    return targets


ALL = {path: read_page(path) for path in PAGES}


def test_there_are_docs_pages_and_the_readme_links_every_one():
    assert len(PAGES) > 1, "docs/*.md is empty"
    linked = {
        (README.parent / m.group(1).split("#")[0]).resolve()
        for _, text in ALL[README].prose
        for m in LINK.finditer(text)
        if not m.group(1).startswith(("http:", "https:", "#"))
    }
    orphans = [relative(p) for p in PAGES[1:] if p.resolve() not in linked]
    assert not orphans, f"docs pages the README does not link: {orphans}"


def test_the_readme_is_a_short_front_door():
    lines = README.read_text(encoding="utf-8").splitlines()
    assert len(lines) <= README_MAX_LINES, f"README.md has {len(lines)} lines; keep it to {README_MAX_LINES}"
    headings = {HEADING.match(text).group(2) for _, text in ALL[README].prose if HEADING.match(text)}
    for needed in ("The two commands", "Rerun from the Airflow UI", "Deploy to MWAA", "Known limits"):
        assert needed in headings, f"README.md lost its section '## {needed}'"


@pytest.mark.parametrize("path", PAGES, ids=relative)
def test_every_relative_link_and_anchor_resolves(path: Path):
    page = ALL[path]
    broken = []
    for number, text in page.prose:
        for match in LINK.finditer(CODE_SPAN.sub(lambda m: "", text)):
            target = match.group(1)
            if re.match(r"^[a-z][a-z0-9+.-]*:", target):  # https:, mailto:
                continue
            file_part, _, anchor = target.partition("#")
            linked = (path.parent / file_part).resolve() if file_part else path.resolve()
            where = f"{relative(path)}:{number}: {target}"
            if not linked.is_relative_to(REPO):
                broken.append(f"{where} points outside the repository")
            elif not linked.exists():
                broken.append(f"{where}: no such file")
            elif anchor:
                if linked.suffix != ".md":
                    broken.append(f"{where}: an anchor into a file that is not markdown")
                elif anchor not in anchors(ALL.get(linked) or read_page(linked)):
                    broken.append(f"{where}: no heading with the anchor #{anchor}")
    assert not broken, "\n".join(broken)


@pytest.mark.parametrize("path", PAGES, ids=relative)
def test_every_make_target_quoted_exists(path: Path):
    page = ALL[path]
    targets = make_targets()
    quoted = [(n, m.group(1)) for n, code in page.code_spans for m in MAKE.finditer(code)]
    for block in page.blocks:
        for offset, line in enumerate(block.text.splitlines(), start=1):
            quoted += [(block.line + offset, m.group(1)) for m in MAKE.finditer(line.split("#")[0])]
    missing = [f"{relative(path)}:{n}: make {t}" for n, t in quoted if t not in targets]
    assert not missing, "targets not in the Makefile:\n" + "\n".join(missing)


@pytest.mark.parametrize("path", PAGES, ids=relative)
def test_every_repository_path_quoted_exists(path: Path):
    missing = [
        f"{relative(path)}:{n}: {code}"
        for n, code in ALL[path].code_spans
        if REPO_PATH.match(code) and not (REPO / code).exists()
    ]
    assert not missing, "paths that are not in the repository:\n" + "\n".join(missing)


def file_type_blocks() -> list[Block]:
    """YAML blocks whose keys include a ``FileType`` field: whole file types or pieces of one."""
    found = []
    for page in ALL.values():
        for block in page.blocks:
            if block.info not in ("yaml", "yml"):
                continue
            data = yaml.safe_load(block.text)
            if isinstance(data, dict) and set(data) & set(FileType.model_fields):
                found.append(block)
    return found


def merged(base: dict, piece: dict) -> dict:
    out = dict(base)
    for key, value in piece.items():
        out[key] = merged(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) else value
    return out


FILE_TYPE_BLOCKS = file_type_blocks()


def test_the_file_types_page_shows_whole_file_types():
    whole = [b for b in FILE_TYPE_BLOCKS if b.page.name == "file-types.md" and "name:" in b.text]
    assert len(whole) >= 3, "docs/file-types.md should show whole configs (the shipped one, merge, on_schema_change)"


@pytest.mark.parametrize("block", FILE_TYPE_BLOCKS, ids=lambda b: f"{relative(b.page)}:{b.line}")
def test_every_file_type_yaml_in_the_docs_validates(block: Block):
    data = yaml.safe_load(block.text)
    config = data if "name" in data else merged(BASE_FILE_TYPE, data)
    try:
        FileType.model_validate(config)
        error = None
    except ValidationError as err:
        error = err
    assert error is None, f"{relative(block.page)}:{block.line}: this YAML is not a valid file type:\n{error}"


def test_the_documented_example_is_the_shipped_seattle_weather_config():
    """The first example of docs/file-types.md is the shipped config, plus keys left at their defaults."""
    shipped_yaml = yaml.safe_load((REPO / "include/config/file_types/seattle_weather.yaml").read_text())
    documented = next(b for b in FILE_TYPE_BLOCKS if b.page.name == "file-types.md" and "name:" in b.text)
    shown = FileType.model_validate(yaml.safe_load(documented.text))
    shipped = FileType.model_validate(shipped_yaml)
    differ = [key for key in shipped_yaml if key != "description" and getattr(shown, key) != getattr(shipped, key)]
    assert not differ, f"docs/file-types.md:{documented.line} differs from the shipped config in {differ}"
    assert shown.sensor.interval_seconds == 2, "the example says the deferrable poll is every 2 s"


def model_of(annotation: object) -> type[BaseModel] | None:
    """The pydantic model inside a field's annotation (``Merge | None`` -> ``Merge``)."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in typing.get_args(annotation):
        found = model_of(arg)
        if found:
            return found
    return None


def resolve_key(key: str) -> str | None:
    """None when ``a.b.c`` names a field of ``FileType`` (or of ``Settings``), else why not."""
    parts = key.split(".")
    model: type[BaseModel] | None = FileType if parts[0] in FileType.model_fields else Settings
    for depth, part in enumerate(parts):
        if model is None:
            return f"{'.'.join(parts[:depth])} has no fields"
        if part not in model.model_fields:
            return f"{model.__name__} has no field {part!r}"
        model = model_of(model.model_fields[part].annotation)
    return None


def test_every_config_key_on_the_file_types_page_exists():
    page = ALL[DOCS / "file-types.md"]
    keys = [
        (n, code)
        for n, code in page.code_spans
        if CONFIG_KEY.match(code) and FILE_SUFFIXES.isdisjoint(code.split(".")[1:])
    ]
    assert len(keys) >= 5, f"expected the page to name config keys such as `batch.max_files`, found {keys}"
    wrong = [f"docs/file-types.md:{n}: `{key}`: {why}" for n, key in keys if (why := resolve_key(key))]
    assert not wrong, "\n".join(wrong)
