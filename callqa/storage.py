"""One interface for audio, results and artifacts: a local directory or an S3/MinIO bucket.

``open_store(settings)`` picks the backend from ``CALLQA_STORE``: a directory path (default
``HOME/store``) or ``s3://bucket/prefix`` with ``CALLQA_S3_ENDPOINT`` and keys. Keys are relative
POSIX paths (``audio/call-1.wav``); anything that could escape the store is refused.
"""

from __future__ import annotations

import hashlib
import io
import mimetypes
import shutil
from pathlib import Path, PurePosixPath
from typing import Protocol
from urllib.parse import urlparse

from callqa.errors import AuthFailed, BadInput, NotFound, ServiceUnavailable
from callqa.settings import Settings, get_settings


def check_key(key: str) -> str:
    """A safe object key: relative, no ``..``, no empty parts."""
    path = PurePosixPath(key)
    if not key or path.is_absolute() or any(part in ("", ".", "..") for part in key.split("/")) or "\\" in key:
        raise BadInput(f"object key {key!r} must be a relative path like 'audio/call-1.wav'")
    return key


def file_digest(path: Path) -> str:
    h = hashlib.sha256()
    with Path(path).open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


class ObjectStore(Protocol):
    def put_file(self, key: str, path: Path) -> str: ...
    def put_bytes(self, key: str, data: bytes, content_type: str | None = None) -> str: ...
    def get_bytes(self, key: str) -> bytes: ...
    def exists(self, key: str) -> bool: ...
    def uri(self, key: str) -> str: ...
    def list(self, prefix: str = "") -> list[str]: ...


class LocalStore:
    """Objects as files under ``root`` (the embedded default)."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    def path(self, key: str) -> Path:
        return self.root / check_key(key)

    def put_file(self, key: str, path: Path) -> str:
        target = self.path(key)
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(f".{target.name}.part")
        shutil.copyfile(path, tmp)
        tmp.replace(target)  # readers never see half a file
        return self.uri(key)

    def put_bytes(self, key: str, data: bytes, content_type: str | None = None) -> str:
        target = self.path(key)
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(f".{target.name}.part")
        tmp.write_bytes(data)
        tmp.replace(target)
        return self.uri(key)

    def get_bytes(self, key: str) -> bytes:
        path = self.path(key)
        if not path.is_file():
            raise NotFound(f"no object {key!r} in {self.root}")
        return path.read_bytes()

    def exists(self, key: str) -> bool:
        return self.path(key).is_file()

    def uri(self, key: str) -> str:
        return str(self.path(key).resolve())

    def list(self, prefix: str = "") -> list[str]:
        if not self.root.is_dir():
            return []
        keys = (p.relative_to(self.root).as_posix() for p in self.root.rglob("*") if p.is_file())
        return sorted(k for k in keys if k.startswith(prefix) and not PurePosixPath(k).name.startswith("."))


class S3Store:
    """Objects in an S3-compatible bucket (MinIO in production, a local S3 server in tests)."""

    def __init__(
        self,
        bucket: str,
        prefix: str = "",
        *,
        endpoint: str,
        access_key: str | None,
        secret_key: str | None,
        region: str = "us-east-1",
    ) -> None:
        from minio import Minio
        from minio.helpers import check_bucket_name

        try:
            check_bucket_name(bucket)
        except ValueError as exc:
            raise BadInput(f"S3 bucket name {bucket!r} is not valid: {exc}") from exc
        parsed = urlparse(endpoint)
        if parsed.scheme not in ("http", "https") or not parsed.netloc:
            raise BadInput(f"S3 endpoint {endpoint!r} must be a URL like http://127.0.0.1:9000")
        self.bucket = bucket
        self.prefix = prefix.strip("/")
        self.endpoint = endpoint
        self.client = Minio(
            parsed.netloc,
            access_key=access_key,
            secret_key=secret_key,
            secure=parsed.scheme == "https",
            region=region,
        )

    def _name(self, key: str) -> str:
        check_key(key)
        return f"{self.prefix}/{key}" if self.prefix else key

    def _call(self, what: str, fn, *args, **kwargs):
        from minio.error import S3Error
        from urllib3.exceptions import HTTPError

        try:
            return fn(*args, **kwargs)
        except S3Error as exc:
            if exc.code in ("NoSuchKey", "NoSuchBucket"):
                raise NotFound(f"{what}: {exc.code} in s3://{self.bucket}/{self.prefix}") from exc
            if exc.code in ("AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch"):
                raise AuthFailed(f"{what}: the S3 server at {self.endpoint} refused the keys ({exc.code})") from exc
            raise ServiceUnavailable(f"{what}: S3 error {exc.code}: {exc.message}") from exc
        except HTTPError as exc:
            raise ServiceUnavailable(f"{what}: the S3 server at {self.endpoint} does not answer ({exc})") from exc

    def ensure_bucket(self) -> None:
        if not self._call("bucket", self.client.bucket_exists, self.bucket):
            self._call("bucket", self.client.make_bucket, self.bucket)

    def put_file(self, key: str, path: Path) -> str:
        self.ensure_bucket()
        ctype = mimetypes.guess_type(str(path))[0] or "application/octet-stream"
        self._call(f"put {key}", self.client.fput_object, self.bucket, self._name(key), str(path), content_type=ctype)
        return self.uri(key)

    def put_bytes(self, key: str, data: bytes, content_type: str | None = None) -> str:
        self.ensure_bucket()
        ctype = content_type or mimetypes.guess_type(key)[0] or "application/octet-stream"
        self._call(
            f"put {key}",
            self.client.put_object,
            self.bucket,
            self._name(key),
            io.BytesIO(data),
            len(data),
            content_type=ctype,
        )
        return self.uri(key)

    def get_bytes(self, key: str) -> bytes:
        response = self._call(f"get {key}", self.client.get_object, self.bucket, self._name(key))
        try:
            return response.read()
        finally:
            response.close()
            response.release_conn()

    def exists(self, key: str) -> bool:
        try:
            self._call(f"stat {key}", self.client.stat_object, self.bucket, self._name(key))
        except NotFound:
            return False
        return True

    def uri(self, key: str) -> str:
        return f"s3://{self.bucket}/{self._name(key)}"

    def list(self, prefix: str = "") -> list[str]:
        if prefix:
            check_key(prefix.rstrip("/"))
        full = f"{self.prefix}/{prefix}" if self.prefix else prefix
        if not self._call("bucket", self.client.bucket_exists, self.bucket):
            return []
        objects = self._call("list", self.client.list_objects, self.bucket, prefix=full, recursive=True)
        cut = len(self.prefix) + 1 if self.prefix else 0
        return sorted(o.object_name[cut:] for o in objects)


def open_store(settings: Settings | None = None) -> LocalStore | S3Store:
    """The configured object store (see the module docstring)."""
    settings = settings or get_settings()
    spec = settings.store
    if spec is None:
        return LocalStore(settings.home / "store")
    if spec.startswith("s3://"):
        parsed = urlparse(spec)
        if not parsed.netloc:
            raise BadInput(f"CALLQA_STORE={spec!r}: expected s3://bucket/prefix")
        if not settings.s3_endpoint:
            raise BadInput("CALLQA_STORE is an s3:// URI but CALLQA_S3_ENDPOINT is not set")
        return S3Store(
            parsed.netloc,
            parsed.path,
            endpoint=settings.s3_endpoint,
            access_key=settings.s3_access_key,
            secret_key=settings.s3_secret_key,
            region=settings.s3_region,
        )
    if "://" in spec:
        raise BadInput(f"CALLQA_STORE={spec!r}: a directory or s3://bucket/prefix")
    return LocalStore(Path(spec))
