//! How the three servers of the local stack are wired together: which environment variable each
//! of dev-idp, hello and the gateway gets (docs/contract.md), written once. [`crate::Stack`]
//! spawns from it, `devstack env` prints it for `scripts/dev` (shell) and the hardening suite's
//! `bench/harness/stack.py` (JSON).

use std::path::PathBuf;

use crate::dev_tenant::{API_CLIENT_ID, API_SCOPE_URI, IDP_HOST, POLICY, TENANT, TENANT_ID};

/// One server's environment, in the order it is set.
pub type Env = Vec<(&'static str, String)>;

/// Which of the dev IdP's metadata documents the function and the gateway trust.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Trust {
    /// The user flow's (B2C's shape): `/{tenant}/{policy}/v2.0/.well-known/openid-configuration`.
    UserFlow,
    /// The tenant's (Entra / External ID's shape, seed 004's app tokens).
    Tenant,
    /// Both, as `scripts/dev` runs them.
    Both,
    /// These documents instead of the dev IdP's (an in-test issuer).
    Urls(Vec<String>),
}

/// What the wiring is made from: where each server listens, what they share, and the settings
/// `scripts/dev` adds for local use (each `None` leaves its variable unset).
#[derive(Debug, Clone)]
pub struct Wiring {
    /// The dev IdP's own loopback address ([`IDP_HOST`] unless a test says otherwise).
    pub idp_host: String,
    pub idp_port: u16,
    pub hello_port: u16,
    pub gateway_port: u16,
    /// `DEVIDP_DATA_DIR`.
    pub idp_data_dir: Option<PathBuf>,
    /// `DEVIDP_CONFIG`: a TOML file instead of the built-in tenant.
    pub idp_config: Option<PathBuf>,
    /// The key the gateway sends and the function accepts.
    pub function_key: String,
    pub trust: Trust,
    /// The SPA's origins, allowed by the gateway's CORS policy.
    pub spa_origins: Vec<String>,
    /// The API web app's client secret: the function's confidential EasyAuth sign-in.
    pub easyauth_secret: Option<String>,
    /// `HELLO_ALLOWED_IPS`.
    pub function_allowed_ips: Option<String>,
    /// `GATEWAY_API_SCOPES`: the scopes the OpenAPI document's `oauth2` scheme names.
    pub api_scopes: Option<String>,
    /// `GATEWAY_VALIDATION`.
    pub validation: Option<String>,
}

/// The environments of the three servers.
#[derive(Debug, Clone)]
pub struct Environments {
    pub dev_idp: Env,
    pub hello: Env,
    pub gateway: Env,
}

impl Wiring {
    /// The stack as `scripts/dev` runs it on these ports: the built-in tenant, both issuers
    /// trusted, the SPA on `spa_port` of 127.0.0.1 and localhost, the function reachable from
    /// loopback only, request validation on.
    pub fn dev(idp_port: u16, hello_port: u16, gateway_port: u16, spa_port: u16) -> Wiring {
        Wiring {
            easyauth_secret: Some("dev-easyauth-secret".into()),
            function_allowed_ips: Some("127.0.0.1/32".into()),
            api_scopes: Some(API_SCOPE_URI.into()),
            validation: Some("prevent".into()),
            spa_origins: vec![
                format!("http://127.0.0.1:{spa_port}"),
                format!("http://localhost:{spa_port}"),
            ],
            ..Wiring::plain(idp_port, hello_port, gateway_port)
        }
    }

    /// Only what connects the servers (ports, function key, trusted issuers: both, audiences, the
    /// SPA origin `http://127.0.0.1:8080`), none of `scripts/dev`'s local settings.
    pub fn plain(idp_port: u16, hello_port: u16, gateway_port: u16) -> Wiring {
        Wiring {
            idp_host: IDP_HOST.into(),
            idp_port,
            hello_port,
            gateway_port,
            idp_data_dir: None,
            idp_config: None,
            function_key: String::new(),
            trust: Trust::Both,
            spa_origins: vec!["http://127.0.0.1:8080".into()],
            easyauth_secret: None,
            function_allowed_ips: None,
            api_scopes: None,
            validation: None,
        }
    }

    /// `http://<idp host>:<port>`.
    pub fn idp_url(&self) -> String {
        format!("http://{}:{}", self.idp_host, self.idp_port)
    }

    /// The user flow's metadata URL.
    pub fn user_flow_metadata(&self) -> String {
        format!(
            "{}/{TENANT}/{POLICY}/v2.0/.well-known/openid-configuration",
            self.idp_url()
        )
    }

    /// The tenant-level metadata URL.
    pub fn tenant_metadata(&self) -> String {
        format!(
            "{}/{TENANT_ID}/v2.0/.well-known/openid-configuration",
            self.idp_url()
        )
    }

    pub fn hello_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.hello_port)
    }

    pub fn gateway_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.gateway_port)
    }

    /// The metadata documents the function and the gateway trust, comma-separated.
    pub fn trusted_metadata(&self) -> String {
        match &self.trust {
            Trust::UserFlow => self.user_flow_metadata(),
            Trust::Tenant => self.tenant_metadata(),
            Trust::Both => format!("{},{}", self.user_flow_metadata(), self.tenant_metadata()),
            Trust::Urls(urls) => urls.join(","),
        }
    }

    pub fn environments(&self) -> Environments {
        Environments {
            dev_idp: self.dev_idp_env(),
            hello: self.hello_env(),
            gateway: self.gateway_env(),
        }
    }

    pub fn dev_idp_env(&self) -> Env {
        let mut env = vec![("DEVIDP_PORT", self.idp_port.to_string())];
        // The dev IdP's default address needs no setting.
        if self.idp_host != IDP_HOST {
            env.push(("DEVIDP_BIND_ADDRESS", self.idp_host.clone()));
        }
        let path = |p: &Option<PathBuf>| p.as_ref().map(|p| p.display().to_string());
        optional(&mut env, "DEVIDP_DATA_DIR", path(&self.idp_data_dir));
        optional(&mut env, "DEVIDP_CONFIG", path(&self.idp_config));
        env
    }

    pub fn hello_env(&self) -> Env {
        let mut env = vec![
            ("FUNCTIONS_CUSTOMHANDLER_PORT", self.hello_port.to_string()),
            ("HELLO_FUNCTION_KEYS", self.function_key.clone()),
            ("EASYAUTH_OPENID_CONFIG_URLS", self.trusted_metadata()),
            ("EASYAUTH_AUDIENCES", API_CLIENT_ID.into()),
        ];
        optional(
            &mut env,
            "MICROSOFT_PROVIDER_AUTHENTICATION_SECRET",
            self.easyauth_secret.clone(),
        );
        optional(
            &mut env,
            "HELLO_ALLOWED_IPS",
            self.function_allowed_ips.clone(),
        );
        env
    }

    pub fn gateway_env(&self) -> Env {
        let mut env = vec![
            ("GATEWAY_PORT", self.gateway_port.to_string()),
            ("GATEWAY_BACKEND_URL", self.hello_url()),
            ("GATEWAY_BACKEND_FUNCTION_KEY", self.function_key.clone()),
            ("GATEWAY_ALLOWED_ORIGINS", self.spa_origins.join(",")),
            ("GATEWAY_OPENID_CONFIG_URLS", self.trusted_metadata()),
            ("GATEWAY_AUDIENCES", API_CLIENT_ID.into()),
        ];
        optional(&mut env, "GATEWAY_API_SCOPES", self.api_scopes.clone());
        optional(&mut env, "GATEWAY_VALIDATION", self.validation.clone());
        env
    }
}

fn optional(env: &mut Env, name: &'static str, value: Option<String>) {
    if let Some(value) = value {
        env.push((name, value));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// scripts/dev's environments before they came from here, variable for variable.
    #[test]
    fn the_dev_wiring_is_what_scripts_dev_set() {
        let mut wiring = Wiring::dev(7010, 7071, 7080, 8080);
        wiring.idp_data_dir = Some("/repo/.devdata/idp".into());
        wiring.function_key = "k".into();
        let env = wiring.environments();
        let both = "http://127.0.0.2:7010/devtenant.onmicrosoft.com/B2C_1_signupsignin/v2.0/.well-known/openid-configuration,\
                    http://127.0.0.2:7010/3f1b7a9e-6c2d-4e8f-9a0b-1c2d3e4f5a6b/v2.0/.well-known/openid-configuration";
        let owned = |pairs: &[(&'static str, &str)]| -> Env {
            pairs.iter().map(|(k, v)| (*k, (*v).to_owned())).collect()
        };
        assert_eq!(
            env.dev_idp,
            owned(&[
                ("DEVIDP_PORT", "7010"),
                ("DEVIDP_DATA_DIR", "/repo/.devdata/idp")
            ])
        );
        assert_eq!(
            env.hello,
            owned(&[
                ("FUNCTIONS_CUSTOMHANDLER_PORT", "7071"),
                ("HELLO_FUNCTION_KEYS", "k"),
                ("EASYAUTH_OPENID_CONFIG_URLS", both),
                ("EASYAUTH_AUDIENCES", "9d2f1c3b-4a5e-4b6c-8d7e-1f2a3b4c5d6e"),
                (
                    "MICROSOFT_PROVIDER_AUTHENTICATION_SECRET",
                    "dev-easyauth-secret"
                ),
                ("HELLO_ALLOWED_IPS", "127.0.0.1/32"),
            ])
        );
        assert_eq!(
            env.gateway,
            owned(&[
                ("GATEWAY_PORT", "7080"),
                ("GATEWAY_BACKEND_URL", "http://127.0.0.1:7071"),
                ("GATEWAY_BACKEND_FUNCTION_KEY", "k"),
                (
                    "GATEWAY_ALLOWED_ORIGINS",
                    "http://127.0.0.1:8080,http://localhost:8080"
                ),
                ("GATEWAY_OPENID_CONFIG_URLS", both),
                ("GATEWAY_AUDIENCES", "9d2f1c3b-4a5e-4b6c-8d7e-1f2a3b4c5d6e"),
                (
                    "GATEWAY_API_SCOPES",
                    "https://devtenant.onmicrosoft.com/hello-api/accessapp"
                ),
                ("GATEWAY_VALIDATION", "prevent"),
            ])
        );
    }
}
