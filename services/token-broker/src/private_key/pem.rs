//! PEM scanning: the `BEGIN <label>` … `END <label>` blocks of a paste, found however the paste
//! was mangled on its way from `server.key` to the connection form.
//!
//! Editors, chats and web pages change what admins copy: CRLF, no-break and full-width spaces,
//! zero-width characters, typographic dashes (`—–BEGIN`), the line breaks turned into spaces or
//! removed. A strict PEM reader refuses all of these, so [`normalize`] first makes the paste
//! plain and [`blocks`] then finds the markers by their words rather than by their exact dashes.
//! The scan stays linear whatever the paste, so a hostile one costs no more than a long one.
//!
//! What a label says is a [`Kind`]; whether the body is really a usable key is for the DER to say
//! (`super::der` and [`super::RsaPrivateKey`]). Everything here that holds key material is zeroized
//! on drop and has no `Debug`.

use base64::Engine as _;
use secrecy::zeroize::Zeroizing;

use super::KeyRefusal;

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
pub(super) fn normalize(pasted: &str) -> Zeroizing<String> {
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
pub(super) enum Kind {
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
    pub(super) fn refusal(self) -> Option<KeyRefusal> {
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
pub(super) struct Block<'a> {
    pub(super) kind: Kind,
    /// Between the markers: base64, perhaps with RFC 1421 headers. Runs to the next marker or
    /// the end when the END marker is missing.
    pub(super) body: &'a str,
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
pub(super) fn blocks(text: &str) -> Vec<Block<'_>> {
    let markers = markers(text);
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

fn markers(text: &str) -> Vec<Marker> {
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
pub(super) fn decode_base64(body: &str) -> Option<Zeroizing<Vec<u8>>> {
    let mut compact = Zeroizing::new(String::with_capacity(body.len()));
    for line in body.lines().filter(|line| !line.contains(':')) {
        compact.extend(line.chars().filter(|c| !c.is_whitespace()));
    }
    let der = BASE64.decode(compact.as_bytes()).ok()?;
    (!der.is_empty()).then(|| Zeroizing::new(der))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markers_are_found_whatever_dashes_and_blanks_surround_them() {
        let check = |paste: &str, expected: &[(Kind, &str)]| {
            let text = normalize(paste);
            let found: Vec<(Kind, &str)> = blocks(&text).iter().map(|b| (b.kind, b.body.trim())).collect();
            assert_eq!(found, expected, "for {paste:?}");
        };
        check("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n", &[(Kind::Key, "AAAA")]);
        check("—–BEGIN RSA PRIVATE KEY—–\r\nAAAA\r\n—–END RSA PRIVATE KEY—–", &[(Kind::Key, "AAAA")]);
        check("BEGIN\u{3000}CERTIFICATE- AAAA -END CERTIFICATE-", &[(Kind::Certificate, "AAAA")]);
        check("-----BEGIN EC PRIVATE KEY-----\nAAAA", &[(Kind::OtherKey("EC"), "AAAA")]);
        check("no markers here", &[]);
        check("XBEGIN PRIVATE KEY-----", &[]);
    }
}
