"""errors.echo: caller input in error messages is quoted and cut."""

from __future__ import annotations

from hybridsearch.errors import ECHO_CHARS, echo


def test_short_input_is_shown_whole() -> None:
    assert echo("d04") == "'d04'"


def test_long_input_is_cut_and_its_length_said() -> None:
    shown = echo("a" * 10_000)
    assert shown == repr("a" * ECHO_CHARS) + "... (10000 characters)"
    assert len(shown) < ECHO_CHARS + 30
