"""SQL text handling: a quote-aware tokenizer, statement splitting, redaction and Redshift DDL rewriting.

sqlglot 30.x cannot parse Redshift's column-level ``DISTKEY SORTKEY`` (as in the TICKIT DDL of the
Redshift Getting Started Guide) nor ``SORTKEY AUTO``/``BACKUP NO`` reliably, so CREATE TABLE is
rewritten here at token level: only the Redshift-only parts change, everything else is kept verbatim.
"""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass

_TOKEN_RE = re.compile(
    r"""
    (?P<ws>\s+)
  | (?P<comment>--[^\n]*|/\*.*?(?:\*/|\Z))
  | (?P<estring>[Ee]'(?:[^'\\]|\\.|'')*(?:'|\Z))
  | (?P<string>(?:[BbXxNn])?'(?:[^']|'')*(?:'|\Z))
  | (?P<dollar>\$(?:[A-Za-z_][A-Za-z_0-9]*)?\$)
  | (?P<qident>"(?:[^"]|"")*(?:"|\Z))
  | (?P<word>[A-Za-z_\x80-\uffff][A-Za-z_0-9$\x80-\uffff]*)
  | (?P<number>\d+(?:\.\d*)?(?:[eE][+-]?\d+)?|\.\d+)
  | (?P<op>.)
    """,
    re.VERBOSE | re.DOTALL,
)


@dataclass(frozen=True)
class Token:
    """One lexical token. ``kind`` is ws, comment, string, qident, word, number, op or dollar."""

    kind: str
    text: str

    @property
    def upper(self) -> str:
        return self.text.upper() if self.kind == "word" else self.text

    @property
    def trivia(self) -> bool:
        return self.kind in ("ws", "comment")


def tokenize(sql: str) -> list[Token]:
    """Split ``sql`` into tokens, whitespace and comments included, so ``"".join`` gives it back."""
    tokens: list[Token] = []
    pos = 0
    while pos < len(sql):
        match = _TOKEN_RE.match(sql, pos)
        kind = match.lastgroup or "op"
        text = match.group()
        if kind == "estring":
            kind = "string"
        elif kind == "dollar":
            end = sql.find(text, match.end())
            end = len(sql) if end < 0 else end + len(text)
            text = sql[pos:end]
            kind = "string"
        tokens.append(Token(kind, text))
        pos += len(text)
    return tokens


def split_statements(sql: str) -> list[str]:
    """Split a simple-query string into statements at top-level ``;`` (quotes/comments respected).

    Returns the non-empty statements without their terminating ``;``; comment-only pieces are dropped.
    """
    statements: list[str] = []
    current: list[Token] = []
    for token in [*tokenize(sql), Token("op", ";")]:
        if token.kind == "op" and token.text == ";":
            if any(not t.trivia for t in current):
                statements.append("".join(t.text for t in current).strip())
            current = []
        else:
            current.append(token)
    return statements


def significant(tokens: list[Token]) -> list[Token]:
    """The tokens that are neither whitespace nor comments."""
    return [t for t in tokens if not t.trivia]


def unquote_string(text: str) -> str:
    """The value of a SQL string literal token (``'a''b'``, ``E'a\\tb'``, ``$$x$$``)."""
    if text.startswith("$"):
        tag_end = text.index("$", 1) + 1
        return text[tag_end : len(text) - tag_end]
    if text[0] in "Ee":
        body = text[2:-1]
        escapes = {"t": "\t", "n": "\n", "r": "\r"}
        return re.sub(r"\\(.)|''", lambda m: escapes.get(m.group(1), m.group(1)) if m.group(1) else "'", body)
    if text[0] in "BbXxNn":
        text = text[1:]
    return text[1:-1].replace("''", "'")


def quote_literal(value: str) -> str:
    """A SQL string literal for ``value`` that reads the same whatever ``standard_conforming_strings``
    is (client sessions run with it off, as on Redshift): ``E'...'`` when it holds a backslash."""
    if "\\" in value:
        return "E'" + value.replace("\\", "\\\\").replace("'", "''") + "'"
    return "'" + value.replace("'", "''") + "'"


def quote_ident(name: str) -> str:
    """A double-quoted SQL identifier for ``name``."""
    return '"' + name.replace('"', '""') + '"'


def ident_value(token: Token) -> str:
    """The name an identifier token denotes: quoted names kept as is, bare words folded to lower case."""
    if token.kind == "qident":
        return token.text[1:-1].replace('""', '"')
    return token.text.lower()


_SECRET_RE = re.compile(
    r"\b(credentials|with\s+credentials|access_key_id|secret_access_key|session_token|token|"
    r"master_symmetric_key)(\s+as)?\s*'(?:[^']|'')*'",
    re.IGNORECASE,
)


def redact(sql: str) -> str:
    """``sql`` with the values of CREDENTIALS / ACCESS_KEY_ID / SECRET_ACCESS_KEY / SESSION_TOKEN hidden."""
    return _SECRET_RE.sub(lambda m: f"{m.group(1)}{m.group(2) or ''} '***'", sql)


def first_words(sql: str, count: int) -> list[str]:
    """The first ``count`` word tokens of ``sql`` upper-cased (comments skipped)."""
    words = []
    for token in tokenize(sql):
        if token.trivia:
            continue
        if token.kind != "word":
            break
        words.append(token.upper)
        if len(words) == count:
            break
    return words


_TX_CONTROL = {"BEGIN", "START", "COMMIT", "END", "ROLLBACK", "ABORT", "SAVEPOINT", "RELEASE", "PREPARE"}


def is_transaction_control(sql: str) -> bool:
    """True for BEGIN/START TRANSACTION/COMMIT/END/ROLLBACK/ABORT/SAVEPOINT/RELEASE/PREPARE."""
    words = first_words(sql, 1)
    return bool(words) and words[0] in _TX_CONTROL


def is_s3_copy(sql: str) -> bool:
    """True when ``sql`` is ``COPY ... FROM 's3://...'`` (the statement the proxy runs itself)."""
    tokens = significant(tokenize(sql))
    if not tokens or tokens[0].upper != "COPY":
        return False
    for prev, token in itertools.pairwise(tokens):
        if prev.upper == "FROM" and token.kind == "string":
            return unquote_string(token.text).lower().startswith("s3://")
    return False


def is_parameterised_s3_copy(sql: str) -> bool:
    """True for ``COPY ... FROM 's3://...'`` or ``COPY ... FROM $n`` (a source bound by the driver)."""
    if is_s3_copy(sql):
        return True
    tokens = significant(tokenize(sql))
    if not tokens or tokens[0].upper != "COPY":
        return False
    return any(
        a.upper == "FROM" and b.text == "$" and c.kind == "number"
        for a, b, c in zip(tokens, tokens[1:], tokens[2:], strict=False)
    )


def bind_parameters(sql: str, values: list[str | None]) -> str:
    """``sql`` with each ``$n`` outside literals replaced by the n-th value as a SQL literal (None: NULL).

    Raises ``IndexError`` when ``$n`` has no value."""
    tokens = tokenize(sql)
    out: list[str] = []
    index = 0
    while index < len(tokens):
        token = tokens[index]
        nxt = tokens[index + 1] if index + 1 < len(tokens) else None
        if token.text == "$" and token.kind == "op" and nxt is not None and nxt.kind == "number" and nxt.text.isdigit():
            value = values[int(nxt.text) - 1]
            out.append("NULL" if value is None else quote_literal(value))
            index += 2
            continue
        out.append(token.text)
        index += 1
    return "".join(out)


# ----------------------------------------------------------------------------------------------
# CREATE TABLE rewriting (Redshift "CREATE TABLE" reference: DISTSTYLE, DISTKEY, SORTKEY, ENCODE,
# IDENTITY, BACKUP; "Data types" reference: VARCHAR(MAX) = 65535 bytes, TEXT = VARCHAR(256), SUPER).
# ----------------------------------------------------------------------------------------------

_CONSTRAINT_WORDS = {"CONSTRAINT", "PRIMARY", "UNIQUE", "FOREIGN", "CHECK", "LIKE", "EXCLUDE"}
_VARCHAR_WORDS = {"VARCHAR", "NVARCHAR"}


def _matching_paren(tokens: list[Token], start: int) -> int:
    depth = 0
    for index in range(start, len(tokens)):
        if tokens[index].kind == "op" and tokens[index].text == "(":
            depth += 1
        elif tokens[index].kind == "op" and tokens[index].text == ")":
            depth -= 1
            if depth == 0:
                return index
    return len(tokens) - 1


def _next_sig(tokens: list[Token], index: int) -> int:
    """Index of the next significant token after ``index`` (or len(tokens))."""
    index += 1
    while index < len(tokens) and tokens[index].trivia:
        index += 1
    return index


def _is(tokens: list[Token], index: int, *texts: str) -> bool:
    return index < len(tokens) and tokens[index].upper in texts


def _rewrite_column(tokens: list[Token]) -> list[Token]:
    """Rewrite one column definition (tokens of one comma-separated element of the column list)."""
    sig = [i for i, t in enumerate(tokens) if not t.trivia]
    if not sig or tokens[sig[0]].upper in _CONSTRAINT_WORDS:
        return tokens
    out = list(tokens)
    drop: set[int] = set()
    replace: dict[int, str] = {}
    byte_limit: tuple[str, int | None] | None = None
    # The type: the significant token after the column name.
    if len(sig) > 1:
        type_index = sig[1]
        word = out[type_index].upper
        after = _next_sig(out, type_index)
        if word == "CHARACTER" and _is(out, after, "VARYING"):
            type_index, after = after, _next_sig(out, after)
            word = "VARCHAR"
        has_args = after < len(out) and out[after].text == "("
        arg = _next_sig(out, after) if has_args else len(out)
        declared = int(out[arg].text) if arg < len(out) and out[arg].text.isdigit() else None
        if word in _VARCHAR_WORDS or (word == "VARYING" and tokens[sig[1]].upper == "CHARACTER"):
            if has_args:
                if _is(out, arg, "MAX"):
                    replace[arg] = "65535"
                    declared = 65535
            else:
                replace[type_index] = out[type_index].text + "(256)"
                declared = 256
            if word == "NVARCHAR":
                replace.setdefault(type_index, "VARCHAR")
            byte_limit = ("character varying", declared)
        elif word in ("CHAR", "CHARACTER", "NCHAR", "BPCHAR"):
            if word == "NCHAR":
                replace[type_index] = "CHAR"
            byte_limit = ("character", declared if has_args else 1)
        elif word == "TEXT" and not has_args:
            replace[type_index] = "VARCHAR(256)"
            byte_limit = ("character varying", 256)
        elif word == "SUPER":
            replace[type_index] = "JSONB"
        elif word == "VARBYTE":
            replace[type_index] = "BYTEA"
            if has_args:
                drop.update(range(after, _matching_paren(out, after) + 1))
    index = 0
    while index < len(out):
        token = out[index]
        upper = token.upper if token.kind == "word" else None
        nxt = _next_sig(out, index)
        if upper in ("DISTKEY", "SORTKEY"):
            drop.add(index)
        elif (upper == "ENCODE" and nxt < len(out)) or (
            upper == "COLLATE" and _is(out, nxt, "CASE_SENSITIVE", "CASE_INSENSITIVE")
        ):
            drop.update({index, nxt})
            index = nxt
        elif upper == "IDENTITY" and nxt < len(out) and out[nxt].text == "(":
            close = _matching_paren(out, nxt)
            args = [t.text for t in significant(out[nxt + 1 : close]) if t.text != ","]
            seed, step = [*args, "1", "1"][:2]
            start = index
            # Redshift's "GENERATED BY DEFAULT AS IDENTITY ( seed, step )" form.
            prev = [i for i in sig if i < index]
            if len(prev) >= 4 and [out[i].upper for i in prev[-4:]] == ["GENERATED", "BY", "DEFAULT", "AS"]:
                start = prev[-4]
            drop.update(range(start, close + 1))
            replace[start] = f"GENERATED BY DEFAULT AS IDENTITY (START WITH {seed} INCREMENT BY {step})"
            index = close
        index += 1
    result = []
    for i, token in enumerate(out):
        if i in replace:
            result.append(Token("word", replace[i]))
        elif i not in drop:
            result.append(token)
    if byte_limit is not None and byte_limit[1] is not None:
        result.append(Token("word", " " + _byte_length_check(tokens[sig[0]].text, *byte_limit)))
    return result


def _byte_length_check(column: str, type_name: str, limit: int) -> str:
    """A CHECK that counts CHAR/VARCHAR lengths in bytes, as Redshift does ("Character types"), and fails
    like PostgreSQL's own length check (SQLSTATE 22001, "value too long for type character varying(n)")."""
    label = quote_literal(f"{type_name}({limit})")
    return f"CHECK ({column} IS NULL OR octet_length({column}) <= {limit} OR redshift_local.value_too_long({label}))"


def _rewrite_table_attributes(tokens: list[Token]) -> list[Token]:
    """Drop DISTSTYLE / DISTKEY(c) / [COMPOUND|INTERLEAVED] SORTKEY(...)|AUTO / BACKUP / ENCODE AUTO."""
    out: list[Token] = []
    index = 0
    while index < len(tokens):
        token = tokens[index]
        upper = token.upper if token.kind == "word" else None
        nxt = _next_sig(tokens, index)
        if upper in ("DISTSTYLE", "BACKUP", "ENCODE") and nxt < len(tokens):
            index = nxt + 1
            continue
        if upper in ("COMPOUND", "INTERLEAVED") and _is(tokens, nxt, "SORTKEY"):
            index = nxt
            continue
        if upper in ("DISTKEY", "SORTKEY") and nxt < len(tokens):
            index = _matching_paren(tokens, nxt) + 1 if tokens[nxt].text == "(" else nxt + 1
            continue
        out.append(token)
        index += 1
    return out


def rewrite_create_table(sql: str) -> str:
    """Translate a Redshift ``CREATE [TEMP] TABLE`` into PostgreSQL; other statements come back unchanged.

    Dropped (no PostgreSQL meaning): DISTSTYLE, DISTKEY, SORTKEY (column and table level, COMPOUND,
    INTERLEAVED, AUTO), ENCODE, BACKUP, COLLATE CASE_[IN]SENSITIVE. Translated: ``IDENTITY(seed, step)``
    to ``GENERATED BY DEFAULT AS IDENTITY``, ``VARCHAR(MAX)`` to ``VARCHAR(65535)``, bare ``VARCHAR``/
    ``TEXT`` to ``VARCHAR(256)``, ``SUPER`` to ``JSONB``, ``VARBYTE`` to ``BYTEA``, ``NVARCHAR``/``NCHAR``.
    The result is returned as text; nothing raises (odd input is passed on for PostgreSQL to judge).
    """
    tokens = tokenize(sql)
    sig = [i for i, t in enumerate(tokens) if not t.trivia]
    words = [tokens[i].upper for i in sig[:6]]
    if not words or words[0] != "CREATE":
        return sql
    try:
        table_pos = words.index("TABLE")
    except ValueError:
        return sql
    if any(w not in ("TEMP", "TEMPORARY", "LOCAL", "GLOBAL", "UNLOGGED") for w in words[1:table_pos]):
        return sql
    # Find the column list (first "(" after the table name) and a top-level AS (CTAS).
    head_end = sig[table_pos]
    open_index = None
    for i in range(head_end + 1, len(tokens)):
        if tokens[i].kind == "op" and tokens[i].text == "(":
            open_index = i
            break
        if tokens[i].upper == "AS":
            break
    body: list[Token] = []
    if open_index is not None:
        close_index = _matching_paren(tokens, open_index)
        element: list[Token] = []
        depth = 0
        for token in tokens[open_index + 1 : close_index]:
            if token.kind == "op" and token.text in "()":
                depth += 1 if token.text == "(" else -1
            if depth == 0 and token.kind == "op" and token.text == ",":
                body.extend(_rewrite_column(element))
                body.append(token)
                element = []
            else:
                element.append(token)
        body.extend(_rewrite_column(element))
        head = tokens[: open_index + 1]
        tail = tokens[close_index:]
        tail = tail[:1] + _rewrite_tail(tail[1:])
        rebuilt = head + body + tail
    else:
        rebuilt = tokens[: head_end + 1] + _rewrite_tail(tokens[head_end + 1 :])
    return "".join(t.text for t in rebuilt)


def _rewrite_tail(tokens: list[Token]) -> list[Token]:
    """Rewrite table attributes up to a top-level ``AS`` (the query of a CTAS stays untouched)."""
    for i, token in enumerate(tokens):
        if token.upper == "AS":
            return _rewrite_table_attributes(tokens[:i]) + tokens[i:]
    return _rewrite_table_attributes(tokens)


def needs_rewrite(sql: str) -> bool:
    """True when ``sql`` is a CREATE TABLE that PostgreSQL would not accept as Redshift wrote it."""
    return rewrite_create_table(sql) != sql
