//! The app registrations the page signs in as: the SPA's own (every page but the console) and the
//! developer console's (`/console`, seed 002's "Developer Console"). Each has its client id, the
//! redirect URI the identity provider sends the browser back to, and sessionStorage keys of its
//! own, so that neither sign-in overwrites the other's pending state or session.

use oauth2::ClientId;
use shared::SpaConfig;

/// The console's route, and the path of its default redirect URI.
pub const CONSOLE_PATH: &str = "/console";

/// Where one client's sign-in and session live in sessionStorage.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Keys {
    pub pending: &'static str,
    pub session: &'static str,
}

/// The SPA's keys (unchanged from before the console existed, so open sessions survive).
pub const SPA_KEYS: Keys = Keys {
    pending: "spa.signin.pending",
    session: "spa.session",
};

pub const CONSOLE_KEYS: Keys = Keys {
    pending: "console.signin.pending",
    session: "console.session",
};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Client {
    pub id: ClientId,
    pub redirect_uri: String,
    pub keys: Keys,
}

impl Client {
    /// The SPA: `clientId`, and `redirectUri` or the site's root (`root_url`, `{origin}/`).
    pub fn spa(config: &SpaConfig, root_url: &str) -> Self {
        Self {
            id: ClientId::new(config.client_id.clone()),
            redirect_uri: config
                .redirect_uri
                .clone()
                .unwrap_or_else(|| root_url.to_owned()),
            keys: SPA_KEYS,
        }
    }

    /// The console: `console.clientId`, and `console.redirectUri` or `{origin}/console`. `None`
    /// when config.json has no console.
    pub fn console(config: &SpaConfig, root_url: &str) -> Option<Self> {
        let console = config.console.as_ref()?;
        let redirect_uri = console.redirect_uri.clone().unwrap_or_else(|| {
            let mut uri = root_url.trim_end_matches('/').to_owned();
            uri.push_str(CONSOLE_PATH);
            uri
        });
        Some(Self {
            id: ClientId::new(console.client_id.clone()),
            redirect_uri,
            keys: CONSOLE_KEYS,
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn the_console_is_a_client_of_its_own() {
        let config = SpaConfig::from_json(include_str!("../config.json")).unwrap();
        let spa = Client::spa(&config, "http://127.0.0.1:8080/");
        let console = Client::console(&config, "http://127.0.0.1:8080/").unwrap();
        assert_eq!(spa.id.as_str(), config.client_id);
        assert_eq!(spa.redirect_uri, "http://127.0.0.1:8080/");
        assert_eq!(
            console.id.as_str(),
            config.console.as_ref().unwrap().client_id
        );
        assert_ne!(console.id, spa.id);
        assert_eq!(console.redirect_uri, "http://127.0.0.1:8080/console");
        for key in [console.keys.pending, console.keys.session] {
            assert!(
                ![spa.keys.pending, spa.keys.session].contains(&key),
                "{key}"
            );
        }
        let without = SpaConfig {
            console: None,
            ..config
        };
        assert_eq!(Client::console(&without, "http://127.0.0.1:8080/"), None);
    }
}
