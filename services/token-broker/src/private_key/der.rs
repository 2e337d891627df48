//! DER shape checks: what a decoded structure is when it is no RSA private key, so the refusal
//! can name what the admin pasted instead of only saying "not a key".
//!
//! A PKCS#8 key says its algorithm by OID; [`rsa_key_from_info`] reads the RSA ones and names the
//! others from a fixed table (`EC`, `Ed25519`, …, never text from the paste). Text pasted without
//! markers, or under the wrong label, has no label to go by: [`shape_refusal`] tells a
//! certificate, a CSR, a public key, an encrypted PKCS#8, an EC or a DSA key apart from the
//! outline of their top-level SEQUENCE alone, with a reader of a few lines rather than a full
//! X.509 or PKCS parser for structures that are refused anyway.

use rsa::pkcs8::PrivateKeyInfoRef;

use super::KeyRefusal;

/// The inner PKCS#1 key of a PKCS#8 `PrivateKeyInfo`, if its algorithm is RSA.
pub(super) fn rsa_key_from_info<'a>(info: &PrivateKeyInfoRef<'a>) -> Result<&'a [u8], KeyRefusal> {
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
pub(super) fn shape_refusal(der: &[u8]) -> Option<KeyRefusal> {
    const INTEGER: u8 = 0x02;
    const BIT_STRING: u8 = 0x03;
    const OCTET_STRING: u8 = 0x04;
    const SEQUENCE: u8 = 0x30;
    const CONTEXT_0: u8 = 0xA0;

    let (SEQUENCE, content, []) = element(der)? else { return None };
    let items = elements(content)?;
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
            let signed = elements(signed)?;
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
fn element(input: &[u8]) -> Option<(u8, &[u8], &[u8])> {
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
fn elements(mut content: &[u8]) -> Option<Vec<(u8, &[u8])>> {
    let mut elements = Vec::new();
    while !content.is_empty() {
        let (tag, inner, rest) = element(content)?;
        elements.push((tag, inner));
        content = rest;
    }
    Some(elements)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn elements_read_short_and_long_lengths_and_refuse_what_does_not_fit() {
        assert_eq!(element(&[0x02, 0x01, 0x05, 0xff]), Some((0x02, &[0x05][..], &[0xff][..])));
        let long = [&[0x04, 0x81, 0x80][..], &[0; 0x80]].concat();
        assert_eq!(element(&long).map(|(tag, content, rest)| (tag, content.len(), rest.len())), Some((0x04, 0x80, 0)));
        assert_eq!(element(&[0x1f, 0x01, 0x00]), None, "multi-byte tag");
        assert_eq!(element(&[0x02, 0x02, 0x00]), None, "content shorter than its length");
        assert_eq!(element(&[0x02, 0x80]), None, "indefinite length");
        assert_eq!(element(&[0x02, 0x85, 1, 0, 0, 0, 0]), None, "length of more than 4 bytes");
        assert_eq!(elements(&[0x02, 0x01, 0x00, 0x05, 0x00]), Some(vec![(0x02, &[0x00][..]), (0x05, &[][..])]));
        assert_eq!(elements(&[0x02, 0x01, 0x00, 0x05]), None, "a partial element");
    }

    #[test]
    fn outlines_name_what_was_pasted() {
        let check = |der: &[u8], expected: Option<KeyRefusal>| assert_eq!(shape_refusal(der), expected, "{der:02x?}");
        check(&[0x30, 0x04, 0x30, 0x00, 0x04, 0x00], Some(KeyRefusal::Encrypted { pkcs8: true }));
        check(&[0x30, 0x06, 0x02, 0x01, 0x01, 0x04, 0x01, 0x00], Some(KeyRefusal::NotRsa { kind: "EC".into() }));
        let csr =
            [0x30, 0x0f, 0x30, 0x09, 0x02, 0x01, 0x00, 0x30, 0x00, 0x30, 0x00, 0xa0, 0x00, 0x30, 0x00, 0x03, 0x00];
        check(&csr, Some(KeyRefusal::CertificateRequest));
        let certificate = [0x30, 0x0b, 0x30, 0x05, 0xa0, 0x00, 0x02, 0x01, 0x01, 0x30, 0x00, 0x03, 0x00];
        check(&certificate, Some(KeyRefusal::Certificate));
        check(&[0x30, 0x04, 0x30, 0x00, 0x03, 0x00], Some(KeyRefusal::PublicKey));
        check(&[0x30, 0x06, 0x02, 0x01, 0x01, 0x02, 0x01, 0x03], Some(KeyRefusal::PublicKey));
        check(&[0x30, 0x03, 0x02, 0x01, 0x00], None);
        check(&[0x30, 0x04, 0x30, 0x00, 0x04, 0x00, 0x00], None); // a byte after the SEQUENCE
    }
}
