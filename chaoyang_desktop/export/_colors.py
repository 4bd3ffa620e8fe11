"""Colour parsing shared by the exporters (class colours are stored as hex strings)."""

from __future__ import annotations


def hex_to_rgb(color: str) -> tuple[int, int, int]:
    """Parse ``"#rrggbb"`` or ``"#rgb"`` into an ``(r, g, b)`` tuple of ints in 0..255.

    Raises:
        ValueError: The string is not a hex colour; the message names it so the model
            configuration that holds it can be fixed.
    """
    text = color.strip().removeprefix("#")
    if len(text) == 3:
        text = "".join(ch * 2 for ch in text)
    if len(text) != 6:
        raise ValueError(f"Class colour {color!r} is not a hex colour such as '#2ca02c'.")
    try:
        value = int(text, 16)
    except ValueError as exc:
        raise ValueError(f"Class colour {color!r} is not a hex colour such as '#2ca02c'.") from exc
    return (value >> 16) & 0xFF, (value >> 8) & 0xFF, value & 0xFF
