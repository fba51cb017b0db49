//! Outbound TLS that trusts the system's CA roots, as reqwest and hyper-rustls do by default,
//! but reads them on the first TLS handshake instead of when a client is built.
//!
//! Reading the trust store means opening and PEM-decoding every certificate under `/etc/ssl`
//! (about 150 here): a millisecond or more of every server's start, before it answers its first
//! request — for nothing when every URL it calls is `http://` (the local stack) or when it calls
//! out only later. [`client_config`] gives the rustls configuration the servers' HTTP clients
//! use ([`reqwest_builder`] for reqwest); its verifier is [`rustls_platform_verifier::Verifier`], unchanged, built once, on first
//! use. Verification is the platform verifier's in every respect; a trust store that cannot be
//! read fails every handshake with the reason (fail closed), where an eager client would have
//! failed to build.

use std::fmt;
use std::sync::{Arc, OnceLock};

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, SignatureScheme};

/// The ALPN protocols of an HTTP/1 client.
pub const HTTP1: &[&[u8]] = &[b"http/1.1"];

/// A reqwest client builder whose TLS is [`client_config`] (HTTP/1: reqwest is built without
/// HTTP/2 here).
pub fn reqwest_builder() -> reqwest::ClientBuilder {
    let builder = reqwest::Client::builder();
    match client_config(HTTP1) {
        Ok(tls) => builder.tls_backend_preconfigured(tls),
        // Only a provider without TLS 1.2 and 1.3 fails here, never aws-lc-rs's; reqwest's own
        // configuration is the same verifier, read at build time.
        Err(_) => builder,
    }
}

/// A client configuration (aws-lc-rs, TLS 1.2 and 1.3, no client certificate) trusting the
/// system's roots, with `alpn` as its ALPN protocols (`[b"http/1.1"]` for HTTP/1 clients).
pub fn client_config(alpn: &[&[u8]]) -> Result<ClientConfig, rustls::Error> {
    // Named, so that no feature unification can make the provider ambiguous.
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut config = ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(SystemRoots::new(provider)))
        .with_no_client_auth();
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    Ok(config)
}

/// The platform verifier, built on the first handshake that needs it.
struct SystemRoots {
    provider: Arc<CryptoProvider>,
    verifier: OnceLock<Result<rustls_platform_verifier::Verifier, rustls::Error>>,
}

impl SystemRoots {
    fn new(provider: Arc<CryptoProvider>) -> Self {
        Self {
            provider,
            verifier: OnceLock::new(),
        }
    }

    fn verifier(&self) -> Result<&rustls_platform_verifier::Verifier, rustls::Error> {
        self.verifier
            .get_or_init(|| rustls_platform_verifier::Verifier::new(self.provider.clone()))
            .as_ref()
            .map_err(Clone::clone)
    }
}

impl fmt::Debug for SystemRoots {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = match self.verifier.get() {
            None => "not read yet",
            Some(Ok(_)) => "read",
            Some(Err(_)) => "unreadable",
        };
        f.debug_struct("SystemRoots")
            .field("roots", &state)
            .finish()
    }
}

impl ServerCertVerifier for SystemRoots {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        self.verifier()?.verify_server_cert(
            end_entity,
            intermediates,
            server_name,
            ocsp_response,
            now,
        )
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.verifier()?.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.verifier()?.verify_tls13_signature(message, cert, dss)
    }

    // Asked for every ClientHello, before any certificate is seen: the provider's schemes are
    // the platform verifier's (it checks signatures with the same provider), no roots needed.
    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}
