"""A turn as the rails read it: its slots normalised and joined into one text, and the spans found there
mapped back to the slots (and through normalisation to the caller's own characters) for redaction.

A turn with several slots is read three ways: joined with a newline (what the model reads: vLLM joins text
parts that way), with a space (parts read as one line of prose), and with nothing (a word or a number split
across two parts: "kill my" + "self", "555-01" + "42"). Spans from any reading are cut from the slots they
cover; the separators belong to no slot.
"""

from __future__ import annotations

from dataclasses import dataclass

from server.safety.inputs import Path, Turn
from server.safety.normalize import char_map, match_view, normalize, with_ascii_digits
from server.safety.verdict import PlaceholderMap, Span, redact

SEPARATORS = ("\n", " ", "")  # the faithful reading first


@dataclass
class Piece:
    """One slot's text: the caller's characters, their normalised form and the map between them."""

    path: Path
    raw: str
    norm: str
    index: list[int] | None  # norm position -> raw position; None when the two do not line up

    @classmethod
    def of(cls, path: Path, raw: str) -> Piece:
        norm = normalize(raw)
        return cls(path, raw, norm, None if norm == raw else char_map(raw, norm))

    def raw_part(self, start: int, end: int) -> str:
        """The caller's characters behind normalised positions [start, end)."""
        if self.norm == self.raw:
            return self.raw[start:end]
        if self.index is not None:
            return self.raw[self.index[start] : self.raw_end(end)]
        return self.norm[start:end]

    def raw_end(self, end: int) -> int:
        """Where a span ending at normalised position `end` ends in the raw text: after any characters that
        normalised to nothing (a combining mark on the last digit is part of the identifier)."""
        assert self.index is not None
        last = self.index[end - 1] + 1
        return (
            max(last, self.index[end])
            if end < len(self.index)
            else len(self.raw)
            if self._tail_removed()
            else last
        )

    def _tail_removed(self) -> bool:
        return bool(self.index) and normalize(self.raw[self.index[-1] + 1 :]) == ""


class Document:
    """The pieces of one turn joined with `sep`; `text` is what PHI recognisers read, `view` what rules read
    (both one character per character of the joined normalised text)."""

    def __init__(self, role: str, pieces: list[Piece], sep: str) -> None:
        self.role = role
        self.pieces = pieces
        self.starts: list[int] = []
        at = 0
        for piece in pieces:
            self.starts.append(at)
            at += len(piece.norm) + len(sep)
        self.text = with_ascii_digits(sep.join(p.norm for p in pieces))
        self.view = match_view(self.text)

    def per_piece(self, spans: list[Span]) -> list[tuple[int, int, int, str, bool]]:
        """Each span cut into (piece, start, end, kind, first) in the piece's normalised text; `first` marks
        the piece that holds the span's beginning (it gets the placeholder, the others an empty string)."""
        out = []
        for start, end, kind in spans:
            first = True
            for k, piece in enumerate(self.pieces):
                lo, hi = max(start, self.starts[k]), min(end, self.starts[k] + len(piece.norm))
                if lo < hi:
                    out.append((k, lo - self.starts[k], hi - self.starts[k], kind, first))
                    first = False
        return out


def documents(turn: Turn) -> tuple[list[Piece], list[Document]]:
    """A turn's pieces and its readings (one for a single slot, three for several)."""
    pieces = [Piece.of(slot.path, slot.text) for slot in turn.slots]
    seps = SEPARATORS if len(pieces) > 1 else SEPARATORS[:1]
    return pieces, [Document(turn.role, pieces, sep) for sep in seps]


def redact_piece(
    piece: Piece,
    cuts: list[tuple[int, int, str, bool, str]],
    pmap: PlaceholderMap,
    categories: frozenset[str],
) -> str:
    """The piece's raw text with each cut (start, end, kind, first, whole value) replaced: PHI by its typed
    placeholder (one per identifier, in the piece where it begins), a category's span by a fixed marker.

    Cuts are in normalised positions: they apply as they are when normalisation changed nothing, through
    the position map otherwise, and to the normalised text when even that does not line up."""

    def replacement(cut: tuple[int, int, str, bool, str]) -> str:
        _, _, kind, first, whole = cut
        if not first:
            return ""
        return f"[REMOVED_{kind.upper()}]" if kind in categories else pmap.placeholder(kind, whole)

    if piece.norm == piece.raw:
        text, spans = piece.raw, [(a, b, str(i)) for i, (a, b, *_) in enumerate(cuts)]
    elif piece.index is not None:
        text = piece.raw
        spans = [(piece.index[a], piece.raw_end(b), str(i)) for i, (a, b, *_) in enumerate(cuts)]
    else:
        text, spans = piece.norm, [(a, b, str(i)) for i, (a, b, *_) in enumerate(cuts)]
    return redact(text, spans, lambda i, _: replacement(cuts[int(i)]))
