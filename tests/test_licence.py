"""The licence is a file, and every third-party asset's licence is listed beside it."""

from dl2llm.assets import ASSETS
from dl2llm.paths import REPO_ROOT


def test_the_project_licence_is_mit_as_pyproject_says():
    assert (REPO_ROOT / "LICENSE").read_text().startswith("MIT License")
    assert 'license = { text = "MIT" }' in (REPO_ROOT / "pyproject.toml").read_text()


def test_notice_lists_every_asset_with_its_licence():
    notice = (REPO_ROOT / "NOTICE.md").read_text()
    for asset in ASSETS.values():
        assert f"| `{asset.name}` | {asset.licence} |" in notice, asset.name
    assert "data/python-3.11-docs.tar.xz" in notice and "data/capstone_adapter" in notice
