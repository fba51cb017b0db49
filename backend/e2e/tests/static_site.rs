//! `deploy/static-site` against Azurite, the storage emulator: upload a representative `dist/`,
//! then read every blob back over the Blob REST API (signed here with Shared Key, independently of
//! the uploader's SDK) and compare bytes, Content-Type and Cache-Control with what a browser needs.
#![allow(clippy::unwrap_used)]

mod support;

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Output;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use sha2::{Digest, Sha256};
use support::{ChildServer, TempDir, log, workspace_root};

/// Azurite's well-known development account (public, documented, loopback only).
const ACCOUNT: &str = "devstoreaccount1";
const ACCOUNT_KEY: &str =
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==";
const IMMUTABLE: &str = "public, max-age=31536000, immutable";

struct Azurite {
    _proc: ChildServer,
    _data: TempDir,
    endpoint: String,
}

impl Azurite {
    async fn start() -> Self {
        let bin = workspace_root().join("node_modules/.bin/azurite-blob");
        assert!(
            bin.exists(),
            "{} is missing: run `npm install` in the repository root (scripts/setup does)",
            bin.display()
        );
        let data = TempDir::new("azurite");
        let port = testkit::free_port();
        let mut command = std::process::Command::new(&bin);
        command.args(["--blobHost", "127.0.0.1", "--blobPort", &port.to_string()]);
        command.arg("--location").arg(data.path());
        command.args(["--skipApiVersionCheck", "--loose", "--silent"]);
        let log = log(&format!("azurite-{port}.log"));
        let mut proc = ChildServer::spawn(command, "azurite-blob", log);
        let endpoint = format!("http://127.0.0.1:{port}/{ACCOUNT}");
        // Azurite answers an unsigned request with 4xx: any answer means it listens.
        proc.wait_answering(&endpoint, Duration::from_secs(30))
            .await;
        Self {
            _proc: proc,
            _data: data,
            endpoint,
        }
    }

    fn connection_string(&self) -> String {
        format!(
            "DefaultEndpointsProtocol=http;AccountName={ACCOUNT};AccountKey={ACCOUNT_KEY};BlobEndpoint={};",
            self.endpoint
        )
    }

    /// GET with a Shared Key signature, as the Blob service defines it.
    async fn get(&self, path: &str, query: &[(&str, &str)]) -> reqwest::Response {
        let date = time::OffsetDateTime::now_utc()
            .format(time::macros::format_description!(
                "[weekday repr:short], [day] [month repr:short] [year] [hour]:[minute]:[second] GMT"
            ))
            .unwrap();
        let version = "2021-08-06";
        let mut resource = format!("/{ACCOUNT}/{ACCOUNT}/{path}");
        let mut sorted: Vec<_> = query.to_vec();
        sorted.sort();
        for (k, v) in &sorted {
            resource.push_str(&format!("\n{k}:{v}"));
        }
        let to_sign = format!(
            "GET\n\n\n\n\n\n\n\n\n\n\n\nx-ms-date:{date}\nx-ms-version:{version}\n{resource}"
        );
        let key = B64.decode(ACCOUNT_KEY).unwrap();
        let signature = B64.encode(hmac_sha256(&key, to_sign.as_bytes()));
        reqwest::Client::new()
            .get(format!("{}/{path}", self.endpoint))
            .query(query)
            .header("x-ms-date", date)
            .header("x-ms-version", version)
            .header("Authorization", format!("SharedKey {ACCOUNT}:{signature}"))
            .timeout(Duration::from_secs(10))
            .send()
            .await
            .unwrap()
    }

    /// Names of all blobs in `$web`, or `None` when the container does not exist.
    async fn list_web(&self) -> Option<Vec<String>> {
        let response = self
            .get("$web", &[("comp", "list"), ("restype", "container")])
            .await;
        if response.status() == 404 {
            return None;
        }
        assert_eq!(response.status(), 200, "list blobs");
        let xml = response.text().await.unwrap();
        Some(
            xml.split("<Name>")
                .skip(1)
                .map(|s| s.split("</Name>").next().unwrap().to_owned())
                .collect(),
        )
    }
}

fn hmac_sha256(key: &[u8], message: &[u8]) -> [u8; 32] {
    let mut block = [0u8; 64];
    if key.len() > 64 {
        block[..32].copy_from_slice(&Sha256::digest(key));
    } else {
        block[..key.len()].copy_from_slice(key);
    }
    let pad = |byte: u8| block.iter().map(|b| b ^ byte).collect::<Vec<u8>>();
    let inner = Sha256::new()
        .chain_update(pad(0x36))
        .chain_update(message)
        .finalize();
    Sha256::new()
        .chain_update(pad(0x5c))
        .chain_update(inner)
        .finalize()
        .into()
}

/// A dist/ shaped like trunk's: hashed JS, wasm and CSS, a wasm-bindgen snippet folder, an
/// unhashed icon, index.html. Each entry: name → (bytes, expected Content-Type, Cache-Control).
fn representative_dist(dir: &Path) -> BTreeMap<String, (Vec<u8>, &'static str, &'static str)> {
    // Bytes that are not UTF-8 and contain NULs, so any text mangling shows.
    let wasm: Vec<u8> = b"\0asm\x01\0\0\0"
        .iter()
        .copied()
        .chain((0..70_000u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8))
        .collect();
    let files = BTreeMap::from([
        (
            "index.html".to_owned(),
            (
                b"<!doctype html><html><head><link rel=\"modulepreload\" href=\"/frontend-3c9f0a1b2d4e5f60.js\"></head><body></body></html>".to_vec(),
                "text/html; charset=utf-8",
                "no-cache",
            ),
        ),
        (
            "frontend-3c9f0a1b2d4e5f60.js".to_owned(),
            (b"export default function init() {}\n".to_vec(), "text/javascript; charset=utf-8", IMMUTABLE),
        ),
        (
            "frontend-3c9f0a1b2d4e5f60_bg.wasm".to_owned(),
            (wasm, "application/wasm", IMMUTABLE),
        ),
        (
            "style-9a8b7c6d5e4f3a2b.css".to_owned(),
            (b"body { margin: 0 }\n".to_vec(), "text/css; charset=utf-8", IMMUTABLE),
        ),
        (
            "snippets/frontend-0123456789abcdef/inline0.js".to_owned(),
            (b"export function f() {}\n".to_vec(), "text/javascript; charset=utf-8", IMMUTABLE),
        ),
        (
            "favicon.ico".to_owned(),
            (vec![0, 0, 1, 0, 1, 0, 16, 16], "image/x-icon", "no-cache"),
        ),
    ]);
    for (name, (bytes, _, _)) in &files {
        let path = dir.join(name);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, bytes).unwrap();
    }
    files
}

const ENV_CONFIG: [(&str, &str); 6] = [
    ("SPA_CLIENT_ID", "6c0e4a12-3b5d-4f7e-8a9b-0c1d2e3f4a5b"),
    (
        "SPA_AUTHORITY",
        "https://contoso.b2clogin.com/tfp/contoso.onmicrosoft.com/B2C_1_signupsignin",
    ),
    ("SPA_KNOWN_AUTHORITIES", "contoso.b2clogin.com"),
    (
        "SPA_SCOPES",
        "https://contoso.onmicrosoft.com/hello-api/accessapp",
    ),
    (
        "SPA_API_URL",
        "https://contoso-apim.azure-api.net/hello/api/hello",
    ),
    (
        "SPA_REDIRECT_URI",
        "https://contoso.z6.web.core.windows.net/",
    ),
];

/// Runs deploy/static-site with `args` and `envs` (bounded in time).
async fn deploy(azurite: &Azurite, args: &[&str], envs: &[(&str, &str)]) -> Output {
    let mut command = tokio::process::Command::new(workspace_root().join("deploy/static-site"));
    command
        .args(args)
        .env(
            "AZURE_STORAGE_CONNECTION_STRING",
            azurite.connection_string(),
        )
        .env("SPA_CONFIG_BIN", env!("CARGO_BIN_EXE_spa-config"))
        .envs(envs.iter().copied())
        .kill_on_drop(true);
    for (name, _) in ENV_CONFIG {
        if !envs.iter().any(|(k, _)| *k == name) {
            command.env_remove(name);
        }
    }
    let output = tokio::time::timeout(Duration::from_secs(120), command.output())
        .await
        .expect("deploy/static-site took over 120 s")
        .unwrap();
    eprintln!(
        "deploy/static-site {args:?} → {}\n{}{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

#[tokio::test]
async fn uploads_dist_with_content_types_and_caching_and_reads_back_identical() {
    let azurite = Azurite::start().await;
    let dist = TempDir::new("dist");
    let expected = representative_dist(dist.path());

    // No flag needed (issue 15): every upload sets the 404 document, which deep links need.
    let args = ["--dist", dist.path().to_str().unwrap()];
    let output = deploy(&azurite, &args, &ENV_CONFIG).await;
    assert!(output.status.success(), "deploy/static-site failed");

    let mut names = azurite.list_web().await.expect("$web exists");
    names.sort();
    let mut wanted: Vec<String> = expected.keys().cloned().collect();
    wanted.push("config.json".into());
    wanted.sort();
    assert_eq!(
        names, wanted,
        "the container holds exactly dist/ plus config.json"
    );

    for (name, (bytes, content_type, cache_control)) in &expected {
        let response = azurite.get(&format!("$web/{name}"), &[]).await;
        assert_eq!(response.status(), 200, "{name}");
        let header = |h: &str| {
            response
                .headers()
                .get(h)
                .map(|v| v.to_str().unwrap().to_owned())
        };
        assert_eq!(
            header("content-type").as_deref(),
            Some(*content_type),
            "{name}"
        );
        assert_eq!(
            header("cache-control").as_deref(),
            Some(*cache_control),
            "{name}"
        );
        let md5 = header("content-md5").expect("Content-MD5 stored");
        assert_eq!(B64.decode(md5).unwrap().len(), 16, "{name}");
        assert_eq!(
            &response.bytes().await.unwrap()[..],
            &bytes[..],
            "{name}: bytes"
        );
    }

    let response = azurite.get("$web/config.json", &[]).await;
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.headers()["content-type"].to_str().unwrap(),
        "application/json"
    );
    assert_eq!(
        response.headers()["cache-control"].to_str().unwrap(),
        "no-cache"
    );
    let config = shared::SpaConfig::from_json(&response.text().await.unwrap()).unwrap();
    assert_eq!(config.client_id, ENV_CONFIG[0].1);
    assert_eq!(config.authority, ENV_CONFIG[1].1);
    assert_eq!(config.known_authorities, [ENV_CONFIG[2].1]);
    assert_eq!(config.scopes, [ENV_CONFIG[3].1]);
    assert_eq!(config.api_url, ENV_CONFIG[4].1);
    assert_eq!(config.redirect_uri.as_deref(), Some(ENV_CONFIG[5].1));
    assert_eq!(config.post_logout_redirect_uri, None);
    // dist/ itself is left as built: config.json is per environment.
    assert!(!dist.path().join("config.json").exists());

    // The uploader's own check agrees, and catches a difference.
    let verify = ["--dist", dist.path().to_str().unwrap(), "--verify"];
    assert!(
        deploy(&azurite, &verify, &ENV_CONFIG)
            .await
            .status
            .success()
    );
    let python = std::env::var("DEPLOY_PYTHON").unwrap_or_else(|_| {
        format!(
            "{}/.cache/hello-b2c/deploy-venv/bin/python",
            std::env::var("HOME").unwrap()
        )
    });
    let website = run_python(
        &python,
        &azurite,
        &[
            "-c",
            "from azure.storage.blob import BlobServiceClient as S; import os; \
                      w = S.from_connection_string(os.environ['AZURE_STORAGE_CONNECTION_STRING']) \
                          .get_service_properties()['static_website']; \
                      print(w.enabled, w.index_document, w.error_document404_path)",
        ],
    )
    .await;
    assert_eq!(
        String::from_utf8_lossy(&website.stdout).trim(),
        "True index.html index.html",
        "the static website's settings: {}",
        String::from_utf8_lossy(&website.stderr)
    );
    std::fs::write(dist.path().join("favicon.ico"), b"changed").unwrap();
    let site = TempDir::new("site");
    for name in expected.keys() {
        let to = site.path().join(name);
        std::fs::create_dir_all(to.parent().unwrap()).unwrap();
        std::fs::copy(dist.path().join(name), to).unwrap();
    }
    let uploader = workspace_root().join("deploy/static_site.py");
    let args = [
        uploader.to_str().unwrap(),
        "verify",
        "--source",
        site.path().to_str().unwrap(),
    ];
    let check = run_python(&python, &azurite, &args).await;
    let stdout = String::from_utf8_lossy(&check.stdout);
    assert_eq!(check.status.code(), Some(1), "{stdout}");
    assert!(
        stdout.contains("MISMATCH favicon.ico: content differs"),
        "{stdout}"
    );
}

/// The deploy venv's python with `args`, against the emulator's storage account.
async fn run_python(python: &str, azurite: &Azurite, args: &[&str]) -> Output {
    tokio::process::Command::new(python)
        .args(args)
        .env(
            "AZURE_STORAGE_CONNECTION_STRING",
            azurite.connection_string(),
        )
        .output()
        .await
        .unwrap()
}

#[tokio::test]
async fn refuses_a_bad_config_or_an_unknown_file_type_before_uploading_anything() {
    let azurite = Azurite::start().await;
    let dist = TempDir::new("dist-bad");
    representative_dist(dist.path());
    let dist_arg = dist.path().to_str().unwrap();

    // The authority's host is not among the known authorities: the SPA would refuse it.
    let mut env = ENV_CONFIG.to_vec();
    env[2] = ("SPA_KNOWN_AUTHORITIES", "login.example.com");
    let output = deploy(&azurite, &["--dist", dist_arg], &env).await;
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("knownAuthorities"), "{stderr}");

    // A required setting missing: named in one line.
    let output = deploy(&azurite, &["--dist", dist_arg], &ENV_CONFIG[1..]).await;
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("SPA_CLIENT_ID is not set"));

    // A file nobody knows how to serve: refused, not uploaded as octet-stream.
    std::fs::write(dist.path().join("notes.xyz"), b"?").unwrap();
    let output = deploy(&azurite, &["--dist", dist_arg], &ENV_CONFIG).await;
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("notes.xyz"));

    assert_eq!(azurite.list_web().await, None, "nothing was uploaded");

    // --config-only writes the validated file and needs no storage account.
    let out = dist.path().join("out-config.json");
    let output = deploy(
        &azurite,
        &["--config-only", out.to_str().unwrap()],
        &ENV_CONFIG,
    )
    .await;
    assert!(output.status.success());
    let written = std::fs::read_to_string(&out).unwrap();
    assert_eq!(
        shared::SpaConfig::from_json(&written).unwrap().api_url,
        ENV_CONFIG[4].1
    );
}

/// `spa-config --check FILE` accepts what the SPA accepts and names what it refuses.
#[test]
fn spa_config_check_validates_an_existing_file() {
    let dir = TempDir::new("spa-config");
    let check = |text: &str| {
        let file = dir.path().join("config.json");
        std::fs::write(&file, text).unwrap();
        std::process::Command::new(env!("CARGO_BIN_EXE_spa-config"))
            .arg("--check")
            .arg(&file)
            .output()
            .unwrap()
    };
    let good = serde_json::json!({
        "clientId": ENV_CONFIG[0].1,
        "authority": ENV_CONFIG[1].1,
        "knownAuthorities": [ENV_CONFIG[2].1],
        "scopes": [ENV_CONFIG[3].1],
        "apiUrl": ENV_CONFIG[4].1,
    });
    let output = check(&good.to_string());
    assert!(output.status.success(), "{output:?}");

    let mut typo = good.clone();
    typo["apiURL"] = typo["apiUrl"].take();
    typo.as_object_mut().unwrap().remove("apiUrl");
    let output = check(&typo.to_string());
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("apiURL"));

    let output = check("{");
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("config.json is not valid"));
}

/// `spa-config` with `SPA_CONSOLE_*`: the console's section, validated like the rest; a console
/// setting without its client id is refused rather than silently dropped.
#[test]
fn spa_config_writes_the_developer_console() {
    let spa_config = |extra: &[(&str, &str)]| {
        let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_spa-config"));
        command
            .env_clear()
            .envs(ENV_CONFIG)
            .envs(extra.iter().copied());
        command.output().unwrap()
    };
    let output = spa_config(&[
        ("SPA_CONSOLE_CLIENT_ID", "console-app"),
        (
            "SPA_CONSOLE_OPENAPI_URL",
            "https://contoso.z6.web.core.windows.net/openapi.json",
        ),
    ]);
    assert!(output.status.success(), "{output:?}");
    let config = shared::SpaConfig::from_json(&String::from_utf8_lossy(&output.stdout)).unwrap();
    let console = config.console.as_ref().unwrap();
    assert_eq!(console.client_id, "console-app");
    assert_eq!(
        config.openapi_url().unwrap(),
        "https://contoso.z6.web.core.windows.net/openapi.json"
    );
    assert_eq!(console.redirect_uri, None);

    let without = spa_config(&[]);
    assert!(without.status.success());
    assert!(!String::from_utf8_lossy(&without.stdout).contains("console"));

    let orphan = spa_config(&[("SPA_CONSOLE_REDIRECT_URI", "https://x.example/console")]);
    assert_eq!(orphan.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&orphan.stderr).contains("SPA_CONSOLE_CLIENT_ID"));
    let relative = spa_config(&[
        ("SPA_CONSOLE_CLIENT_ID", "console-app"),
        ("SPA_CONSOLE_REDIRECT_URI", "/console"),
    ]);
    assert_eq!(relative.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&relative.stderr).contains("console.redirectUri"));
}

/// `deploy/static-site --console-client-id … --console-openapi-url …` puts the console in the
/// config.json it writes (`--config-only`: no storage account needed).
#[test]
fn static_site_flags_name_the_developer_console() {
    let dir = TempDir::new("console-config");
    let out = dir.path().join("config.json");
    let output = std::process::Command::new(workspace_root().join("deploy/static-site"))
        .args([
            "--config-only",
            out.to_str().unwrap(),
            "--console-client-id",
            "console-app",
            "--console-openapi-url",
            "https://contoso.z6.web.core.windows.net/openapi.json",
        ])
        .env("SPA_CONFIG_BIN", env!("CARGO_BIN_EXE_spa-config"))
        .envs(ENV_CONFIG)
        .output()
        .unwrap();
    assert!(output.status.success(), "{output:?}");
    let config = shared::SpaConfig::from_json(&std::fs::read_to_string(&out).unwrap()).unwrap();
    assert_eq!(config.console.unwrap().client_id, "console-app");
}
