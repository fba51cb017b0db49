//! Real TLS handshakes (rustls client and server over loopback TCP) through [`client_config`].
//!
//! The trust store is the system's, which a test cannot change; rustls-native-certs reads
//! `SSL_CERT_FILE` instead when it is set, so each case re-runs this test binary as a child with
//! `SSL_CERT_FILE` naming a file of its own — a file that does not exist yet when the client
//! configuration is built, so a store read at build time would hold nothing.
#![allow(clippy::unwrap_used)]

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DistinguishedName, DnType, IsCa, KeyPair,
};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName};
use rustls::{CertificateError, ClientConnection, ServerConfig, StreamOwned};
use trust_store::client_config;

const CHILD: &str = "TRUST_STORE_TEST_CASE";

/// A CA named `name`: webpki finds an issuer by its name, so two CAs must not share one.
fn ca(name: &str) -> CertifiedIssuer<'static, KeyPair> {
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.distinguished_name = DistinguishedName::new();
    params.distinguished_name.push(DnType::CommonName, name);
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    CertifiedIssuer::self_signed(params, KeyPair::generate().unwrap()).unwrap()
}

/// A TLS server on a free loopback port that answers one connection with `hello` and stops.
fn serve_once(issuer: &CertifiedIssuer<'static, KeyPair>, name: &str) -> u16 {
    let key = KeyPair::generate().unwrap();
    let cert = CertificateParams::new(vec![name.to_owned()])
        .unwrap()
        .signed_by(&key, issuer)
        .unwrap();
    let chain = vec![CertificateDer::from(cert.der().to_vec())];
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der()));
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        let (tcp, _) = listener.accept().unwrap();
        let server = rustls::ServerConnection::new(Arc::new(config)).unwrap();
        let mut tls = StreamOwned::new(server, tcp);
        let mut byte = [0u8; 1];
        // A refused handshake ends here with an error: nothing to answer.
        if tls.read_exact(&mut byte).is_ok() {
            let _ = tls.write_all(b"hello");
            tls.conn.send_close_notify();
            let _ = tls.flush();
        }
    });
    port
}

/// Connects to `localhost:port` with [`client_config`], sends a byte and reads the answer.
fn fetch(config: &Arc<rustls::ClientConfig>, port: u16) -> Result<String, rustls::Error> {
    let name = ServerName::try_from("localhost").unwrap();
    let client = ClientConnection::new(config.clone(), name).unwrap();
    let mut tls = StreamOwned::new(client, TcpStream::connect(("127.0.0.1", port)).unwrap());
    let mut answer = String::new();
    let result = tls
        .write_all(b"?")
        .and_then(|()| tls.read_to_string(&mut answer));
    match result {
        Ok(_) => Ok(answer),
        Err(error) => Err(error
            .into_inner()
            .and_then(|inner| inner.downcast::<rustls::Error>().ok())
            .map(|boxed| *boxed)
            .unwrap_or_else(|| rustls::Error::General("not a TLS error".to_owned()))),
    }
}

fn scratch(case: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("trust-store-{case}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir.join("roots.pem")
}

/// Runs `case` in a child with `SSL_CERT_FILE` naming `roots` (not yet written).
fn in_child(case: &str, roots: &Path) {
    let status = Command::new(std::env::current_exe().unwrap())
        .args([case, "--exact", "--nocapture", "--test-threads=1"])
        .env(CHILD, case)
        .env("SSL_CERT_FILE", roots)
        .env_remove("SSL_CERT_DIR")
        .status()
        .unwrap();
    assert!(status.success(), "case {case} failed in its child process");
}

/// In the parent: starts the child and returns false; in the child: true (run the case).
fn child_runs(case: &str) -> bool {
    if std::env::var(CHILD).as_deref() == Ok(case) {
        return true;
    }
    in_child(case, &scratch(case));
    false
}

fn roots_file() -> PathBuf {
    PathBuf::from(std::env::var("SSL_CERT_FILE").unwrap())
}

#[test]
fn the_roots_are_read_on_the_first_handshake_not_when_the_client_is_built() {
    if !child_runs("the_roots_are_read_on_the_first_handshake_not_when_the_client_is_built") {
        return;
    }
    let config = Arc::new(client_config(&[b"http/1.1"]).unwrap());
    assert!(format!("{config:?}").contains("not read yet"));
    let issuer = ca("Trusted Test CA");
    std::fs::write(roots_file(), issuer.pem()).unwrap();

    let port = serve_once(&issuer, "localhost");
    assert_eq!(fetch(&config, port).unwrap(), "hello");
    assert!(format!("{config:?}").contains("roots: \"read\""));
    assert_eq!(config.alpn_protocols, vec![b"http/1.1".to_vec()]);
}

#[test]
fn a_server_whose_issuer_is_not_trusted_is_refused() {
    if !child_runs("a_server_whose_issuer_is_not_trusted_is_refused") {
        return;
    }
    let config = Arc::new(client_config(&[]).unwrap());
    std::fs::write(roots_file(), ca("Trusted Test CA").pem()).unwrap();

    let port = serve_once(&ca("Untrusted Test CA"), "localhost");
    assert_eq!(
        fetch(&config, port),
        Err(rustls::Error::InvalidCertificate(
            CertificateError::UnknownIssuer
        ))
    );
}

#[test]
fn a_certificate_for_another_name_is_refused() {
    if !child_runs("a_certificate_for_another_name_is_refused") {
        return;
    }
    let config = Arc::new(client_config(&[]).unwrap());
    let issuer = ca("Trusted Test CA");
    std::fs::write(roots_file(), issuer.pem()).unwrap();

    let port = serve_once(&issuer, "other.example");
    let refused = fetch(&config, port).unwrap_err();
    assert!(
        matches!(
            refused,
            rustls::Error::InvalidCertificate(CertificateError::NotValidForNameContext { .. })
        ),
        "{refused:?}"
    );
}

#[test]
fn an_unreadable_trust_store_fails_every_handshake() {
    if !child_runs("an_unreadable_trust_store_fails_every_handshake") {
        return;
    }
    // SSL_CERT_FILE names a file that is never written: no roots at all.
    let config = Arc::new(client_config(&[]).unwrap());
    let port = serve_once(&ca("Untrusted Test CA"), "localhost");
    let refused = fetch(&config, port).unwrap_err();
    assert!(
        refused.to_string().contains("No CA certificates"),
        "{refused}"
    );
    assert!(format!("{config:?}").contains("unreadable"));
}
