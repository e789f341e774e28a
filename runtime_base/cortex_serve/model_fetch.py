"""Fetching remote models: `s3://bucket/prefix` and `http(s)://` addresses, to a local folder.

One module for both sides, so a model is laid out the same way whether `cortex-build render`
bakes it into the image or the runtime fetches it at start (`--models-at-start`); both import it
as `cortex_serve.model_fetch`. It needs only the standard library, and boto3 for s3:// (imported
when an s3:// address is used, so images of APIs without one do not carry it).

- `s3://bucket/prefix`: every object under `prefix/` is downloaded, keeping its path below the
  prefix; a prefix that names one object exactly is that single file. Credentials come from the
  environment as boto3 finds them (AWS_ACCESS_KEY_ID..., a profile, an instance role); without
  any, requests go unsigned (public buckets). AWS_ENDPOINT_URL (or AWS_ENDPOINT_URL_S3) points
  boto3 at another S3-compatible server, as boto3 itself honours it.
- `http(s)://host/path`: one GET, with urllib3 retrying a failed connection or a 429/5xx answer
  with backoff, as boto3 retries S3 (HTTP_RETRIES). A file ending in .zip, .tar.gz, .tgz or .tar
  is unpacked (members that would land outside the folder are refused); any other file is saved
  under its own name.
- `gs://` addresses are recognised but not fetched: FetchError says so.

Every fetch writes into a temporary folder beside the destination and renames it into place, so
a destination either holds a complete model or does not exist.
"""

from __future__ import annotations

import os
import posixpath
import shutil
import tarfile
import tempfile
import urllib.error
import urllib.parse
import urllib.request
import zipfile
from pathlib import Path
from typing import Any

REMOTE_SCHEMES = ("s3://", "gs://", "http://", "https://")
ARCHIVE_SUFFIXES = (".zip", ".tar.gz", ".tgz", ".tar")
HTTP_TIMEOUT = 60.0  # seconds without progress before an http(s) download fails
# Tries after the first, and the backoff between them (0.5 s, 1 s, 2 s, ...; urllib3's rule):
# a server restarting or briefly overloaded is waited for, a missing model (404) is not.
HTTP_RETRIES = 4
HTTP_BACKOFF = 0.5
HTTP_RETRY_STATUSES = (429, 500, 502, 503, 504)
_CHUNK = 1 << 20


class FetchError(Exception):
    """A remote model cannot be listed or downloaded (the message names the address)."""


def is_remote(path: str) -> bool:
    return path.startswith(REMOTE_SCHEMES)


def join(url: str, child: str) -> str:
    return url.rstrip("/") + "/" + child


# -- s3 -------------------------------------------------------------------------------------------


def parse_s3(url: str) -> tuple[str, str]:
    """(bucket, key prefix without a trailing slash) of s3://bucket/prefix."""
    rest = url[len("s3://") :]
    bucket, _, prefix = rest.partition("/")
    if not bucket:
        raise FetchError(f'"{url}": an s3 address needs a bucket (s3://bucket/prefix)')
    return bucket, prefix.strip("/")


def s3_client() -> Any:
    """A boto3 S3 client: signed with the environment's credentials if there are any, else
    unsigned (anonymous access to public buckets)."""
    try:
        import boto3
        from botocore import UNSIGNED
        from botocore.config import Config
    except ImportError:
        raise FetchError(
            "s3:// model sources need boto3 (pip install boto3, or cortex-build[s3])"
        ) from None
    session = boto3.session.Session()
    config = Config(retries={"max_attempts": 5, "mode": "standard"})
    if session.get_credentials() is None:
        config = config.merge(Config(signature_version=UNSIGNED))
    return session.client("s3", config=config)


def _s3_error(url: str, error: Exception) -> FetchError:
    return FetchError(f'"{url}": {error}')


def _s3_keys(client: Any, bucket: str, prefix: str) -> list[tuple[str, str]]:
    """(key, path below the prefix) of every object under prefix/ (not "folder" markers)."""
    found = []
    paginator = client.get_paginator("list_objects_v2")
    below = prefix + "/" if prefix else ""
    for page in paginator.paginate(Bucket=bucket, Prefix=below):
        for item in page.get("Contents") or ():
            key = item["Key"]
            if not key.endswith("/"):
                found.append((key, key[len(below) :]))
    return found


def s3_children(url: str, client: Any | None = None) -> list[str]:
    """The names of the "sub-folders" directly under an s3 prefix (sorted)."""
    bucket, prefix = parse_s3(url)
    client = client or s3_client()
    below = prefix + "/" if prefix else ""
    names: set[str] = set()
    try:
        paginator = client.get_paginator("list_objects_v2")
        for page in paginator.paginate(Bucket=bucket, Prefix=below, Delimiter="/"):
            for common in page.get("CommonPrefixes") or ():
                name = common["Prefix"][len(below) :].rstrip("/")
                if name:
                    names.add(name)
    except Exception as error:  # botocore's ClientError, EndpointConnectionError, ...
        raise _s3_error(url, error) from error
    return sorted(names)


def s3_exists(url: str, client: Any | None = None) -> bool:
    """Whether any object is at or under the s3 address."""
    bucket, prefix = parse_s3(url)
    client = client or s3_client()
    try:
        if prefix and _s3_object(client, bucket, prefix):
            return True
        below = prefix + "/" if prefix else ""
        page = client.list_objects_v2(Bucket=bucket, Prefix=below, MaxKeys=1)
    except Exception as error:
        raise _s3_error(url, error) from error
    return bool(page.get("Contents"))


def _s3_object(client: Any, bucket: str, key: str) -> bool:
    from botocore.exceptions import ClientError

    try:
        client.head_object(Bucket=bucket, Key=key)
    except ClientError as error:
        if error.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
            return False
        raise
    return True


def _fetch_s3(url: str, folder: Path) -> str:
    """Downloads into `folder`; returns the fetched path relative to it ("" for the folder)."""
    bucket, prefix = parse_s3(url)
    client = s3_client()
    try:
        objects = _s3_keys(client, bucket, prefix)
        if not objects and prefix and _s3_object(client, bucket, prefix):
            name = posixpath.basename(prefix)
            client.download_file(bucket, prefix, str(folder / name))
            return _maybe_unpack(folder, name, url)
        if not objects:
            raise FetchError(f'"{url}": no objects found at this address')
        for key, relative in objects:
            target = _inside(folder, relative, url)
            target.parent.mkdir(parents=True, exist_ok=True)
            client.download_file(bucket, key, str(target))
    except FetchError:
        raise
    except Exception as error:
        raise _s3_error(url, error) from error
    return ""


# -- http(s) --------------------------------------------------------------------------------------


def _fetch_http(url: str, folder: Path) -> str:
    import urllib3  # the image gets it with an http(s) model fetched at start (image_models.py)

    name = posixpath.basename(urllib.parse.urlsplit(url).path.rstrip("/")) or "model"
    retries = urllib3.Retry(
        total=HTTP_RETRIES,
        backoff_factor=HTTP_BACKOFF,
        status_forcelist=HTTP_RETRY_STATUSES,
        allowed_methods=["GET"],
        raise_on_status=False,  # the last answer's status is reported below
    )
    http = urllib3.PoolManager(retries=retries, timeout=urllib3.Timeout(HTTP_TIMEOUT))
    try:
        response = http.request("GET", url, preload_content=False)
        try:
            if response.status >= 400:
                reason = response.reason or ""
                raise FetchError(f'"{url}": HTTP {response.status} {reason}'.rstrip())
            with (folder / name).open("wb") as file:
                shutil.copyfileobj(response, file, _CHUNK)
        finally:
            response.release_conn()
    except urllib3.exceptions.MaxRetryError as error:
        raise FetchError(f'"{url}": {error.reason} (after {HTTP_RETRIES + 1} tries)') from None
    except (urllib3.exceptions.HTTPError, OSError) as error:
        raise FetchError(f'"{url}": {error}') from None
    return _maybe_unpack(folder, name, url)


# -- archives and paths ---------------------------------------------------------------------------


def _inside(folder: Path, relative: str, url: str) -> Path:
    """folder/relative, refusing a path that would leave the folder (../, absolute)."""
    target = (folder / relative).resolve()
    if not relative or not target.is_relative_to(folder.resolve()):
        raise FetchError(f'"{url}": refusing the entry "{relative}" (it leaves the model folder)')
    return target


def _maybe_unpack(folder: Path, name: str, url: str) -> str:
    """Unpacks folder/name in place if it is an archive (returns ""), else returns name."""
    if not name.lower().endswith(ARCHIVE_SUFFIXES):
        return name
    archive = folder / name
    try:
        if name.lower().endswith(".zip"):
            with zipfile.ZipFile(archive) as zipped:
                for member in zipped.namelist():
                    _inside(folder, member, url)
                zipped.extractall(folder)
        else:
            with tarfile.open(archive) as tarred:
                for entry in tarred.getmembers():
                    _inside(folder, entry.name, url)
                    if not (entry.isfile() or entry.isdir()):
                        raise FetchError(
                            f'"{url}": refusing the archive entry "{entry.name}" (only files '
                            "and folders are unpacked)"
                        )
                if hasattr(tarfile, "data_filter"):  # Python >= 3.11.4 / 3.10.12
                    tarred.extractall(folder, filter="data")
                else:  # the members were checked above
                    tarred.extractall(folder)
    except (zipfile.BadZipFile, tarfile.TarError) as error:
        raise FetchError(f'"{url}": not a readable archive: {error}') from None
    archive.unlink()
    return ""


def fetch(url: str, dest: Path) -> Path:
    """Downloads the model at `url` into the folder `dest` (which must not exist yet).

    Returns the model's local path: `dest` for a folder or an unpacked archive, `dest/<name>`
    for a single file. Raises FetchError with the address and the reason.
    """
    if url.startswith("gs://"):
        raise FetchError(
            f'"{url}": gs:// model sources are not supported; use s3://, http(s):// or a local path'
        )
    if not is_remote(url):
        raise FetchError(f'"{url}" is not a remote address')
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{dest.name}.fetching-", dir=dest.parent))
    try:
        fetcher = _fetch_s3 if url.startswith("s3://") else _fetch_http
        relative = fetcher(url, staging)
        _readable(staging)
        staging.rename(dest)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return dest / relative if relative else dest


def _readable(top: Path) -> None:
    """0755 folders and 0644 files (mkdtemp makes 0700), so other users of the cache can read."""
    top.chmod(0o755)
    for folder, dirnames, filenames in os.walk(top):
        for name in dirnames:
            (Path(folder) / name).chmod(0o755)
        for name in filenames:
            (Path(folder) / name).chmod(0o644)


__all__ = [
    "REMOTE_SCHEMES",
    "FetchError",
    "fetch",
    "is_remote",
    "join",
    "parse_s3",
    "s3_children",
    "s3_client",
    "s3_exists",
]
