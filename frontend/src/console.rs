//! `/console`: the developer console of seed 002. It lists the operations of the API's OpenAPI
//! document (`/openapi.json` at the gateway, see [`shared::SpaConfig::openapi_url`]), lets the
//! developer fill in each one's parameters, and "Try it" sends the request and shows the request
//! line, the answer's status, headers and body, and the time it took. An operation whose security
//! requirement needs an OAuth 2.0 token is sent with the console's own: the console signs in as
//! its own app registration ([`Client::console`]), Authorization Code + PKCE, and keeps that
//! session apart from the SPA's. The request that asked for the sign-in is kept in
//! sessionStorage and sent when the browser is back. The console's token is not renewed: once
//! it is too old to send, the next Try it signs in again (the identity provider's session
//! usually answers without its form). The SPA's Sign Out clears the tab's sessionStorage, the
//! console's session with it.
//!
//! Stable hooks for the e2e suite: `#console[data-state]` (`loading`, `unconfigured`, `failed`,
//! `ready`, `leaving`); `#cardheader`/`#message` as on the other pages; `li.operation` with
//! `data-method`/`data-path`, its `input[name=…]` per parameter (or `.no-parameters`) and
//! `button.try`; `#exchange` with `#request`, `#response-status` (class `status-success`,
//! `status-warning` or `status-danger`), `#response-time`, `#response-headers`, `#response-body`.

use crate::auth::{self, Provider};
use crate::client::{CONSOLE_PATH, Client};
use crate::flow::{PendingSignIn, Redirect, Start};
use crate::openapi::{Call, Document};
use crate::status::{Status, Tone};
use crate::{fetch, location, storage};
use leptos::prelude::*;
use leptos::task::spawn_local;
use oauth2::AccessToken;
use serde::{Deserialize, Serialize};
use std::sync::Arc;

pub const NOT_CONFIGURED: &str =
    "The developer console is not configured: config.json has no `console` section.";

/// The request a sign-in interrupted, under this key until the browser is back.
const UNSENT: &str = "console.unsent";

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Unsent {
    method: String,
    path: String,
    values: Vec<String>,
}

/// What one "Try it" sent and got back.
#[derive(Debug, Clone)]
struct Exchange {
    request: String,
    status: String,
    tone: Tone,
    elapsed: String,
    headers: String,
    body: String,
}

/// The page's state: signals owned by the page, copied into handlers and tasks.
#[derive(Clone, Copy)]
struct Console {
    state: RwSignal<&'static str>,
    status: RwSignal<Status>,
    document: RwSignal<Option<Arc<Document>>>,
    /// Per operation, per parameter: what the developer typed.
    values: RwSignal<Vec<Vec<String>>>,
    exchange: RwSignal<Option<Exchange>>,
    busy: RwSignal<bool>,
    provider: StoredValue<Option<Arc<Provider>>>,
}

impl Console {
    async fn start(
        self,
        loaded: Result<Arc<Provider>, String>,
        arrival: Option<(Redirect, Option<PendingSignIn>)>,
    ) {
        let provider = match loaded {
            Ok(provider) => provider,
            Err(message) => return self.stop("unconfigured", Status::danger(message)),
        };
        let (Some(client), Some(url)) = (provider.console.clone(), provider.config.openapi_url())
        else {
            let status = Status {
                tone: Tone::Warning,
                text: NOT_CONFIGURED.to_owned(),
            };
            return self.stop("unconfigured", status);
        };
        self.provider.set_value(Some(provider.clone()));
        let document = match load(&url).await {
            Ok(document) => Arc::new(document),
            Err(why) => return self.stop("failed", Status::danger(why)),
        };
        self.values.set(
            document
                .operations
                .iter()
                .map(|op| vec![String::new(); op.parameters.len()])
                .collect(),
        );
        self.status.set(Status::neutral(title(&document)));
        self.document.set(Some(document.clone()));
        self.state.set("ready");

        let Some((redirect, pending)) = arrival else {
            return;
        };
        let unsent: Option<Unsent> = storage::take(UNSENT);
        if let Err(err) = auth::complete_sign_in(&provider, &client, redirect, pending).await {
            self.status.set(Status::danger(err.to_string()));
            return;
        }
        let Some(unsent) = unsent else { return };
        let index = document
            .operations
            .iter()
            .position(|op| op.method == unsent.method && op.path == unsent.path);
        if let Some(index) = index {
            self.values.update(|values| {
                if let Some(slot) = values.get_mut(index)
                    && slot.len() == unsent.values.len()
                {
                    *slot = unsent.values;
                }
            });
            self.try_it(index);
        }
    }

    fn stop(self, state: &'static str, status: Status) {
        self.status.set(status);
        self.state.set(state);
    }

    /// "Try it": the request from the filled-in parameters, with the console's token when the
    /// operation needs one; without a fresh token, a sign-in first.
    fn try_it(self, index: usize) {
        if self.busy.get_untracked() {
            return;
        }
        let (Some(provider), Some(document)) =
            (self.provider.get_value(), self.document.get_untracked())
        else {
            return;
        };
        let (Some(client), Some(operation)) =
            (provider.console.clone(), document.operations.get(index))
        else {
            return;
        };
        let values = self
            .values
            .with_untracked(|v| v.get(index).cloned().unwrap_or_default());
        let call = match operation.call(&document.server, &values) {
            Ok(call) => call,
            Err(why) => return self.status.set(Status::danger(why)),
        };
        let token = if operation.needs_token {
            match storage::load_session(client.keys) {
                Some(session) if session.is_fresh(location::now()) => Some(session.access_token),
                _ => {
                    let unsent = Unsent {
                        method: operation.method.clone(),
                        path: operation.path.clone(),
                        values,
                    };
                    return self.sign_in(provider, client, &unsent);
                }
            }
        } else {
            None
        };
        self.busy.set(true);
        // A new answer gets new elements (rebuilt in place, the old one would look like it).
        self.exchange.set(None);
        self.status.set(Status::neutral(title(&document)));
        spawn_local(async move {
            let exchange = send(&call, token.as_ref()).await;
            self.exchange.set(Some(exchange));
            self.busy.set(false);
        });
    }

    /// Signs in as the console's client and comes back to `/console`, which sends `unsent`.
    fn sign_in(self, provider: Arc<Provider>, client: Client, unsent: &Unsent) {
        if let Err(why) = storage::save(UNSENT, unsent) {
            return self.status.set(Status::danger(why));
        }
        self.state.set("leaving");
        self.status
            .set(Status::neutral("Redirecting to sign in to the console ..."));
        spawn_local(async move {
            let start = Start {
                return_to: CONSOLE_PATH,
                ..Start::sign_in(&client)
            };
            if let Err(why) = auth::start_sign_in(&provider, start).await {
                self.state.set("ready");
                self.status
                    .set(Status::danger(format!("Sign-in could not start: {why}")));
            }
        });
    }
}

fn title(document: &Document) -> String {
    let count = document.operations.len();
    let noun = if count == 1 {
        "operation"
    } else {
        "operations"
    };
    format!("{} {}: {count} {noun}", document.title, document.version)
}

/// The document, or the sentence that says why there is none.
async fn load(url: &str) -> Result<Document, String> {
    let failed = |why: String| format!("The API definition could not be loaded from {url}: {why}");
    let response = fetch::get(url, None).await.map_err(&failed)?;
    if !response.ok() {
        return Err(failed(format!("HTTP {}", response.status())));
    }
    let body = fetch::text(&response).await.map_err(&failed)?;
    Document::parse(&body, url).map_err(failed)
}

async fn send(call: &Call, token: Option<&AccessToken>) -> Exchange {
    let mut request = format!("{} {}", call.method, call.target());
    for (name, value) in &call.headers {
        request.push_str(&format!("\n{name}: {value}"));
    }
    // The token is the developer's own, but a page that prints tokens gets them copied around.
    let authorization = token.map(|token| {
        request.push_str("\nAuthorization: Bearer (the console's access token)");
        let mut value = String::from("Bearer ");
        value.push_str(token.secret());
        value
    });
    let started = js_sys::Date::now();
    let outcome = fetch::request(call, authorization.as_deref()).await;
    let response = match outcome {
        Ok(response) => response,
        Err(why) => {
            return Exchange {
                request,
                status: format!("No response: {why}"),
                tone: Tone::Danger,
                elapsed: elapsed(started),
                headers: String::new(),
                body: String::new(),
            };
        }
    };
    let code = response.status();
    let mut headers = String::new();
    for (name, value) in fetch::headers(&response) {
        headers.push_str(&format!("{name}: {value}\n"));
    }
    let is_json = fetch::header(&response, "content-type").is_some_and(|t| t.contains("json"));
    let body = fetch::text(&response).await;
    let tone = match code {
        200..=299 => Tone::Success,
        _ => Tone::Warning,
    };
    let (status, body) = match body {
        Ok(body) => (
            format!("{code} {}", fetch::status_text(&response)),
            if is_json { pretty(&body) } else { body },
        ),
        Err(why) => (
            format!("{code}, then the body failed: {why}"),
            String::new(),
        ),
    };
    Exchange {
        request,
        status,
        tone,
        elapsed: elapsed(started),
        headers,
        body,
    }
}

/// JSON indented by the browser (`JSON.stringify(…, null, 2)`); anything else as it came.
fn pretty(body: &str) -> String {
    js_sys::JSON::parse(body)
        .and_then(|value| {
            js_sys::JSON::stringify_with_replacer_and_space(
                &value,
                &wasm_bindgen::JsValue::NULL,
                &wasm_bindgen::JsValue::from_f64(2.0),
            )
        })
        .map(String::from)
        .unwrap_or_else(|_| body.to_owned())
}

fn elapsed(started: f64) -> String {
    format!(
        "{} ms",
        (js_sys::Date::now() - started).max(0.0).round() as u64
    )
}

/// The page; `arrival` is the identity provider's answer to the console's sign-in, if this
/// load is one.
pub fn page(
    loaded: Result<Arc<Provider>, String>,
    arrival: Option<(Redirect, Option<PendingSignIn>)>,
) -> impl IntoView {
    let console = Console {
        state: RwSignal::new("loading"),
        status: RwSignal::new(Status::neutral("Loading the API definition ...")),
        document: RwSignal::new(None),
        values: RwSignal::new(Vec::new()),
        exchange: RwSignal::new(None),
        busy: RwSignal::new(false),
        provider: StoredValue::new(None),
    };
    spawn_local(console.start(loaded, arrival));
    let status = console.status;
    view! {
        <section class="card" id="console" data-state=move || console.state.get()>
            <div id="cardheader" class=move || status.with(|s| s.tone.header_class())>
                <p id="message" role="status" aria-live="polite">
                    {move || status.with(|s| s.text.clone())}
                </p>
            </div>
            <div class="card-body">
                {move || operations(console)}
                {move || console.exchange.get().map(exchange)}
            </div>
        </section>
    }
}

fn operations(console: Console) -> Option<impl IntoView> {
    let document = console.document.get()?;
    let items = document
        .operations
        .iter()
        .enumerate()
        .map(|(index, op)| {
            // Plain `Option` rather than `Either`/`AnyView` (KBs of wasm each, see `app`).
            let none = op
                .parameters
                .is_empty()
                .then(|| view! { <p class="no-parameters">"No parameters"</p> });
            let parameters = op
                .parameters
                .iter()
                .enumerate()
                .map(|(slot, parameter)| {
                    let value = move || {
                        console.values.with(|v| {
                            v.get(index)
                                .and_then(|p| p.get(slot))
                                .cloned()
                                .unwrap_or_default()
                        })
                    };
                    let typed = move |event: leptos::ev::Event| {
                        let text = event_target_value(&event);
                        console.values.update(|v| {
                            if let Some(cell) = v.get_mut(index).and_then(|p| p.get_mut(slot)) {
                                *cell = text;
                            }
                        });
                    };
                    let required = if parameter.required { ", required" } else { "" };
                    view! {
                        <label class="parameter">
                            <span class="parameter-name">{parameter.name.clone()}</span>
                            <small>" (" {parameter.location.name()} {required} ")"</small>
                            <input
                                type="text"
                                name=parameter.name.clone()
                                placeholder=parameter.description.clone()
                                prop:value=value
                                on:input=typed
                            />
                        </label>
                    }
                })
                .collect_view();
            let lock = op.needs_token.then_some(" (signs in: OAuth 2.0)");
            view! {
                <li class="operation" data-method=op.method.clone() data-path=op.path.clone()>
                    <p class="operation-head">
                        <span class="method">{op.method.clone()}</span>" "
                        <code class="path">{op.path.clone()}</code>" "
                        <span class="summary">{op.summary.clone()}</span>
                        <small>{lock}</small>
                    </p>
                    {none}
                    {parameters}
                    <button
                        type="button"
                        class="btn btn-warning try"
                        disabled=move || console.busy.get()
                        on:click=move |_| console.try_it(index)
                    >
                        "Try it"
                    </button>
                </li>
            }
        })
        .collect_view();
    Some(view! { <ul class="operations">{items}</ul> })
}

fn exchange(exchange: Exchange) -> impl IntoView {
    view! {
        <section id="exchange" aria-live="polite">
            <h3>"Request"</h3>
            <pre id="request">{exchange.request}</pre>
            <h3>"Response"</h3>
            <p id="response-status" class=exchange.tone.class()>{exchange.status}</p>
            <p>"Time: " <span id="response-time">{exchange.elapsed}</span></p>
            <pre id="response-headers">{exchange.headers}</pre>
            <pre id="response-body">{exchange.body}</pre>
        </section>
    }
}
