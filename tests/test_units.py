"""Parsing at the edges: counts, ranges and sizes with explicit units."""

from __future__ import annotations

import pytest

from vramcore._units import MAX_RANGE_ITEMS, format_bytes, is_size, parse_count, parse_counts, parse_size


@pytest.mark.parametrize(("text", "value"), [("8192", 8192), ("8k", 8192), ("8K", 8192), ("1m", 2**20),
                                              ("131_072", 131072), (" 32k ", 32768)])
def test_parse_count(text: str, value: int) -> None:
    assert parse_count(text) == value


@pytest.mark.parametrize("text", ["", "0", "-1", "1.5", "abc", "8g", "k", "0k"])
def test_parse_count_rejects(text: str) -> None:
    with pytest.raises(ValueError, match="not a positive integer"):
        parse_count(text)


@pytest.mark.parametrize(("text", "values"), [
    ("4k,8k,32k,128k", [4096, 8192, 32768, 131072]),
    ("1:64:x2", [1, 2, 4, 8, 16, 32, 64]),
    ("1k:128k:x2", [1024 * 2**i for i in range(8)]),
    ("1:8", list(range(1, 9))),
    ("2:10:4", [2, 6, 10]),
    ("2:11:+4", [2, 6, 10]),
    ("1:100:x10", [1, 10, 100]),
    ("3:3", [3]),
    ("8,1:4,8,2", [8, 1, 2, 3, 4]),  # order kept, duplicates dropped
    ("1, 2 ,", [1, 2]),
])
def test_parse_counts(text: str, values: list[int]) -> None:
    assert parse_counts(text) == values


@pytest.mark.parametrize(("text", "match"), [
    ("", "no values"),
    (",", "no values"),
    ("8:1", "ends before it starts"),
    ("1:64:x1", "geometric step must be x2 or more"),
    ("1:64:x1.5", "geometric step must be x2 or more"),
    ("1:2:3:4", "START:STOP"),
    ("1:8:0", "not a positive integer"),
    ("0:8", "not a positive integer"),
    (f"1:{MAX_RANGE_ITEMS + 1}", "more than"),
])
def test_parse_counts_rejects(text: str, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        parse_counts(text)


@pytest.mark.parametrize(("text", "value"), [
    ("24GiB", 24 * 2**30), ("24 gib", 24 * 2**30), ("80GB", 80 * 10**9), ("80gb", 80 * 10**9),
    ("1.5MiB", 3 * 2**19), ("2TiB", 2 * 2**40), ("1TB", 10**12), ("512B", 512), ("4KiB", 4096), ("1KB", 1000),
    (".5GiB", 2**29),
])
def test_parse_size(text: str, value: int) -> None:
    assert parse_size(text) == value
    assert is_size(text)


@pytest.mark.parametrize(("text", "match"), [("80", "needs a unit"), ("80 GX", "needs a unit"),
                                             ("GiB", "needs a unit"), ("0GiB", "must be positive"),
                                             ("-1GiB", "needs a unit")])
def test_parse_size_rejects(text: str, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        parse_size(text)


def test_is_size_does_not_take_gpu_names() -> None:
    for name in ("H100", "a100-80gb", "RTX-4090", "L4", "80"):
        assert not is_size(name)


def test_format_bytes_spells_both_units() -> None:
    assert format_bytes(2**30) == "1.00 GiB (1.07 GB)"
