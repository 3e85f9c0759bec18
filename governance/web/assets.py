"""Thumbnails, evidence files and generated outputs, each found by its hash.

No part of a request path reaches the filesystem: the hash is checked to be 64 hex digits and the
store (or, for an output, the catalogue's own record of the file) says where the bytes are.
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

from fastapi import APIRouter, Request
from fastapi.responses import FileResponse, Response

from stylevault.governance.catalogue import store
from stylevault.governance.web.desk import SHA256, AssetMe, NotFound, catalogue_of
from stylevault.governance.web.queries import output_path

router = APIRouter()
EVIDENCE = re.compile(r"^([0-9a-f]{64})(\.[a-z0-9]{1,10})?$")
# Evidence shown in the browser; anything else downloads (an uploaded .html must not run here).
INLINE = {".pdf": "application/pdf", ".png": "image/png", ".jpg": "image/jpeg", ".jpeg": "image/jpeg"}
IMMUTABLE = "private, max-age=86400, immutable"  # named by hash: the bytes never change


@router.get("/thumbs/{name}")
def thumbnail(request: Request, name: str, me: AssetMe):
    sha256 = name.removesuffix(".jpg")
    if not SHA256.match(sha256):
        raise NotFound("a thumbnail is named by a sha256")
    path = store.thumbnail_path(catalogue_of(request).store, sha256)
    if not path.is_file():
        raise NotFound(f"no thumbnail for {sha256}")
    return FileResponse(path, media_type="image/jpeg", headers={"Cache-Control": IMMUTABLE})


@router.get("/evidence/{name}")
def evidence(request: Request, name: str, me: AssetMe):
    match = EVIDENCE.match(name)
    if not match:
        raise NotFound("evidence is named by its sha256")
    suffix = match.group(2) or ""
    path = Path(catalogue_of(request).store) / "evidence" / name[:2] / name
    if not path.is_file():
        raise NotFound(f"no evidence {name}")
    media = INLINE.get(suffix, "application/octet-stream")
    disposition = "inline" if suffix in INLINE else f'attachment; filename="{name}"'
    return FileResponse(path, media_type=media, headers={"Content-Disposition": disposition})


@router.get("/outputs/{name}")
def output(request: Request, name: str, me: AssetMe):
    sha256 = name.removesuffix(".png")
    if not SHA256.match(sha256):
        raise NotFound("an output is named by its sha256")
    with catalogue_of(request).read() as session:
        found = output_path(session, sha256)
    if found is None:
        raise NotFound(f"no output {sha256}")
    try:
        data = Path(found[0]).read_bytes()
    except OSError as exc:
        raise NotFound(f"output {sha256} is recorded at {found[0]}, which cannot be read") from exc
    if hashlib.sha256(data).hexdigest() != sha256:
        raise NotFound(f"the file at {found[0]} is no longer output {sha256} (its bytes changed)")
    return Response(data, media_type="image/png", headers={"Cache-Control": IMMUTABLE})
