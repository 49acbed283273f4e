"""The README is a hub and the docs stand on their own in a clone: every relative link points at
a file of the repository, no fenced command reads a path outside it (a clone has no
`../shared`), and where DAVIS is used the page says where to download it."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PAGES = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
DAVIS_PAGE = "https://davischallenge.org/davis2016/code.html"


def fenced_blocks(text: str) -> list[str]:
    return re.findall(r"```[a-z]*\n(.*?)```", text, flags=re.S)


@pytest.mark.parametrize("page", PAGES, ids=lambda path: path.name)
def test_relative_links_point_at_files_of_the_repository(page):
    links = re.findall(r"\]\(([^)#]+)\)", page.read_text(encoding="utf-8"))
    missing = [link for link in links if "://" not in link and not (page.parent / link).exists()]
    assert missing == []


@pytest.mark.parametrize("page", PAGES, ids=lambda path: path.name)
def test_no_command_reads_outside_the_repository(page):
    outside = [line for block in fenced_blocks(page.read_text(encoding="utf-8"))
               for line in block.splitlines() if "../" in line and "ln -s" not in line]
    assert outside == []


@pytest.mark.parametrize("page", PAGES, ids=lambda path: path.name)
def test_a_page_using_davis_says_where_to_get_it(page):
    text = page.read_text(encoding="utf-8")
    if "data/davis2016-train" in text:
        assert DAVIS_PAGE in text or "docs/training.md" in text


def test_the_readme_is_a_hub():
    assert len((REPO / "README.md").read_text(encoding="utf-8").splitlines()) <= 160
