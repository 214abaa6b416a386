"""Throwaway TLS certificates for the SMTP test server.

This module owns the X.509 material used by :mod:`zope.sendmail.testserver`:
a private certificate authority generated at test time, a server
certificate signed by it for ``localhost`` / ``127.0.0.1`` and a few
deliberately *wrong* certificates a verifying client must reject.  Nothing
here is fit for production; it exists so tests can exercise real
certificate verification without shipping keys in the repository.

Keys are EC (SECP256R1) because generating RSA keys is slow, and all
material is generated once per process and cached: every test server of a
test run shares the same CA, and only writes the PEM files to disk.
"""
import datetime
import functools
import ipaddress
import os

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID
from cryptography.x509.oid import NameOID


#: Host name of the certificate presented in ``wrong_certificate='hostname'``
#: mode; deliberately not a name the client connects to.
WRONG_HOSTNAME = 'wrong.example'

#: The kinds of certificate the test server can present (see ``pem()``).
KINDS = ('good', 'hostname', 'self-signed', 'expired')


def _name(common_name):
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _key():
    return ec.generate_private_key(ec.SECP256R1())


def _certificate(subject_key, common_name, issuer_key, issuer_name,
                 ca=False, sans=(), expired=False):
    now = datetime.datetime.now(datetime.timezone.utc)
    if expired:
        not_before = now - datetime.timedelta(days=30)
        not_after = now - datetime.timedelta(days=1)
    else:
        # Back-date a little so a clock skew between threads/VMs can't make
        # a fresh certificate "not yet valid".
        not_before = now - datetime.timedelta(hours=1)
        not_after = now + datetime.timedelta(days=7)
    public_key = subject_key.public_key()
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(common_name))
        .issuer_name(issuer_name)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None),
                       critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key),
                       critical=False)
        # The authority key identifier and key usages keep the chain valid
        # under strict verification (VERIFY_X509_STRICT, default in newer
        # Pythons), not just under OpenSSL's lenient defaults.
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(
            issuer_key.public_key()), critical=False)
        .add_extension(x509.KeyUsage(
            digital_signature=not ca, key_cert_sign=ca, crl_sign=ca,
            content_commitment=False, key_encipherment=False,
            data_encipherment=False, key_agreement=False,
            encipher_only=False, decipher_only=False), critical=True)
    )
    if not ca:
        builder = builder.add_extension(
            x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]),
            critical=False)
    if sans:
        builder = builder.add_extension(
            x509.SubjectAlternativeName(list(sans)), critical=False)
    return builder.sign(issuer_key, hashes.SHA256())


def _pem_key(key):
    return key.private_bytes(serialization.Encoding.PEM,
                             serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def _pem_cert(cert):
    return cert.public_bytes(serialization.Encoding.PEM)


@functools.lru_cache(maxsize=None)
def _ca():
    key = _key()
    name = _name('zope.sendmail test CA')
    return key, name, _certificate(key, 'zope.sendmail test CA', key, name,
                                   ca=True)


@functools.lru_cache(maxsize=None)
def pem(kind='good'):
    """Return ``(ca_pem, cert_pem, key_pem)`` bytes for a server certificate.

    ``kind`` is one of :data:`KINDS`:

    ``'good'``
        signed by the test CA for DNS:localhost and IP:127.0.0.1;
    ``'hostname'``
        signed by the test CA, but for :data:`WRONG_HOSTNAME` only;
    ``'self-signed'``
        for localhost/127.0.0.1, but not issued by the test CA;
    ``'expired'``
        signed by the test CA for localhost/127.0.0.1, validity in the past.

    Results are cached, so every call in a process returns the same bytes.
    """
    if kind not in KINDS:
        raise ValueError(f'unknown certificate kind {kind!r}; use {KINDS}')
    ca_key, ca_name, ca_cert = _ca()
    key = _key()
    local = [x509.DNSName('localhost'),
             x509.IPAddress(ipaddress.ip_address('127.0.0.1'))]
    if kind == 'self-signed':
        cert = _certificate(key, 'localhost', key, _name('localhost'),
                            sans=local)
    elif kind == 'hostname':
        cert = _certificate(key, WRONG_HOSTNAME, ca_key, ca_name,
                            sans=[x509.DNSName(WRONG_HOSTNAME)])
    else:
        cert = _certificate(key, 'localhost', ca_key, ca_name, sans=local,
                            expired=(kind == 'expired'))
    return _pem_cert(ca_cert), _pem_cert(cert), _pem_key(key)


def write(directory, kind='good'):
    """Write the PEM files for ``kind`` into ``directory``.

    Returns the paths ``(ca_file, cert_file, key_file)``.
    """
    paths = []
    for filename, data in zip(('ca.pem', 'cert.pem', 'key.pem'), pem(kind)):
        path = os.path.join(directory, filename)
        # The key is private material: keep it readable by the owner only.
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, 'wb') as f:
            f.write(data)
        paths.append(path)
    return tuple(paths)
