//! Validation cost per token: first seen (RS256 verification and all checks) and repeated (cache hit).
//!
//! `cargo bench -p token-validation --bench validate`

#![allow(clippy::unwrap_used)]

// Measured with the allocator the gateway and the function run with.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use criterion::{Criterion, criterion_group, criterion_main};
use testkit::{API_CLIENT_ID, API_SCOPE, TestIssuer};
use token_validation::{Validator, ValidatorConfig};

fn validate(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let issuer = runtime.block_on(TestIssuer::start());
    let config = |capacity| ValidatorConfig {
        openid_config_urls: vec![issuer.openid_config_url()],
        audiences: vec![API_CLIENT_ID.into()],
        token_cache_capacity: capacity,
        ..ValidatorConfig::default()
    };
    let token = issuer.mint(&issuer.user_claims("bench-user", API_CLIENT_ID, &[API_SCOPE]));

    // Without a cache every call is a first sighting: header check, RS256 verify, claim checks.
    let uncached = runtime.block_on(Validator::new(config(0)));
    runtime.block_on(uncached.validate(&token)).unwrap();
    c.bench_function("first-seen RS256 token", |b| {
        b.iter(|| runtime.block_on(uncached.validate(&token)).unwrap())
    });

    let cached = runtime.block_on(Validator::new(config(10_000)));
    runtime.block_on(cached.validate(&token)).unwrap();
    c.bench_function("cached token", |b| {
        b.iter(|| runtime.block_on(cached.validate(&token)).unwrap())
    });
}

criterion_group!(benches, validate);
criterion_main!(benches);
