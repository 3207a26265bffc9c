"""Words for the visitor: counts ("1 step", "2 steps") and the words of a prompt a model
does not know."""

from __future__ import annotations


def count(n: int, noun: str = "step") -> str:
    """`n` and `noun`, plural unless n is 1: count(1) -> "1 step", count(25) -> "25 steps"."""
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


def unknown(tokenizer, text: str) -> list[str]:
    """The words of `text` a tokenizer turns into its unknown token, in order, once each.

    Only word-level vocabularies such as the Mini models' have unknown words; a BPE tokenizer
    (SD's CLIP) spells any word from pieces, and its "unknown" token is its end token, so nothing
    is unknown to it."""
    unk = getattr(tokenizer, "unk_token", None)
    if unk is None or unk in (tokenizer.eos_token, tokenizer.bos_token, tokenizer.pad_token):
        return []
    unk_id = tokenizer.convert_tokens_to_ids(unk)
    enc = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
    found = [text[a:b] for i, (a, b) in zip(enc["input_ids"], enc["offset_mapping"]) if i == unk_id]
    first: dict[str, str] = {}
    for word in found:  # the tokenizer lower-cases: "Horse" and "horse" are one word
        first.setdefault(word.lower(), word)
    return list(first.values())


def quoted(words: list[str], limit: int = 8) -> str:
    """'"astronaut", "riding" and "horse"' (at most `limit`, then "and N more")."""
    shown = [f'"{w}"' for w in words[:limit]]
    if len(words) > limit:
        return ", ".join(shown) + f" and {len(words) - limit} more"
    return shown[0] if len(shown) == 1 else ", ".join(shown[:-1]) + " and " + shown[-1]
