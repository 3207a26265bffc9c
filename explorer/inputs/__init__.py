"""Visitor values -> typed values or a `VisitorError`: the controls registry, list parsing,
uploads. No torch, no other layer."""
