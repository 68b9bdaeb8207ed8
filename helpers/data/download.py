"""The download of a published MovieLens zip from GroupLens: streamed to `.partial`, checked against its MD5, unpacked
in one rename."""
from __future__ import annotations

import hashlib
import os
import re
import shutil
import tempfile
import warnings
import zipfile
from pathlib import Path

from helpers.artifacts import holds_files
from helpers.data.movielens import DOWNLOADS, FILES, ChecksumError, DatasetError, DatasetFileError, DownloadError


def md5_of(path: Path) -> str:
    """Hex MD5 of a file, read in 1 MiB chunks."""
    digest = hashlib.md5(usedforsecurity=False)
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _no_network_hint(name: str) -> str:
    url = DOWNLOADS[name][0]
    return (f"If this machine has no network, download {url} elsewhere, unzip it, and set "
            f"RECSYS_DATA_DIR to the unzipped folder (the one holding {', '.join(FILES[name])}); "
            f"or use RECSYS_DATASET=sample, which needs no download.")


def _fetch(url: str, dest: Path, desc: str) -> None:
    """Stream `url` into `dest` with a tqdm progress bar; raise DownloadError on any network/HTTP failure."""
    import requests
    from tqdm.auto import tqdm

    try:
        with requests.get(url, stream=True, timeout=30) as response:
            response.raise_for_status()
            total = int(response.headers.get("content-length", 0)) or None
            with open(dest, "wb") as handle, tqdm(total=total, unit="B", unit_scale=True, unit_divisor=1024,
                                                   desc=desc) as bar:
                for chunk in response.iter_content(chunk_size=1 << 16):
                    handle.write(chunk)
                    bar.update(len(chunk))
    except requests.RequestException as exc:
        raise DownloadError(f"Could not download {url}: {exc}") from exc


def _published_md5(name: str, url: str, cache_dir: Path) -> str | None:
    """The expected MD5: from the table, else from GroupLens' `<zip>.md5` (kept beside the zip for later)."""
    known = DOWNLOADS[name][1]
    if known:
        return known.lower()
    sidecar = cache_dir / f"{name}.zip.md5"
    if not sidecar.exists():
        tmp = cache_dir / f"{name}.zip.md5.partial"
        try:
            _fetch(url + ".md5", tmp, f"{name}.zip.md5")
            match = re.search(r"\b[0-9a-fA-F]{32}\b", tmp.read_text(errors="replace"))
            if not match:
                raise DownloadError(f"{url}.md5 holds no MD5")
            sidecar.write_text(match.group(0).lower() + "\n")
        except DownloadError as exc:
            warnings.warn(f"No published MD5 for {name} ({exc}); the zip is checked only for being a valid zip.",
                          stacklevel=3)
            return None
        finally:
            tmp.unlink(missing_ok=True)
    return sidecar.read_text().strip().lower()


def download(name: str, cache_dir: Path) -> Path:
    """Return the unpacked folder of `name` under `cache_dir`, downloading and verifying the zip if needed.

    The zip is streamed to `<name>.zip.partial` (never reused: a new download starts from scratch), its
    MD5 checked, and only then renamed to `<name>.zip`. A cached zip is re-verified before it is unpacked;
    a bad one is deleted. The unpacked folder appears in one rename, so it is either complete or absent.
    """
    if name not in DOWNLOADS:
        raise DatasetError(f"{name} is not downloadable; valid names: {', '.join(DOWNLOADS)}")
    cache_dir = Path(cache_dir)
    target = cache_dir / name
    if holds_files(target, FILES[name]):
        return target
    cache_dir.mkdir(parents=True, exist_ok=True)
    url = DOWNLOADS[name][0]
    zip_path = cache_dir / f"{name}.zip"
    try:
        expected = _published_md5(name, url, cache_dir)
        if zip_path.exists() and expected and md5_of(zip_path) != expected:
            zip_path.unlink()
            warnings.warn(f"Cached {zip_path} did not match its MD5 {expected}; deleted it, downloading again.",
                          stacklevel=2)
        if not zip_path.exists():
            partial = zip_path.with_name(zip_path.name + ".partial")
            partial.unlink(missing_ok=True)
            try:
                _fetch(url, partial, f"Downloading {name}.zip")
                actual = md5_of(partial)
                if expected and actual != expected:
                    raise ChecksumError(
                        f"Downloaded {url} has MD5 {actual}, but GroupLens publishes {expected}: the file is "
                        f"corrupt or incomplete and was deleted. Run again to retry the download, or "
                        f"download it yourself, unzip it and set RECSYS_DATA_DIR to the folder."
                    )
                os.replace(partial, zip_path)
            finally:
                partial.unlink(missing_ok=True)
    except DownloadError as exc:
        if isinstance(exc, ChecksumError):
            raise
        raise DownloadError(f"{exc}. {_no_network_hint(name)}") from exc
    return _unpack(name, zip_path, target)


def _unpack(name: str, zip_path: Path, target: Path) -> Path:
    tmp = Path(tempfile.mkdtemp(prefix=f".{name}-unpack-", dir=target.parent))
    try:
        try:
            with zipfile.ZipFile(zip_path) as archive:
                archive.extractall(tmp)
        except zipfile.BadZipFile as exc:
            zip_path.unlink(missing_ok=True)
            raise ChecksumError(f"{zip_path} is not a valid zip ({exc}); deleted it. Run again to download "
                                f"it again.") from exc
        found = next((d for d in [tmp, *sorted(tmp.rglob("*"))]
                      if holds_files(d, FILES[name])), None)
        if found is None:
            raise DatasetFileError(f"{zip_path} does not hold the {name} files {', '.join(FILES[name])}.")
        if target.exists():  # an incomplete folder from an older run (complete ones returned earlier)
            shutil.rmtree(target)
        os.replace(found, target)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return target

