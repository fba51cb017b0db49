//! JSON without serde in the wasm: serde_json and the generated (de)serializers were a fifth of
//! the bundle (issue 7). In the browser `JSON.parse` reads a document; natively (the unit tests)
//! serde_json does. Either way it becomes this small tree, which the readers in `config`,
//! `discovery`, `token`, `id_token`, `status` and `profile` walk field by field, so every
//! rule about what a field must be is plain Rust and unit-tested. sessionStorage is written and
//! read by gloo-storage (serde), not here.

/// A parsed JSON value. Numbers are `f64`, as in JavaScript; [`Json::as_u64`] reads the integer
/// ones (timestamps, lifetimes, status codes).
#[derive(Debug, Clone, PartialEq)]
pub enum Json {
    Null,
    Bool(bool),
    Number(f64),
    String(String),
    Array(Vec<Json>),
    Object(Vec<(String, Json)>),
}

/// Nesting deeper than this is read as `null`: no document the SPA reads nests more than twice,
/// and the conversion recurses.
const MAX_DEPTH: usize = 16;

/// 2^53: beyond it a JSON number is no longer an exact integer in JavaScript.
const MAX_SAFE_INTEGER: f64 = 9_007_199_254_740_992.0;

impl Json {
    /// Parses a document; `None` if it is not JSON.
    pub fn parse(text: &str) -> Option<Self> {
        backend::parse(text)
    }

    /// The field `key` of an object (`None` if absent or if this is not an object).
    pub fn get(&self, key: &str) -> Option<&Json> {
        self.fields()?
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, value)| value)
    }

    pub fn fields(&self) -> Option<&[(String, Json)]> {
        match self {
            Self::Object(fields) => Some(fields),
            _ => None,
        }
    }

    pub fn as_str(&self) -> Option<&str> {
        match self {
            Self::String(text) => Some(text),
            _ => None,
        }
    }

    /// A non-negative integer number (no fraction, at most 2^53).
    pub fn as_u64(&self) -> Option<u64> {
        match *self {
            Self::Number(n) if (0.0..=MAX_SAFE_INTEGER).contains(&n) && n.fract() == 0.0 => {
                Some(n as u64)
            }
            _ => None,
        }
    }

    /// An array whose items are all strings.
    pub fn as_strings(&self) -> Option<Vec<&str>> {
        match self {
            Self::Array(items) => items.iter().map(Json::as_str).collect(),
            _ => None,
        }
    }

    // The readers borrow from the document: callers check everything first and allocate last,
    // so an early refusal has nothing to free (the drop paths were KBs of wasm).

    /// A required string field; `Err` names the field.
    pub fn string(&self, key: &str) -> Result<&str, String> {
        match self.get(key) {
            None => Err(missing(key)),
            Some(value) => value.as_str().ok_or_else(|| wrong(key)),
        }
    }

    /// An optional string field: absent and `null` are `None`, any other non-string is an error.
    pub fn optional_string(&self, key: &str) -> Result<Option<&str>, String> {
        match self.get(key) {
            None | Some(Self::Null) => Ok(None),
            Some(value) => value.as_str().map(Some).ok_or_else(|| wrong(key)),
        }
    }

    /// A required array-of-strings field.
    pub fn strings(&self, key: &str) -> Result<Vec<&str>, String> {
        match self.get(key) {
            None => Err(missing(key)),
            Some(value) => value.as_strings().ok_or_else(|| wrong(key)),
        }
    }

    /// An optional non-negative integer field: absent and `null` are `None`.
    pub fn optional_u64(&self, key: &str) -> Result<Option<u64>, String> {
        match self.get(key) {
            None | Some(Self::Null) => Ok(None),
            Some(value) => value.as_u64().map(Some).ok_or_else(|| wrong(key)),
        }
    }
}

fn missing(key: &str) -> String {
    let mut text = String::from("missing field `");
    text.push_str(key);
    text.push('`');
    text
}

fn wrong(key: &str) -> String {
    let mut text = String::from("`");
    text.push_str(key);
    text.push_str("` has the wrong type");
    text
}

#[cfg(target_arch = "wasm32")]
mod backend {
    use super::{Json, MAX_DEPTH};
    use js_sys::{Array, Object};
    use wasm_bindgen::{JsCast, JsValue};

    pub fn parse(text: &str) -> Option<Json> {
        js_sys::JSON::parse(text)
            .ok()
            .map(|value| from_js(&value, 0))
    }

    /// `JSON.parse` yields only strings, numbers, booleans, null, arrays and plain objects.
    fn from_js(value: &JsValue, depth: usize) -> Json {
        if let Some(text) = value.as_string() {
            return Json::String(text);
        }
        if let Some(n) = value.as_f64() {
            return Json::Number(n);
        }
        if let Some(b) = value.as_bool() {
            return Json::Bool(b);
        }
        if depth >= MAX_DEPTH || !value.is_object() {
            return Json::Null;
        }
        if Array::is_array(value) {
            let items: &Array = value.unchecked_ref();
            return Json::Array(items.iter().map(|v| from_js(&v, depth + 1)).collect());
        }
        let entries = Object::entries(value.unchecked_ref());
        Json::Object(
            entries
                .iter()
                .map(|entry| {
                    let entry: Array = entry.unchecked_into();
                    let key = entry.get(0).as_string().unwrap_or_default();
                    (key, from_js(&entry.get(1), depth + 1))
                })
                .collect(),
        )
    }
}

#[cfg(not(target_arch = "wasm32"))]
mod backend {
    use super::{Json, MAX_DEPTH};

    pub fn parse(text: &str) -> Option<Json> {
        serde_json::from_str::<serde_json::Value>(text)
            .ok()
            .map(|value| from_serde(value, 0))
    }

    fn from_serde(value: serde_json::Value, depth: usize) -> Json {
        use serde_json::Value;
        match value {
            Value::Null => Json::Null,
            Value::Bool(b) => Json::Bool(b),
            Value::Number(n) => n.as_f64().map_or(Json::Null, Json::Number),
            Value::String(text) => Json::String(text),
            _ if depth >= MAX_DEPTH => Json::Null,
            Value::Array(items) => Json::Array(
                items
                    .into_iter()
                    .map(|v| from_serde(v, depth + 1))
                    .collect(),
            ),
            Value::Object(fields) => Json::Object(
                fields
                    .into_iter()
                    .map(|(k, v)| (k, from_serde(v, depth + 1)))
                    .collect(),
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn reads_fields_by_type() {
        let doc = Json::parse(
            r#"{"s":"x","n":3600,"f":1.5,"neg":-1,"big":1e300,"list":["a","b"],"mixed":["a",1],"nul":null}"#,
        )
        .unwrap();
        assert_eq!(doc.string("s").unwrap(), "x");
        assert_eq!(doc.string("absent").unwrap_err(), "missing field `absent`");
        assert_eq!(doc.string("n").unwrap_err(), "`n` has the wrong type");
        assert_eq!(doc.optional_string("nul").unwrap(), None);
        assert_eq!(doc.optional_string("absent").unwrap(), None);
        assert!(doc.optional_string("n").is_err());
        assert_eq!(doc.optional_u64("n").unwrap(), Some(3600));
        for not_an_integer in ["f", "neg", "big", "s"] {
            assert!(
                doc.optional_u64(not_an_integer).is_err(),
                "{not_an_integer}"
            );
        }
        assert_eq!(doc.strings("list").unwrap(), ["a", "b"]);
        assert!(doc.strings("mixed").is_err());
        assert!(Json::Array(vec![]).get("s").is_none());
    }

    #[test]
    fn refuses_what_is_not_json() {
        for bad in ["", "{", "<html>", "{'a':1}", "{\"a\":1,}"] {
            assert_eq!(Json::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn deep_nesting_is_cut_off_not_followed() {
        let deep = format!("{}{}", "[".repeat(100), "]".repeat(100));
        let mut value = Json::parse(&deep).unwrap();
        let mut depth = 0;
        while let Json::Array(mut items) = value {
            depth += 1;
            value = items.pop().unwrap_or(Json::Null);
        }
        assert!(depth <= MAX_DEPTH + 1, "{depth}");
    }
}
