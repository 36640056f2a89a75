"""Install the pinned Anserini jar: from the Pyserini 1.6.0 source distribution on PyPI.

``pip download pyserini==1.6.0 --no-deps --no-binary :all: --no-build-isolation`` fetches
the sdist (165 MB; no dependency is resolved or installed, nothing is built), the jar is
extracted from it and checked against its pinned size and SHA-256, then renamed into place
atomically
(``$HYBRIDSEARCH_HOME/jars/anserini-1.7.1-fatjar.jar`` unless ``--out``).

    python scripts/install_anserini_jar.py [--out PATH]
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

from hybridsearch.sparse.lucene_jvm import (
    JAR_BYTES,
    JAR_NAME,
    JAR_SHA256,
    PYSERINI_VERSION,
    jar_path,
)

_MEMBER = f"pyserini-{PYSERINI_VERSION}/pyserini/resources/jars/{JAR_NAME}"


def sha256_of(path: Path) -> str:
    """The SHA-256 of a file, hex."""
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def jar_is_installed(path: Path) -> bool:
    """Whether ``path`` holds the pinned jar (size, then hash)."""
    return path.is_file() and path.stat().st_size == JAR_BYTES and sha256_of(path) == JAR_SHA256


def install_jar(out: Path | None = None) -> Path:
    """Download, check and place the jar; a no-op when the pinned jar is already there."""
    out = out or jar_path()
    if jar_is_installed(out):
        return out
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=out.parent) as tmp:
        subprocess.run(
            [
                sys.executable,
                "-m",
                "pip",
                "download",
                "-q",
                f"pyserini=={PYSERINI_VERSION}",
                "--no-deps",
                "--no-binary",
                ":all:",
                # Metadata from this environment's setuptools: no isolated build environment
                # to install first (20 s against 3.5 min here).
                "--no-build-isolation",
                "-d",
                tmp,
            ],
            check=True,
        )
        sdist = Path(tmp) / f"pyserini-{PYSERINI_VERSION}.tar.gz"
        with tarfile.open(sdist) as archive:
            member = archive.extractfile(_MEMBER)
            if member is None:
                raise RuntimeError(f"{sdist} has no {_MEMBER}")
            staged = Path(tmp) / JAR_NAME
            with staged.open("wb") as f:
                for block in iter(lambda: member.read(1 << 20), b""):
                    f.write(block)
        digest = sha256_of(staged)
        if digest != JAR_SHA256:
            raise RuntimeError(f"{_MEMBER}: SHA-256 {digest}, expected {JAR_SHA256}")
        os.replace(staged, out)
    return out


def main(argv: list[str] | None = None) -> int:
    """``[--out PATH]``: install the jar and print where it is."""
    import argparse  # noqa: PLC0415

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, help=f"jar path (default: {jar_path()})")
    args = parser.parse_args(argv)
    print(install_jar(args.out))
    return 0
