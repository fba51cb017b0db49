//! The development tenant of `contract.md` (the dev IdP's built-in configuration), named once for
//! every test: the issuer's tokens look like the dev IdP's, and the tests that run the real dev
//! IdP sign in with its seed user and apps.

pub const TENANT: &str = "devtenant.onmicrosoft.com";
pub const TENANT_ID: &str = "3f1b7a9e-6c2d-4e8f-9a0b-1c2d3e4f5a6b";
pub const POLICY: &str = "B2C_1_signupsignin";
/// The SPA's client id: the `azp` of user tokens and the `aud` of ID tokens.
pub const SPA_CLIENT_ID: &str = "6c0e4a12-3b5d-4f7e-8a9b-0c1d2e3f4a5b";
/// The developer console's app registration (seed 002's "Developer Console"): a public client of
/// its own, redirect URI `{SPA origin}/console`.
pub const CONSOLE_CLIENT_ID: &str = "5a7c9e1b-3d2f-4b6a-8c0e-2f4a6b8c0d1e";
/// The API app's client id: the `aud` of access tokens.
pub const API_CLIENT_ID: &str = "9d2f1c3b-4a5e-4b6c-8d7e-1f2a3b4c5d6e";
/// The daemon app of seed 004 (client credentials).
pub const DAEMON_CLIENT_ID: &str = "2b4d6f8a-1c3e-4a5b-9c7d-3e5f7a9b1c2d";
/// The seed's delegated scope, as it appears in `scp`.
pub const API_SCOPE: &str = "accessapp";
/// The seed 004 app role, as it appears in `roles`.
pub const APP_ROLE: &str = "access:test-api";
/// `API_SCOPE` as the SPA requests it: the API's app id URI and the scope name.
pub const API_SCOPE_URI: &str = "https://devtenant.onmicrosoft.com/hello-api/accessapp";
/// What the daemon requests with client credentials (the API's app id URI and `/.default`).
pub const APP_SCOPE_URI: &str = "https://devtenant.onmicrosoft.com/hello-api/.default";
/// The daemon app's secret in the built-in configuration (refused beyond loopback).
pub const DAEMON_SECRET: &str = "dev-daemon-secret";
/// The seed user.
pub const ALICE: &str = "alice@example.com";
pub const ALICE_PASSWORD: &str = "Hello-B2C-2026!";
pub const ALICE_NAME: &str = "Alice Example";
/// The dev IdP's loopback address of its own (its default): browsers keep its cookies apart from
/// those of every port of 127.0.0.1, where the SPA and the other servers listen.
pub const IDP_HOST: &str = "127.0.0.2";

#[cfg(test)]
mod tests {
    /// The scripts and the bench harness read the same names from `scripts/lib/dev-tenant.env`.
    #[test]
    fn the_constants_are_those_of_the_shared_env_file() {
        let file = include_str!("../../../scripts/lib/dev-tenant.env");
        let value = |name: &str| {
            file.lines()
                .filter(|line| !line.starts_with('#'))
                .filter_map(|line| line.split_once('='))
                .find(|(key, _)| *key == name)
                .map(|(_, value)| value)
        };
        for (name, constant) in [
            ("TENANT", super::TENANT),
            ("TENANT_ID", super::TENANT_ID),
            ("POLICY", super::POLICY),
            ("SPA_CLIENT_ID", super::SPA_CLIENT_ID),
            ("CONSOLE_CLIENT_ID", super::CONSOLE_CLIENT_ID),
            ("API_CLIENT_ID", super::API_CLIENT_ID),
            ("DAEMON_CLIENT_ID", super::DAEMON_CLIENT_ID),
            ("API_SCOPE_URI", super::API_SCOPE_URI),
            ("IDP_HOST", super::IDP_HOST),
        ] {
            assert_eq!(value(name), Some(constant), "{name}");
        }
    }
}
