"""TokenSet and bearer-token parsing."""

from __future__ import annotations

from pathlib import Path

import pytest

from hybridsearch.api.auth import Role, TokenSet, bearer_token
from hybridsearch.config import ServerSettings, describe
from hybridsearch.errors import HybridSearchError


def test_tokens_from_lists_and_files(tmp_path: Path) -> None:
    (tmp_path / "full").write_text("# comment\n\n  file-full  \n  # rotated out: old-token\n")
    (tmp_path / "ro").write_text("file-ro\n")
    settings = ServerSettings(
        auth_tokens="a, b,,",
        auth_read_only_tokens="c",
        auth_tokens_file=tmp_path / "full",
        auth_read_only_tokens_file=tmp_path / "ro",
    )
    tokens = TokenSet.from_settings(settings)
    assert tokens.enabled
    assert tokens.role_of(b"a") is Role.FULL and tokens.role_of(b"file-full") is Role.FULL
    assert tokens.role_of(b"c") is Role.READ_ONLY and tokens.role_of(b"file-ro") is Role.READ_ONLY
    # An indented comment is a comment too (it was a token: "# rotated out: old-token").
    for wrong in (b"", b"# comment", b"# rotated out: old-token", b"A", b"a ", b"file-fullx"):
        assert tokens.role_of(wrong) is None
    assert "file-full" not in repr(tokens) and "file-full" not in repr(settings)
    assert "a, b" not in repr(settings)


def test_no_tokens_means_auth_off() -> None:
    assert not TokenSet.from_settings(ServerSettings()).enabled


@pytest.mark.parametrize("setting", ["auth_tokens_file", "auth_read_only_tokens_file"])
def test_unreadable_token_file_is_a_clear_error_naming_the_setting(
    tmp_path: Path, setting: str
) -> None:
    missing = tmp_path / "missing"
    with pytest.raises(HybridSearchError) as info:
        TokenSet.from_settings(ServerSettings(**{setting: missing}))
    assert str(info.value) == (
        f"{describe(setting)}: cannot read token file {missing}: No such file or directory"
    )


def test_a_token_file_that_is_not_utf8_is_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / "full").write_bytes(b"\xff\xfe token\n")
    with pytest.raises(HybridSearchError) as info:
        TokenSet.from_settings(ServerSettings(auth_tokens_file=tmp_path / "full"))
    assert str(info.value) == (
        "--auth-tokens-file (env HYBRIDSEARCH_AUTH_TOKENS_FILE): "
        f"token file {tmp_path / 'full'} is not UTF-8"
    )


@pytest.mark.parametrize(
    ("metadata", "token"),
    [
        ((("authorization", "Bearer abc"),), b"abc"),
        ((("Authorization", "bearer   abc "),), b"abc"),
        ((("x-other", "1"), ("authorization", "BEARER abc")), b"abc"),
        ((("authorization", "Basic abc"),), None),
        ((("authorization", "abc"),), None),
        ((), None),
        (None, None),
    ],
)
def test_bearer_token(metadata: tuple[tuple[str, str], ...] | None, token: bytes | None) -> None:
    assert bearer_token(metadata) == token


def test_a_token_file_of_indented_comments_only_holds_no_token(tmp_path: Path) -> None:
    (tmp_path / "full").write_text("  # every token rotated out\n\t# old-token\n")
    with pytest.raises(HybridSearchError, match="holds no token"):
        TokenSet.from_settings(ServerSettings(auth_tokens_file=tmp_path / "full"))


@pytest.mark.parametrize(
    ("setting", "value", "kind", "at"),
    [
        ("auth_tokens", "good, caf\u00e9", "a non-ASCII character", 4),
        ("auth_read_only_tokens", "ok,tab\there", "a control character", 4),
        ("auth_tokens_file", "line-one\nsecret\u00a0two\n", "a non-ASCII character", 7),
    ],
)
def test_a_token_no_client_can_send_stops_the_start(
    tmp_path: Path, setting: str, value: str, kind: str, at: int
) -> None:
    """gRPC headers carry printable ASCII only: the token could never authenticate anyone
    (the client would get INTERNAL "Invalid metadata"), so it fails closed at start-up,
    naming the setting and the token's place, never its text."""
    given: str | Path = value
    if setting.endswith("_file"):
        given = tmp_path / "tokens"
        given.write_text(value, encoding="utf-8")
    with pytest.raises(HybridSearchError) as info:
        TokenSet.from_settings(ServerSettings(**{setting: given}))
    number = 2
    assert str(info.value) == (
        f"{describe(setting)}: token {number}: the token holds {kind} (at character {at}); "
        "a gRPC header carries printable ASCII only"
    )
    assert "caf" not in str(info.value) and "secret" not in str(info.value)
