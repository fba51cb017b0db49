//! API Management's validation policies, from the API's own OpenAPI document
//! ([`crate::openapi::api`]): `validate-parameters` and `validate-content` on the way in,
//! `validate-status-code`, `validate-headers` and `validate-content` on the way back.
//!
//! With `GATEWAY_VALIDATION=prevent` a request outside the definition gets 400 with APIM's public
//! message naming what is wrong, before any token is checked (the checks are cheap and need no
//! secret); a backend answer outside it gets 502 with APIM's "internal error" text — never the
//! backend's body — and an error in the log with the reason. `detect` logs the same and lets the
//! call through. Unset: no validation (APIM has none unless the policies are added).
//!
//! What is checked on the way in: every query parameter must be in the definition (or be the
//! subscription key's, when products are on), at most once unless it is an array, and its value
//! must conform to its schema; documented headers likewise, and no header value may exceed
//! [`MAX_HEADER_BYTES`]; an operation without a request body takes none (a body on a GET → 400).
//! On the way back: the status must be listed, the content type listed for it, and a JSON body
//! must conform to the schema (the shared DTOs'); documented response headers must conform.
//! Answers the gateway made itself (its own 401, 429, 502 …) carry an [`Outcome`] and are not
//! the backend's: they pass unchecked.

use crate::config::{ConfigError, bad};
use crate::metrics::Outcome;
use axum::Json;
use axum::body::{Body, Bytes};
use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use http_body_util::{BodyExt, Limited};
use serde_json::{Map, Value};
use shared::ApiError;
use std::collections::BTreeMap;
use std::sync::Arc;

/// `GATEWAY_VALIDATION`: `prevent` or `detect`.
pub const VAR: &str = "GATEWAY_VALIDATION";
/// The longest request header value accepted (a 16 KiB access token is the largest legitimate
/// one: token-validation's own bound).
pub const MAX_HEADER_BYTES: usize = 16 * 1024;
/// APIM's public answer to an invalid backend response.
pub const RESPONSE_REFUSED: &str =
    "The request could not be processed due to an internal error. Contact the API owner.";
/// Backend answers are buffered whole already (forward.rs bounds them); this bounds them again.
const MAX_RESPONSE_BYTES: usize = 1024 * 1024;
/// Names the client chose are echoed (as APIM does) but cut to this many characters.
const MAX_ECHOED_CHARS: usize = 64;

/// APIM's `action` for specified and unspecified items.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Refuse: 400 for requests, 502 for responses.
    Prevent,
    /// Log and let through.
    Detect,
}

impl Action {
    pub fn parse(text: &str) -> Result<Self, ConfigError> {
        match text.to_ascii_lowercase().as_str() {
            "prevent" => Ok(Self::Prevent),
            "detect" => Ok(Self::Detect),
            _ => Err(bad(
                VAR,
                format!("`{text}` is not `prevent` or `detect` (unset it for no validation)"),
            )),
        }
    }

    /// The value APIM's policies spell it with.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Prevent => "prevent",
            Self::Detect => "detect",
        }
    }
}

/// A parameter or header the definition specifies.
struct Parameter {
    /// Header names lowercased.
    name: String,
    required: bool,
    /// An array parameter may repeat; its schema is then the items'.
    repeats: bool,
    schema: jsonschema::Validator,
}

impl Parameter {
    fn accepts(&self, value: &str) -> bool {
        self.schema.is_valid(&Value::String(value.to_owned()))
            || value
                .parse::<i64>()
                .is_ok_and(|n| self.schema.is_valid(&Value::from(n)))
    }
}

struct ResponseRule {
    /// Media type (lowercase) → its body's schema and the definition's name for it.
    content: Vec<(String, Option<(String, jsonschema::Validator)>)>,
    headers: Vec<Parameter>,
}

struct Operation {
    method: Method,
    path: String,
    query: Vec<Parameter>,
    headers: Vec<Parameter>,
    takes_body: bool,
    responses: BTreeMap<u16, ResponseRule>,
}

/// The definition could not be turned into rules (a defect of the document, found at start).
#[derive(Debug, thiserror::Error)]
#[error("API definition: {0}")]
pub struct DefinitionError(String);

impl From<String> for DefinitionError {
    fn from(reason: String) -> Self {
        Self(reason)
    }
}

/// Compiles `schema` with the document's components beside it, so `#/components/…` resolves.
fn compile(schema: &Value, components: &Value) -> Result<jsonschema::Validator, DefinitionError> {
    // A boolean schema (`true`: anything) is wrapped so the components can sit beside it.
    let mut root = match schema {
        Value::Object(map) => map.clone(),
        other => Map::from_iter([("allOf".into(), Value::Array(vec![other.clone()]))]),
    };
    root.insert("components".into(), components.clone());
    jsonschema::draft202012::new(&Value::Object(root))
        .map_err(|e| DefinitionError(format!("schema {schema}: {e}")))
}

fn parameter(spec: &Value, components: &Value) -> Result<Parameter, DefinitionError> {
    let name = spec["name"]
        .as_str()
        .ok_or_else(|| DefinitionError(format!("parameter without a name: {spec}")))?;
    let schema = &spec["schema"];
    let repeats = schema["type"] == "array";
    let schema = if repeats { &schema["items"] } else { schema };
    Ok(Parameter {
        name: if spec["in"] == "header" {
            name.to_ascii_lowercase()
        } else {
            name.to_owned()
        },
        required: spec["required"] == true,
        repeats,
        schema: compile(schema, components)?,
    })
}

fn response_rule(spec: &Value, components: &Value) -> Result<ResponseRule, DefinitionError> {
    let mut content = Vec::new();
    for (media, body) in spec["content"].as_object().into_iter().flatten() {
        let schema = match &body["schema"] {
            Value::Null => None,
            schema => {
                let name = schema["$ref"]
                    .as_str()
                    .and_then(|r| r.rsplit('/').next())
                    .unwrap_or("inline")
                    .to_owned();
                Some((name, compile(schema, components)?))
            }
        };
        content.push((media.to_ascii_lowercase(), schema));
    }
    let mut headers = Vec::new();
    for (name, header) in spec["headers"].as_object().into_iter().flatten() {
        let mut spec = header.clone();
        spec["name"] = Value::from(name.as_str());
        spec["in"] = Value::from("header");
        headers.push(parameter(&spec, components)?);
    }
    Ok(ResponseRule { content, headers })
}

/// An apiKey security scheme's parameter (the subscription key, when products are on).
struct KeyParameter {
    name: String,
    in_query: bool,
}

fn operation(
    path: &str,
    method: &str,
    spec: &Value,
    components: &Value,
    keys: &[KeyParameter],
) -> Result<Operation, DefinitionError> {
    let method = Method::from_bytes(method.to_ascii_uppercase().as_bytes())
        .map_err(|_| DefinitionError(format!("{path}: `{method}` is not a method")))?;
    let (mut query, mut headers) = (Vec::new(), Vec::new());
    for spec in spec["parameters"].as_array().into_iter().flatten() {
        match spec["in"].as_str() {
            Some("query") => query.push(parameter(spec, components)?),
            Some("header") => headers.push(parameter(spec, components)?),
            _ => {}
        }
    }
    // The subscription key: any value (subscription.rs checks it).
    for key in keys {
        let parameter = Parameter {
            name: key.name.clone(),
            required: false,
            repeats: false,
            schema: compile(&Value::Bool(true), components)?,
        };
        if key.in_query {
            query.push(parameter);
        } else {
            headers.push(parameter);
        }
    }
    let mut responses = BTreeMap::new();
    for (status, response) in spec["responses"].as_object().into_iter().flatten() {
        let status: u16 = status
            .parse()
            .map_err(|_| DefinitionError(format!("{path}: status `{status}` is not a number")))?;
        responses.insert(status, response_rule(response, components)?);
    }
    Ok(Operation {
        method,
        path: path.to_owned(),
        query,
        headers,
        takes_body: !spec["requestBody"].is_null(),
        responses,
    })
}

/// The rules of every operation in the document.
pub struct Definition {
    operations: Vec<Operation>,
    action: Action,
}

impl Definition {
    pub fn new(document: &Value, action: Action) -> Result<Self, DefinitionError> {
        let components = &document["components"];
        let keys: Vec<KeyParameter> = components["securitySchemes"]
            .as_object()
            .into_iter()
            .flatten()
            .filter(|(_, scheme)| scheme["type"] == "apiKey")
            .filter_map(|(_, scheme)| {
                let in_query = scheme["in"] == "query";
                let name = scheme["name"].as_str()?;
                Some(KeyParameter {
                    name: if in_query {
                        name.to_owned()
                    } else {
                        name.to_ascii_lowercase()
                    },
                    in_query,
                })
            })
            .collect();
        // Paths are relative to the first server's (a relative URL: this gateway's own path).
        let base = document["servers"][0]["url"]
            .as_str()
            .filter(|url| url.starts_with('/'))
            .unwrap_or("")
            .trim_end_matches('/');
        let mut operations = Vec::new();
        for (path, item) in document["paths"].as_object().into_iter().flatten() {
            for (method, spec) in item.as_object().into_iter().flatten() {
                let path = format!("{base}{path}");
                operations.push(operation(&path, method, spec, components, &keys)?);
            }
        }
        Ok(Self { operations, action })
    }

    /// The inbound checks on a request's parts (the fuzz target's entry): `None` when the
    /// definition has no such operation, else APIM's message for the first violation.
    pub fn check(
        &self,
        method: &Method,
        path: &str,
        query: Option<&str>,
        headers: &HeaderMap,
    ) -> Option<Result<(), String>> {
        let op = self.find(method, path)?;
        Some(check_request(op, query, headers))
    }

    fn find(&self, method: &Method, path: &str) -> Option<&Operation> {
        self.operations
            .iter()
            .find(|op| op.method == method && op.path == path)
    }
}

/// `text`, cut to [`MAX_ECHOED_CHARS`] characters.
fn echoed(text: &str) -> String {
    match text.char_indices().nth(MAX_ECHOED_CHARS) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text.to_owned(),
    }
}

/// Why a request or a response is outside the definition.
#[derive(Debug)]
pub enum Violation {
    /// APIM's public message, naming the parameter, header or content type.
    Request(String),
    /// The reason (logged; the client gets [`RESPONSE_REFUSED`]).
    Response(String),
}

impl IntoResponse for Violation {
    fn into_response(self) -> Response {
        let (status, message, outcome) = match self {
            Self::Request(message) => (StatusCode::BAD_REQUEST, message, "request_invalid"),
            Self::Response(_) => (
                StatusCode::BAD_GATEWAY,
                RESPONSE_REFUSED.to_owned(),
                "response_invalid",
            ),
        };
        let mut response = (status, Json(ApiError::new(status.as_u16(), message))).into_response();
        response.extensions_mut().insert(Outcome(outcome));
        response
    }
}

fn check_query(op: &Operation, query: Option<&str>) -> Result<(), String> {
    let mut seen = vec![false; op.query.len()];
    for (name, value) in url::form_urlencoded::parse(query.unwrap_or("").as_bytes()) {
        let Some(i) = op.query.iter().position(|p| p.name == name) else {
            return Err(format!(
                "Unspecified query parameter {} is not allowed.",
                echoed(&name)
            ));
        };
        let parameter = &op.query[i];
        if seen[i] && !parameter.repeats {
            return Err(format!(
                "Request cannot contain multiple values for the query parameter {name}."
            ));
        }
        seen[i] = true;
        if !parameter.accepts(&value) {
            return Err(format!(
                "The value of the query parameter {name} does not conform to the definition."
            ));
        }
    }
    match op
        .query
        .iter()
        .zip(seen)
        .find(|(p, seen)| p.required && !seen)
    {
        Some((p, _)) => Err(format!(
            "The value of the query parameter {} does not conform to the definition: it is required.",
            p.name
        )),
        None => Ok(()),
    }
}

fn check_headers(op: &Operation, headers: &HeaderMap) -> Result<(), String> {
    if let Some((name, value)) = headers.iter().find(|(_, v)| v.len() > MAX_HEADER_BYTES) {
        return Err(format!(
            "The value of the header {} is {} bytes long, more than the {MAX_HEADER_BYTES} allowed.",
            echoed(name.as_str()),
            value.len()
        ));
    }
    documented_headers(&op.headers, headers, Side::Request)
}

/// Request and response messages are worded differently by APIM.
#[derive(Clone, Copy)]
enum Side {
    Request,
    Response,
}

/// The headers the definition specifies: present when required, once unless an array, conforming.
fn documented_headers(
    parameters: &[Parameter],
    headers: &HeaderMap,
    side: Side,
) -> Result<(), String> {
    for parameter in parameters {
        let name = &parameter.name;
        let mut values = headers.get_all(name.as_str()).iter();
        let Some(value) = values.next() else {
            if parameter.required {
                return Err(format!("Header {name} is required."));
            }
            continue;
        };
        if values.next().is_some() && !parameter.repeats {
            return Err(match side {
                Side::Request => {
                    format!("Request cannot contain multiple values for the header {name}.")
                }
                Side::Response => {
                    format!("Response cannot contain multiple values for the header {name}.")
                }
            });
        }
        if !value.to_str().is_ok_and(|v| parameter.accepts(v)) {
            return Err(match side {
                Side::Request => {
                    format!("The value of the header {name} does not conform to the definition.")
                }
                Side::Response => {
                    format!("Value of the header {name} does not conform to the definition.")
                }
            });
        }
    }
    Ok(())
}

/// validate-content for an operation without a request body: none may come. The body is never
/// read (a chunked one is refused for being there at all).
fn check_no_body(headers: &HeaderMap) -> Result<(), String> {
    let length = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    let chunked = headers.contains_key(header::TRANSFER_ENCODING);
    if !chunked && length.unwrap_or(0) == 0 {
        return Ok(());
    }
    if let Some(media) = headers.get(header::CONTENT_TYPE) {
        let media = String::from_utf8_lossy(media.as_bytes()).into_owned();
        return Err(format!(
            "Unspecified content type {} is not allowed.",
            echoed(&media)
        ));
    }
    Err(match length {
        Some(length) if !chunked => {
            format!("Request's body is {length} bytes long and it exceeds the limit of 0 bytes.")
        }
        _ => "Request's body is chunked and it exceeds the limit of 0 bytes.".to_owned(),
    })
}

/// The operation the request is routed to, when the definition has it.
fn operation_of<'a>(definition: &'a Definition, request: &Request) -> Option<&'a Operation> {
    let path = request
        .extensions()
        .get::<MatchedPath>()
        .map_or(request.uri().path(), MatchedPath::as_str);
    definition.find(request.method(), path)
}

fn check_request(op: &Operation, query: Option<&str>, headers: &HeaderMap) -> Result<(), String> {
    check_query(op, query)?;
    check_headers(op, headers)?;
    if op.takes_body {
        Ok(())
    } else {
        check_no_body(headers)
    }
}

/// Inbound: validate-parameters and validate-content.
pub async fn request(
    State(definition): State<Arc<Definition>>,
    request: Request,
    next: Next,
) -> Response {
    let Some(op) = operation_of(&definition, &request) else {
        // Not an operation (a method the route does not bind): the router answers it.
        return next.run(request).await;
    };
    let Err(message) = check_request(op, request.uri().query(), request.headers()) else {
        return next.run(request).await;
    };
    match definition.action {
        Action::Prevent => {
            tracing::info!(operation = %op.path, %message, "request refused by validation");
            Violation::Request(message).into_response()
        }
        Action::Detect => {
            tracing::warn!(operation = %op.path, %message, "request outside the API definition (detect)");
            next.run(request).await
        }
    }
}

fn check_content(rule: &ResponseRule, headers: &HeaderMap, body: &Bytes) -> Result<(), String> {
    let media = headers
        .get(header::CONTENT_TYPE)
        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
        .unwrap_or_default();
    let base = media
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    if rule.content.is_empty() && body.is_empty() {
        return Ok(());
    }
    let Some((_, schema)) = rule.content.iter().find(|(m, _)| *m == base) else {
        return Err(format!("Unspecified content type {media} is not allowed."));
    };
    let Some((name, schema)) = schema else {
        return Ok(());
    };
    let instance = if base == "application/json" || base.ends_with("+json") {
        serde_json::from_slice(body).map_err(|e| format!("the body is not JSON ({e})"))?
    } else {
        Value::String(
            std::str::from_utf8(body)
                .map_err(|_| "the body is not UTF-8 text".to_owned())?
                .to_owned(),
        )
    };
    match schema.validate(&instance) {
        Ok(()) => Ok(()),
        Err(error) => Err(format!(
            "Body of the response does not conform to the definition {name}, which is associated with the content type {base}. {error}"
        )),
    }
}

/// The backend's answer against the operation's responses: status, headers, content.
fn check_response(
    op: &Operation,
    head: &axum::http::response::Parts,
    body: &Bytes,
) -> Result<(), String> {
    let status = head.status.as_u16();
    let rule = op
        .responses
        .get(&status)
        .ok_or_else(|| format!("Response status code {status} is not allowed."))?;
    documented_headers(&rule.headers, &head.headers, Side::Response)?;
    check_content(rule, &head.headers, body)
}

/// Outbound: validate-status-code, validate-headers and validate-content on the backend's answer.
pub async fn response(
    State(definition): State<Arc<Definition>>,
    request: Request,
    next: Next,
) -> Response {
    let op = operation_of(&definition, &request);
    let response = next.run(request).await;
    let Some(op) = op else {
        return response;
    };
    if response.extensions().get::<Outcome>().is_some() {
        return response;
    }
    let (head, body) = response.into_parts();
    let body = match Limited::new(body, MAX_RESPONSE_BYTES).collect().await {
        Ok(body) => body.to_bytes(),
        Err(error) => {
            tracing::error!(operation = %op.path, %error, "backend answer unreadable, answered 502");
            return Violation::Response(error.to_string()).into_response();
        }
    };
    match (check_response(op, &head, &body), definition.action) {
        (Ok(()), _) => {}
        (Err(reason), Action::Prevent) => {
            tracing::error!(operation = %op.path, status = head.status.as_u16(), %reason, "backend answer outside the API definition, answered 502");
            return Violation::Response(reason).into_response();
        }
        (Err(reason), Action::Detect) => {
            tracing::error!(operation = %op.path, status = head.status.as_u16(), %reason, "backend answer outside the API definition (detect)");
        }
    }
    Response::from_parts(head, Body::from(body))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use shared::api::greeting_name;

    fn definition() -> Definition {
        let env = std::collections::HashMap::from([
            (
                "GATEWAY_ALLOWED_ORIGINS",
                "http://127.0.0.1:8080".to_owned(),
            ),
            (
                "GATEWAY_OPENID_CONFIG_URLS",
                "http://127.0.0.1:7010/a/.well-known/openid-configuration".to_owned(),
            ),
            ("GATEWAY_AUDIENCES", "api".to_owned()),
        ]);
        let policy = crate::config::PolicyConfig::from_source(&env).unwrap();
        let document = serde_json::to_value(crate::openapi::api(&policy)).unwrap();
        Definition::new(&document, Action::Prevent).unwrap()
    }

    #[test]
    fn the_documents_name_rule_is_the_functions() {
        let definition = definition();
        let op = definition.find(&Method::GET, "/api/hello").unwrap();
        let name = op.query.iter().find(|p| p.name == "name").unwrap();
        for sample in [
            "Ada",
            "",
            " ",
            "Mary-Jane O'Neil",
            "Ada!",
            "Zoë",
            "<b>",
            "a\nb",
            "42",
            &"a".repeat(64),
            &"a".repeat(65),
            "é",
            "Ада",
        ] {
            assert_eq!(
                name.accepts(sample),
                greeting_name::is_valid(sample),
                "{sample:?}"
            );
        }
    }

    /// What the fuzz target does, briefly and deterministically: hostile query strings give an
    /// answer, never a panic, and only the one valid shape passes.
    #[test]
    fn hostile_queries_are_answered() {
        let definition = definition();
        let headers = HeaderMap::new();
        let mut state: u64 = 0x2545_f491_4f6c_dd1d;
        let alphabet = b"name=&%+;aZ09'-\x00\xff%FF%00%zz==&&";
        for round in 0..5_000 {
            let len = round % 200;
            let query: String = (0..len)
                .map(|_| {
                    state = state
                        .wrapping_mul(6_364_136_223_846_793_005)
                        .wrapping_add(1);
                    alphabet[(state >> 33) as usize % alphabet.len()] as char
                })
                .collect();
            let verdict = definition.check(&Method::GET, "/api/hello", Some(&query), &headers);
            assert!(verdict.is_some());
        }
        let many = vec!["x=1"; 10_000].join("&");
        let repeated = vec!["name=a"; 10_000].join("&");
        for query in [
            many.as_str(),
            repeated.as_str(),
            "%",
            "name=%",
            "name=%E2%82",
        ] {
            let verdict = definition.check(&Method::GET, "/api/hello", Some(query), &headers);
            assert!(matches!(verdict, Some(Err(_))), "{query:.40}");
        }
        assert_eq!(
            definition.check(&Method::GET, "/api/hello", Some("name=Ada"), &headers),
            Some(Ok(()))
        );
    }

    #[test]
    fn echoed_names_are_cut() {
        assert_eq!(echoed("short"), "short");
        let cut = echoed(&"é".repeat(100));
        assert_eq!(cut.chars().count(), MAX_ECHOED_CHARS + 1);
    }
}
