//! The TLS listener (`GATEWAY_TLS_CERT` / `GATEWAY_TLS_KEY`, PEM, rustls) and API Management's
//! `validate-client-certificate` (`GATEWAY_CLIENT_CA`, optionally `GATEWAY_CLIENT_CERT_THUMBPRINTS`
//! / `GATEWAY_CLIENT_CERT_SUBJECTS`).
//!
//! As in APIM, the certificate is judged by a policy, not by the handshake: the handshake asks for
//! a certificate (naming the CA), accepts any, and checks only that the client holds its private
//! key. The chain to the CA and the validity dates are then checked once per connection with
//! webpki, and the policy refuses a call without a certificate, with one that failed, past its
//! dates, or matching none of the identities, with APIM's 403. So a wrong certificate gets an
//! answer the client can read instead of a TLS alert, and the access log can name what was
//! presented (thumbprint and subject). Revocation is not checked (the rendered policy says so).

use crate::config::{ConfigError, Source, bad, list, value};
use crate::error::GatewayError;
use axum::Extension;
use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use rustls::client::danger::HandshakeSignatureValid;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, UnixTime};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::server::{ServerConfig, WebPkiClientVerifier};
use rustls::{DigitallySignedStruct, DistinguishedName, RootCertStore, SignatureScheme};
use std::fmt;
use std::sync::Arc;
use tokio::net::TcpStream;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;

pub const CERT_VAR: &str = "GATEWAY_TLS_CERT";
pub const KEY_VAR: &str = "GATEWAY_TLS_KEY";
pub const CA_VAR: &str = "GATEWAY_CLIENT_CA";
pub const THUMBPRINTS_VAR: &str = "GATEWAY_CLIENT_CERT_THUMBPRINTS";
pub const SUBJECTS_VAR: &str = "GATEWAY_CLIENT_CERT_SUBJECTS";

/// What a client certificate must be beyond chaining to the CA: one of these identities (APIM's
/// `<identity thumbprint=…>` / `<identity subject=…>`); none listed, any certificate of the CA.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientCertRules {
    /// SHA-1 of the DER, upper-case hex (as Azure shows thumbprints).
    pub thumbprints: Vec<String>,
    /// As .NET formats a subject: `CN=…, O=…`, most specific first.
    pub subjects: Vec<String>,
}

impl ClientCertRules {
    /// Present exactly when `GATEWAY_CLIENT_CA` is set.
    pub fn from_source(source: &dyn Source) -> Result<Option<Self>, ConfigError> {
        let thumbprints: Vec<String> = value(source, THUMBPRINTS_VAR)?
            .map(|text| {
                list(&text)
                    .iter()
                    .map(|t| thumbprint(t))
                    .collect::<Result<_, _>>()
            })
            .transpose()?
            .unwrap_or_default();
        // Subjects hold commas themselves: one per line or `;`-separated.
        let subjects: Vec<String> = value(source, SUBJECTS_VAR)?
            .map(|text| {
                text.split([';', '\n'])
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .map(str::to_owned)
                    .collect()
            })
            .unwrap_or_default();
        if value(source, CA_VAR)?.is_none() {
            if !thumbprints.is_empty() {
                return Err(bad(THUMBPRINTS_VAR, format!("needs {CA_VAR}")));
            }
            if !subjects.is_empty() {
                return Err(bad(SUBJECTS_VAR, format!("needs {CA_VAR}")));
            }
            return Ok(None);
        }
        Ok(Some(Self {
            thumbprints,
            subjects,
        }))
    }

    fn matches(&self, cert: &PeerCertificate) -> bool {
        (self.thumbprints.is_empty() && self.subjects.is_empty())
            || self.thumbprints.contains(&cert.thumbprint)
            || self.subjects.contains(&cert.subject)
    }
}

fn thumbprint(text: &str) -> Result<String, ConfigError> {
    let hex: String = text.chars().filter(|c| *c != ':').collect();
    if hex.len() != 40 || !hex.chars().all(|c| c.is_ascii_hexdigit()) {
        return Err(bad(
            THUMBPRINTS_VAR,
            format!("`{text}` is not a SHA-1 thumbprint (40 hex digits)"),
        ));
    }
    Ok(hex.to_ascii_uppercase())
}

/// The listener's certificate and key, and the CA client certificates must chain to.
#[derive(Clone)]
pub struct TlsListener {
    server: Arc<ServerConfig>,
    chain_verifier: Option<Arc<dyn ClientCertVerifier>>,
}

impl fmt::Debug for TlsListener {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsListener")
            .field("client_ca", &self.chain_verifier.is_some())
            .finish_non_exhaustive()
    }
}

fn read(var: &'static str, path: &str) -> Result<Vec<u8>, ConfigError> {
    std::fs::read(path).map_err(|e| bad(var, format!("cannot read `{path}`: {e}")))
}

fn certificates(
    var: &'static str,
    path: &str,
) -> Result<Vec<CertificateDer<'static>>, ConfigError> {
    let pem = read(var, path)?;
    let certs = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| bad(var, format!("`{path}` is not PEM certificates: {e}")))?;
    if certs.is_empty() {
        return Err(bad(var, format!("`{path}` holds no certificate")));
    }
    Ok(certs)
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::aws_lc_rs::default_provider())
}

impl TlsListener {
    /// Present when `GATEWAY_TLS_CERT` is set; the files are read and checked here, once.
    pub fn from_source(source: &dyn Source) -> Result<Option<Self>, ConfigError> {
        let Some(cert_path) = value(source, CERT_VAR)? else {
            if value(source, KEY_VAR)?.is_some() {
                return Err(bad(KEY_VAR, format!("needs {CERT_VAR}")));
            }
            if value(source, CA_VAR)?.is_some() {
                return Err(bad(CA_VAR, format!("client certificates need {CERT_VAR}")));
            }
            return Ok(None);
        };
        let chain = certificates(CERT_VAR, &cert_path)?;
        let key_path = value(source, KEY_VAR)?
            .ok_or_else(|| bad(KEY_VAR, "is required with a certificate"))?;
        // The reason never quotes the file: it is a private key.
        let key = PrivateKeyDer::from_pem_slice(&read(KEY_VAR, &key_path)?)
            .map_err(|_| bad(KEY_VAR, format!("`{key_path}` holds no PEM private key")))?;
        let chain_verifier = match value(source, CA_VAR)? {
            None => None,
            Some(ca_path) => {
                let mut roots = RootCertStore::empty();
                for cert in certificates(CA_VAR, &ca_path)? {
                    roots
                        .add(cert)
                        .map_err(|e| bad(CA_VAR, format!("not a usable CA certificate: {e}")))?;
                }
                let verifier =
                    WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider())
                        .build()
                        .map_err(|e| bad(CA_VAR, format!("{e}")))?;
                Some(verifier)
            }
        };
        let builder = ServerConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .map_err(|e| bad(CERT_VAR, e.to_string()))?;
        let builder = match &chain_verifier {
            Some(verifier) => builder.with_client_cert_verifier(Arc::new(PolicyDecides {
                inner: verifier.clone(),
            })),
            None => builder.with_no_client_auth(),
        };
        let mut server = builder
            .with_single_cert(chain, key)
            .map_err(|e| bad(KEY_VAR, format!("does not fit {CERT_VAR}: {e}")))?;
        server.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(Some(Self {
            server: Arc::new(server),
            chain_verifier,
        }))
    }

    pub fn handshake(&self) -> TlsHandshake {
        TlsHandshake {
            acceptor: TlsAcceptor::from(self.server.clone()),
            chain_verifier: self.chain_verifier.clone(),
        }
    }
}

/// Asks for a client certificate, accepts any at the TLS level (the policy judges it), but
/// checks the handshake signatures, so a client must hold the private key of what it presents.
#[derive(Debug)]
struct PolicyDecides {
    inner: Arc<dyn ClientCertVerifier>,
}

impl ClientCertVerifier for PolicyDecides {
    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        self.inner.root_hint_subjects()
    }

    fn client_auth_mandatory(&self) -> bool {
        false
    }

    fn verify_client_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        Ok(ClientCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}

/// The certificate a client presented, as judged at its handshake.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerCertificate {
    pub thumbprint: String,
    pub subject: String,
    /// Unix seconds.
    pub not_before: i64,
    pub not_after: i64,
    /// webpki's verdict on the chain to `GATEWAY_CLIENT_CA` at handshake time.
    pub chain: Result<(), String>,
}

/// Inserted into every request of a TLS connection: the client certificate, if one was presented.
#[derive(Debug, Clone, Default)]
pub struct ClientCertificate(pub Option<Arc<PeerCertificate>>);

impl PeerCertificate {
    fn judge(chain: &[CertificateDer<'_>], verifier: &dyn ClientCertVerifier) -> Option<Self> {
        let (end_entity, intermediates) = chain.split_first()?;
        let der = end_entity.as_ref();
        let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA1_FOR_LEGACY_USE_ONLY, der);
        let thumbprint = digest
            .as_ref()
            .iter()
            .map(|b| format!("{b:02X}"))
            .collect::<String>();
        let verdict = verifier
            .verify_client_cert(end_entity, intermediates, UnixTime::now())
            .map(|_| ())
            .map_err(|e| e.to_string());
        let (subject, not_before, not_after, chain) = match x509_parser::parse_x509_certificate(der)
        {
            Ok((_, parsed)) => (
                dotnet_subject(parsed.subject()),
                parsed.validity().not_before.timestamp(),
                parsed.validity().not_after.timestamp(),
                verdict,
            ),
            Err(e) => (
                String::new(),
                0,
                0,
                Err(format!("unparsable certificate: {e}")),
            ),
        };
        Some(Self {
            thumbprint,
            subject,
            not_before,
            not_after,
            chain,
        })
    }
}

/// `CN=client, O=Contoso, C=US`: the RDNs most specific first, as .NET's `X509Certificate2.Subject`
/// (what APIM's `subject` identity is compared with) writes them.
fn dotnet_subject(name: &x509_parser::x509::X509Name<'_>) -> String {
    let registry = x509_parser::objects::oid_registry();
    let rdns: Vec<String> = name
        .iter()
        .map(|rdn| {
            rdn.iter()
                .map(|attr| {
                    let kind = x509_parser::objects::oid2abbrev(attr.attr_type(), registry)
                        .map_or_else(|_| attr.attr_type().to_id_string(), str::to_owned);
                    format!("{kind}={}", attr.as_str().unwrap_or("?"))
                })
                .collect::<Vec<_>>()
                .join(" + ")
        })
        .collect();
    rdns.into_iter().rev().collect::<Vec<_>>().join(", ")
}

/// The TLS handshake of one connection, for [`http_serve::serve_handshaking`].
#[derive(Clone)]
pub struct TlsHandshake {
    acceptor: TlsAcceptor,
    chain_verifier: Option<Arc<dyn ClientCertVerifier>>,
}

impl http_serve::Handshake for TlsHandshake {
    type Stream = TlsStream<TcpStream>;
    type Info = ClientCertificate;

    async fn handshake(
        &self,
        socket: TcpStream,
    ) -> std::io::Result<(TlsStream<TcpStream>, ClientCertificate)> {
        let stream = self.acceptor.accept(socket).await?;
        let certificate = match (&self.chain_verifier, stream.get_ref().1.peer_certificates()) {
            (Some(verifier), Some(chain)) => {
                PeerCertificate::judge(chain, verifier.as_ref()).map(Arc::new)
            }
            _ => None,
        };
        Ok((stream, ClientCertificate(certificate)))
    }
}

fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

/// `validate-client-certificate` as middleware: every refusal is APIM's 403.
pub async fn validate_client_certificate(
    State(rules): State<Arc<ClientCertRules>>,
    presented: Option<Extension<ClientCertificate>>,
    request: Request,
    next: Next,
) -> Response {
    let refusal = match presented.and_then(|Extension(c)| c.0) {
        None => Some("no client certificate".to_owned()),
        Some(cert) => match &cert.chain {
            Err(reason) => Some(format!("chain: {reason}")),
            // Judged at the handshake, but a keep-alive connection can outlive the certificate.
            Ok(()) if !(cert.not_before..=cert.not_after).contains(&unix_now()) => {
                Some("outside its validity dates".to_owned())
            }
            Ok(()) if !rules.matches(&cert) => Some("matches no identity".to_owned()),
            Ok(()) => None,
        },
    };
    match refusal {
        None => next.run(request).await,
        Some(reason) => {
            tracing::info!(%reason, "validate-client-certificate: refused");
            GatewayError::Forbidden.into_response()
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use std::collections::HashMap;

    fn peer(thumbprint: &str, subject: &str) -> PeerCertificate {
        PeerCertificate {
            thumbprint: thumbprint.to_owned(),
            subject: subject.to_owned(),
            not_before: 0,
            not_after: i64::MAX,
            chain: Ok(()),
        }
    }

    fn rules(vars: &[(&'static str, &str)]) -> Result<Option<ClientCertRules>, ConfigError> {
        let env: HashMap<&'static str, String> =
            vars.iter().map(|(k, v)| (*k, (*v).to_owned())).collect();
        ClientCertRules::from_source(&env)
    }

    #[test]
    fn identities_are_any_of_the_thumbprints_or_subjects() {
        let thumb = "a1:b2:c3:d4:e5:f6:07:18:29:3a:4b:5c:6d:7e:8f:90:12:34:56:78";
        let r = rules(&[
            (CA_VAR, "ca.pem"),
            (THUMBPRINTS_VAR, thumb),
            (SUBJECTS_VAR, "CN=a, O=Contoso;\nCN=b"),
        ])
        .unwrap()
        .unwrap();
        assert_eq!(r.thumbprints, ["A1B2C3D4E5F60718293A4B5C6D7E8F9012345678"]);
        assert_eq!(r.subjects, ["CN=a, O=Contoso", "CN=b"]);
        assert!(r.matches(&peer("A1B2C3D4E5F60718293A4B5C6D7E8F9012345678", "CN=z")));
        assert!(r.matches(&peer("00", "CN=b")));
        assert!(!r.matches(&peer("00", "CN=a")), "subjects compare whole");
        let any = rules(&[(CA_VAR, "ca.pem")]).unwrap().unwrap();
        assert!(any.matches(&peer("00", "CN=anyone")));
        assert_eq!(rules(&[]).unwrap(), None);
    }

    #[test]
    fn bad_identities_are_named() {
        for (var, value) in [
            (THUMBPRINTS_VAR, "a1b2"),
            (THUMBPRINTS_VAR, "zz b2c3d4e5f60718293a4b5c6d7e8f9012345678"),
        ] {
            let error = rules(&[(CA_VAR, "ca.pem"), (var, value)]).unwrap_err();
            assert_eq!(error.var, var);
        }
        // Identities without the CA would be silently ignored: refused instead.
        assert_eq!(
            rules(&[(SUBJECTS_VAR, "CN=a")]).unwrap_err().var,
            SUBJECTS_VAR
        );
    }
}
