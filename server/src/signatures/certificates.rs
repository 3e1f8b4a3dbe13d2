//! Who a certificate names: a cosign signature's `dev.sigstore.cosign/certificate` (PEM) and a
//! notation signature's `x5c` leaf (DER). Only read: chains are not checked against a trust root.

use x509_parser::extensions::GeneralName;
use x509_parser::prelude::{FromDer, X509Certificate};

use super::keys::{PublicKey, key_of};

/// What a certificate says of its holder.
pub struct Holder {
    /// The subject alternative name (an e-mail or URI, as Fulcio writes), else the subject.
    pub name: String,
    /// The certificate's key, when it is one Berth can check signatures with.
    pub key: Option<PublicKey>,
}

/// Reads a DER certificate.
pub fn holder_of_der(der: &[u8]) -> Option<Holder> {
    let (_, certificate) = X509Certificate::from_der(der).ok()?;
    Some(holder(&certificate))
}

/// Reads the first certificate of a PEM text.
pub fn holder_of_pem(text: &str) -> Option<Holder> {
    let (_, pem) = x509_parser::pem::parse_x509_pem(text.as_bytes()).ok()?;
    if pem.label != "CERTIFICATE" {
        return None;
    }
    holder_of_der(&pem.contents)
}

fn holder(certificate: &X509Certificate<'_>) -> Holder {
    let alternative = certificate
        .subject_alternative_name()
        .ok()
        .flatten()
        .and_then(|san| {
            san.value.general_names.iter().find_map(|name| match name {
                GeneralName::RFC822Name(text)
                | GeneralName::URI(text)
                | GeneralName::DNSName(text) => Some((*text).to_owned()),
                _ => None,
            })
        });
    let subject = certificate.subject().to_string();
    Holder {
        name: alternative
            .filter(|n| !n.is_empty())
            .unwrap_or(if subject.is_empty() {
                "(a certificate without a subject)".to_owned()
            } else {
                subject
            }),
        key: key_of(certificate.public_key()).ok(),
    }
}
