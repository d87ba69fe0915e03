"""Offline assets: verified, atomic, a no-op when present, clear errors when not."""

from __future__ import annotations

import subprocess
import sys

import pytest

from dl2llm import assets, paths
from dl2llm.asset_fetch import fetch


@pytest.fixture
def empty_home(tmp_path, monkeypatch):
    monkeypatch.setenv("DL2LLM_HOME", str(tmp_path / "home"))
    return tmp_path / "home"


def test_missing_asset_names_the_fix(empty_home):
    with pytest.raises(assets.AssetError) as err:
        assets.asset_dir("minilm")
    assert "asset 'minilm' is missing" in str(err.value)
    assert "dl2llm assets fetch" in str(err.value)


def test_fetch_verifies_is_idempotent_and_repairs(empty_home):
    assert fetch(["python-docs"], log=lambda _: None) == ["python-docs"]
    docs = assets.asset_dir("python-docs") / "python-3.11-docs"
    assert len(list(docs.rglob("*.rst.txt"))) == 497
    assert (docs / "faq" / "programming.rst.txt").is_file()
    assert fetch(["python-docs"], log=lambda _: None) == []  # no-op when present

    damaged = docs / "glossary.rst.txt"
    damaged.write_text(damaged.read_text() + "x")
    expected = "corrupt file python-3.11-docs/glossary.rst.txt (size differs)"
    assert assets.problem("python-docs") == expected
    with pytest.raises(assets.AssetError, match="dl2llm assets fetch --force python-docs"):
        assets.asset_dir("python-docs")
    assert fetch(["python-docs"], log=lambda _: None) == ["python-docs"]
    assert assets.problem("python-docs", full=True) is None


def test_same_size_corruption_is_caught_by_the_checksum(empty_home):
    fetch(["python-docs"], log=lambda _: None)
    target = assets.asset_dir("python-docs") / "python-3.11-docs" / "glossary.rst.txt"
    data = bytearray(target.read_bytes())
    data[10] ^= 1
    target.write_bytes(bytes(data))
    assert assets.problem("python-docs") is None  # sizes still match
    assert "checksum mismatch" in assets.problem("python-docs", full=True)


def test_a_bad_checksum_leaves_nothing_behind(empty_home, monkeypatch):
    bad = assets.Asset(
        name="bad-docs",
        description="",
        licence="",
        source="",
        package_format="repo",
        files={"python-3.11-docs.tar.xz": ("python-3.11-docs.tar.xz", "0" * 64)},
    )
    monkeypatch.setitem(assets.ASSETS, "bad-docs", bad)
    with pytest.raises(assets.AssetError, match="checksum mismatch"):
        fetch(["bad-docs"], log=lambda _: None)
    assert not (empty_home / "bad-docs").exists()
    assert [p.name for p in empty_home.iterdir()] == []


def test_a_file_added_to_an_asset_is_fetched_into_an_older_cache(empty_home, monkeypatch):
    sha256 = assets.get("python-docs").files["python-3.11-docs.tar.xz"][1]
    member = ("python-3.11-docs.tar.xz", sha256)

    def archive_asset(files):
        return assets.Asset("docs-archive", "", "", "", package_format="repo", files=files)

    monkeypatch.setitem(assets.ASSETS, "docs-archive", archive_asset({"a.tar.xz": member}))
    fetch(["docs-archive"], log=lambda _: None)
    grown = archive_asset({"a.tar.xz": member, "b.tar.xz": member})
    monkeypatch.setitem(assets.ASSETS, "docs-archive", grown)
    assert assets.problem("docs-archive") == "missing file b.tar.xz"
    assert fetch(["docs-archive"], log=lambda _: None) == ["docs-archive"]
    assert (assets.asset_dir("docs-archive") / "b.tar.xz").is_file()


def test_deliverable_with_missing_asset_exits_with_one_line(empty_home, tmp_path):
    script = paths.REPO_ROOT / "weeks/week1_foundations/feedforward_nn.py"
    result = subprocess.run(
        [sys.executable, str(script), "--quick", "--out", str(tmp_path)],
        capture_output=True,
        text=True,
        env={"DL2LLM_HOME": str(empty_home), "PATH": "/usr/bin:/bin"},
    )
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines() == [
        f"error: asset 'sentiment' is missing under {empty_home / 'sentiment'}; "
        "run `dl2llm assets fetch`"
    ]


def test_unknown_asset():
    with pytest.raises(assets.AssetError, match="unknown asset 'nope'"):
        assets.get("nope")


def test_every_asset_is_present_after_setup():
    missing = {row["name"]: row["state"] for row in assets.status() if row["state"] != "present"}
    assert missing == {}, "run `dl2llm assets fetch`"
