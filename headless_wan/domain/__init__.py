"""Typed, frozen objects that cross layer boundaries. Depends on stdlib and pydantic only."""
