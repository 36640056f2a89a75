"""errors.echo: caller input in error messages is quoted and cut."""

from __future__ import annotations

from hybridsearch.errors import (
    ECHO_CHARS,
    MOST_VIOLATION_BYTES,
    FieldViolation,
    InvalidArgumentError,
    echo,
)


def test_short_input_is_shown_whole() -> None:
    assert echo("d04") == "'d04'"


def test_long_input_is_cut_and_its_length_said() -> None:
    shown = echo("a" * 10_000)
    assert shown == repr("a" * ECHO_CHARS) + "... (10000 characters)"
    assert len(shown) < ECHO_CHARS + 30


def test_violations_are_named_within_a_byte_budget() -> None:
    long = [FieldViolation(f"requests[{i}].query", "x" * 300) for i in range(20)]
    error = InvalidArgumentError(long)
    assert 1 <= len(error.violations) < 20
    assert error.omitted == 20 - len(error.violations)
    text = "; ".join(f"{v.field}: {v.description}" for v in error.violations)
    assert len(text.encode()) <= MOST_VIOLATION_BYTES
    assert str(error).endswith(f"and {error.omitted} more invalid field(s) not listed")
    # The first is always named, its text cut to the budget (never inside a character).
    [first] = InvalidArgumentError([FieldViolation("query", "é" * 2000)]).violations
    assert first.field == "query" and first.description.endswith("é...")
    assert len(first.field.encode()) + len(first.description.encode()) + 4 <= MOST_VIOLATION_BYTES
    # Short ones are named up to the count bound.
    short = [FieldViolation(f"f{i}", "bad") for i in range(25)]
    assert (len(InvalidArgumentError(short).violations), InvalidArgumentError(short).omitted) == (
        20,
        5,
    )
