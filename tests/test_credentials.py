"""C2PA manifests in generated PNGs: signed offline with a test chain made here (a root CA and an
ECDSA P-256 leaf for emailProtection), read back with c2pa's Reader, refused when misconfigured."""

from __future__ import annotations

import datetime as dt
import io
import json
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from PIL import Image
from PIL.PngImagePlugin import PngInfo

from stylevault.governance.errors import BadInput
from stylevault.governance.index import builds as index
from stylevault.governance.outputs import credentials, provenance
from tests.factories import run_generate as run


def _name(common_name: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "stylevault tests"),
            x509.NameAttribute(NameOID.COUNTRY_NAME, "US"),
        ]
    )


def _usage(*, sign: bool) -> x509.KeyUsage:
    flags = dict.fromkeys(
        [
            "content_commitment",
            "key_encipherment",
            "data_encipherment",
            "key_agreement",
            "encipher_only",
            "decipher_only",
        ],
        False,
    )
    return x509.KeyUsage(digital_signature=sign, key_cert_sign=not sign, crl_sign=not sign, **flags)


def _pem(key) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def make_chain(eku=ExtendedKeyUsageOID.EMAIL_PROTECTION) -> tuple[bytes, bytes, bytes]:
    """(leaf + root PEM chain, leaf PKCS#8 key, root PEM), valid from yesterday for a month."""
    now = dt.datetime.now(dt.UTC)
    root_key, leaf_key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())

    def certificate(subject, issuer, key):
        return (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(issuer)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(days=1))
            .not_valid_after(now + dt.timedelta(days=30))
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        )

    root = (
        certificate(_name("stylevault test root"), _name("stylevault test root"), root_key)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(_usage(sign=False), critical=True)
        .sign(root_key, hashes.SHA256())
    )
    leaf = (
        certificate(_name("stylevault signer"), root.subject, leaf_key)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(_usage(sign=True), critical=True)
        .add_extension(x509.ExtendedKeyUsage([eku]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(root_key.public_key()), critical=False
        )
        .sign(root_key, hashes.SHA256())
    )
    root_pem = root.public_bytes(serialization.Encoding.PEM)
    return leaf.public_bytes(serialization.Encoding.PEM) + root_pem, _pem(leaf_key), root_pem


def configure(monkeypatch, folder: Path, chain: bytes, key: bytes) -> None:
    (folder / "chain.pem").write_bytes(chain)
    (folder / "key.pem").write_bytes(key)
    monkeypatch.setenv(credentials.CERT, str(folder / "chain.pem"))
    monkeypatch.setenv(credentials.KEY, str(folder / "key.pem"))
    monkeypatch.delenv(credentials.ALG, raising=False)


@pytest.fixture
def signing(monkeypatch, tmp_path) -> bytes:
    """Signing configured with a fresh test chain; returns the root to trust when reading."""
    chain, key, root = make_chain()
    configure(monkeypatch, tmp_path, chain, key)
    return root


@pytest.fixture
def unsigned(monkeypatch):
    monkeypatch.delenv(credentials.CERT, raising=False)
    monkeypatch.delenv(credentials.KEY, raising=False)


def small_png() -> bytes:
    info = PngInfo()
    info.add_itxt("stylevault:prompt", "a quiet study in blue")
    buffer = io.BytesIO()
    Image.new("RGB", (8, 8), (20, 40, 160)).save(buffer, "PNG", pnginfo=info)
    return buffer.getvalue()


RECORD = {
    "run_id": "0f" * 16,
    "ordinal": 0,
    "model": {"id": "rdm@sha256:" + "ab" * 8},
    "index": {"manifest_sha256": "cd" * 32},
    "output": {"file": "0f0f0f0f-00.png"},
    "neighbours": [
        {
            "rank": 1,
            "image_id": 4,
            "sha256": "11" * 32,
            "score": 0.5,
            "licence": "CC-BY-4.0",
            "attribution": "Study 3 by Artist 3",
            "creator": "Artist 3",
            "title": "Study 3",
            "source_url": "https://example.org/3",
        },
        {"rank": 2, "image_id": 9, "sha256": "22" * 32, "score": 0.25, "licence": "CC0-1.0"},
    ],
}


def test_a_signed_png_names_the_run_and_its_neighbours(signing):
    png = small_png()
    signed = credentials.sign_png(png, RECORD)
    read = credentials.read_manifest(signed, trust_anchors=signing)
    assert read["validation_state"] == "Trusted" and read["failures"] == []
    manifest = read["manifest"]
    assert manifest["claim_generator_info"][0]["name"] == "stylevault"
    assert manifest["title"] == "0f0f0f0f-00.png"
    assert manifest["signature_info"]["common_name"] == "stylevault signer"
    assert "time" not in manifest["signature_info"]  # no timestamp authority
    (actions,) = [a for a in manifest["assertions"] if a["label"] == "c2pa.actions.v2"]
    (created,) = actions["data"]["actions"]
    assert created["action"] == "c2pa.created"
    assert created["digitalSourceType"] == credentials.SOURCE_TYPE
    assert created["softwareAgent"]["name"] == "stylevault"
    assert created["softwareAgent"]["model"] == RECORD["model"]["id"]
    assert created["parameters"]["run_id"] == RECORD["run_id"]
    assert created["parameters"]["index_manifest_sha256"] == RECORD["index"]["manifest_sha256"]
    assert len(created["parameters"]["ingredients"]) == 2  # linked to the ingredient assertions
    ingredients = manifest["ingredients"]
    assert [i["instance_id"] for i in ingredients] == ["sha256:" + "11" * 32, "sha256:" + "22" * 32]
    assert {i["relationship"] for i in ingredients} == {"inputTo"}
    assert [i["title"] for i in ingredients] == ["Study 3", "stylevault image 9"]
    assert ingredients[0]["informational_URI"] == "https://example.org/3"
    assert ingredients[0]["metadata"]["stylevault"]["licence"] == "CC-BY-4.0"
    assert ingredients[1]["metadata"]["stylevault"] == {
        "image_id": 9,
        "sha256": "22" * 32,
        "rank": 2,
        "score": 0.25,
        "licence": "CC0-1.0",
    }

    image = Image.open(io.BytesIO(signed))
    assert image.text == {"stylevault:prompt": "a quiet study in blue"}
    assert image.tobytes() == Image.open(io.BytesIO(png)).tobytes()
    # Without the root as an anchor the signature still verifies but the signer is not trusted.
    untrusted = credentials.read_manifest(signed)
    assert untrusted["validation_state"] == "Valid" and untrusted["failures"] == [
        "signingCredential.untrusted"
    ]


def test_editing_one_byte_of_a_signed_file_fails_validation(signing, tmp_path):
    signed = bytearray(credentials.sign_png(small_png(), RECORD))
    signed[signed.index(b"quiet")] ^= 0x20  # "quiet" -> "Quiet" in the prompt chunk
    (tmp_path / "edited.png").write_bytes(signed)
    read = credentials.read_manifest(tmp_path / "edited.png", trust_anchors=signing)
    assert read["validation_state"] == "Invalid"
    assert read["failures"] == ["assertion.dataHash.mismatch"]


def test_generated_outputs_are_signed_before_they_are_hashed(signing, indexed, rdm_dir, tmp_path):
    catalogue, folder = indexed
    made = run(catalogue, folder, rdm_dir, tmp_path / "out", n=2, seed=7)
    for name in made.files:
        path = Path(made.out) / name
        sidecar = json.loads(path.with_suffix(".json").read_text())
        assert sidecar["output"]["c2pa"] is True
        assert sidecar["output"]["sha256"] == index.sha256_file(path)
        read = credentials.read_manifest(path, trust_anchors=signing)
        assert read["validation_state"] == "Trusted"
        assert [i["instance_id"] for i in read["manifest"]["ingredients"]] == [
            f"sha256:{n['sha256']}" for n in sidecar["neighbours"]
        ]
        (actions,) = [a for a in read["manifest"]["assertions"] if a["label"] == "c2pa.actions.v2"]
        assert actions["data"]["actions"][0]["parameters"]["run_id"] == made.run_id
        with catalogue.read() as session:
            assert provenance.show(session, path).as_dict()["output"]["sha256"] == sidecar["output"]["sha256"]


def test_without_a_certificate_nothing_is_signed(unsigned, indexed, rdm_dir, tmp_path):
    assert not credentials.configured()
    catalogue, folder = indexed
    made = run(catalogue, folder, rdm_dir, tmp_path / "out", n=1, seed=7)
    path = Path(made.out) / made.files[0]
    assert json.loads(path.with_suffix(".json").read_text())["output"]["c2pa"] is False
    with pytest.raises(BadInput, match="carries no C2PA manifest"):
        credentials.read_manifest(path)


def test_a_missing_key_file_is_refused_before_anything_is_written(
    signing, indexed, rdm_dir, tmp_path, monkeypatch
):
    monkeypatch.setenv(credentials.KEY, str(tmp_path / "nowhere.pem"))
    catalogue, folder = indexed
    with pytest.raises(BadInput, match=r"^STYLEVAULT_C2PA_KEY=.*nowhere\.pem: cannot read"):
        run(catalogue, folder, rdm_dir, tmp_path / "out", n=1)
    assert not (tmp_path / "out").exists()
    with catalogue.read() as session:
        assert provenance.affected(session, 1) == []


def _sec1(key: bytes) -> bytes:
    return serialization.load_pem_private_key(key, None).private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    )


@pytest.mark.parametrize(
    ("case", "message"),
    [
        ("half", r"^STYLEVAULT_C2PA_KEY is not set but STYLEVAULT_C2PA_CERT is"),
        ("alg", r"^STYLEVAULT_C2PA_ALG=es999: not a C2PA signing algorithm"),
        ("not pem", r"^STYLEVAULT_C2PA_CERT=.*chain\.pem: no PEM certificate"),
        ("sec1", r"^STYLEVAULT_C2PA_KEY=.*key\.pem: not an unencrypted PKCS#8 PEM key"),
        ("other key", r"^STYLEVAULT_C2PA_CERT=.*: c2pa refused to sign \(Signature: the signature does not"),
        (
            "server eku",
            r"^STYLEVAULT_C2PA_CERT=.*: c2pa refused to sign \(Signature: the certificate is invalid\)$",
        ),
    ],
)
def test_misconfigured_signing_is_one_clear_error(case, message, monkeypatch, tmp_path):
    chain, key, _ = make_chain()
    configure(monkeypatch, tmp_path, chain, key)
    if case == "half":
        monkeypatch.delenv(credentials.KEY)
    elif case == "alg":
        monkeypatch.setenv(credentials.ALG, "ES999")
    elif case == "not pem":
        (tmp_path / "chain.pem").write_text("not a certificate\n")
    elif case == "sec1":
        (tmp_path / "key.pem").write_bytes(_sec1(key))
    elif case == "other key":
        (tmp_path / "key.pem").write_bytes(make_chain()[1])
    elif case == "server eku":
        chain, key, _ = make_chain(ExtendedKeyUsageOID.SERVER_AUTH)
        configure(monkeypatch, tmp_path, chain, key)
    with pytest.raises(BadInput, match=message) as raised:
        credentials.sign_png(small_png(), RECORD)
    assert "\n" not in str(raised.value)
