//! Key pair and self-signed certificate, as the setup guide makes them.
//!
//! The admin ran `openssl req -x509 -sha256 -nodes -days 365 -newkey rsa:2048 -keyout server.key
//! -out server.crt` (OpenSSL 3). That gives an RSA key written as PKCS#8 (`BEGIN PRIVATE KEY`) and
//! a self-signed X.509 v3 certificate (sha256WithRSAEncryption, valid 365 days, a random 20-byte
//! serial, `basicConstraints CA:TRUE` and subject/authority key identifiers). [`generate`] makes
//! the same, plus the PKCS#1 (`BEGIN RSA PRIVATE KEY`) form the guide tells admins to paste.
//!
//! RSA keys come from the `rsa` crate (any size from 1024 to 8192 bits; aws-lc-rs refuses to make
//! or load keys under 2048 bits), except the sizes aws-lc-rs can make, which it makes much faster.
//! The certificate is laid out by `rcgen` and signed with that key.

use std::{fmt, path::Path};

use anyhow::{Context, bail};
use rsa::{
    pkcs1::{EncodeRsaPrivateKey, EncodeRsaPublicKey},
    pkcs8::{DecodePrivateKey, EncodePrivateKey, LineEnding, der::pem},
    sha2::Sha256,
};
use time::{Duration, OffsetDateTime};

/// What the admin made with OpenSSL: one RSA key in two PEM forms, and its certificate.
#[derive(Clone, PartialEq, Eq)]
pub struct KeyPair {
    /// PKCS#8 `-----BEGIN PRIVATE KEY-----`, as OpenSSL 3 writes `server.key`.
    pub private_key_pem: String,
    /// The same key as PKCS#1 `-----BEGIN RSA PRIVATE KEY-----`.
    pub private_key_pkcs1_pem: String,
    /// Self-signed X.509 `-----BEGIN CERTIFICATE-----` (`server.crt`), to upload to the app.
    pub certificate_pem: String,
}

impl fmt::Debug for KeyPair {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyPair")
            .field("private_key_pem", &"<redacted>")
            .field("private_key_pkcs1_pem", &"<redacted>")
            .field("certificate_pem", &self.certificate_pem)
            .finish()
    }
}

/// An RSA 2048 key and a self-signed certificate for `common_name`, as the setup guide makes them.
pub fn generate(common_name: &str) -> anyhow::Result<KeyPair> {
    generate_with_bits(common_name, 2048)
}

/// Like [`generate`] with another RSA modulus size (1024 to 8192 bits).
pub fn generate_with_bits(common_name: &str, bits: usize) -> anyhow::Result<KeyPair> {
    let key = rsa_key(bits)?;
    let private_key_pem = key.to_pkcs8_pem(LineEnding::LF).context("encoding the key as PKCS#8")?.to_string();
    let private_key_pkcs1_pem = key.to_pkcs1_pem(LineEnding::LF).context("encoding the key as PKCS#1")?.to_string();
    let public_key_der = key.to_public_key().to_pkcs1_der().context("encoding the public key")?.into_vec();
    let signer = RsaSigner { key, public_key_der };
    let certificate_der = self_signed_certificate(common_name, &signer)?;
    let certificate_pem = pem::encode_string("CERTIFICATE", LineEnding::LF, &certificate_der)
        .context("encoding the certificate as PEM")?;
    Ok(KeyPair { private_key_pem, private_key_pkcs1_pem, certificate_pem })
}

/// Writes `server.key` (PKCS#8) and `server.crt` into `dir`, creating `dir` if needed.
pub fn write_files(pair: &KeyPair, dir: &Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    for (name, contents) in [("server.key", &pair.private_key_pem), ("server.crt", &pair.certificate_pem)] {
        let path = dir.join(name);
        std::fs::write(&path, contents).with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(())
}

/// A P-256 EC private key as PKCS#8 `-----BEGIN PRIVATE KEY-----` (not usable for RS256: for
/// connector tests that must refuse it).
pub fn generate_ec_p256_pem() -> anyhow::Result<String> {
    use aws_lc_rs::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair};
    let key = EcdsaKeyPair::generate(&ECDSA_P256_SHA256_FIXED_SIGNING)
        .map_err(|e| anyhow::anyhow!("generating a P-256 key: {e}"))?;
    let pkcs8 = key.to_pkcs8v1().map_err(|e| anyhow::anyhow!("encoding the P-256 key as PKCS#8: {e}"))?;
    Ok(pem::encode_string("PRIVATE KEY", LineEnding::LF, pkcs8.as_ref())?)
}

/// Encrypts a private key PEM (PKCS#8 `BEGIN PRIVATE KEY` or PKCS#1 `BEGIN RSA PRIVATE KEY`) with
/// `password` into `-----BEGIN ENCRYPTED PRIVATE KEY-----`, using OpenSSL 3's default scheme
/// (`openssl pkcs8 -topk8`): PBES2 with PBKDF2-HMAC-SHA256 (2048 iterations, 16-byte salt) and
/// AES-256-CBC.
pub fn encrypt_pkcs8_pem(pem_text: &str, password: &str) -> anyhow::Result<String> {
    use pkcs5::der::Encode;

    let (label, der) = pem::decode_vec(pem_text.trim().as_bytes()).context("reading the PEM")?;
    let pkcs8 = match label {
        "PRIVATE KEY" => der,
        "RSA PRIVATE KEY" => {
            use rsa::pkcs1::DecodeRsaPrivateKey;
            rsa::PrivateKey::from_pkcs1_der(&der)
                .context("reading the PKCS#1 key")?
                .to_pkcs8_der()
                .context("encoding the key as PKCS#8")?
                .as_bytes()
                .to_vec()
        }
        other => bail!("expected a PRIVATE KEY or RSA PRIVATE KEY PEM, found {other:?}"),
    };

    let mut salt = [0u8; 16];
    let mut iv = [0u8; 16];
    getrandom::fill(&mut salt).map_err(|e| anyhow::anyhow!("random salt: {e}"))?;
    getrandom::fill(&mut iv).map_err(|e| anyhow::anyhow!("random IV: {e}"))?;
    let scheme = pkcs5::EncryptionScheme::from(
        pkcs5::pbes2::Parameters::pbkdf2_sha256_aes256cbc(2048, &salt, &iv)
            .map_err(|e| anyhow::anyhow!("PBES2 parameters: {e}"))?,
    );
    let ciphertext = scheme.encrypt(password, &pkcs8).map_err(|e| anyhow::anyhow!("encrypting the key: {e}"))?;

    // EncryptedPrivateKeyInfo ::= SEQUENCE { encryptionAlgorithm, encryptedData OCTET STRING }
    // (by hand: the `der` 0.7 in the tree is built without `alloc`).
    let der_error = |e: pkcs5::der::Error| anyhow::anyhow!("encoding the encrypted key: {e}");
    let mut algorithm = vec![0u8; usize::try_from(scheme.encoded_len().map_err(der_error)?).map_err(der_error)?];
    scheme.encode_to_slice(&mut algorithm).map_err(der_error)?;
    let mut body = algorithm;
    body.extend(der_tlv(0x04, &ciphertext));
    let info = der_tlv(0x30, &body);
    Ok(pem::encode_string("ENCRYPTED PRIVATE KEY", LineEnding::LF, &info)?)
}

/// A DER tag-length-value with a one-byte tag.
fn der_tlv(tag: u8, content: &[u8]) -> Vec<u8> {
    let len = content.len();
    let mut out = vec![tag];
    if len < 0x80 {
        out.push(len as u8);
    } else {
        let bytes = len.to_be_bytes();
        let skip = bytes.iter().take_while(|b| **b == 0).count();
        out.push(0x80 | (bytes.len() - skip) as u8);
        out.extend(&bytes[skip..]);
    }
    out.extend(content);
    out
}

/// An RSA private key of `bits` bits with exponent 65537.
fn rsa_key(bits: usize) -> anyhow::Result<rsa::PrivateKey> {
    use aws_lc_rs::{encoding::AsDer, rsa::KeySize};

    if !(rsa::PublicKey::MIN_SIZE..=rsa::PublicKey::MAX_SIZE).contains(&bits) {
        bail!("RSA key size {bits} is outside {}..={} bits", rsa::PublicKey::MIN_SIZE, rsa::PublicKey::MAX_SIZE);
    }
    let fast = match bits {
        2048 => Some(KeySize::Rsa2048),
        3072 => Some(KeySize::Rsa3072),
        4096 => Some(KeySize::Rsa4096),
        8192 => Some(KeySize::Rsa8192),
        _ => None,
    };
    match fast {
        Some(size) => {
            let key = aws_lc_rs::rsa::KeyPair::generate(size)
                .map_err(|e| anyhow::anyhow!("generating an RSA {bits} key: {e}"))?;
            let der = key.as_der().map_err(|e| anyhow::anyhow!("encoding the RSA key: {e}"))?;
            Ok(rsa::PrivateKey::from_pkcs8_der(der.as_ref()).context("reading the RSA key")?)
        }
        None => Ok(rsa::PrivateKey::new(&mut getrandom::SysRng, bits)
            .with_context(|| format!("generating an RSA {bits} key"))?),
    }
}

/// Signs certificates with an RSA key (sha256WithRSAEncryption), whatever its size.
struct RsaSigner {
    key: rsa::PrivateKey,
    /// PKCS#1 `RSAPublicKey` DER, the contents of the certificate's subjectPublicKey.
    public_key_der: Vec<u8>,
}

impl rcgen::PublicKeyData for RsaSigner {
    fn der_bytes(&self) -> &[u8] {
        &self.public_key_der
    }

    fn algorithm(&self) -> &'static rcgen::SignatureAlgorithm {
        &rcgen::PKCS_RSA_SHA256
    }
}

impl rcgen::SigningKey for RsaSigner {
    fn sign(&self, msg: &[u8]) -> Result<Vec<u8>, rcgen::Error> {
        self.key.pkcs1v15_sign::<Sha256>(msg).map_err(|_| rcgen::Error::RemoteKeyError)
    }
}

/// The DER of a certificate like `openssl req -x509 -days 365` makes.
fn self_signed_certificate(common_name: &str, signer: &RsaSigner) -> anyhow::Result<Vec<u8>> {
    use aws_lc_rs::digest::{SHA1_FOR_LEGACY_USE_ONLY, digest};
    use rcgen::{BasicConstraints, CertificateParams, DistinguishedName, DnType, IsCa, KeyIdMethod, SerialNumber};

    // OpenSSL: 20 random bytes, top bit clear so the INTEGER stays positive in 20 bytes.
    let mut serial = [0u8; 20];
    getrandom::fill(&mut serial).map_err(|e| anyhow::anyhow!("random serial: {e}"))?;
    serial[0] &= 0x7f;

    let mut distinguished_name = DistinguishedName::new();
    distinguished_name.push(DnType::CommonName, common_name);

    let now = OffsetDateTime::now_utc();
    let mut params = CertificateParams::default();
    params.distinguished_name = distinguished_name;
    params.serial_number = Some(SerialNumber::from_slice(&serial));
    params.not_before = now;
    params.not_after = now + Duration::days(365);
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    // OpenSSL's subject key identifier: SHA-1 of the subjectPublicKey bits.
    params.key_identifier_method =
        KeyIdMethod::PreSpecified(digest(&SHA1_FOR_LEGACY_USE_ONLY, &signer.public_key_der).as_ref().to_vec());
    params.use_authority_key_identifier_extension = true;

    let certificate = params.self_signed(signer).context("signing the certificate")?;
    Ok(certificate.der().to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RS256 signs with the private key and verifies with the public key out of the certificate.
    fn assert_cert_matches_key(pair: &KeyPair) {
        use x509_parser::prelude::*;
        let (_, pem) = parse_x509_pem(pair.certificate_pem.as_bytes()).expect("cert PEM");
        let cert = pem.parse_x509().expect("cert DER");
        let spki_key = cert.public_key().subject_public_key.data.to_vec();
        let verifying = public_key_from_pkcs1(&spki_key);
        for key_pem in [&pair.private_key_pem, &pair.private_key_pkcs1_pem] {
            let key = if key_pem.contains("BEGIN RSA PRIVATE KEY") {
                use rsa::pkcs1::DecodeRsaPrivateKey;
                rsa::PrivateKey::from_pkcs1_pem(key_pem).expect("PKCS#1")
            } else {
                rsa::PrivateKey::from_pkcs8_pem(key_pem).expect("PKCS#8")
            };
            let signature = key.pkcs1v15_sign::<Sha256>(b"hello").expect("sign");
            verifying.pkcs1v15_verify::<Sha256>(b"hello", &signature).expect("cert verifies the key's signature");
        }
        // And the certificate is signed by its own key.
        let signature = cert.signature_value.data.to_vec();
        verifying.pkcs1v15_verify::<Sha256>(cert.tbs_certificate.as_ref(), &signature).expect("self-signed");
    }

    fn public_key_from_pkcs1(der: &[u8]) -> rsa::PublicKey {
        use rsa::pkcs1::DecodeRsaPublicKey;
        rsa::PublicKey::from_pkcs1_der(der).expect("RSAPublicKey")
    }

    #[test]
    fn generate_makes_openssl_like_files() {
        let pair = generate("fa_jwt").expect("generate");
        assert!(pair.private_key_pem.starts_with("-----BEGIN PRIVATE KEY-----\n"));
        assert!(pair.private_key_pkcs1_pem.starts_with("-----BEGIN RSA PRIVATE KEY-----\n"));
        assert!(pair.certificate_pem.starts_with("-----BEGIN CERTIFICATE-----\n"));
        assert!(pair.certificate_pem.ends_with("-----END CERTIFICATE-----\n"));

        use x509_parser::prelude::*;
        let (_, pem) = parse_x509_pem(pair.certificate_pem.as_bytes()).expect("cert PEM");
        let cert = pem.parse_x509().expect("cert DER");
        assert_eq!(cert.version(), X509Version::V3);
        assert_eq!(cert.subject().to_string(), "CN=fa_jwt");
        assert_eq!(cert.issuer(), cert.subject());
        assert_eq!(cert.signature_algorithm.algorithm.to_id_string(), "1.2.840.113549.1.1.11");
        let days = (cert.validity().not_after.timestamp() - cert.validity().not_before.timestamp()) / 86_400;
        assert_eq!(days, 365);
        match cert.public_key().parsed().expect("public key") {
            x509_parser::public_key::PublicKey::RSA(key) => assert_eq!(key.key_size(), 2048),
            other => panic!("not RSA: {other:?}"),
        }
        assert_cert_matches_key(&pair);
    }

    #[test]
    fn other_sizes() {
        for bits in [1024, 3072] {
            let pair = generate_with_bits("small", bits).expect("generate");
            let key = rsa::PrivateKey::from_pkcs8_pem(&pair.private_key_pem).expect("PKCS#8");
            assert_eq!(rsa::traits::PublicKeyParts::size(&key) * 8, bits);
            assert_cert_matches_key(&pair);
        }
        assert!(generate_with_bits("tiny", 512).is_err());
    }

    #[test]
    fn pkcs1_and_pkcs8_are_the_same_key() {
        use rsa::pkcs1::DecodeRsaPrivateKey;
        let pair = generate("same").expect("generate");
        let a = rsa::PrivateKey::from_pkcs8_pem(&pair.private_key_pem).expect("PKCS#8");
        let b = rsa::PrivateKey::from_pkcs1_pem(&pair.private_key_pkcs1_pem).expect("PKCS#1");
        assert_eq!(a, b);
    }

    #[test]
    fn write_files_writes_server_key_and_crt() {
        let dir = std::env::temp_dir().join(format!("sfsim-keygen-{}", std::process::id()));
        let pair = generate("files").expect("generate");
        write_files(&pair, &dir).expect("write");
        let key = std::fs::read_to_string(dir.join("server.key")).expect("server.key");
        let crt = std::fs::read_to_string(dir.join("server.crt")).expect("server.crt");
        std::fs::remove_dir_all(&dir).expect("cleanup");
        assert_eq!(key, pair.private_key_pem);
        assert_eq!(crt, pair.certificate_pem);
    }

    #[test]
    fn ec_key_is_pkcs8_p256() {
        let pem_text = generate_ec_p256_pem().expect("EC key");
        assert!(pem_text.starts_with("-----BEGIN PRIVATE KEY-----\n"));
        jsonwebtoken::EncodingKey::from_ec_pem(pem_text.as_bytes()).expect("jsonwebtoken reads it");
    }

    #[test]
    fn encrypted_pkcs8_round_trips() {
        use pkcs5::der::{
            Decode, Reader, SliceReader,
            asn1::{AnyRef, OctetStringRef},
        };
        let pair = generate("enc").expect("generate");
        for source in [&pair.private_key_pem, &pair.private_key_pkcs1_pem] {
            let encrypted = encrypt_pkcs8_pem(source, "s3cret").expect("encrypt");
            assert!(encrypted.starts_with("-----BEGIN ENCRYPTED PRIVATE KEY-----\n"));
            assert!(jsonwebtoken::EncodingKey::from_rsa_pem(encrypted.as_bytes()).is_err());

            let (label, der) = pem::decode_vec(encrypted.as_bytes()).expect("PEM");
            assert_eq!(label, "ENCRYPTED PRIVATE KEY");
            let outer = AnyRef::from_der(&der).expect("SEQUENCE");
            let mut reader = SliceReader::new(outer.value()).expect("reader");
            let scheme = pkcs5::EncryptionScheme::decode(&mut reader).expect("scheme");
            let data = OctetStringRef::decode(&mut reader).expect("data");
            assert!(reader.is_finished());
            let plain = scheme.decrypt("s3cret", data.as_bytes()).expect("decrypt");
            let key = rsa::PrivateKey::from_pkcs8_der(&plain).expect("PKCS#8 inside");
            assert_eq!(key, rsa::PrivateKey::from_pkcs8_pem(&pair.private_key_pem).expect("PKCS#8"));
            // A wrong password fails, or (when the CBC padding happens to
            // look valid, about one time in 256) yields bytes that are not
            // the key.
            if let Ok(garbage) = scheme.decrypt("wrong", data.as_bytes()) {
                assert_ne!(garbage, plain, "a wrong password must not give the key");
            }
        }
    }
}
