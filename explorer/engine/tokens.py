"""Which tokens are the prompt's own: the one rule every view and study uses.

A CLIP tokenizer turns a prompt into exactly L ids (77 in SD), and each position is one of four
kinds:

    SD 1.x    <|startoftext|>  a     red   circle  <|endoftext|>  <|endoftext|>  …  <|endoftext|>
    SD 2.x    <|startoftext|>  a     red   circle  <|endoftext|>  !              …  !
    kind      start            word  word  word    end            pad            …  pad

The rule, on ids:
  - position 0 is "start" when it is the tokenizer's `bos_token_id`;
  - the prompt's own words are the positions after it up to the FIRST `eos_token_id`;
  - that end token is "end";
  - every position after it is "pad", whatever its id.
It never looks at the padding id: SD 1.x (and the Mini) pad with the end token itself, so "the
first end token" and "the end tokens" differ; SD 2.x's tokenizer pads with "!" (pad_token "!",
id 0), which is also the id of a "!" typed in a prompt, so neither "special ids" nor "the pad
id" nor "trailing repeats" can tell words from padding. A prompt cut at L keeps its end token
(the tokenizer cuts words, not markers); a sequence with no end token is all words.

A saved run (`explorer.engine.tracefile.Trace`) holds the token strings, not the ids: the same
rule runs on them with CLIP's marker strings (`string_kinds`), which SD 1.x, SD 2.x and the Mini
share. Pure functions; no model, no UI.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from typing import Any

START, END = "<|startoftext|>", "<|endoftext|>"  # CLIP's markers (SD 1.x/2.x, the Mini model)
KINDS = ("start", "word", "end", "pad")


def kinds_of(seq: Sequence[Hashable], start: Hashable, end: Hashable) -> list[str]:
    """The kind of every position of `seq` (ids or token strings), given the start and end
    markers in the same terms: see the module docstring."""
    kinds, ended = [], False
    for i, t in enumerate(seq):
        if ended:
            kinds.append("pad")
        elif i == 0 and t == start:
            kinds.append("start")
        elif t == end:
            kinds.append("end")
            ended = True
        else:
            kinds.append("word")
    return kinds


def token_kinds(ids: Sequence[int], tokenizer: Any) -> list[str]:
    """The kind of each of the L positions of `ids`, by the tokenizer's start and end ids."""
    return kinds_of(list(ids), tokenizer.bos_token_id, tokenizer.eos_token_id)


def string_kinds(tokens: Sequence[str], start: str = START, end: str = END) -> list[str]:
    """The same rule on the token strings (what a trace saves), by CLIP's marker strings."""
    return kinds_of([str(t) for t in tokens], start, end)


def word_span(kinds: Sequence[str]) -> tuple[int, int]:
    """(start, stop): the prompt's own words are positions start..stop-1 (empty: start == stop)."""
    first = 1 if kinds and kinds[0] == "start" else 0
    stop = first
    while stop < len(kinds) and kinds[stop] == "word":
        stop += 1
    return first, stop


def prompt_span(ids: Sequence[int], tokenizer: Any) -> tuple[int, int]:
    """(start, stop) of the prompt's own words in `ids`: after the start token, before the end."""
    return word_span(token_kinds(ids, tokenizer))


def count_words(kinds: Sequence[str]) -> int:
    """How many positions are the prompt's own words."""
    start, stop = word_span(kinds)
    return stop - start


def text_length(kinds: Sequence[str]) -> int:
    """Positions up to and including the end token: start, words and end (the rest is padding)."""
    return len(kinds) - list(kinds).count("pad")


def token_note(n_tokens: int, max_tokens: int) -> str | None:
    """A note when a prompt's tokens (with start/end) exceed what the encoder reads."""
    if n_tokens <= max_tokens:
        return None
    return (
        f"prompt is {n_tokens} tokens; the text encoder reads the first {max_tokens}, "
        "the rest is cut"
    )
