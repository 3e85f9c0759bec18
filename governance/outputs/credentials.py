"""Content Credentials: a C2PA manifest signed into each generated PNG when a certificate is configured.

`STYLEVAULT_C2PA_CERT` names a PEM chain (the signing leaf first, then its intermediates and CA),
`STYLEVAULT_C2PA_KEY` the leaf's PKCS#8 PEM private key, `STYLEVAULT_C2PA_ALG` the algorithm (es256
unless set). The manifest records a `c2pa.created` action of IPTC source type trainedAlgorithmicMedia
and every retrieved neighbour as an `inputTo` ingredient identified by its sha256 (C2PA 2.x, sections
on actions and ingredients). Signing is offline, with no timestamp authority, so the signature holds
only while the certificate is valid. c2pa-python is imported only when something is signed or read.
"""

from __future__ import annotations

import io
import json
import os
from dataclasses import dataclass
from pathlib import Path

from stylevault.governance import __version__
from stylevault.governance.errors import BadInput

CERT, KEY, ALG = "STYLEVAULT_C2PA_CERT", "STYLEVAULT_C2PA_KEY", "STYLEVAULT_C2PA_ALG"
ALGORITHMS = ("es256", "es384", "es512", "ps256", "ps384", "ps512", "ed25519")
SOURCE_TYPE = "http://cv.iptc.org/newscodes/digitalsourcetype/trainedAlgorithmicMedia"
# The output is its own preview: the claim thumbnail c2pa adds by default would be a ~30 KB JPEG copy.
SETTINGS = {"builder": {"thumbnail": {"enabled": False}}}


@dataclass(frozen=True)
class SignerConfig:
    """The signing chain and key read from the files the environment names."""

    cert: bytes
    key: bytes
    alg: str
    cert_path: str
    key_path: str

    @classmethod
    def from_env(cls) -> SignerConfig:
        if not configured():
            raise BadInput(f"{CERT} and {KEY} are not set: no certificate to sign C2PA manifests with")
        alg = os.environ.get(ALG, "").strip().lower() or "es256"
        if alg not in ALGORITHMS:
            raise BadInput(f"{ALG}={alg}: not a C2PA signing algorithm (one of {', '.join(ALGORITHMS)})")
        cert_path, key_path = os.environ[CERT], os.environ[KEY]
        cert, key = _read(Path(cert_path), f"{CERT}={cert_path}"), _read(Path(key_path), f"{KEY}={key_path}")
        if b"-----BEGIN CERTIFICATE-----" not in cert:
            raise BadInput(f"{CERT}={cert_path}: no PEM certificate in the file")
        if b"-----BEGIN PRIVATE KEY-----" not in key:
            raise BadInput(
                f"{KEY}={key_path}: not an unencrypted PKCS#8 PEM key ('BEGIN PRIVATE KEY'); "
                "convert it with `openssl pkcs8 -topk8 -nocrypt`"
            )
        return cls(cert, key, alg, cert_path, key_path)


def configured() -> bool:
    """Whether outputs are to be signed: both variables set; one without the other is an error."""
    cert, key = os.environ.get(CERT, "").strip(), os.environ.get(KEY, "").strip()
    if bool(cert) != bool(key):
        missing, present = (KEY, CERT) if cert else (CERT, KEY)
        raise BadInput(
            f"{missing} is not set but {present} is: set both to sign outputs with C2PA, or neither"
        )
    return bool(cert)


def manifest(record: dict) -> dict:
    """The manifest definition for one output's run record (the per-output dict `provenance` writes)."""
    ingredients = []
    for n in record["neighbours"]:
        ingredient = {
            "title": n.get("title") or f"stylevault image {n['image_id']}",
            "relationship": "inputTo",
            # Only the neighbour's hash is at hand, not its bytes: the ingredient is named by it.
            "instance_id": f"sha256:{n['sha256']}",
            "metadata": {
                "stylevault": {
                    key: n[key]
                    for key in ("image_id", "sha256", "rank", "score", "licence", "attribution", "creator")
                    if n.get(key) is not None
                }
            },
        }
        if n.get("source_url"):
            ingredient["informational_URI"] = n["source_url"]
        ingredients.append(ingredient)
    created = {
        "action": "c2pa.created",
        "digitalSourceType": SOURCE_TYPE,
        "softwareAgent": {"name": "stylevault", "version": __version__, "model": record["model"]["id"]},
        "parameters": {
            "run_id": record["run_id"],
            "output": record["ordinal"],
            "index_manifest_sha256": record["index"]["manifest_sha256"],
            "ingredientIds": [i["instance_id"] for i in ingredients],
        },
    }
    return {
        "claim_generator_info": [{"name": "stylevault", "version": __version__}],
        "title": record["output"]["file"],
        "ingredients": ingredients,
        "assertions": [{"label": "c2pa.actions.v2", "data": {"actions": [created]}}],
    }


def sign_png(png_bytes: bytes, record: dict) -> bytes:
    """The PNG with the record's C2PA manifest embedded, signed offline with the configured chain."""
    config = SignerConfig.from_env()
    c2pa = _c2pa(f"{CERT} is set: signing")
    source = f"{CERT}={config.cert_path}, {KEY}={config.key_path}"
    try:
        info = c2pa.C2paSignerInfo(config.alg.encode(), config.cert, config.key, None)
        with (
            c2pa.Signer.from_info(info) as signer,
            c2pa.Context.from_dict(SETTINGS) as context,
            c2pa.Builder(manifest(record), context) as builder,
        ):
            signed = io.BytesIO()
            builder.sign(signer, "image/png", io.BytesIO(png_bytes), signed)
    except c2pa.C2paError as exc:
        raise BadInput(f"{source}: c2pa refused to sign ({_one_line(exc)})") from exc
    return signed.getvalue()


def read_manifest(source: bytes | str | os.PathLike, trust_anchors: bytes | str | None = None) -> dict:
    """The active manifest of a file (or its bytes) and how it validates: `validation_state` is
    Trusted only when the chain ends in one of `trust_anchors` (PEM); `failures` lists the codes."""
    c2pa = _c2pa("reading C2PA manifests")
    label = "the image" if isinstance(source, bytes) else str(source)
    data = source if isinstance(source, bytes) else _read(Path(source), label)
    settings = {}
    if trust_anchors:
        anchors = trust_anchors.decode() if isinstance(trust_anchors, bytes) else trust_anchors
        settings = {"trust": {"trust_anchors": anchors}}
    try:
        with c2pa.Context.from_dict(settings) as context, c2pa.Reader(io.BytesIO(data), context=context) as r:
            store = json.loads(r.json())
    except c2pa.C2paError.ManifestNotFound as exc:
        raise BadInput(f"{label}: carries no C2PA manifest") from exc
    except c2pa.C2paError as exc:
        raise BadInput(f"{label}: unreadable C2PA manifest ({_one_line(exc)})") from exc
    results = store.get("validation_results", {}).get("activeManifest", {})
    return {
        "validation_state": store.get("validation_state"),
        "failures": [f["code"] for f in results.get("failure", [])],
        "manifest": store["manifests"][store["active_manifest"]],
    }


def _c2pa(needed_by: str):
    try:
        import c2pa
    except ImportError as exc:
        raise BadInput(f"{needed_by} needs c2pa-python (pip install 'stylevault[generation]')") from exc
    return c2pa


def _read(path: Path, label: str) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise BadInput(f"{label}: cannot read ({exc.strerror})") from exc


def _one_line(exc: Exception) -> str:
    return " ".join(str(exc).split())
