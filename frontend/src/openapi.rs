//! The API's OpenAPI document as the developer console reads it: the operations (method, path,
//! summary, parameters), whether each needs an OAuth 2.0 token (its security requirement), and
//! the request a filled-in operation makes. Read from [`Json`] field by field, so a document this
//! page cannot use is one sentence, never a panic.

use crate::json::Json;
use url::form_urlencoded;

/// The methods an OpenAPI path item can have, in the order the console lists them.
const METHODS: [&str; 8] = [
    "get", "put", "post", "delete", "options", "head", "patch", "trace",
];

/// More than any real API's console page needs; a bigger document is refused, not rendered.
const MAX_OPERATIONS: usize = 200;
const MAX_PARAMETERS: usize = 50;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Document {
    pub title: String,
    pub version: String,
    /// The absolute base URL the operations' paths are appended to.
    pub server: String,
    pub operations: Vec<Operation>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Operation {
    /// Upper case, as on a request line.
    pub method: String,
    pub path: String,
    pub summary: String,
    pub parameters: Vec<Parameter>,
    /// Its security requirement cannot be met without an OAuth 2.0 (or OpenID Connect) token.
    pub needs_token: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Parameter {
    pub name: String,
    pub location: Location,
    pub required: bool,
    pub description: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Location {
    Query,
    Path,
    Header,
}

impl Location {
    pub fn name(self) -> &'static str {
        match self {
            Self::Query => "query",
            Self::Path => "path",
            Self::Header => "header",
        }
    }
}

/// What "Try it" sends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Call {
    pub method: String,
    /// Without the query: gloo-net appends `query` itself (and would add a stray `&` to a URL
    /// that has one already).
    pub url: String,
    pub query: Vec<(String, String)>,
    pub headers: Vec<(String, String)>,
}

impl Call {
    /// The URL as sent: `url` and the query, encoded as the browser's `URLSearchParams` does
    /// (both follow the WHATWG `application/x-www-form-urlencoded` serializer).
    pub fn target(&self) -> String {
        let mut target = self.url.clone();
        if !self.query.is_empty() {
            let mut query = form_urlencoded::Serializer::new(String::new());
            query.extend_pairs(&self.query);
            target.push('?');
            target.push_str(&query.finish());
        }
        target
    }
}

impl Document {
    /// Reads the document fetched from `document_url` (relative server URLs are relative to it).
    pub fn parse(text: &str, document_url: &str) -> Result<Self, String> {
        let doc = Json::parse(text).ok_or("it is not JSON")?;
        let version = doc.string("openapi")?;
        if !version.starts_with("3.") {
            return Err(format!("OpenAPI {version} is not 3.x"));
        }
        let info = doc.get("info").ok_or("missing field `info`")?;
        let paths = doc
            .get("paths")
            .and_then(Json::fields)
            .ok_or("missing object `paths`")?;
        let oauth2 = oauth2_schemes(&doc);
        let default_security = doc.get("security");
        let mut operations = Vec::new();
        for (path, item) in paths {
            let shared = item.get("parameters");
            for method in METHODS {
                let Some(operation) = item.get(method) else {
                    continue;
                };
                if operations.len() == MAX_OPERATIONS {
                    return Err(format!("it has more than {MAX_OPERATIONS} operations"));
                }
                let security = operation.get("security").or(default_security);
                operations.push(Operation {
                    method: method.to_ascii_uppercase(),
                    path: path.clone(),
                    summary: operation
                        .optional_string("summary")?
                        .unwrap_or_default()
                        .to_owned(),
                    parameters: parameters(&doc, shared, operation.get("parameters"))
                        .map_err(|why| format!("{} {path}: {why}", method.to_ascii_uppercase()))?,
                    needs_token: needs_token(security, &oauth2),
                });
            }
        }
        Ok(Self {
            title: info.string("title")?.to_owned(),
            version: info
                .optional_string("version")?
                .unwrap_or_default()
                .to_owned(),
            server: server(&doc, document_url)?,
            operations,
        })
    }
}

/// The names of the document's `oauth2` and `openIdConnect` security schemes.
fn oauth2_schemes(doc: &Json) -> Vec<&str> {
    let schemes = doc
        .get("components")
        .and_then(|c| c.get("securitySchemes"))
        .and_then(Json::fields)
        .unwrap_or_default();
    schemes
        .iter()
        .filter(|(_, scheme)| {
            scheme
                .string("type")
                .is_ok_and(|t| matches!(t, "oauth2" | "openIdConnect"))
        })
        .map(|(name, _)| name.as_str())
        .collect()
}

/// A requirement is a list of alternatives; the token is needed when every alternative names an
/// OAuth 2.0 scheme (an empty alternative, `{}`, makes security optional).
fn needs_token(security: Option<&Json>, oauth2: &[&str]) -> bool {
    let Some(Json::Array(alternatives)) = security else {
        return false;
    };
    !alternatives.is_empty()
        && alternatives.iter().all(|alternative| {
            alternative
                .fields()
                .is_some_and(|names| names.iter().any(|(n, _)| oauth2.contains(&n.as_str())))
        })
}

/// The path item's parameters, overridden by the operation's of the same name and location;
/// `$ref`s into `components/parameters` are followed (one level), cookies left out (a page
/// cannot set them).
fn parameters(
    doc: &Json,
    shared: Option<&Json>,
    own: Option<&Json>,
) -> Result<Vec<Parameter>, String> {
    let mut list: Vec<Parameter> = Vec::new();
    for value in [shared, own].into_iter().flatten() {
        let Json::Array(items) = value else {
            return Err("`parameters` is not a list".to_owned());
        };
        for item in items {
            let Some(parameter) = parameter(doc, item)? else {
                continue;
            };
            list.retain(|p| !(p.name == parameter.name && p.location == parameter.location));
            if list.len() == MAX_PARAMETERS {
                return Err(format!("more than {MAX_PARAMETERS} parameters"));
            }
            list.push(parameter);
        }
    }
    Ok(list)
}

fn parameter(doc: &Json, item: &Json) -> Result<Option<Parameter>, String> {
    let item = match item.optional_string("$ref")? {
        Some(reference) => {
            let name = reference
                .strip_prefix("#/components/parameters/")
                .ok_or_else(|| format!("unsupported reference `{reference}`"))?;
            doc.get("components")
                .and_then(|c| c.get("parameters"))
                .and_then(|p| p.get(name))
                .ok_or_else(|| format!("`{reference}` is not in the document"))?
        }
        None => item,
    };
    let location = match item.string("in")? {
        "query" => Location::Query,
        "path" => Location::Path,
        "header" => Location::Header,
        "cookie" => return Ok(None),
        other => return Err(format!("parameter location `{other}` is unknown")),
    };
    let required = match item.get("required") {
        None | Some(Json::Null) => location == Location::Path,
        Some(Json::Bool(required)) => *required,
        Some(_) => return Err("`required` has the wrong type".to_owned()),
    };
    Ok(Some(Parameter {
        name: item.string("name")?.to_owned(),
        location,
        required,
        description: item
            .optional_string("description")?
            .unwrap_or_default()
            .to_owned(),
    }))
}

/// `servers[0].url` made absolute against the document's URL (OpenAPI: a relative server URL
/// is relative to where the document is served); without servers, the document's origin.
fn server(doc: &Json, document_url: &str) -> Result<String, String> {
    let url = match doc.get("servers") {
        Some(Json::Array(servers)) if !servers.is_empty() => servers[0].string("url")?,
        None | Some(Json::Array(_)) => "/",
        Some(_) => return Err("`servers` is not a list".to_owned()),
    };
    let absolute = if url.starts_with("https://") || url.starts_with("http://") {
        url.to_owned()
    } else if url.starts_with("//") {
        let scheme = document_url.split("//").next().unwrap_or("https:");
        format!("{scheme}{url}")
    } else if url.starts_with('/') {
        format!("{}{url}", origin(document_url)?)
    } else {
        let directory = document_url
            .rsplit_once('/')
            .map_or(document_url, |(dir, _)| dir);
        format!("{directory}/{url}")
    };
    Ok(absolute.trim_end_matches('/').to_owned())
}

/// `scheme://host[:port]` of an absolute URL.
fn origin(url: &str) -> Result<&str, String> {
    let after_scheme = url
        .find("://")
        .map(|i| i + 3)
        .ok_or_else(|| format!("`{url}` is not an absolute URL"))?;
    let end = url[after_scheme..]
        .find(['/', '?', '#'])
        .map_or(url.len(), |i| after_scheme + i);
    Ok(&url[..end])
}

impl Operation {
    /// The request for these parameter `values` (one per parameter, in order): path parameters
    /// substituted, query parameters appended, empty optional ones left out.
    pub fn call(&self, server: &str, values: &[String]) -> Result<Call, String> {
        let mut path = self.path.clone();
        let mut query = Vec::new();
        let mut headers = Vec::new();
        for (parameter, value) in self.parameters.iter().zip(values) {
            if value.is_empty() {
                if parameter.required {
                    return Err(format!(
                        "{} ({} parameter) is required",
                        parameter.name,
                        parameter.location.name()
                    ));
                }
                continue;
            }
            match parameter.location {
                Location::Path => {
                    let template = format!("{{{}}}", parameter.name);
                    path = path.replace(&template, &path_segment(value));
                }
                Location::Query => query.push((parameter.name.clone(), value.clone())),
                Location::Header => {
                    // The browser's `Headers` throws on anything else (and a throw would abort).
                    let name_ok = !parameter.name.is_empty()
                        && parameter
                            .name
                            .bytes()
                            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b));
                    if !name_ok {
                        return Err(format!("`{}` is not a header name", parameter.name));
                    }
                    if !value
                        .bytes()
                        .all(|b| b == b'\t' || (0x20..0x7f).contains(&b))
                    {
                        return Err(format!(
                            "{} (header parameter) must be printable ASCII",
                            parameter.name
                        ));
                    }
                    headers.push((parameter.name.clone(), value.clone()));
                }
            }
        }
        let mut url = String::from(server);
        url.push_str(&path);
        Ok(Call {
            method: self.method.clone(),
            url,
            query,
            headers,
        })
    }
}

/// A value as one path segment: everything but RFC 3986's unreserved characters escaped.
fn path_segment(value: &str) -> String {
    let mut out = String::new();
    for byte in value.bytes() {
        if byte.is_ascii_alphanumeric() || b"-._~".contains(&byte) {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    /// The shape of the gateway's document (backend/gateway/src/openapi.rs).
    const GATEWAY: &str = r#"{
        "openapi": "3.1.0",
        "info": {"title": "Hello API", "version": "0.1.0"},
        "servers": [{"url": "/api", "description": "The gateway that serves this document"}],
        "paths": {"/hello": {"get": {
            "tags": ["hello"], "summary": "The seed's hello, as the signed-in caller",
            "operationId": "hello",
            "parameters": [{"name": "name", "in": "query", "required": false,
                            "description": "Whom to greet", "schema": {"type": "string"}}],
            "responses": {"200": {"description": "ok"}}
        }}},
        "components": {"securitySchemes": {"oauth2": {"type": "oauth2", "flows": {}}}},
        "security": [{"oauth2": ["https://t/api/accessapp"]}]
    }"#;

    const AT: &str = "http://127.0.0.1:7080/openapi.json";

    #[test]
    fn lists_the_gateway_s_operation_with_its_parameter_and_token() {
        let doc = Document::parse(GATEWAY, AT).unwrap();
        assert_eq!(
            (doc.title.as_str(), doc.version.as_str()),
            ("Hello API", "0.1.0")
        );
        assert_eq!(doc.server, "http://127.0.0.1:7080/api");
        let [hello] = doc.operations.as_slice() else {
            panic!("{:?}", doc.operations)
        };
        assert_eq!(
            (hello.method.as_str(), hello.path.as_str()),
            ("GET", "/hello")
        );
        assert_eq!(hello.summary, "The seed's hello, as the signed-in caller");
        assert!(hello.needs_token);
        assert_eq!(
            hello.parameters,
            [Parameter {
                name: "name".into(),
                location: Location::Query,
                required: false,
                description: "Whom to greet".into(),
            }]
        );
        let call = hello.call(&doc.server, &["Ada Lovelace".into()]).unwrap();
        assert_eq!(call.method, "GET");
        assert_eq!(call.url, "http://127.0.0.1:7080/api/hello");
        assert_eq!(call.query, [("name".to_owned(), "Ada Lovelace".to_owned())]);
        assert_eq!(
            call.target(),
            "http://127.0.0.1:7080/api/hello?name=Ada+Lovelace"
        );
        // Empty and optional: left out.
        let call = hello.call(&doc.server, &[String::new()]).unwrap();
        assert_eq!(call.target(), "http://127.0.0.1:7080/api/hello");
    }

    #[test]
    fn an_operation_without_parameters_or_security() {
        let text = r#"{"openapi": "3.0.3", "info": {"title": "T"},
            "servers": [{"url": "https://api.example/v1/"}],
            "paths": {"/ping": {"get": {}, "post": {"security": [{}]}}}}"#;
        let doc = Document::parse(text, AT).unwrap();
        assert_eq!(doc.server, "https://api.example/v1");
        assert_eq!(doc.operations.len(), 2);
        for operation in &doc.operations {
            assert!(operation.parameters.is_empty());
            assert!(!operation.needs_token, "{operation:?}");
            assert_eq!(
                operation.call(&doc.server, &[]).unwrap().target(),
                "https://api.example/v1/ping"
            );
        }
        assert_eq!(doc.operations[1].method, "POST");
    }

    #[test]
    fn path_and_header_parameters_references_and_required_ones() {
        let text = r##"{"openapi": "3.1.0", "info": {"title": "T"},
            "paths": {"/items/{id}": {
                "parameters": [{"$ref": "#/components/parameters/id"},
                               {"name": "trace", "in": "header"}],
                "get": {"parameters": [{"name": "trace", "in": "header", "required": true},
                                       {"name": "session", "in": "cookie"}],
                        "security": [{"key": []}, {"oauth2": []}]}}},
            "components": {"parameters": {"id": {"name": "id", "in": "path"}},
                           "securitySchemes": {"oauth2": {"type": "oauth2"},
                                               "key": {"type": "apiKey"}}}}"##;
        let doc = Document::parse(text, "https://gw.example/docs/openapi.json").unwrap();
        assert_eq!(doc.server, "https://gw.example");
        let op = &doc.operations[0];
        assert!(!op.needs_token, "an API key alone is an alternative");
        let names: Vec<_> = op
            .parameters
            .iter()
            .map(|p| (p.name.as_str(), p.required))
            .collect();
        assert_eq!(names, [("id", true), ("trace", true)]);
        let call = op
            .call(&doc.server, &["a b/c".into(), "t-1".into()])
            .unwrap();
        assert_eq!(call.url, "https://gw.example/items/a%20b%2Fc");
        assert_eq!(call.headers, [("trace".to_owned(), "t-1".to_owned())]);
        assert_eq!(
            op.call(&doc.server, &[String::new(), "t".into()])
                .unwrap_err(),
            "id (path parameter) is required"
        );
        assert_eq!(
            op.call(&doc.server, &["1".into(), "a\r\nb".into()])
                .unwrap_err(),
            "trace (header parameter) must be printable ASCII"
        );
    }

    #[test]
    fn documents_it_cannot_use_are_named_not_rendered() {
        for (text, why) in [
            ("<html>", "it is not JSON"),
            ("{}", "missing field `openapi`"),
            (r#"{"openapi": "2.0"}"#, "OpenAPI 2.0 is not 3.x"),
            (
                r#"{"openapi": "3.1.0", "info": {"title": "T"}}"#,
                "missing object `paths`",
            ),
            (
                r#"{"openapi": "3.1.0", "info": {"title": "T"}, "paths": {"/a": {"get": {"parameters": 1}}}}"#,
                "GET /a: `parameters` is not a list",
            ),
            (
                r#"{"openapi": "3.1.0", "info": {"title": "T"}, "paths": {"/a": {"get": {"parameters": [{"name": "x", "in": "body"}]}}}}"#,
                "GET /a: parameter location `body` is unknown",
            ),
            (
                r##"{"openapi": "3.1.0", "info": {"title": "T"}, "paths": {"/a": {"get": {"parameters": [{"$ref": "#/x"}]}}}}"##,
                "GET /a: unsupported reference `#/x`",
            ),
        ] {
            assert_eq!(Document::parse(text, AT).unwrap_err(), why, "{text}");
        }
        let many: Vec<String> = (0..=MAX_OPERATIONS)
            .map(|i| format!("\"/p{i}\": {{\"get\": {{}}}}"))
            .collect();
        let text = format!(
            r#"{{"openapi": "3.1.0", "info": {{"title": "T"}}, "paths": {{{}}}}}"#,
            many.join(",")
        );
        assert!(
            Document::parse(&text, AT)
                .unwrap_err()
                .contains("more than 200")
        );
    }
}
