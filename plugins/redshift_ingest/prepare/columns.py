"""A file's columns against a table's: what was added, what is missing, what moved.

Names compare case-insensitively after the prepare step's cleaning (whitespace, BOM and quotes
stripped), the way Redshift folds unquoted names to lower case.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass


def fold(name: str) -> str:
    """The name a header field means: stripped, case-folded."""
    return name.strip().casefold()


@dataclass(frozen=True)
class ColumnDrift:
    """How a file's header differs from the expected columns.

    :param added: header names not among the expected columns, as the file spells them, in file order.
    :param missing: expected columns absent from the header, in table order.
    :param reordered: columns in both whose order relative to the others differs, in file order.
    :param duplicated: header names that appear more than once (after folding).
    :param unnamed: 1-based positions of empty header fields.
    """

    added: tuple[str, ...]
    missing: tuple[str, ...]
    reordered: tuple[str, ...]
    duplicated: tuple[str, ...]
    unnamed: tuple[int, ...]

    def __bool__(self) -> bool:
        return bool(self.added or self.missing or self.reordered or self.duplicated or self.unnamed)

    def describe(self) -> str:
        """``added [wind_gust]; missing [weather]; reordered [temp_min, temp_max]`` (only what applies)."""
        parts = []
        for label, names in (
            ("added", self.added),
            ("missing", self.missing),
            ("reordered", self.reordered),
            ("duplicated", self.duplicated),
        ):
            if names:
                parts.append(f"{label} [{', '.join(names)}]")
        if self.unnamed:
            parts.append(f"unnamed field(s) at position {', '.join(map(str, self.unnamed))}")
        return "; ".join(parts) or "no difference"


def compare(expected: Sequence[str], found: Sequence[str], key: Callable[[str], str] = fold) -> ColumnDrift:
    """How header ``found`` differs from columns ``expected`` (see :class:`ColumnDrift`).

    :param key: what a name means: :func:`fold` (a CSV header; JSON ``'auto ignorecase'``) or the
        name as it is (JSON ``'auto'`` keys, which COPY matches case-sensitively).
    """
    known = {key(n) for n in expected}
    named = [n for n in found if key(n)]
    seen = {key(n) for n in named}
    counts = Counter(key(n) for n in named)
    common_expected = [key(n) for n in expected if key(n) in seen]
    common_found = list(dict.fromkeys(key(n) for n in named if key(n) in known))
    display = {key(n): n for n in reversed(named)}
    return ColumnDrift(
        added=tuple(n for n in named if key(n) not in known),
        missing=tuple(n for n in expected if key(n) not in seen),
        reordered=tuple(display[n] for n, e in zip(common_found, common_expected, strict=True) if n != e),
        duplicated=tuple(dict.fromkeys(display[n] for n, c in counts.items() if c > 1)),
        unnamed=tuple(i for i, n in enumerate(found, start=1) if not key(n)),
    )
