"""The per-lab CA and leaf certificates: idempotent, race-free across processes, SANs as asked."""

from __future__ import annotations

import ipaddress
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from anycastlab.edge import tls
from cryptography import x509


def _issue(directory: str) -> str:
    ca = tls.ensure_ca(Path(directory))
    leaf = tls.issue_leaf(ca, ["www.example.test", "198.51.100.1"])
    tls.server_context(leaf)  # fails if the key and certificate do not belong together
    return str(leaf.path)


def test_ca_is_created_once(tmp_path: Path) -> None:
    first = tls.ensure_ca(tmp_path).cert_path.read_bytes()
    assert tls.ensure_ca(tmp_path).cert_path.read_bytes() == first
    assert (tmp_path / "ca.key").stat().st_mode & 0o077 == 0


def test_concurrent_starts_share_one_consistent_leaf(tmp_path: Path) -> None:
    with ProcessPoolExecutor(4) as pool:
        paths = set(pool.map(_issue, [str(tmp_path)] * 8))
    assert len(paths) == 1


def test_leaf_names_and_chain(tmp_path: Path) -> None:
    ca = tls.ensure_ca(tmp_path)
    leaf = tls.issue_leaf(ca, ["www.example.test", "198.51.100.1"])
    certs = x509.load_pem_x509_certificates(leaf.path.read_bytes())
    san = certs[0].extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.DNSName) == ["www.example.test"]
    assert san.get_values_for_type(x509.IPAddress) == [ipaddress.ip_address("198.51.100.1")]
    assert certs[0].issuer == certs[1].subject == ca.load()[0].subject


def test_sni_contexts_have_one_context_per_hostname(tmp_path: Path) -> None:
    ca = tls.ensure_ca(tmp_path)
    sni = tls.build_sni_contexts(ca, ["a.example.test", "b.example.test"], ["198.51.100.1"])
    assert set(sni.by_name) == {"a.example.test", "b.example.test"}
    assert sni.default.sni_callback is not None
