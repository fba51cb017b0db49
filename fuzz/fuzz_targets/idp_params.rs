//! The dev IdP's form and query parser (`authorize::parse_params`, used by the authorize and token endpoints)
//! and the PKCE and redirect helpers fed from it: arbitrary bytes must give a value or an error, never a panic.
#![no_main]

use dev_idp::authorize::{ResponseMode, parse_params, response_url};
use dev_idp::pkce;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(params) = parse_params(data) else {
        return;
    };
    for (name, value) in &params {
        if pkce::valid_verifier(value) {
            let challenge = pkce::s256(value);
            assert!(
                pkce::valid_challenge(&challenge),
                "s256 of a valid verifier must be a valid challenge"
            );
            assert!(
                pkce::verify(value, &challenge),
                "a verifier must verify against its own challenge"
            );
        }
        let _ = pkce::valid_challenge(value);
        let pairs = [(name.as_str(), value.as_str()), ("state", "s")];
        let _ = response_url(value, ResponseMode::Query, &pairs);
        let fragment = response_url(value, ResponseMode::Fragment, &pairs);
        assert!(
            fragment.starts_with(value.as_str()),
            "the fragment form must keep the redirect URI as it is"
        );
    }
});
