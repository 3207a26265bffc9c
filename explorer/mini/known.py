"""What each embedded model knows, grouped as the page lists it: its things (or shapes and
colours), backgrounds, sizes and positions. mini-things' comes from its ``world.json``."""

from __future__ import annotations

import functools

from explorer.mini import data


@functools.cache
def known_words(name: str) -> dict[str, tuple[str, ...]]:
    """{group: words} for an embedded model ("mini-shapes", "mini-things"); {} for others."""
    if name == "mini-shapes":
        return {
            "shapes": data.SHAPES,
            "colours": tuple(data.COLOURS),
            "sizes": tuple(data.SIZES),
            "positions": tuple(data.POSITIONS),
        }
    if name == "mini-things":
        from explorer.mini.things import parts, world

        w = world.read_world(parts.MODEL_DIR)
        groups: dict[str, list[str]] = {}
        for t in w["things"]:
            names = t["name"] + (f" ({', '.join(t['synonyms'])})" if t["synonyms"] else "")
            groups.setdefault(t["group"], []).append(names)
        groups["backgrounds"] = [b["name"] for b in w["backgrounds"]]
        groups["sizes"] = list(w["sizes"])
        groups["positions"] = [p["word"] for p in w["positions"]]
        return {k: tuple(v) for k, v in groups.items()}
    return {}


def known_markdown(name: str) -> str:
    """The grouped list as Markdown, one line a group ("" for a model with no fixed world)."""
    groups = known_words(name)
    lines = [f"- **{group}** ({len(words)}): {', '.join(words)}" for group, words in groups.items()]
    return "\n".join(lines)
