//! The TLS listener and validate-client-certificate, driven with a TLS client (reqwest over rustls)
//! against the real binary. Each test makes its own CAs and certificates with rcgen.
#![allow(clippy::unwrap_used)]

mod common;

use common::*;
use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DistinguishedName, DnType,
    ExtendedKeyUsagePurpose, IsCa, KeyPair, KeyUsagePurpose,
};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use testkit::TestIssuer;

const BIN: &str = env!("CARGO_BIN_EXE_gateway");

fn ca(name: &str) -> CertifiedIssuer<'static, KeyPair> {
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.distinguished_name = DistinguishedName::new();
    params.distinguished_name.push(DnType::CommonName, name);
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    CertifiedIssuer::self_signed(params, KeyPair::generate().unwrap()).unwrap()
}

/// A certificate and its key, PEM.
struct Leaf {
    cert: String,
    key: String,
    der: Vec<u8>,
}

impl Leaf {
    fn identity(&self) -> reqwest::Identity {
        reqwest::Identity::from_pem(format!("{}{}", self.cert, self.key).as_bytes()).unwrap()
    }

    /// APIM's thumbprint: SHA-1 of the DER.
    fn thumbprint(&self) -> String {
        let digest =
            aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA1_FOR_LEGACY_USE_ONLY, &self.der);
        digest.as_ref().iter().map(|b| format!("{b:02x}")).collect()
    }
}

fn leaf(
    issuer: &CertifiedIssuer<'static, KeyPair>,
    names: &[(DnType, &str)],
    usage: ExtendedKeyUsagePurpose,
    expired: bool,
) -> Leaf {
    let mut params =
        CertificateParams::new(vec!["localhost".to_owned(), "127.0.0.1".to_owned()]).unwrap();
    // rcgen starts with a CN of its own; the names go in the order given (most general first).
    params.distinguished_name = DistinguishedName::new();
    for (kind, value) in names {
        params.distinguished_name.push(kind.clone(), *value);
    }
    params.extended_key_usages = vec![usage];
    if expired {
        params.not_before = rcgen::date_time_ymd(2020, 1, 1);
        params.not_after = rcgen::date_time_ymd(2021, 1, 1);
    }
    let key = KeyPair::generate().unwrap();
    let cert = params.signed_by(&key, issuer).unwrap();
    Leaf {
        cert: cert.pem(),
        key: key.serialize_pem(),
        der: cert.der().to_vec(),
    }
}

fn client_leaf(issuer: &CertifiedIssuer<'static, KeyPair>, cn: &str, expired: bool) -> Leaf {
    leaf(
        issuer,
        &[
            (DnType::OrganizationName, "Contoso"),
            (DnType::CommonName, cn),
        ],
        ExtendedKeyUsagePurpose::ClientAuth,
        expired,
    )
}

/// A fresh directory for one test's PEM files.
fn scratch_dir() -> PathBuf {
    let dir = std::env::temp_dir().join(format!("gateway-tls-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn write(dir: &Path, name: &str, text: &str) -> String {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path.to_string_lossy().into_owned()
}

/// The binary, serving TLS with a server certificate from `server_ca`; its log is captured.
struct TlsGateway {
    base: String,
    server_ca: reqwest::Certificate,
    child: testkit::ChildServer,
}

impl TlsGateway {
    async fn start(issuer: &TestIssuer, extra: Vec<(&'static str, String)>) -> (Self, Pki) {
        let pki = Pki::new();
        let backend = start_echo_backend().await;
        let port = testkit::free_port();
        let mut env: Vec<(&'static str, String)> =
            env_for(&[issuer], &backend.url).into_iter().collect();
        env.push(("GATEWAY_PORT", port.to_string()));
        env.push(("GATEWAY_TLS_CERT", pki.server_cert.clone()));
        env.push(("GATEWAY_TLS_KEY", pki.server_key.clone()));
        env.push(("RUST_LOG", "info".to_owned()));
        env.extend(
            extra
                .into_iter()
                .map(|(k, v)| (k, v.replace("{CA}", &pki.client_ca))),
        );
        let child = spawn_logged(BIN, &env);
        let gateway = Self {
            base: format!("https://127.0.0.1:{port}"),
            server_ca: reqwest::Certificate::from_pem(pki.server_ca_pem.as_bytes()).unwrap(),
            child,
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let ready = gateway
                .client(None)
                .get(format!("{}/healthz", gateway.base))
                .send()
                .await;
            if ready.is_ok_and(|r| r.status() == 200) {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "the TLS gateway did not become ready"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        // The echo backend must outlive this function.
        std::mem::forget(backend);
        (gateway, pki)
    }

    fn client(&self, identity: Option<reqwest::Identity>) -> reqwest::Client {
        let mut builder = reqwest::Client::builder()
            .no_proxy()
            .timeout(Duration::from_secs(10))
            .tls_certs_only([self.server_ca.clone()]);
        if let Some(identity) = identity {
            builder = builder.identity(identity);
        }
        builder.build().unwrap()
    }

    async fn call(
        &self,
        identity: Option<reqwest::Identity>,
        token: &str,
    ) -> (u16, reqwest::header::HeaderMap, String) {
        let response = self
            .client(identity)
            .get(format!("{}/api/hello", self.base))
            .header("origin", SPA_ORIGIN)
            .bearer_auth(token)
            .send()
            .await
            .unwrap();
        read(response).await
    }

    /// Stops the binary and returns everything it logged.
    async fn stop(self) -> String {
        self.child.stop_and_read().await
    }
}

/// The server's certificate (from its own CA) and the client CA, as files.
struct Pki {
    server_ca_pem: String,
    server_cert: String,
    server_key: String,
    client_ca: String,
    client_issuer: CertifiedIssuer<'static, KeyPair>,
}

impl Pki {
    fn new() -> Self {
        let dir = scratch_dir();
        let server_ca = ca("Gateway Test Server CA");
        let server = leaf(
            &server_ca,
            &[(DnType::CommonName, "localhost")],
            ExtendedKeyUsagePurpose::ServerAuth,
            false,
        );
        let client_issuer = ca("Contoso Client CA");
        Self {
            server_ca_pem: server_ca.pem(),
            server_cert: write(&dir, "server.pem", &server.cert),
            server_key: write(&dir, "server.key", &server.key),
            client_ca: write(&dir, "client-ca.pem", &client_issuer.pem()),
            client_issuer,
        }
    }
}

fn assert_forbidden(answer: &(u16, reqwest::header::HeaderMap, String), why: &str) {
    assert_eq!(answer.0, 403, "{why}: {}", answer.2);
    assert_eq!(
        assert_api_error(answer.0, &answer.1, &answer.2),
        "Forbidden",
        "{why}"
    );
    assert_eq!(answer.1["access-control-allow-origin"], SPA_ORIGIN, "{why}");
}

#[tokio::test]
async fn client_certificates_must_chain_to_the_ca_be_in_date_and_match_a_subject() {
    let issuer = TestIssuer::start().await;
    let (gw, pki) = TlsGateway::start(
        &issuer,
        vec![
            ("GATEWAY_CLIENT_CA", "{CA}".to_owned()),
            (
                "GATEWAY_CLIENT_CERT_SUBJECTS",
                "CN=other; CN=good-client, O=Contoso".to_owned(),
            ),
        ],
    )
    .await;
    let token = token(&issuer, "tls-user");
    let good = client_leaf(&pki.client_issuer, "good-client", false);

    let (status, _, body) = gw.call(Some(good.identity()), &token).await;
    if status != 200 {
        panic!("{status} {body}; the gateway's log:\n{}", gw.stop().await);
    }
    assert_forbidden(&gw.call(None, &token).await, "no certificate");
    let stranger = client_leaf(&ca("Some Other CA"), "good-client", false);
    assert_forbidden(
        &gw.call(Some(stranger.identity()), &token).await,
        "another CA",
    );
    let expired = client_leaf(&pki.client_issuer, "good-client", true);
    assert_forbidden(&gw.call(Some(expired.identity()), &token).await, "expired");
    let unlisted = client_leaf(&pki.client_issuer, "someone-else", false);
    assert_forbidden(
        &gw.call(Some(unlisted.identity()), &token).await,
        "subject not listed",
    );
    // The certificate does not replace the token: validate-jwt still runs.
    let (status, _, _) = gw.call(Some(good.identity()), "not-a-token").await;
    assert_eq!(status, 401);

    let log = gw.stop().await;
    let line = log
        .lines()
        .find(|l| {
            l.contains("gateway::access") && l.contains("/api/hello") && l.contains("status=200")
        })
        .unwrap_or_else(|| panic!("no access line in:\n{log}"));
    let thumbprint = good.thumbprint().to_uppercase();
    assert!(
        line.contains(&format!("cert_thumbprint=\"{thumbprint}\"")),
        "{line}"
    );
    assert!(
        line.contains("cert_subject=\"CN=good-client, O=Contoso\""),
        "{line}"
    );
    assert!(
        !log.contains(good.key.lines().nth(1).unwrap()),
        "a private key reached the log"
    );
}

#[tokio::test]
async fn thumbprints_pin_single_certificates_of_the_ca() {
    let issuer = TestIssuer::start().await;
    // The pinned certificate comes from a CA made here, whose file the gateway is given.
    let pinned_pki = Pki::new();
    let pinned = client_leaf(&pinned_pki.client_issuer, "pinned", false);
    let (gw, _) = TlsGateway::start(
        &issuer,
        vec![
            ("GATEWAY_CLIENT_CA", pinned_pki.client_ca.clone()),
            (
                "GATEWAY_CLIENT_CERT_THUMBPRINTS",
                // Lower case with colons, as some tools print them.
                pinned
                    .thumbprint()
                    .as_bytes()
                    .chunks(2)
                    .map(|c| std::str::from_utf8(c).unwrap())
                    .collect::<Vec<_>>()
                    .join(":"),
            ),
        ],
    )
    .await;
    let token = token(&issuer, "pin-user");
    let (status, _, body) = gw.call(Some(pinned.identity()), &token).await;
    assert_eq!(status, 200, "{body}");
    let sibling = client_leaf(&pinned_pki.client_issuer, "pinned", false);
    assert_forbidden(
        &gw.call(Some(sibling.identity()), &token).await,
        "same CA and subject, other certificate",
    );
    gw.stop().await;
}

#[tokio::test]
async fn tls_without_a_client_ca_serves_anyone_and_plain_http_gets_nothing() {
    let issuer = TestIssuer::start().await;
    let (gw, pki) = TlsGateway::start(&issuer, vec![]).await;
    let token = token(&issuer, "tls-plain");
    let (status, _, body) = gw.call(None, &token).await;
    assert_eq!(status, 200, "{body}");
    // A certificate offered anyway is not asked for, and changes nothing.
    let cert = client_leaf(&pki.client_issuer, "x", false);
    assert_eq!(gw.call(Some(cert.identity()), &token).await.0, 200);
    let plain = gw.base.replace("https://", "http://");
    let answer = client().get(format!("{plain}/api/hello")).send().await;
    assert!(answer.is_err() || answer.is_ok_and(|r| r.status() != 200));
    gw.stop().await;
}

#[tokio::test]
async fn a_client_that_never_finishes_its_tls_handshake_is_cut_off() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let issuer = TestIssuer::start().await;
    let (gw, _) = TlsGateway::start(&issuer, vec![]).await;
    let address = gw.base.trim_start_matches("https://").to_owned();
    let mut socket = tokio::net::TcpStream::connect(&address).await.unwrap();
    // The first bytes of a ClientHello record, then silence.
    socket.write_all(&[0x16, 0x03, 0x01, 0x00]).await.unwrap();
    let started = Instant::now();
    let mut buffer = [0u8; 64];
    let read = tokio::time::timeout(Duration::from_secs(20), socket.read(&mut buffer)).await;
    assert!(
        matches!(read, Ok(Ok(0) | Err(_))),
        "the half-open handshake was not closed: {read:?}"
    );
    // http-serve's header-read deadline (10 s) bounds the handshake too.
    assert!(
        started.elapsed() < Duration::from_secs(15),
        "{:?}",
        started.elapsed()
    );
    gw.stop().await;
}

/// A gateway whose backend is `https://`: it trusts the system's roots (here `SSL_CERT_FILE`, which
/// rustls-native-certs reads instead of the system store), read on its first call, not at start.
async fn gateway_in_front_of(
    backend: &str,
    roots: &str,
    issuer: &TestIssuer,
) -> (String, testkit::ChildServer) {
    let port = testkit::free_port();
    let mut env: Vec<(&'static str, String)> = env_for(&[issuer], backend).into_iter().collect();
    env.push(("GATEWAY_PORT", port.to_string()));
    env.push(("SSL_CERT_FILE", roots.to_owned()));
    let mut child = spawn_logged(BIN, &env);
    let base = format!("http://127.0.0.1:{port}");
    child
        .wait_ready(&format!("{base}/healthz"), Duration::from_secs(20))
        .await;
    (base, child)
}

/// Azure's function app is `https://<app>.azurewebsites.net`: the gateway forwards over TLS to a
/// backend whose certificate chains to a trusted root and names its host, and to no other.
#[tokio::test]
async fn an_https_backend_is_called_when_its_certificate_is_trusted_and_refused_otherwise() {
    let issuer = TestIssuer::start().await;
    // The TLS-serving gateway (in front of the echo backend) plays the https function app.
    let (backend, pki) = TlsGateway::start(&issuer, Vec::new()).await;
    let backend_url = backend.base.replace("127.0.0.1", "localhost");
    let dir = scratch_dir();
    let trusted = write(&dir, "trusted.pem", &pki.server_ca_pem);
    let untrusted = write(&dir, "untrusted.pem", &ca("Some Other CA").pem());
    let token = token(&issuer, "https-backend-user");
    let hello = |base: String| {
        let token = token.clone();
        async move {
            let response = client()
                .get(format!("{base}/api/hello"))
                .header("origin", SPA_ORIGIN)
                .bearer_auth(&token)
                .send()
                .await
                .unwrap();
            read(response).await
        }
    };

    let (base, gateway) = gateway_in_front_of(&backend_url, &trusted, &issuer).await;
    let (status, _, body) = hello(base).await;
    assert_eq!(status, 200, "{body}\n{}", gateway.stop_and_read().await);

    let (base, gateway) = gateway_in_front_of(&backend_url, &untrusted, &issuer).await;
    let (status, headers, body) = hello(base).await;
    assert_eq!(status, 502, "{body}");
    assert_eq!(
        assert_api_error(status, &headers, &body),
        "Backend service is unavailable."
    );
    gateway.stop().await;
    backend.stop().await;
}
