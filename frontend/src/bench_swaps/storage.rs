//! Only for `scripts/bench` (issue 15, item 3: what each of the design card's packages costs):
//! the part of gloo-storage's `SessionStorage` that [`crate::storage`] uses, done by web-sys and
//! serde_json directly, with the feature `bench-without-gloo-storage`. Never deployed.

use serde::Serialize;
use serde::de::DeserializeOwned;

pub struct SessionStorage;

fn session_storage() -> Option<web_sys::Storage> {
    web_sys::window()?.session_storage().ok()?
}

impl SessionStorage {
    pub fn set<T: Serialize>(key: &str, value: T) -> Result<(), String> {
        let text = serde_json::to_string(&value).map_err(|e| e.to_string())?;
        session_storage()
            .and_then(|s| s.set_item(key, &text).ok())
            .ok_or_else(|| "sessionStorage refused the value".to_owned())
    }

    pub fn get<T: DeserializeOwned>(key: &str) -> Result<T, String> {
        let text = session_storage()
            .and_then(|s| s.get_item(key).ok().flatten())
            .ok_or_else(|| "no such key".to_owned())?;
        serde_json::from_str(&text).map_err(|e| e.to_string())
    }

    pub fn delete(key: &str) {
        if let Some(storage) = session_storage() {
            let _ = storage.remove_item(key);
        }
    }

    pub fn clear() {
        if let Some(storage) = session_storage() {
            let _ = storage.clear();
        }
    }
}
