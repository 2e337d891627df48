//! The RSA private key an admin pastes into the connection form (`server.key`), parsed once into
//! an [`RsaPrivateKey`] that the rest of the token-broker trusts without checking again.
//!
//! Admins paste what their editor, a chat or a web page handed them, so [`RsaPrivateKey::parse`]
//! takes a key as people really paste it (docs/behaviour.md §1): PKCS#1 (`BEGIN RSA PRIVATE KEY`) or
//! PKCS#8 (`BEGIN PRIVATE KEY`), CRLF, blanks around it, no final newline, the body on one line
//! or with spaces for newlines, typographic dashes (`—–BEGIN …—–`) around the markers, and a
//! certificate pasted along with the key. Everything else is a [`KeyRefusal`] that says what is
//! wrong with the paste and carries none of its text.
//!
//! Reading a paste takes three steps, one module each: `pem` finds the blocks of the paste
//! however it was mangled, `der` names what a structure is when it is no RSA key, and this module
//! reads the RSA key, checks its size and signs with it once. Telling the admin what to do about
//! a refusal, in English and Japanese, is the admin API's business ([`crate::hints::key_hint`]):
//! the key knows nothing of languages, and the token cache, reading a stored key back, gets the
//! same refusals without the wording.
//!
//! The key is kept as PKCS#8 DER ([`RsaPrivateKey::pkcs8_der`]), the form the token-broker seals
//! (`crate::sealed`) and stores; [`RsaPrivateKey::from_pkcs8_der`] reads it back.

mod der;
mod pem;

use std::fmt;

use rsa::{
    pkcs1::{DecodeRsaPrivateKey as _, EncodeRsaPrivateKey as _, RsaPrivateKeyRef},
    pkcs8::{EncodePrivateKey as _, EncodePublicKey as _, PrivateKeyInfoRef, der::Decode as _},
    traits::PublicKeyParts as _,
};
use secrecy::{ExposeSecret as _, SecretSlice};

/// The smallest RSA modulus accepted, in bits (aws-lc-rs cannot load smaller keys).
pub const MIN_BITS: usize = 2048;
/// The largest RSA modulus accepted, in bits (aws-lc-rs cannot sign with larger keys).
pub const MAX_BITS: usize = 8192;

/// An RSA private key of [`MIN_BITS`] to [`MAX_BITS`] bits that has signed an RS256 JWT.
///
/// `Debug` prints its size and public key fingerprint, never key material.
pub struct RsaPrivateKey {
    pkcs8_der: SecretSlice<u8>,
    bits: usize,
    encoding_key: jsonwebtoken::EncodingKey,
    fingerprint: String,
}

impl RsaPrivateKey {
    /// Reads the key an admin pasted (see the module documentation for what is accepted).
    pub fn parse(pasted: &str) -> Result<Self, KeyRefusal> {
        let text = pem::normalize(pasted);
        let text = text.trim();
        if text.is_empty() {
            return Err(KeyRefusal::Empty);
        }
        let blocks = pem::blocks(text);
        if blocks.is_empty() {
            return Self::from_bare(text);
        }

        // A private key wins over whatever was pasted with it (typically its certificate).
        let mut first_error = None;
        for block in blocks.iter().filter(|b| b.kind == pem::Kind::Key) {
            match Self::from_key_block(block.body) {
                Ok(key) => return Ok(key),
                Err(refusal) => {
                    first_error.get_or_insert(refusal);
                }
            }
        }
        if let Some(refusal) = first_error {
            return Err(refusal);
        }
        let refusal = blocks.iter().filter_map(|b| b.kind.refusal()).min_by_key(KeyRefusal::precedence);
        Err(refusal.unwrap_or(KeyRefusal::NotAKey))
    }

    /// Reads a key back from its [`pkcs8_der`](Self::pkcs8_der) form (storage, after unsealing).
    pub fn from_pkcs8_der(der: &[u8]) -> Result<Self, KeyRefusal> {
        let info = PrivateKeyInfoRef::from_der(der).map_err(|_| KeyRefusal::NotAKey)?;
        der::rsa_key_from_info(&info).and_then(Self::from_pkcs1_der)
    }

    /// The key as PKCS#8 DER: the canonical form to seal and store.
    pub fn pkcs8_der(&self) -> &[u8] {
        self.pkcs8_der.expose_secret()
    }

    /// The size of the modulus in bits.
    pub fn bits(&self) -> usize {
        self.bits
    }

    /// The RS256 signing key for the JWT bearer assertion.
    pub fn encoding_key(&self) -> &jsonwebtoken::EncodingKey {
        &self.encoding_key
    }

    /// The first 16 hex digits of the SHA-256 of the public key (SubjectPublicKeyInfo DER).
    /// Public, so safe to log and to show; it tells two keys apart.
    pub fn public_key_fingerprint(&self) -> String {
        self.fingerprint.clone()
    }

    /// Text without any BEGIN/END marker: the base64 of a DER key, or something else.
    fn from_bare(text: &str) -> Result<Self, KeyRefusal> {
        const OPENSSH_PUBLIC: [&str; 4] = ["ssh-rsa ", "ssh-ed25519 ", "ssh-dss ", "ecdsa-sha2-"];
        if OPENSSH_PUBLIC.iter().any(|prefix| text.starts_with(prefix)) {
            return Err(KeyRefusal::PublicKey);
        }
        if text.starts_with("PuTTY-User-Key-File-") {
            return Err(KeyRefusal::NotRsa { kind: "PuTTY".into() });
        }
        let der = pem::decode_base64(text).ok_or(KeyRefusal::NotAKey)?;
        Self::from_der(&der)
    }

    /// The body of a `PRIVATE KEY` or `RSA PRIVATE KEY` block.
    fn from_key_block(body: &str) -> Result<Self, KeyRefusal> {
        // RFC 1421 headers `Proc-Type: 4,ENCRYPTED` and `DEK-Info: …` (OpenSSL's legacy
        // encryption). Base64 has no `-`, so these names cannot occur by chance.
        if body.contains("Proc-Type") || body.contains("DEK-Info") {
            return Err(KeyRefusal::Encrypted { pkcs8: false });
        }
        let der = pem::decode_base64(body).ok_or(KeyRefusal::NotAKey)?;
        Self::from_der(&der)
    }

    /// Any DER: PKCS#8 or PKCS#1 RSA keys are read, other structures are named in the refusal.
    fn from_der(der: &[u8]) -> Result<Self, KeyRefusal> {
        if let Ok(info) = PrivateKeyInfoRef::from_der(der) {
            return der::rsa_key_from_info(&info).and_then(Self::from_pkcs1_der);
        }
        if RsaPrivateKeyRef::from_der(der).is_ok() {
            return Self::from_pkcs1_der(der);
        }
        Err(der::shape_refusal(der).unwrap_or(KeyRefusal::NotAKey))
    }

    /// A PKCS#1 `RSAPrivateKey`: measured, checked, re-encoded and tried once.
    fn from_pkcs1_der(der: &[u8]) -> Result<Self, KeyRefusal> {
        // Measure before the full read, which costs time in the size of the modulus.
        let outline = RsaPrivateKeyRef::from_der(der).map_err(|_| KeyRefusal::NotAKey)?;
        let bits = bit_length(outline.modulus.as_bytes());
        if bits > MAX_BITS {
            return Err(KeyRefusal::TooLong { bits });
        }
        let key = rsa::PrivateKey::from_pkcs1_der(der).map_err(|_| KeyRefusal::NotAKey)?;
        let bits = bit_length(&key.n_bytes());
        if bits < MIN_BITS {
            return Err(KeyRefusal::TooShort { bits });
        }

        let pkcs1 = key.to_pkcs1_der().map_err(|_| KeyRefusal::NotAKey)?;
        let pkcs8 = key.to_pkcs8_der().map_err(|_| KeyRefusal::NotAKey)?;
        let public = key.to_public_key().to_public_key_der().map_err(|_| KeyRefusal::NotAKey)?;
        // jsonwebtoken's aws-lc-rs signer reads PKCS#1 (`RsaKeyPair::from_der`).
        let encoding_key = jsonwebtoken::EncodingKey::from_rsa_der(pkcs1.as_bytes());
        signs_rs256(&encoding_key).map_err(|_| KeyRefusal::NotAKey)?;

        Ok(Self {
            pkcs8_der: SecretSlice::from(pkcs8.as_bytes().to_vec()),
            bits,
            encoding_key,
            fingerprint: fingerprint(public.as_bytes()),
        })
    }
}

impl fmt::Debug for RsaPrivateKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RsaPrivateKey")
            .field("bits", &self.bits)
            .field("fingerprint", &self.fingerprint)
            .finish_non_exhaustive()
    }
}

/// Why a pasted text is not a usable key: what is wrong with it, never any of the pasted text.
/// The admin API words it for the admin ([`crate::hints::key_hint`]).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyRefusal {
    /// Nothing but blanks.
    #[error("no private key was pasted")]
    Empty,
    /// Protected by a password: PKCS#8 `ENCRYPTED PRIVATE KEY`, or a legacy PEM with `Proc-Type:
    /// 4,ENCRYPTED` headers (`pkcs8: false`).
    #[error("the private key is encrypted with a password")]
    Encrypted {
        /// `BEGIN ENCRYPTED PRIVATE KEY` rather than an encrypted `BEGIN RSA PRIVATE KEY`.
        pkcs8: bool,
    },
    /// An X.509 certificate (server.crt) and no private key.
    #[error("a certificate was pasted instead of the private key")]
    Certificate,
    /// A certificate signing request and no private key.
    #[error("a certificate signing request was pasted instead of the private key")]
    CertificateRequest,
    /// A public key and no private key.
    #[error("a public key was pasted instead of the private key")]
    PublicKey,
    /// A private key of another algorithm or format: `EC`, `Ed25519`, `DSA`, `OpenSSH`, …
    /// (one of a fixed set of names, never text from the paste).
    #[error("the private key is not an RSA key ({kind})")]
    NotRsa {
        /// The algorithm or format.
        kind: String,
    },
    /// An RSA key of fewer than [`MIN_BITS`] bits.
    #[error("the RSA key has {bits} bits, fewer than 2048")]
    TooShort {
        /// The size of its modulus.
        bits: usize,
    },
    /// An RSA key of more than [`MAX_BITS`] bits.
    #[error("the RSA key has {bits} bits, more than 8192")]
    TooLong {
        /// The size of its modulus.
        bits: usize,
    },
    /// Not a key, or a damaged or incomplete one.
    #[error("the pasted text is not a private key")]
    NotAKey,
}

impl KeyRefusal {
    /// A stable machine-readable code (the `reason` of the problem document).
    pub fn reason(&self) -> &'static str {
        match self {
            Self::Empty => "empty",
            Self::Encrypted { .. } => "encrypted_key",
            Self::Certificate => "certificate",
            Self::CertificateRequest => "certificate_request",
            Self::PublicKey => "public_key",
            Self::NotRsa { .. } => "not_rsa",
            Self::TooShort { .. } => "key_too_short",
            Self::TooLong { .. } => "key_too_long",
            Self::NotAKey => "not_a_key",
        }
    }
    /// When several blocks were pasted and none is a usable key, the one to speak of: the
    /// nearest to a usable key.
    fn precedence(&self) -> u8 {
        match self {
            Self::Encrypted { .. } => 0,
            Self::NotRsa { .. } => 1,
            Self::TooShort { .. } | Self::TooLong { .. } => 2,
            Self::Certificate => 3,
            Self::CertificateRequest => 4,
            Self::PublicKey => 5,
            Self::NotAKey | Self::Empty => 6,
        }
    }
}

/// The number of significant bits of a big-endian unsigned integer.
fn bit_length(bytes: &[u8]) -> usize {
    let bytes = &bytes[bytes.iter().take_while(|b| **b == 0).count()..];
    match bytes.first() {
        Some(first) => bytes.len() * 8 - first.leading_zeros() as usize,
        None => 0,
    }
}

/// Signs a throw-away RS256 JWT, the one use the key will have, to prove aws-lc-rs takes it.
fn signs_rs256(key: &jsonwebtoken::EncodingKey) -> jsonwebtoken::errors::Result<String> {
    let header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::RS256);
    jsonwebtoken::encode(&header, &serde_json::json!({ "sub": "fa-key-check" }), key)
}

/// The first 16 hex digits of SHA-256 over a SubjectPublicKeyInfo DER.
fn fingerprint(spki_der: &[u8]) -> String {
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, spki_der);
    digest.as_ref().iter().take(8).map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
impl KeyRefusal {
    /// One refusal of each kind (both `Encrypted` forms, adjacent), for the
    /// tests of the reasons here and of the wording in `hints`.
    pub(crate) fn every_kind() -> [Self; 10] {
        [
            KeyRefusal::Empty,
            KeyRefusal::Encrypted { pkcs8: false },
            KeyRefusal::Encrypted { pkcs8: true },
            KeyRefusal::Certificate,
            KeyRefusal::CertificateRequest,
            KeyRefusal::PublicKey,
            KeyRefusal::NotRsa { kind: "EC".into() },
            KeyRefusal::TooShort { bits: 1024 },
            KeyRefusal::TooLong { bits: 16384 },
            KeyRefusal::NotAKey,
        ]
    }
}

#[cfg(test)]
mod tests {
    use std::sync::LazyLock;

    use base64::Engine as _;
    use rsa::{
        pkcs1::EncodeRsaPublicKey as _,
        pkcs8::{DecodePrivateKey as _, LineEnding},
    };
    use sfsim::keygen::{self, KeyPair};

    use super::*;

    static PAIR: LazyLock<KeyPair> = LazyLock::new(|| keygen::generate("fa-test").expect("RSA 2048 key"));
    static SHORT: LazyLock<KeyPair> =
        LazyLock::new(|| keygen::generate_with_bits("fa-short", 1024).expect("RSA 1024 key"));
    static LARGE: LazyLock<KeyPair> =
        LazyLock::new(|| keygen::generate_with_bits("fa-large", 4096).expect("RSA 4096 key"));
    static EC: LazyLock<String> = LazyLock::new(|| keygen::generate_ec_p256_pem().expect("EC key"));

    /// The DER inside a PEM text.
    fn pem_der(pem: &str) -> Vec<u8> {
        let body: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
        base64::engine::general_purpose::STANDARD.decode(body).expect("PEM body")
    }

    fn pem(label: &str, der: &[u8]) -> String {
        rsa::pkcs8::der::pem::encode_string(label, LineEnding::LF, der).expect("PEM")
    }

    /// The base64 lines between the markers, the text no message or Debug output may repeat.
    fn body_lines(pem: &str) -> Vec<&str> {
        pem.lines().filter(|l| !l.starts_with("-----") && !l.is_empty()).collect()
    }

    fn public_key() -> rsa::PublicKey {
        rsa::PrivateKey::from_pkcs8_pem(&PAIR.private_key_pem).expect("PKCS#8").to_public_key()
    }

    /// `Ok(der)`: the paste is read as the key whose PKCS#8 DER is `der`.
    fn check(input: &str, expected: Result<&[u8], KeyRefusal>) {
        let actual = RsaPrivateKey::parse(input);
        match (&actual, &expected) {
            (Ok(key), Ok(der)) => {
                assert_eq!(key.pkcs8_der(), *der, "another key for {input:?}");
                assert_eq!(key.bits(), bit_length(&rsa::PrivateKey::from_pkcs8_der(der).expect("der").n_bytes()));
            }
            (Err(refusal), Err(want)) => assert_eq!(refusal, want, "for {input:?}"),
            _ => panic!("for {input:?}: expected {:?}, got {actual:?}", expected.as_ref().map(|_| "the key")),
        }
    }

    #[test]
    fn keys_are_read_as_admins_paste_them() {
        let p1 = PAIR.private_key_pkcs1_pem.as_str();
        let p8 = PAIR.private_key_pem.as_str();
        let cert = PAIR.certificate_pem.as_str();
        let der = pem_der(p8);
        let ok: Result<&[u8], KeyRefusal> = Ok(&der);

        for pem in [p1, p8] {
            check(pem, ok.clone());
            check(&pem.replace('\n', "\r\n"), ok.clone());
            check(&format!("  \n\t{}", pem.trim_end()), ok.clone());
            check(&format!("\u{3000}\r\n{pem}\n\n   \u{a0}"), ok.clone());
            check(&pem.replace('\n', ""), ok.clone());
            check(&pem.replace('\n', " "), ok.clone());
            check(&pem.replace('\n', "\u{a0}"), ok.clone());
            check(&pem.replace('\n', "\u{3000}"), ok.clone());
            check(&format!("\u{feff}{pem}"), ok.clone());
            for dashes in ["—–", "—", "-", "–––––", "－－－－－", "ーー", "−−−−−", "‐‑‒―﹣"]
            {
                check(&pem.replace("-----", dashes), ok.clone());
                check(&pem.replace("-----", dashes).replace('\n', " "), ok.clone());
            }
            check(&pem.replace("-----BEGIN", "----- BEGIN").replace("KEY-----", "KEY -----"), ok.clone());
            check(&format!("{pem}{cert}"), ok.clone());
            check(&format!("{cert}\n{pem}"), ok.clone());
            check(&format!("{cert}{pem}").replace('\n', " "), ok.clone());
            // Without the final padding.
            check(&pem.replace("=\n-----END", "\n-----END").replace("=\n-----END", "\n-----END"), ok.clone());
            // The DER alone, as base64 without markers.
            check(&body_lines(pem).join("\n"), ok.clone());
        }
        // A PKCS#8 body under the PKCS#1 label, as some tools write it.
        check(&p8.replace("PRIVATE KEY", "RSA PRIVATE KEY"), ok.clone());

        let large = pem_der(&LARGE.private_key_pem);
        check(&LARGE.private_key_pkcs1_pem, Ok(&large));
        check(&LARGE.private_key_pem.replace('\n', " "), Ok(&large));
    }

    // About 100 lines: a table of pastes, one `check` a line, grouped by the refusal they get.
    #[test]
    fn what_is_not_a_usable_key_is_refused_with_its_reason() {
        let p1 = PAIR.private_key_pkcs1_pem.as_str();
        let p8 = PAIR.private_key_pem.as_str();
        let cert = PAIR.certificate_pem.as_str();
        let refused = |refusal: KeyRefusal| -> Result<&[u8], KeyRefusal> { Err(refusal) };

        let legacy = p1.replacen(
            "-----\n",
            "-----\nProc-Type: 4,ENCRYPTED\nDEK-Info: AES-128-CBC,0123456789ABCDEF0123456789ABCDEF\n\n",
            1,
        );
        check(&legacy, refused(KeyRefusal::Encrypted { pkcs8: false }));
        check(&legacy.replace('\n', " "), refused(KeyRefusal::Encrypted { pkcs8: false }));
        check(&legacy.replace("-----", "—–"), refused(KeyRefusal::Encrypted { pkcs8: false }));
        let encrypted = keygen::encrypt_pkcs8_pem(p8, "s3cret").expect("encrypt");
        check(&encrypted, refused(KeyRefusal::Encrypted { pkcs8: true }));
        check(&encrypted.replace('\n', "\r\n"), refused(KeyRefusal::Encrypted { pkcs8: true }));
        check(&format!("{cert}{encrypted}"), refused(KeyRefusal::Encrypted { pkcs8: true }));
        check(&body_lines(&encrypted).join(""), refused(KeyRefusal::Encrypted { pkcs8: true }));
        check(
            &encrypted.replace("ENCRYPTED PRIVATE KEY", "PRIVATE KEY"),
            refused(KeyRefusal::Encrypted { pkcs8: true }),
        );

        check(cert, refused(KeyRefusal::Certificate));
        check(&cert.replace("-----", "—–").replace('\n', " "), refused(KeyRefusal::Certificate));
        check(&body_lines(cert).join("\n"), refused(KeyRefusal::Certificate));
        check(&cert.replace("CERTIFICATE", "TRUSTED CERTIFICATE"), refused(KeyRefusal::Certificate));
        check(&cert.replace("CERTIFICATE", "CERTIFICATE REQUEST"), refused(KeyRefusal::CertificateRequest));

        let public = public_key();
        let spki = public.to_public_key_pem(LineEnding::LF).expect("SPKI PEM");
        let pkcs1_public = public.to_pkcs1_pem(LineEnding::LF).expect("PKCS#1 public PEM");
        assert!(pkcs1_public.starts_with("-----BEGIN RSA PUBLIC KEY-----"));
        for pem in [&spki, &pkcs1_public] {
            check(pem, refused(KeyRefusal::PublicKey));
            check(&body_lines(pem).join(""), refused(KeyRefusal::PublicKey));
        }
        check(&format!("{spki}{cert}"), refused(KeyRefusal::Certificate));
        check("ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAABAQC7 admin@laptop", refused(KeyRefusal::PublicKey));

        let ec = EC.as_str();
        let not_rsa = |kind: &str| refused(KeyRefusal::NotRsa { kind: kind.into() });
        check(ec, not_rsa("EC"));
        check(&body_lines(ec).join(""), not_rsa("EC"));
        check(&ec.replace("PRIVATE KEY", "EC PRIVATE KEY"), not_rsa("EC"));
        check(
            &format!("-----BEGIN EC PARAMETERS-----\nBggqhkjOPQMBBw==\n-----END EC PARAMETERS-----\n{ec}"),
            not_rsa("EC"),
        );
        // RFC 8410's example Ed25519 key.
        check(
            "-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2VwBCIEINTuctv5E1hK1bbY8fdp+K06/nwoy/HU++CXqI9EdVhC\n-----END PRIVATE KEY-----",
            not_rsa("Ed25519"),
        );
        check(
            "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQAAAAAAAAABAAAAMwAAAAtzc2gtZW\n-----END OPENSSH PRIVATE KEY-----\n",
            not_rsa("OpenSSH"),
        );
        check("-----BEGIN DSA PRIVATE KEY-----\nMIIBuwIBAAKBgQ==\n-----END DSA PRIVATE KEY-----", not_rsa("DSA"));

        let short = pem_der(&SHORT.private_key_pem);
        for pem in [&SHORT.private_key_pkcs1_pem, &SHORT.private_key_pem] {
            check(pem, refused(KeyRefusal::TooShort { bits: 1024 }));
            check(&format!("{}{pem}", SHORT.certificate_pem), refused(KeyRefusal::TooShort { bits: 1024 }));
        }
        check(&body_lines(&SHORT.private_key_pem).join(""), refused(KeyRefusal::TooShort { bits: 1024 }));
        assert_eq!(RsaPrivateKey::from_pkcs8_der(&short).map(|_| ()), Err(KeyRefusal::TooShort { bits: 1024 }));

        // An 8193-bit modulus is refused from its outline, before any arithmetic.
        check(&pem("RSA PRIVATE KEY", &oversized_pkcs1()), refused(KeyRefusal::TooLong { bits: 8193 }));

        for empty in ["", " ", "\r\n\t ", "\u{3000}\u{a0}\n", "\u{feff}"] {
            check(empty, refused(KeyRefusal::Empty));
        }
        let truncated: String = p1.lines().take(10).collect::<Vec<_>>().join("\n");
        let body = body_lines(p1);
        for garbage in [
            "hello",
            "QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVo=",
            "MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQC7",
            "秘密鍵をここに貼り付けてください。",
            "-----BEGIN RSA PRIVATE KEY-----\n-----END RSA PRIVATE KEY-----",
            "-----BEGIN RSA PRIVATE KEY-----\nnot base64 at all!\n-----END RSA PRIVATE KEY-----",
            "-----BEGIN PKCS7-----\nMIIB\n-----END PKCS7-----",
            "BEGIN END ----- -----BEGIN",
            &truncated,
            // Far over the API's 20 000 characters, and still answered at once.
            &"BEGIN ".repeat(100_000),
            &"-----BEGIN X-----END ".repeat(50_000),
            &p1.replace(body[3], ""),
            &p8.replace(body_lines(p8)[3], &body_lines(p8)[3].to_lowercase()),
        ] {
            check(garbage, refused(KeyRefusal::NotAKey));
        }
    }

    /// A PKCS#1 outline whose modulus has 8193 bits (the numbers are no key).
    fn oversized_pkcs1() -> Vec<u8> {
        fn tlv(tag: u8, content: &[u8]) -> Vec<u8> {
            let len = content.len();
            let mut out = vec![tag];
            if len < 0x80 {
                out.push(len as u8);
            } else {
                out.extend([0x82, (len >> 8) as u8, len as u8]);
            }
            out.extend(content);
            out
        }
        let mut modulus = vec![0x01];
        modulus.extend([0xff; 1024]);
        let mut body = tlv(0x02, &[0]);
        body.extend(tlv(0x02, &modulus));
        for small in [[0x01, 0x00, 0x01]; 7] {
            body.extend(tlv(0x02, &small));
        }
        tlv(0x30, &body)
    }

    #[test]
    fn both_forms_of_one_key_give_one_pkcs8_der() {
        let p1 = RsaPrivateKey::parse(&PAIR.private_key_pkcs1_pem).expect("PKCS#1");
        let p8 = RsaPrivateKey::parse(&PAIR.private_key_pem).expect("PKCS#8");
        assert_eq!(p1.pkcs8_der(), p8.pkcs8_der());
        assert_eq!(p8.pkcs8_der(), pem_der(&PAIR.private_key_pem).as_slice());
        assert_eq!(p1.bits(), 2048);
        assert_eq!(p1.public_key_fingerprint(), p8.public_key_fingerprint());
    }

    #[test]
    fn the_stored_form_reads_back_as_the_same_key() {
        let key = RsaPrivateKey::parse(&PAIR.private_key_pkcs1_pem).expect("PKCS#1");
        let back = RsaPrivateKey::from_pkcs8_der(key.pkcs8_der()).expect("from storage");
        assert_eq!(back.pkcs8_der(), key.pkcs8_der());
        assert_eq!(back.bits(), key.bits());
        assert_eq!(back.public_key_fingerprint(), key.public_key_fingerprint());

        assert_eq!(
            RsaPrivateKey::from_pkcs8_der(&pem_der(&PAIR.private_key_pkcs1_pem)).map(|_| ()),
            Err(KeyRefusal::NotAKey),
            "storage holds PKCS#8 only"
        );
        assert_eq!(
            RsaPrivateKey::from_pkcs8_der(&pem_der(&EC)).map(|_| ()),
            Err(KeyRefusal::NotRsa { kind: "EC".into() })
        );
        assert_eq!(RsaPrivateKey::from_pkcs8_der(b"").map(|_| ()), Err(KeyRefusal::NotAKey));
    }

    #[test]
    fn the_encoding_key_signs_rs256_that_the_certificate_verifies() {
        let key = RsaPrivateKey::parse(&PAIR.private_key_pkcs1_pem).expect("PKCS#1");
        let jwt = signs_rs256(key.encoding_key()).expect("sign");
        let spki = public_key().to_public_key_pem(LineEnding::LF).expect("SPKI PEM");
        let decoding = jsonwebtoken::DecodingKey::from_rsa_pem(spki.as_bytes()).expect("public key");
        let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::RS256);
        validation.required_spec_claims.clear();
        validation.validate_exp = false;
        let claims = jsonwebtoken::decode::<serde_json::Value>(&jwt, &decoding, &validation).expect("verifies");
        assert_eq!(claims.claims["sub"], "fa-key-check");
    }

    #[test]
    fn the_fingerprint_is_of_the_public_key() {
        let key = RsaPrivateKey::parse(&PAIR.private_key_pem).expect("PKCS#8");
        let spki = public_key().to_public_key_der().expect("SPKI");
        let fingerprint = key.public_key_fingerprint();
        assert_eq!(fingerprint, super::fingerprint(spki.as_bytes()));
        assert_eq!(fingerprint.len(), 16);
        assert!(fingerprint.chars().all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase()));
        let other = RsaPrivateKey::parse(&LARGE.private_key_pem).expect("4096");
        assert_ne!(other.public_key_fingerprint(), fingerprint);
    }

    #[test]
    fn debug_shows_size_and_fingerprint_but_no_key_material() {
        let key = RsaPrivateKey::parse(&PAIR.private_key_pkcs1_pem).expect("PKCS#1");
        let debug = format!("{key:?}");
        assert_eq!(
            debug,
            format!("RsaPrivateKey {{ bits: 2048, fingerprint: {:?}, .. }}", key.public_key_fingerprint())
        );
        for line in body_lines(&PAIR.private_key_pkcs1_pem).into_iter().chain(body_lines(&PAIR.private_key_pem)) {
            assert!(!debug.contains(line));
        }
    }

    #[test]
    fn every_refusal_has_its_own_reason() {
        let all = KeyRefusal::every_kind();
        let mut reasons: Vec<&str> = all.iter().map(KeyRefusal::reason).collect();
        reasons.dedup(); // the two `Encrypted` are adjacent and share theirs
        let count = reasons.len();
        reasons.sort_unstable();
        reasons.dedup();
        assert_eq!(reasons.len(), count, "reasons are distinct: {reasons:?}");
        assert_eq!(count, 9);
        for refusal in &all {
            assert!(!refusal.to_string().is_empty());
        }
    }

    #[test]
    fn bit_length_counts_significant_bits() {
        for (bytes, bits) in [(&[][..], 0), (&[0][..], 0), (&[1][..], 1), (&[0, 0x80, 0][..], 16), (&[0x7f, 0][..], 15)]
        {
            assert_eq!(bit_length(bytes), bits, "{bytes:?}");
        }
    }
}
