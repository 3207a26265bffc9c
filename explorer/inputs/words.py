"""Counts in words: "1 step", "2 steps"."""

from __future__ import annotations


def count(n: int, noun: str = "step") -> str:
    """`n` and `noun`, plural unless n is 1: count(1) -> "1 step", count(25) -> "25 steps"."""
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"
