//! The RSA private key an admin pastes into the connection form (`server.key`), parsed once into
//! an [`RsaPrivateKey`] that the rest of the token-broker trusts without checking again.
//!
//! Admins paste what their editor, a chat or a web page handed them, so [`RsaPrivateKey::parse`]
//! takes a key as people really paste it (behaviour.md): PKCS#1 (`BEGIN RSA PRIVATE KEY`) or
//! PKCS#8 (`BEGIN PRIVATE KEY`), CRLF, blanks around it, no final newline, the body on one line
//! or with spaces for newlines, typographic dashes (`—–BEGIN …—–`) around the markers, and a
//! certificate pasted along with the key. Everything else is a [`KeyRefusal`] whose
//! [`message`](KeyRefusal::message) tells the admin, in English and Japanese, what they pasted and
//! what to do; no message ever repeats any of the pasted text.
//!
//! The key is kept as PKCS#8 DER ([`RsaPrivateKey::pkcs8_der`]), the form the token-broker seals
//! (`crate::sealed`) and stores; [`RsaPrivateKey::from_pkcs8_der`] reads it back.

use std::fmt;

use base64::Engine as _;
use fa_runtime::admin::Text;
use rsa::{
    pkcs1::{DecodeRsaPrivateKey as _, EncodeRsaPrivateKey as _, RsaPrivateKeyRef},
    pkcs8::{EncodePrivateKey as _, EncodePublicKey as _, PrivateKeyInfoRef, der::Decode as _},
    traits::PublicKeyParts as _,
};
use secrecy::{ExposeSecret as _, SecretSlice, zeroize::Zeroizing};

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
        let text = normalize(pasted);
        let text = text.trim();
        if text.is_empty() {
            return Err(KeyRefusal::Empty);
        }
        let blocks = pem_blocks(text);
        if blocks.is_empty() {
            return Self::from_bare(text);
        }

        // A private key wins over whatever was pasted with it (typically its certificate).
        let mut first_error = None;
        for block in blocks.iter().filter(|b| b.kind == Kind::Key) {
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
        rsa_key_from_info(&info).and_then(Self::from_pkcs1_der)
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
        let der = decode_base64(text).ok_or(KeyRefusal::NotAKey)?;
        Self::from_der(&der)
    }

    /// The body of a `PRIVATE KEY` or `RSA PRIVATE KEY` block.
    fn from_key_block(body: &str) -> Result<Self, KeyRefusal> {
        // RFC 1421 headers `Proc-Type: 4,ENCRYPTED` and `DEK-Info: …` (OpenSSL's legacy
        // encryption). Base64 has no `-`, so these names cannot occur by chance.
        if body.contains("Proc-Type") || body.contains("DEK-Info") {
            return Err(KeyRefusal::Encrypted { pkcs8: false });
        }
        let der = decode_base64(body).ok_or(KeyRefusal::NotAKey)?;
        Self::from_der(&der)
    }

    /// Any DER: PKCS#8 or PKCS#1 RSA keys are read, other structures are named in the refusal.
    fn from_der(der: &[u8]) -> Result<Self, KeyRefusal> {
        if let Ok(info) = PrivateKeyInfoRef::from_der(der) {
            return rsa_key_from_info(&info).and_then(Self::from_pkcs1_der);
        }
        if RsaPrivateKeyRef::from_der(der).is_ok() {
            return Self::from_pkcs1_der(der);
        }
        Err(der_shape_refusal(der).unwrap_or(KeyRefusal::NotAKey))
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

/// Why a pasted text is not a usable key. [`message`](Self::message) tells the admin what to do.
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
    /// A stable machine-readable code (the `code` of the problem document).
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

    /// What was pasted and what to do, for the admin.
    pub fn message(&self) -> Text {
        match self {
            Self::Empty => Text::new(
                format!("No private key was pasted. {COPY_KEY_EN}"),
                format!("秘密鍵が貼り付けられていません。{COPY_KEY_JA}"),
            ),
            Self::Encrypted { pkcs8: false } => Text::new(
                "The private key is encrypted with a password, so it cannot be used as it is. Remove the password: \
                 in the folder holding server.key, run `openssl rsa -in server.key -out server_nopass.key` and type \
                 the password when asked. Then open server_nopass.key in a text editor and paste all of it, from \
                 the line -----BEGIN PRIVATE KEY----- (or -----BEGIN RSA PRIVATE KEY-----) to the line \
                 -----END PRIVATE KEY----- (or -----END RSA PRIVATE KEY-----), both lines included.",
                "秘密鍵がパスワードで暗号化されているため、このままでは使えません。server.key のあるフォルダで \
                 `openssl rsa -in server.key -out server_nopass.key` を実行し、パスワードを聞かれたら入力して、\
                 パスワードを外した鍵を作ってください。できた server_nopass.key をテキストエディタで開き、\
                 「-----BEGIN PRIVATE KEY-----」（または「-----BEGIN RSA PRIVATE KEY-----」）の行から\
                 「-----END PRIVATE KEY-----」（または「-----END RSA PRIVATE KEY-----」）の行まで、\
                 両方の行を含めてすべてコピーして貼り付けてください。",
            ),
            Self::Encrypted { pkcs8: true } => Text::new(
                "The private key is encrypted with a password (it begins with -----BEGIN ENCRYPTED PRIVATE \
                 KEY-----), so it cannot be used as it is. Remove the password: in the folder holding server.key, \
                 run `openssl pkcs8 -in server.key -out server_nopass.key` and type the password when asked. Then \
                 open server_nopass.key in a text editor and paste all of it, from the line -----BEGIN PRIVATE \
                 KEY----- to the line -----END PRIVATE KEY-----, both lines included.",
                "秘密鍵がパスワードで暗号化されている（「-----BEGIN ENCRYPTED PRIVATE KEY-----」で始まる）ため、\
                 このままでは使えません。server.key のあるフォルダで \
                 `openssl pkcs8 -in server.key -out server_nopass.key` を実行し、パスワードを聞かれたら入力して、\
                 パスワードを外した鍵を作ってください。できた server_nopass.key をテキストエディタで開き、\
                 「-----BEGIN PRIVATE KEY-----」の行から「-----END PRIVATE KEY-----」の行まで、\
                 両方の行を含めてすべてコピーして貼り付けてください。",
            ),
            Self::Certificate => Text::new(
                format!(
                    "This is a certificate (server.crt, beginning with -----BEGIN CERTIFICATE-----), not the private \
                     key. The certificate goes to Salesforce, under \"Use digital signatures\" of the connected app; \
                     here, paste the private key instead. {COPY_KEY_EN}"
                ),
                format!(
                    "貼り付けられたのは証明書（server.crt、「-----BEGIN CERTIFICATE-----」で始まるもの）で、\
                     秘密鍵ではありません。証明書は Salesforce の接続アプリケーションの「デジタル署名を使用」に\
                     アップロードするものです。ここには秘密鍵を貼り付けてください。{COPY_KEY_JA}"
                ),
            ),
            Self::CertificateRequest => Text::new(
                format!(
                    "This is a certificate signing request (CSR, beginning with -----BEGIN CERTIFICATE \
                     REQUEST-----), not the private key. {COPY_KEY_EN}"
                ),
                format!(
                    "貼り付けられたのは証明書署名要求（CSR、「-----BEGIN CERTIFICATE REQUEST-----」で始まるもの）で、\
                     秘密鍵ではありません。{COPY_KEY_JA}"
                ),
            ),
            Self::PublicKey => Text::new(
                format!(
                    "This is a public key, not the private key. Salesforce gets the certificate (server.crt); this \
                     form needs the private key. {COPY_KEY_EN}"
                ),
                format!(
                    "貼り付けられたのは公開鍵で、秘密鍵ではありません。Salesforce には証明書（server.crt）を、\
                     この画面には秘密鍵を登録します。{COPY_KEY_JA}"
                ),
            ),
            Self::NotRsa { kind } => Text::new(
                format!(
                    "The pasted private key is not an RSA key (its type: {kind}); the Salesforce JWT sign-in \
                     needs an RSA key (RS256). {NEW_KEY_EN}"
                ),
                format!(
                    "貼り付けられた秘密鍵は RSA 鍵ではありません（種類: {kind}）。Salesforce の JWT 認証には \
                     RSA 鍵（RS256）が必要です。{NEW_KEY_JA}"
                ),
            ),
            Self::TooShort { bits } => Text::new(
                format!(
                    "The private key is only {bits} bits long; keys shorter than 2048 bits are too weak and cannot \
                     be used. {NEW_KEY_EN}"
                ),
                format!(
                    "秘密鍵の長さが {bits} ビットしかありません。2048 ビット未満の鍵は安全性が低いため使えません。\
                     {NEW_KEY_JA}"
                ),
            ),
            Self::TooLong { bits } => Text::new(
                format!(
                    "The private key is {bits} bits long; keys longer than 8192 bits cannot be used for signing. \
                     {NEW_KEY_EN}"
                ),
                format!("秘密鍵の長さが {bits} ビットあります。8192 ビットを超える鍵は署名に使えません。{NEW_KEY_JA}"),
            ),
            Self::NotAKey => Text::new(
                format!("The pasted text is not a private key, or part of it is missing. {COPY_KEY_EN}"),
                format!("貼り付けられた内容は秘密鍵ではないか、一部が欠けています。{COPY_KEY_JA}"),
            ),
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

/// Where to find the key and what to copy.
const COPY_KEY_EN: &str = "Open server.key (the private key file made together with server.crt) in a text editor \
     and paste all of it, from the line -----BEGIN PRIVATE KEY----- (or -----BEGIN RSA PRIVATE KEY-----) to the line \
     -----END PRIVATE KEY----- (or -----END RSA PRIVATE KEY-----), both lines included.";
const COPY_KEY_JA: &str = "server.key（server.crt と一緒に作成した秘密鍵のファイル）をテキストエディタで開き、\
     「-----BEGIN PRIVATE KEY-----」（または「-----BEGIN RSA PRIVATE KEY-----」）の行から\
     「-----END PRIVATE KEY-----」（または「-----END RSA PRIVATE KEY-----」）の行まで、\
     両方の行を含めてすべてコピーして貼り付けてください。";

/// How to make a usable key, as the setup guide does.
const NEW_KEY_EN: &str = "Make a new 2048-bit key and certificate with \
     `openssl req -x509 -sha256 -nodes -days 365 -newkey rsa:2048 -keyout server.key -out server.crt`, upload the \
     new server.crt to \"Use digital signatures\" of the connected app in Salesforce, then paste the new server.key \
     here, from the line -----BEGIN PRIVATE KEY----- to the line -----END PRIVATE KEY-----, both lines included.";
const NEW_KEY_JA: &str = "次のコマンドで 2048 ビットの鍵と証明書を作り直してください: \
     `openssl req -x509 -sha256 -nodes -days 365 -newkey rsa:2048 -keyout server.key -out server.crt` \
     作成された新しい server.crt を Salesforce の接続アプリケーションの「デジタル署名を使用」にアップロードしてから、\
     新しい server.key をテキストエディタで開き、「-----BEGIN PRIVATE KEY-----」の行から\
     「-----END PRIVATE KEY-----」の行まで、両方の行を含めてすべてコピーして貼り付けてください。";

/// The characters a web page or a word processor may show instead of `-`.
fn is_dash(c: char) -> bool {
    matches!(
        c,
        '-' | '\u{2010}' // ‐ hyphen
            | '\u{2011}' // ‑ non-breaking hyphen
            | '\u{2012}' // ‒ figure dash
            | '\u{2013}' // – en dash
            | '\u{2014}' // — em dash
            | '\u{2015}' // ― horizontal bar
            | '\u{2212}' // − minus sign
            | '\u{2E3A}' // ⸺ two-em dash
            | '\u{2E3B}' // ⸻ three-em dash
            | '\u{FE58}' // ﹘ small em dash
            | '\u{FE63}' // ﹣ small hyphen-minus
            | '\u{FF0D}' // － full-width hyphen-minus
            | '\u{30FC}' // ー prolonged sound mark (Japanese IMEs)
            | '\u{FF70}' // ｰ half-width prolonged sound mark
    )
}

/// The paste with LF line ends, every dash-like character as `-`, every other blank (NBSP,
/// full-width space, tab) as a space, and zero-width characters gone. Zeroized on drop: it holds
/// the key.
fn normalize(pasted: &str) -> Zeroizing<String> {
    let mut out = Zeroizing::new(String::with_capacity(pasted.len()));
    let mut chars = pasted.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\r' => {
                chars.next_if_eq(&'\n');
                out.push('\n');
            }
            '\n' | '\u{85}' | '\u{2028}' | '\u{2029}' => out.push('\n'),
            '\u{200B}' | '\u{200C}' | '\u{200D}' | '\u{2060}' | '\u{FEFF}' => {}
            c if is_dash(c) => out.push('-'),
            c if c.is_whitespace() => out.push(' '),
            c => out.push(c),
        }
    }
    out
}

/// What a PEM label says a block holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// `RSA PRIVATE KEY`, `PRIVATE KEY`, or another private key label worth decoding.
    Key,
    EncryptedKey,
    OtherKey(&'static str),
    Certificate,
    CertificateRequest,
    PublicKey,
    Other,
}

impl Kind {
    fn of_label(label: &str) -> Self {
        match label {
            "ENCRYPTED PRIVATE KEY" => Self::EncryptedKey,
            "EC PRIVATE KEY" => Self::OtherKey("EC"),
            "DSA PRIVATE KEY" => Self::OtherKey("DSA"),
            "OPENSSH PRIVATE KEY" => Self::OtherKey("OpenSSH"),
            "PGP PRIVATE KEY BLOCK" => Self::OtherKey("OpenPGP"),
            "CERTIFICATE" | "TRUSTED CERTIFICATE" | "X509 CERTIFICATE" | "X.509 CERTIFICATE" => Self::Certificate,
            "CERTIFICATE REQUEST" | "NEW CERTIFICATE REQUEST" => Self::CertificateRequest,
            "PUBLIC KEY" | "RSA PUBLIC KEY" | "SSH2 PUBLIC KEY" | "PGP PUBLIC KEY BLOCK" => Self::PublicKey,
            // `RSA PRIVATE KEY`, `PRIVATE KEY`, and the odd tool's own label: the DER decides.
            label if label.ends_with("PRIVATE KEY") => Self::Key,
            _ => Self::Other,
        }
    }

    /// The refusal for a block that is not a private key to read.
    fn refusal(self) -> Option<KeyRefusal> {
        match self {
            Self::Key => None,
            Self::EncryptedKey => Some(KeyRefusal::Encrypted { pkcs8: true }),
            Self::OtherKey(kind) => Some(KeyRefusal::NotRsa { kind: kind.into() }),
            Self::Certificate => Some(KeyRefusal::Certificate),
            Self::CertificateRequest => Some(KeyRefusal::CertificateRequest),
            Self::PublicKey => Some(KeyRefusal::PublicKey),
            Self::Other => Some(KeyRefusal::NotAKey),
        }
    }
}

/// One `BEGIN <label>` … `END <label>` block of the normalised paste.
struct Block<'a> {
    kind: Kind,
    /// Between the markers: base64, perhaps with RFC 1421 headers. Runs to the next marker or
    /// the end when the END marker is missing.
    body: &'a str,
}

/// A `-----BEGIN <label>-----` or `-----END <label>-----` marker.
struct Marker {
    begin: bool,
    label: String,
    /// Where its leading dashes start.
    start: usize,
    /// Just past its trailing dashes.
    end: usize,
}

/// The PEM blocks of `text`, in order. Markers need at least one dash after the label; the
/// leading dashes may be missing and the label's spaces may be any blanks.
fn pem_blocks(text: &str) -> Vec<Block<'_>> {
    let markers = pem_markers(text);
    markers
        .iter()
        .enumerate()
        .filter(|(_, m)| m.begin)
        .map(|(i, m)| {
            let next = markers.get(i + 1).map_or(text.len(), |n| n.start).max(m.end);
            Block { kind: Kind::of_label(&m.label), body: &text[m.end..next] }
        })
        .collect()
}

/// Longer than any PEM label in use (`PGP PRIVATE KEY BLOCK`, `NEW CERTIFICATE REQUEST`).
const MAX_LABEL_LEN: usize = 64;

fn pem_markers(text: &str) -> Vec<Marker> {
    let mut markers = Vec::new();
    for (word, begin) in [("BEGIN ", true), ("END ", false)] {
        for (at, _) in text.match_indices(word) {
            if text[..at].chars().next_back().is_some_and(|c| c.is_ascii_alphanumeric()) {
                continue;
            }
            let after = &text[at + word.len()..];
            // The label runs to the first dash; looking no further than a label can be long keeps
            // the scan linear whatever the paste.
            let is_label_char = |c: char| c.is_ascii_uppercase() || c.is_ascii_digit() || matches!(c, ' ' | '.');
            let Some(dash) = after.bytes().take(MAX_LABEL_LEN + 1).position(|b| b == b'-') else { continue };
            let raw = &after[..dash];
            if !raw.chars().all(is_label_char) {
                continue;
            }
            let label = raw.split_whitespace().collect::<Vec<_>>().join(" ");
            if label.is_empty() {
                continue;
            }
            let dashes = after[dash..].len() - after[dash..].trim_start_matches('-').len();
            markers.push(Marker {
                begin,
                label,
                start: text[..at].trim_end_matches(['-', ' ']).len(),
                end: at + word.len() + dash + dashes,
            });
        }
    }
    markers.sort_by_key(|m| m.start);
    markers
}

/// Standard base64 that does not insist on the final `=` padding.
const BASE64: base64::engine::GeneralPurpose = base64::engine::GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    base64::engine::GeneralPurposeConfig::new()
        .with_decode_padding_mode(base64::engine::DecodePaddingMode::Indifferent),
);

/// The bytes of a block body or a bare paste: lines with a `:` (RFC 1421 headers) skipped, all
/// blanks dropped.
fn decode_base64(body: &str) -> Option<Zeroizing<Vec<u8>>> {
    let mut compact = Zeroizing::new(String::with_capacity(body.len()));
    for line in body.lines().filter(|line| !line.contains(':')) {
        compact.extend(line.chars().filter(|c| !c.is_whitespace()));
    }
    let der = BASE64.decode(compact.as_bytes()).ok()?;
    (!der.is_empty()).then(|| Zeroizing::new(der))
}

/// The inner PKCS#1 key of a PKCS#8 `PrivateKeyInfo`, if its algorithm is RSA.
fn rsa_key_from_info<'a>(info: &PrivateKeyInfoRef<'a>) -> Result<&'a [u8], KeyRefusal> {
    let kind = match info.algorithm.oid.to_string().as_str() {
        // rsaEncryption, RSASSA-PSS
        "1.2.840.113549.1.1.1" | "1.2.840.113549.1.1.10" => return Ok(info.private_key.as_bytes()),
        "1.2.840.10045.2.1" => "EC",
        "1.3.101.112" => "Ed25519",
        "1.3.101.113" => "Ed448",
        "1.3.101.110" => "X25519",
        "1.3.101.111" => "X448",
        "1.2.840.10040.4.1" => "DSA",
        "1.2.840.113549.1.3.1" | "1.2.840.10046.2.1" => "DH",
        "1.2.156.10197.1.301" => "SM2",
        oid if oid.starts_with("2.16.840.1.101.3.4.3.") => "ML-DSA / SLH-DSA",
        _ => "unknown",
    };
    Err(KeyRefusal::NotRsa { kind: kind.into() })
}

/// What a DER structure that is no RSA private key looks like, from its outline alone (for text
/// pasted without markers or under the wrong label).
fn der_shape_refusal(der: &[u8]) -> Option<KeyRefusal> {
    const INTEGER: u8 = 0x02;
    const BIT_STRING: u8 = 0x03;
    const OCTET_STRING: u8 = 0x04;
    const SEQUENCE: u8 = 0x30;
    const CONTEXT_0: u8 = 0xA0;

    let (SEQUENCE, content, []) = der_element(der)? else { return None };
    let items = der_elements(content)?;
    let tags: Vec<u8> = items.iter().map(|(tag, _)| *tag).collect();
    match (tags.as_slice(), items.as_slice()) {
        // EncryptedPrivateKeyInfo: encryptionAlgorithm, encryptedData.
        ([SEQUENCE, OCTET_STRING], _) => Some(KeyRefusal::Encrypted { pkcs8: true }),
        // SEC1 ECPrivateKey: version 1, privateKey, [0] parameters, [1] publicKey.
        ([INTEGER, OCTET_STRING, ..], [(_, [1]), ..]) => Some(KeyRefusal::NotRsa { kind: "EC".into() }),
        // OpenSSL's DSA private key: version, p, q, g, y, x.
        ([INTEGER, INTEGER, INTEGER, INTEGER, INTEGER, INTEGER], _) => Some(KeyRefusal::NotRsa { kind: "DSA".into() }),
        // Certificate or CertificationRequest: to-be-signed, signatureAlgorithm, signature.
        ([SEQUENCE, SEQUENCE, BIT_STRING], [(_, signed), ..]) => {
            // CertificationRequestInfo: version, subject, subjectPKInfo, [0] attributes.
            let signed = der_elements(signed)?;
            let tags: Vec<u8> = signed.iter().map(|(tag, _)| *tag).collect();
            Some(match tags.as_slice() {
                [INTEGER, SEQUENCE, SEQUENCE, CONTEXT_0] => KeyRefusal::CertificateRequest,
                _ => KeyRefusal::Certificate,
            })
        }
        // SubjectPublicKeyInfo, or PKCS#1 RSAPublicKey (modulus, exponent).
        ([SEQUENCE, BIT_STRING], _) | ([INTEGER, INTEGER], _) => Some(KeyRefusal::PublicKey),
        _ => None,
    }
}

/// The first DER element of `input`: its tag (one byte), its contents, and what follows it.
fn der_element(input: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, rest) = input.split_first()?;
    if tag & 0x1f == 0x1f {
        return None;
    }
    let (&first, rest) = rest.split_first()?;
    let (len, rest) = if first < 0x80 {
        (usize::from(first), rest)
    } else {
        let count = usize::from(first & 0x7f);
        if count == 0 || count > 4 || rest.len() < count {
            return None;
        }
        let (len, rest) = rest.split_at(count);
        (len.iter().fold(0usize, |acc, b| (acc << 8) | usize::from(*b)), rest)
    };
    if rest.len() < len {
        return None;
    }
    let (content, rest) = rest.split_at(len);
    Some((tag, content, rest))
}

/// The DER elements that fill `content` exactly, as (tag, contents).
fn der_elements(mut content: &[u8]) -> Option<Vec<(u8, &[u8])>> {
    let mut elements = Vec::new();
    while !content.is_empty() {
        let (tag, inner, rest) = der_element(content)?;
        elements.push((tag, inner));
        content = rest;
    }
    Some(elements)
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
mod tests {
    use std::sync::LazyLock;

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
    fn every_refusal_has_its_own_reason_and_a_message_in_both_languages() {
        let all = [
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
        ];
        let mut reasons: Vec<&str> = all.iter().map(KeyRefusal::reason).collect();
        reasons.dedup(); // the two `Encrypted` are adjacent and share theirs
        let count = reasons.len();
        reasons.sort_unstable();
        reasons.dedup();
        assert_eq!(reasons.len(), count, "reasons are distinct: {reasons:?}");
        assert_eq!(count, 9);

        let mut messages = Vec::new();
        for refusal in &all {
            let text = refusal.message();
            assert!(!text.en.trim().is_empty() && !text.ja.trim().is_empty(), "{refusal:?}");
            assert!(text.en.is_ascii(), "{refusal:?}: {}", text.en);
            assert!(!text.ja.is_ascii(), "{refusal:?}: {}", text.ja);
            assert!(!refusal.to_string().is_empty());
            messages.push(text);
        }
        let has = |refusal: KeyRefusal, needle: &str| {
            let text = refusal.message();
            assert!(text.en.contains(needle) && text.ja.contains(needle), "{refusal:?} names {needle}");
        };
        has(KeyRefusal::Encrypted { pkcs8: false }, "openssl rsa -in server.key -out server_nopass.key");
        has(KeyRefusal::Encrypted { pkcs8: true }, "openssl pkcs8 -in server.key -out server_nopass.key");
        let new_key = "openssl req -x509 -sha256 -nodes -days 365 -newkey rsa:2048 -keyout server.key -out server.crt";
        has(KeyRefusal::TooShort { bits: 1024 }, new_key);
        has(KeyRefusal::TooShort { bits: 1024 }, "1024");
        has(KeyRefusal::NotRsa { kind: "EC".into() }, new_key);
        assert!(KeyRefusal::TooShort { bits: 1024 }.message().ja.contains("デジタル署名を使用"));
        assert!(KeyRefusal::TooShort { bits: 1024 }.message().ja.contains("接続アプリケーション"));
        has(KeyRefusal::Certificate, "server.crt");
        for refusal in [KeyRefusal::Empty, KeyRefusal::Certificate, KeyRefusal::PublicKey, KeyRefusal::NotAKey] {
            has(refusal.clone(), "server.key");
            has(refusal.clone(), "-----BEGIN RSA PRIVATE KEY-----");
            has(refusal, "-----END PRIVATE KEY-----");
        }
        assert!(KeyRefusal::Encrypted { pkcs8: true }.message().ja.contains("パスワードで暗号化されて"));
    }

    #[test]
    fn no_refusal_repeats_the_pasted_text() {
        let p1 = PAIR.private_key_pkcs1_pem.as_str();
        let legacy = p1.replacen("-----\n", "-----\nProc-Type: 4,ENCRYPTED\nDEK-Info: AES-128-CBC,00\n\n", 1);
        let encrypted = keygen::encrypt_pkcs8_pem(p1, "s3cret").expect("encrypt");
        let truncated: String = p1.lines().take(10).collect::<Vec<_>>().join("\n");
        let pastes = [
            legacy,
            encrypted,
            truncated,
            PAIR.certificate_pem.clone(),
            SHORT.private_key_pkcs1_pem.clone(),
            EC.clone(),
            p1.replace('\n', " ").replace("MII", "???"),
        ];
        for paste in &pastes {
            let refusal = RsaPrivateKey::parse(paste).expect_err("refused");
            let text = refusal.message();
            for line in paste.split_whitespace().filter(|t| t.len() >= 16 && !t.contains("-----")) {
                assert!(!text.en.contains(line) && !text.ja.contains(line), "{refusal:?} repeats {line:?}");
                assert!(!refusal.to_string().contains(line));
            }
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
