"""The organisation's credentials (PKCS#12 or PEM) and XML-DSig signing and verification.

``signxml`` does the XML-DSig (RSA-SHA256, exclusive C14N); ``cryptography`` loads keys and
certificates. Nothing here logs key material.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.serialization import load_pem_private_key, pkcs12
from lxml import etree
from pydantic import SecretStr
from signxml.algorithms import CanonicalizationMethod
from signxml.exceptions import InvalidInput
from signxml.signer import XMLSigner
from signxml.verifier import XMLVerifier

from soredi_sync.soap.dgws.errors import CredentialsError
from soredi_sync.soap.dgws.names import DS

EXC_C14N = CanonicalizationMethod.EXCLUSIVE_XML_CANONICALIZATION_1_0


# -- credentials --


@dataclass(frozen=True, slots=True)
class Credentials:
    """An organisation's private key and certificate. ``repr`` never shows the key."""

    key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey = field(repr=False)
    certificate: x509.Certificate

    @property
    def subject(self) -> str:
        return self.certificate.subject.rfc4514_string()


def load_credentials(
    certificate: Path, private_key: Path | None = None, password: SecretStr | None = None
) -> Credentials:
    """Load PKCS#12 (``.p12``/``.pfx``) or PEM key + certificate.

    :raises CredentialsError: unreadable file, wrong password, no key or no certificate.
    """
    secret = password.get_secret_value().encode() if password is not None else None
    try:
        if certificate.suffix.lower() in (".p12", ".pfx"):
            key, cert, _chain = pkcs12.load_key_and_certificates(certificate.read_bytes(), secret)
        else:
            certs = x509.load_pem_x509_certificates(certificate.read_bytes())
            cert = certs[0] if certs else None
            key = load_pem_private_key((private_key or certificate).read_bytes(), secret)
    except OSError as exc:
        raise CredentialsError(f"cannot read the organisation certificate: {exc}") from None
    except (ValueError, TypeError) as exc:
        # cryptography's messages name neither key material nor the password
        raise CredentialsError(f"cannot load the organisation certificate: {exc}") from None
    if key is None or cert is None:
        raise CredentialsError(f"{certificate.name} must hold both a private key and a certificate")
    if not isinstance(key, rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey):
        raise CredentialsError(f"{certificate.name}: only RSA or EC keys can sign, not {type(key)}")
    return Credentials(key=key, certificate=cert)


def load_pem_certificate(path: Path) -> x509.Certificate:
    try:
        return x509.load_pem_x509_certificate(path.read_bytes())
    except (OSError, ValueError) as exc:
        raise CredentialsError(f"cannot load the STS certificate {path.name}: {exc}") from None


# -- signing (signxml; no hand-rolled crypto) --


def sign_enveloped(element: etree._Element, credentials: Credentials) -> etree._Element:
    """``element`` with an enveloped XML-DSig (RSA-SHA256, exclusive C14N, cert in KeyInfo)."""
    signer = XMLSigner(c14n_algorithm=EXC_C14N)
    signed: etree._Element = signer.sign(
        element, key=credentials.key, cert=[credentials.certificate]
    )
    return signed


def verify_enveloped(element: etree._Element, certificate: x509.Certificate) -> etree._Element:
    """Verify ``element``'s enveloped signature against ``certificate``; the signed copy.

    :raises signxml.InvalidSignature: wrong key, altered content.
    :raises signxml.InvalidInput: no or malformed signature.
    """
    detached = etree.fromstring(etree.tostring(element))
    result = XMLVerifier().verify(detached, x509_cert=certificate)
    if isinstance(result, list):  # only with expect_references > 1
        raise InvalidInput("expected one signed reference")
    if result.signed_xml is None:
        raise InvalidInput("nothing was signed")
    signed: etree._Element = result.signed_xml
    return signed


def certificate_in_signature(element: etree._Element) -> x509.Certificate:
    """The X.509 certificate presented in ``element``'s ``ds:Signature/ds:KeyInfo``."""
    text = element.findtext(
        f"{{{DS}}}Signature/{{{DS}}}KeyInfo/{{{DS}}}X509Data/{{{DS}}}X509Certificate"
    )
    if not text:
        raise InvalidInput("no X509Certificate in the signature's KeyInfo")
    body = "".join(text.split())
    pem = f"-----BEGIN CERTIFICATE-----\n{body}\n-----END CERTIFICATE-----\n"
    return x509.load_pem_x509_certificate(pem.encode())
