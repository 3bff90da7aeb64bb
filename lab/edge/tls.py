"""TLS for the edge: a per-lab CA, leaf certificates per hostname, and SNI-selecting server contexts.

Keys are ECDSA P-256: the handshake cost of a PoP is dominated by the signature, and P-256 is what
production edges use for speed. The CA lives in one directory (``ca.pem`` + ``ca.key``) so that
``curl --cacert <dir>/ca.pem`` works from any client; leaves are issued into ``<dir>/leaves/``.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import hashlib
import ipaddress
import os
import ssl
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

CA_CERT = "ca.pem"
CA_KEY = "ca.key"
_VALIDITY_CA = dt.timedelta(days=3650)
_VALIDITY_LEAF = dt.timedelta(days=397)


@dataclass(frozen=True)
class CertificateAuthority:
    directory: Path

    @property
    def cert_path(self) -> Path:
        return self.directory / CA_CERT

    @property
    def key_path(self) -> Path:
        return self.directory / CA_KEY

    def load(self) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
        cert = x509.load_pem_x509_certificate(self.cert_path.read_bytes())
        key = serialization.load_pem_private_key(self.key_path.read_bytes(), password=None)
        assert isinstance(key, ec.EllipticCurvePrivateKey)
        return cert, key


@contextlib.contextmanager
def _locked(directory: Path) -> Iterator[None]:
    """Serialise CA and leaf creation across processes: PoP proxies may start in parallel."""
    directory.mkdir(parents=True, exist_ok=True)
    with open(directory / ".lock", "a+b") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _write_private(path: Path, data: bytes) -> None:
    """Write a key file readable by its owner only, atomically (a half-written key is worse than none)."""
    tmp = path.with_suffix(f"{path.suffix}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    os.replace(tmp, path)


def _write_public(path: Path, data: bytes) -> None:
    tmp = path.with_suffix(f"{path.suffix}.{os.getpid()}.tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def ensure_ca(directory: Path, name: str = "anycastlab") -> CertificateAuthority:
    """Create the CA in ``directory`` unless it is already there; idempotent, so `up` can always call it."""
    ca = CertificateAuthority(directory)
    if ca.cert_path.exists() and ca.key_path.exists():
        return ca
    with _locked(directory):
        if not (ca.cert_path.exists() and ca.key_path.exists()):
            _create_ca(ca, name)
    return ca


def _create_ca(ca: CertificateAuthority, name: str) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"{name} lab CA")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + _VALIDITY_CA)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True, content_commitment=False, key_encipherment=False,
                data_encipherment=False, key_agreement=False, key_cert_sign=True, crl_sign=True,
                encipher_only=False, decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    _write_private(ca.key_path, key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    _write_public(ca.cert_path, cert.public_bytes(serialization.Encoding.PEM))


@dataclass(frozen=True)
class Leaf:
    """One PEM file holding the private key, the certificate and the CA (written in one atomic step,
    so a concurrent reader never sees a key from one issue and a certificate from another)."""

    path: Path
    names: tuple[str, ...]

    @property
    def cert_path(self) -> Path:
        return self.path

    @property
    def key_path(self) -> Path:
        return self.path


def _san(names: Iterable[str]) -> list[x509.GeneralName]:
    out: list[x509.GeneralName] = []
    for n in names:
        try:
            out.append(x509.IPAddress(ipaddress.ip_address(n)))
        except ValueError:
            out.append(x509.DNSName(n))
    return out


def issue_leaf(ca: CertificateAuthority, names: Sequence[str], out_dir: Path | None = None) -> Leaf:
    """Issue (or reuse) a server certificate for ``names`` (DNS names and/or IP addresses)."""
    if not names:
        raise ValueError("a leaf certificate needs at least one name")
    out_dir = out_dir or ca.directory / "leaves"
    out_dir.mkdir(parents=True, exist_ok=True)
    tag = hashlib.sha256("\n".join(names).encode()).hexdigest()[:16]
    leaf = Leaf(out_dir / f"{tag}.pem", tuple(names))
    if leaf.path.exists():
        return leaf
    with _locked(out_dir):
        if not leaf.path.exists():
            _create_leaf(ca, leaf)
    return leaf


def _create_leaf(ca: CertificateAuthority, leaf: Leaf) -> None:
    names = leaf.names
    ca_cert, ca_key = ca.load()
    key = ec.generate_private_key(ec.SECP256R1())
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[0])]))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + _VALIDITY_LEAF)
        .add_extension(x509.SubjectAlternativeName(_san(names)), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    # The chain carries the CA too, so clients that only trust the CA can build the path.
    _write_private(leaf.path, key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
        + cert.public_bytes(serialization.Encoding.PEM) + ca_cert.public_bytes(serialization.Encoding.PEM))


def server_context(leaf: Leaf) -> ssl.SSLContext:
    """TLS 1.2 and 1.3, ALPN http/1.1, session tickets on (resumption), no compression or renegotiation."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.load_cert_chain(str(leaf.path))
    ctx.set_alpn_protocols(["http/1.1"])
    ctx.options |= ssl.OP_NO_COMPRESSION | ssl.OP_NO_RENEGOTIATION | ssl.OP_CIPHER_SERVER_PREFERENCE
    ctx.num_tickets = 2
    return ctx


@dataclass
class SniContexts:
    """The listening context plus one per hostname: the SNI callback switches to the matching one.

    Session tickets are sealed with the listening context's keys, so resumption works whichever
    certificate SNI picked.
    """

    default: ssl.SSLContext
    by_name: dict[str, ssl.SSLContext] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.default.sni_callback = self._pick

    def _pick(self, sslobj: ssl.SSLObject, server_name: str | None, _ctx: ssl.SSLContext) -> None:
        if server_name is None:
            return None
        name = server_name.lower()
        sslobj.anycastlab_sni = name  # type: ignore[attr-defined]  # read back by the proxy for trace
        ctx = self.by_name.get(name)
        if ctx is None:
            # wildcard: a.b.example -> *.b.example
            _, _, parent = name.partition(".")
            ctx = self.by_name.get("*." + parent)
        if ctx is not None:
            sslobj.context = ctx
        return None


def build_sni_contexts(ca: CertificateAuthority, hostnames: Sequence[str], addresses: Sequence[str]) -> SniContexts:
    """One certificate per hostname (SNI picks it) plus a default one covering every name and address."""
    all_names = list(dict.fromkeys([*hostnames, *addresses])) or ["localhost"]
    default = server_context(issue_leaf(ca, all_names))
    by_name = {n.lower(): server_context(issue_leaf(ca, [n])) for n in hostnames}
    return SniContexts(default, by_name)


def sni_of(sslobj: object) -> str | None:
    name = getattr(sslobj, "anycastlab_sni", None)
    return name if isinstance(name, str) else None


def default_ca_dir() -> Path:
    """Where a standalone proxy keeps its CA (ANYCASTLAB_CA_DIR overrides)."""
    env = os.environ.get("ANYCASTLAB_CA_DIR")
    if env:
        return Path(env)
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "anycastlab" / "ca"
