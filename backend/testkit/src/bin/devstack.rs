//! `devstack env`: the environments of the local stack's three servers, from testkit's one
//! [`Wiring`] (the one `Stack::spawn` uses), for the callers that are not Rust.
//!
//! ```text
//! devstack env [--idp-port N] [--hello-port N] [--gateway-port N] [--spa-port N]
//!              [--idp-data-dir DIR] [--spa-origin ORIGIN]... [--openid-config-url URL]...
//!              [--function-key KEY] [--plain] [--format sh|json]
//! ```
//!
//! Defaults are docs/contract.md's ports and `scripts/dev`'s settings ([`Wiring::dev`]);
//! `--plain` leaves out the local settings ([`Wiring::plain`]), `--openid-config-url` trusts
//! those documents instead of the dev IdP's, and without `--function-key` a fresh one is made
//! (32 random bytes, URL-safe base64, as Azure's).
//!
//! `--format sh` (the default; `scripts/dev` evals it) prints bash arrays `DEVIDP_ENV`,
//! `HELLO_ENV`, `GATEWAY_ENV` of `NAME=value` words for `env`, and `IDP_URL`, `OPENID_CONFIG`,
//! `TENANT_CONFIG`, `HELLO_URL`, `GATEWAY_URL`. `--format json` (`bench/harness/stack.py`) prints
//! `{"dev-idp": {NAME: value}, "hello": {…}, "gateway": {…}, "urls": {…}}`.
//! A bad argument is one line on stderr and exit status 2.

use std::path::PathBuf;
use std::process::ExitCode;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Map, Value, json};
use testkit::wiring::Env;
use testkit::{Trust, Wiring};

fn main() -> ExitCode {
    match run(std::env::args().skip(1).collect()) {
        Ok(text) => {
            print!("{text}");
            ExitCode::SUCCESS
        }
        Err(why) => {
            eprintln!(
                "devstack: {why} (usage: devstack env [--idp-port N] [--hello-port N] [--gateway-port N] [--spa-port N] [--idp-data-dir DIR] [--spa-origin ORIGIN]... [--openid-config-url URL]... [--function-key KEY] [--plain] [--format sh|json])"
            );
            ExitCode::from(2)
        }
    }
}

enum Format {
    Sh,
    Json,
}

fn run(args: Vec<String>) -> Result<String, String> {
    let mut args = args.into_iter();
    match args.next().as_deref() {
        Some("env") => {}
        Some(other) => return Err(format!("unknown command `{other}`")),
        None => return Err("no command".into()),
    }
    let (mut idp, mut hello, mut gateway, mut spa) = (7010, 7071, 7080, 8080);
    let (mut data_dir, mut key, mut plain, mut format) = (None, None, false, Format::Sh);
    let (mut origins, mut metadata) = (Vec::new(), Vec::new());
    while let Some(flag) = args.next() {
        if flag == "--plain" {
            plain = true;
            continue;
        }
        let value = args.next().ok_or_else(|| format!("{flag} needs a value"))?;
        let port = || {
            value
                .parse::<u16>()
                .map_err(|_| format!("{flag}: `{value}` is not a port number"))
        };
        match flag.as_str() {
            "--idp-port" => idp = port()?,
            "--hello-port" => hello = port()?,
            "--gateway-port" => gateway = port()?,
            "--spa-port" => spa = port()?,
            "--idp-data-dir" => data_dir = Some(PathBuf::from(value)),
            "--spa-origin" => origins.push(value),
            "--openid-config-url" => metadata.push(value),
            "--function-key" => key = Some(value),
            "--format" => {
                format = match value.as_str() {
                    "sh" => Format::Sh,
                    "json" => Format::Json,
                    _ => return Err(format!("--format: `{value}` is neither sh nor json")),
                }
            }
            _ => return Err(format!("unknown option `{flag}`")),
        }
    }
    let mut wiring = if plain {
        Wiring::plain(idp, hello, gateway)
    } else {
        Wiring::dev(idp, hello, gateway, spa)
    };
    wiring.idp_data_dir = data_dir;
    wiring.function_key = match key {
        Some(key) => key,
        None => new_function_key()?,
    };
    if !origins.is_empty() {
        wiring.spa_origins = origins;
    }
    if !metadata.is_empty() {
        wiring.trust = Trust::Urls(metadata);
    }
    Ok(match format {
        Format::Sh => sh(&wiring),
        Format::Json => format!("{}\n", json(&wiring)),
    })
}

/// Like Azure's function keys: 32 random bytes, URL-safe base64.
fn new_function_key() -> Result<String, String> {
    let mut bytes = [0u8; 32];
    aws_lc_rs::rand::fill(&mut bytes).map_err(|_| "no random bytes for the function key")?;
    Ok(URL_SAFE_NO_PAD.encode(bytes))
}

fn urls(wiring: &Wiring) -> [(&'static str, String); 5] {
    [
        ("IDP_URL", wiring.idp_url()),
        ("OPENID_CONFIG", wiring.user_flow_metadata()),
        ("TENANT_CONFIG", wiring.tenant_metadata()),
        ("HELLO_URL", wiring.hello_url()),
        ("GATEWAY_URL", wiring.gateway_url()),
    ]
}

fn sh(wiring: &Wiring) -> String {
    let environments = wiring.environments();
    let array = |name: &str, env: &Env| {
        let words: Vec<String> = env
            .iter()
            .map(|(k, v)| quote(&format!("{k}={v}")))
            .collect();
        format!("{name}=({})\n", words.join(" "))
    };
    let mut text = array("DEVIDP_ENV", &environments.dev_idp)
        + &array("HELLO_ENV", &environments.hello)
        + &array("GATEWAY_ENV", &environments.gateway);
    for (name, url) in urls(wiring) {
        text.push_str(&format!("{name}={}\n", quote(&url)));
    }
    text
}

/// One shell word, single-quoted: nothing inside is expanded.
fn quote(word: &str) -> String {
    format!("'{}'", word.replace('\'', r"'\''"))
}

fn json(wiring: &Wiring) -> Value {
    let environments = wiring.environments();
    let object = |env: &Env| -> Value {
        Value::Object(
            env.iter()
                .map(|(k, v)| ((*k).to_owned(), Value::String(v.clone())))
                .collect::<Map<_, _>>(),
        )
    };
    let urls: Map<String, Value> = urls(wiring)
        .into_iter()
        .map(|(k, v)| (k.to_owned(), Value::String(v)))
        .collect();
    json!({
        "dev-idp": object(&environments.dev_idp),
        "hello": object(&environments.hello),
        "gateway": object(&environments.gateway),
        "urls": urls,
    })
}
