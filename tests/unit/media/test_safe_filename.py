"""Properties of safe_filename and the URL helpers (pure functions, no I/O)."""

from __future__ import annotations

import re
from pathlib import PurePosixPath

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from headless_wan.media.fetch import rewrite_hub_url
from headless_wan.safety import MAX_FILENAME_CHARS, redact_url, safe_filename

SAFE = re.compile(r"[A-Za-z0-9_][A-Za-z0-9._-]*")
TRICKY = st.sampled_from(
    ["/", "\\", ".", "..", "%2e", "%2f", "%2E%2E%2F", "%", "?", "#", "-", " ", "é", "\0", "~"]
)
NAMES = st.lists(TRICKY | st.text(max_size=20), max_size=30).map("".join) | st.text(max_size=400)


@given(NAMES)
@example("../../etc/passwd")
@example("%2e%2e%2f%2e%2e%2f")
@example("." * 300)
@example("a" * 300 + ".safetensors")
def test_result_is_a_plain_bounded_name_inside_the_directory(name: str) -> None:
    result = safe_filename(name)
    assert SAFE.fullmatch(result), result
    assert 1 <= len(result) <= MAX_FILENAME_CHARS
    assert result not in (".", "..")
    base = PurePosixPath("/work/task")
    assert (base / result).parent == base


@given(NAMES)
def test_sanitising_is_idempotent(name: str) -> None:
    once = safe_filename(name)
    assert safe_filename(once) == once


@given(st.from_regex(SAFE, fullmatch=True).filter(lambda s: len(s) <= MAX_FILENAME_CHARS))
def test_already_safe_names_are_kept(name: str) -> None:
    assert safe_filename(name) == name


def test_long_names_keep_their_extension() -> None:
    result = safe_filename("x" * 500 + ".safetensors")
    assert len(result) == MAX_FILENAME_CHARS
    assert result.endswith("x.safetensors")


def test_default_is_used_and_sanitised() -> None:
    assert safe_filename("", default="download") == "download"
    assert safe_filename("///", default="../guide.mp4") == "guide.mp4"
    assert safe_filename("..", default="..") == "file"


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        (
            "https://huggingface.co/org/repo/blob/main/lora.safetensors",
            "https://huggingface.co/org/repo/resolve/main/lora.safetensors",
        ),
        (
            "https://huggingface.co/datasets/o/r/blob/v1/dir/blob/x.bin?download=true",
            "https://huggingface.co/datasets/o/r/resolve/v1/dir/blob/x.bin?download=true",
        ),
        (
            "https://huggingface.co/org/repo/resolve/main/lora.safetensors",
            "https://huggingface.co/org/repo/resolve/main/lora.safetensors",
        ),
        ("https://github.com/o/r/blob/main/x.bin", "https://github.com/o/r/blob/main/x.bin"),
    ],
)
def test_hub_blob_urls_become_resolve_urls(url: str, expected: str) -> None:
    assert rewrite_hub_url(url) == expected


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("https://user:pass@host.example/a/b.mp4?X-Amz-Signature=abc#frag", "https://host.example/a/b.mp4"),
        ("http://127.0.0.1:8080/x?token=1", "http://127.0.0.1:8080/x"),
        ("http://[::1]:9000/y", "http://[::1]:9000/y"),
    ],
)
def test_redacted_urls_drop_credentials_query_and_fragment(url: str, expected: str) -> None:
    assert redact_url(url) == expected
