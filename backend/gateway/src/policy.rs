//! `gateway render-apim-policy`: the API Management policy document that does what this gateway
//! does with the current settings, in the seed's shape, so one configuration serves both.
//!
//! The function key is never printed: the policy refers to the APIM named value `{{function-key}}`
//! (create it as a secret named value holding `GATEWAY_BACKEND_FUNCTION_KEY`).

use crate::concurrency::POLICY_KEY;
use crate::config::{PolicyConfig, RateLimit};
use crate::cors::{ALLOWED_METHODS, PREFLIGHT_MAX_AGE_SECONDS};
use crate::front_door::FrontDoorId;
use crate::ip_filter::IpFilter;
use crate::rate_limit::{
    IP_LIMIT_HEADER, IP_REMAINING_HEADER, SUBJECT_LIMIT_HEADER, SUBJECT_REMAINING_HEADER,
};
use crate::subscription::{LIMIT_HEADER, Product, REMAINING_HEADER};
use crate::tls::ClientCertRules;
use crate::validation::Action;
use shared::api::messages;
use std::fmt::Write;
use token_validation::RequiredClaim;

/// The APIM named value the rendered policy takes the function key from.
pub const FUNCTION_KEY_NAMED_VALUE: &str = "function-key";

/// The seed's counter keys (APIM policy expressions).
pub const IP_COUNTER_KEY: &str = "@(context.Request.IpAddress)";
pub const SUBJECT_COUNTER_KEY: &str =
    r#"@(context.Request.Headers.GetValueOrDefault("Authorization","").AsJwt()?.Subject)"#;

/// XML text and attribute escaping.
fn xml(text: &str) -> String {
    http_serve::markup::escape(text)
}

fn rate_limit(out: &mut String, limit: RateLimit, key: &str, headers: (&str, &str)) {
    // Single quotes around the expression keep the seed's text (with its double quotes) readable.
    let _ = writeln!(
        out,
        "        <rate-limit-by-key calls=\"{}\" renewal-period=\"{}\" counter-key='{}' remaining-calls-header-name=\"{}\" total-calls-header-name=\"{}\" />",
        limit.calls,
        limit.period.as_secs(),
        key.replace('&', "&amp;")
            .replace('\'', "&apos;")
            .replace('<', "&lt;"),
        headers.0,
        headers.1,
    );
}

/// `check-header` pinning the Front Door profile (Microsoft's recipe for APIM behind Front Door).
fn front_door(out: &mut String, id: &FrontDoorId) {
    let _ = writeln!(
        out,
        "        <check-header name=\"X-Azure-FDID\" failed-check-httpcode=\"403\" failed-check-error-message=\"Forbidden\" ignore-case=\"false\">\n            <value>{}</value>\n        </check-header>",
        xml(id.as_str())
    );
}

/// APIM's ip-filter takes single addresses and from–to ranges, not CIDRs: each CIDR becomes
/// its first and last address. Addresses come first, as the policy's schema orders them.
fn ip_filter(out: &mut String, filter: &IpFilter) {
    let _ = writeln!(
        out,
        "        <ip-filter action=\"{}\">",
        filter.action.as_str()
    );
    let single = |net: &&ipnet::IpNet| net.prefix_len() == net.max_prefix_len();
    for net in filter.networks.iter().filter(single) {
        let _ = writeln!(out, "            <address>{}</address>", net.addr());
    }
    for net in filter.networks.iter().filter(|n| !single(n)) {
        let _ = writeln!(
            out,
            "            <address-range from=\"{}\" to=\"{}\" />",
            net.network(),
            net.broadcast()
        );
    }
    out.push_str("        </ip-filter>\n");
}

/// Revocation is not checked by this gateway, so the policy does not claim it either.
fn client_certificate(out: &mut String, rules: &ClientCertRules) {
    out.push_str("        <validate-client-certificate validate-revocation=\"false\" validate-trust=\"true\" validate-not-before=\"true\" validate-not-after=\"true\" ignore-error=\"false\"");
    if rules.thumbprints.is_empty() && rules.subjects.is_empty() {
        out.push_str(" />\n");
        return;
    }
    out.push_str(">\n            <identities>\n");
    let identities = (rules.thumbprints.iter().map(|t| ("thumbprint", t)))
        .chain(rules.subjects.iter().map(|s| ("subject", s)));
    for (attribute, value) in identities {
        let _ = writeln!(
            out,
            "                <identity {attribute}=\"{}\" />",
            xml(value)
        );
    }
    out.push_str("            </identities>\n        </validate-client-certificate>\n");
}

fn required_claims(out: &mut String, rules: &[RequiredClaim]) {
    if rules.is_empty() {
        return;
    }
    out.push_str("            <required-claims>\n");
    for rule in rules {
        let _ = write!(
            out,
            "                <claim name=\"{}\" match=\"{}\"",
            xml(&rule.name),
            if rule.match_all { "all" } else { "any" }
        );
        if let Some(separator) = rule.separator {
            let _ = write!(out, " separator=\"{}\"", xml(&separator.to_string()));
        }
        if rule.values.is_empty() {
            out.push_str(" />\n");
            continue;
        }
        out.push_str(">\n");
        for value in &rule.values {
            let _ = writeln!(out, "                    <value>{}</value>", xml(value));
        }
        out.push_str("                </claim>\n");
    }
    out.push_str("            </required-claims>\n");
}

/// validate-parameters and validate-content against the imported OpenAPI document (`gateway
/// openapi`): unknown query parameters and any body (the operation is a GET) refused like here; headers only as specified,
/// since browsers send many the document cannot list.
fn validate_request(out: &mut String, action: Action) {
    let a = action.as_str();
    let _ = writeln!(
        out,
        "        <validate-parameters specified-parameter-action=\"{a}\" unspecified-parameter-action=\"{a}\" errors-variable-name=\"requestParameters\">\n            <headers specified-parameter-action=\"{a}\" unspecified-parameter-action=\"ignore\" />\n        </validate-parameters>\n        <validate-content unspecified-content-type-action=\"{a}\" max-size=\"0\" size-exceeded-action=\"{a}\" errors-variable-name=\"requestBody\" />"
    );
}

/// validate-status-code, validate-headers and validate-content on the function's answer.
fn validate_response(out: &mut String, action: Action) {
    let a = action.as_str();
    let _ = writeln!(
        out,
        "        <validate-status-code unspecified-status-code-action=\"{a}\" errors-variable-name=\"responseStatus\" />\n        <validate-headers specified-header-action=\"{a}\" unspecified-header-action=\"ignore\" errors-variable-name=\"responseHeaders\" />\n        <validate-content unspecified-content-type-action=\"{a}\" max-size=\"1048576\" size-exceeded-action=\"{a}\" errors-variable-name=\"responseBody\">\n            <content type=\"application/json\" validate-as=\"json\" action=\"{a}\" />\n        </validate-content>"
    );
}

/// `<backend>`: the forward, inside `limit-concurrency` when `GATEWAY_MAX_CONCURRENCY` is set.
fn backend_section(out: &mut String, max_concurrency: Option<u32>) {
    out.push_str("    <backend>\n");
    match max_concurrency {
        Some(max) => {
            let _ = writeln!(
                out,
                "        <limit-concurrency key=\"{POLICY_KEY}\" max-count=\"{max}\">\n            <forward-request />\n        </limit-concurrency>"
            );
        }
        None => out.push_str("        <base />\n"),
    }
    out.push_str("    </backend>\n");
}

/// `validate-jwt` as the seed has it, plus the settings' audiences, issuers and required claims.
fn validate_jwt(out: &mut String, config: &PolicyConfig) {
    let _ = writeln!(
        out,
        "        <validate-jwt header-name=\"Authorization\" failed-validation-httpcode=\"401\" failed-validation-error-message=\"{}\" require-expiration-time=\"true\" require-signed-tokens=\"true\" clock-skew=\"{}\">",
        xml(messages::UNAUTHORIZED),
        config.clock_skew.as_secs(),
    );
    for url in &config.openid_config_urls {
        let _ = writeln!(
            out,
            "            <openid-config url=\"{}\" />",
            xml(url.as_str())
        );
    }
    out.push_str("            <audiences>\n");
    for audience in &config.audiences {
        let _ = writeln!(
            out,
            "                <audience>{}</audience>",
            xml(audience)
        );
    }
    out.push_str("            </audiences>\n");
    if !config.issuers.is_empty() {
        out.push_str("            <issuers>\n");
        for issuer in &config.issuers {
            let _ = writeln!(out, "                <issuer>{}</issuer>", xml(issuer));
        }
        out.push_str("            </issuers>\n");
    }
    required_claims(out, &config.required_claims);
    out.push_str("        </validate-jwt>\n");
}

pub fn render(config: &PolicyConfig) -> String {
    let mut out = String::new();
    out.push_str("<policies>\n    <inbound>\n");

    out.push_str("        <cors allow-credentials=\"true\">\n            <allowed-origins>\n");
    for origin in &config.allowed_origins {
        let _ = writeln!(out, "                <origin>{}</origin>", xml(origin));
    }
    let _ = writeln!(
        out,
        "            </allowed-origins>\n            <allowed-methods preflight-result-max-age=\"{PREFLIGHT_MAX_AGE_SECONDS}\">"
    );
    for method in ALLOWED_METHODS {
        let _ = writeln!(out, "                <method>{method}</method>");
    }
    out.push_str(concat!(
        "            </allowed-methods>\n",
        "            <allowed-headers>\n                <header>*</header>\n            </allowed-headers>\n",
        "            <expose-headers>\n                <header>*</header>\n            </expose-headers>\n",
        "        </cors>\n",
    ));
    if let Some(id) = &config.front_door_id {
        front_door(&mut out, id);
    }
    if let Some(filter) = &config.ip_filter {
        ip_filter(&mut out, filter);
    }
    if let Some(rules) = &config.client_certificate {
        client_certificate(&mut out, rules);
    }
    if let Some(action) = config.validation {
        validate_request(&mut out, action);
    }

    validate_jwt(&mut out, config);

    rate_limit(
        &mut out,
        config.per_ip,
        IP_COUNTER_KEY,
        (IP_REMAINING_HEADER, IP_LIMIT_HEADER),
    );
    rate_limit(
        &mut out,
        config.per_subject,
        SUBJECT_COUNTER_KEY,
        (SUBJECT_REMAINING_HEADER, SUBJECT_LIMIT_HEADER),
    );

    let backend = config.backend_url.as_str().trim_end_matches('/');
    let _ = writeln!(
        out,
        "        <set-backend-service base-url=\"{}\" />",
        xml(&format!("{backend}/api"))
    );
    let _ = writeln!(
        out,
        "        <set-header name=\"x-functions-key\" exists-action=\"override\">\n            <value>{{{{{FUNCTION_KEY_NAMED_VALUE}}}}}</value>\n        </set-header>"
    );
    out.push_str(concat!(
        "        <set-query-parameter name=\"code\" exists-action=\"delete\" />\n",
        "        <base />\n",
        "    </inbound>\n",
    ));
    backend_section(&mut out, config.max_concurrency);
    out.push_str("    <outbound>\n        <base />\n");
    if let Some(action) = config.validation {
        validate_response(&mut out, action);
    }
    out.push_str(concat!(
        "    </outbound>\n",
        "    <on-error>\n        <base />\n    </on-error>\n",
        "</policies>\n",
    ));
    out
}

/// The product-scoped policy of one `GATEWAY_PRODUCTS` product: APIM's `rate-limit` and `quota`
/// per subscription, after the API's own policy (`<base />`). Whether the product requires a
/// subscription is a product setting in APIM, not a policy; the comment says which to choose.
pub fn render_product(product: &Product) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "<!-- product setting: subscription required = {} -->",
        product.subscription_required
    );
    out.push_str("<policies>\n    <inbound>\n        <base />\n");
    if let Some(limit) = product.rate_limit {
        let _ = writeln!(
            out,
            "        <rate-limit calls=\"{}\" renewal-period=\"{}\" remaining-calls-header-name=\"{REMAINING_HEADER}\" total-calls-header-name=\"{LIMIT_HEADER}\" />",
            limit.calls,
            limit.period.as_secs(),
        );
    }
    if let Some(quota) = product.quota {
        let _ = writeln!(
            out,
            "        <quota calls=\"{}\" renewal-period=\"{}\" />",
            quota.calls,
            quota.period.as_secs(),
        );
    }
    out.push_str(concat!(
        "    </inbound>\n",
        "    <backend>\n        <base />\n    </backend>\n",
        "    <outbound>\n        <base />\n    </outbound>\n",
        "    <on-error>\n        <base />\n    </on-error>\n",
        "</policies>\n",
    ));
    out
}
