//! The page: a top bar (the pages, Sign In / Sign Out), and the route's card, whose header reports
//! what happened. Routes (leptos_router, the table in [`app`]): `/` home (Call API), `/profile`
//! (the ID token's claims), `/console` (the developer console, [`crate::console`]), anything else
//! "Page not found".
//!
//! Stable hooks for the e2e suite (`backend/e2e`):
//! - `nav.pages a[href='/']`, `nav.pages a[href='/profile']`, `nav.pages a[href='/console']`
//!   (only when config.json has a console): the router's links.
//! - `#app[data-phase]`: `loading`, `unconfigured`, `signed-out`, `signed-in`, `leaving`
//!   (navigating to the identity provider).
//! - `#signin`: Sign In button (top bar; only when signed out). Before the app is ready it is
//!   index.html's shell (`#shell`, phase `loading`; see [`crate::shell`]), whose click is kept and
//!   honoured once config.json and the IdP's metadata have loaded.
//! - `#signout`: Sign Out button (top bar; only when signed in); `#username`: the user's name;
//!   `#editprofile`: Edit profile (signed in, and config.json names a profile-edit flow).
//! - `#claims`: the profile's table (`tbody tr`: claim, value, meaning); `#notfound`: the
//!   not-found card, whose link leads home.
//! - `#cardheader`: the card header; class `status-success` (API answered 2xx), `status-warning`
//!   (HTTP error from the gateway/function, or the IdP refused the sign-in), `status-danger`
//!   (network/CORS failure, missing or invalid config.json, failed sign-in checks).
//! - `#message`: the status text, e.g. "Please sign in to continue", "Welcome, Alice Example",
//!   "Calling backend ...", the API's message, "Error: 429 Rate limit is exceeded. Try again in
//!   N seconds."; it is the live region (`role="status"`, `aria-live="polite"`).
//! - `#callapi`: Call API button (only when signed in; disabled while a call is in flight).
//! - `#progress`: the spinner; present only while a call is in flight.
//!
//! All text is rendered as text nodes; nothing here sets inner HTML.

use crate::auth::{self, Provider};
use crate::client::{CONSOLE_KEYS, CONSOLE_PATH, SPA_KEYS};
use crate::flow::{self, PendingSignIn, Redirect, SignInError, Start};
use crate::profile::{self, ClaimValue};
use crate::session::Session;
use crate::status::{self, Status, Tone};
use crate::tabs::{self, Message};
use crate::{api, console, location, shell, storage};
use leptos::prelude::*;
use leptos::task::spawn_local;
use leptos_router::components::{A, FlatRoutes, Route, Router};
use leptos_router::path;
use std::sync::Arc;
use std::time::Duration;

/// Loads config.json and the IdP's metadata while index.html's shell stays up and takes the
/// clicks, then swaps the shell for the app in one task (no frame without either).
pub fn mount() {
    wasm_bindgen_futures::spawn_local(async {
        let loaded = auth::load().await;
        let arrival = Arrival::take();
        let sign_in_requested = shell::take();
        leptos::mount::mount_to_body(move || app(loaded, arrival, sign_in_requested));
    });
}

/// The identity provider's answer on the redirect URI, if this page load is one, with the
/// sign-in it answers. Read before the router starts: the address is then set to the page the
/// sign-in started from (the SPA's redirect URI is always the root), so the router shows that
/// page. An answer on `/console` is the console's (its own client and redirect URI).
struct Arrival {
    redirect: Option<Redirect>,
    pending: Option<PendingSignIn>,
    for_console: bool,
}

impl Arrival {
    fn take() -> Self {
        let (search, hash) = location::search_and_hash();
        let path = location::path();
        let for_console = path == CONSOLE_PATH;
        let Some(redirect) = flow::parse_redirect(&search, &hash) else {
            return Self {
                redirect: None,
                pending: None,
                for_console,
            };
        };
        let pending = storage::take_pending(if for_console { CONSOLE_KEYS } else { SPA_KEYS });
        let back_to = pending
            .as_ref()
            .map_or(path.as_str(), |p| p.return_to.as_str());
        location::clean_to(flow::local_path(back_to));
        Self {
            redirect: Some(redirect),
            pending,
            for_console,
        }
    }

    /// The console's answer, taken out (the SPA's stays for [`Ui::start`]).
    fn take_console(&mut self) -> Option<(Redirect, Option<PendingSignIn>)> {
        if !self.for_console {
            return None;
        }
        Some((self.redirect.take()?, self.pending.take()))
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Phase {
    Loading,
    Unconfigured,
    SignedOut,
    SignedIn { name: String },
    Leaving,
}

impl Phase {
    fn name(&self) -> &'static str {
        match self {
            Self::Loading => "loading",
            Self::Unconfigured => "unconfigured",
            Self::SignedOut => "signed-out",
            Self::SignedIn { .. } => "signed-in",
            Self::Leaving => "leaving",
        }
    }
}

/// The page's state: signals owned by the `App` component, copied into handlers and tasks.
#[derive(Clone, Copy)]
struct Ui {
    phase: RwSignal<Phase>,
    status: RwSignal<Status>,
    busy: RwSignal<bool>,
    /// Not a signal: no view shows it, handlers only read it.
    provider: StoredValue<Option<Arc<Provider>>>,
    renewal: StoredValue<Option<TimeoutHandle>>,
}

impl Ui {
    async fn start(
        self,
        loaded: Result<Arc<Provider>, String>,
        arrival: Arrival,
        sign_in_requested: bool,
    ) {
        let provider = match loaded {
            Ok(provider) => provider,
            Err(message) => {
                self.status.set(Status::danger(message));
                self.phase.set(Phase::Unconfigured);
                return;
            }
        };
        self.provider.set_value(Some(provider.clone()));
        tabs::listen(move |message| self.heard(message));

        if let Some(redirect) = arrival.redirect {
            match auth::complete_sign_in(&provider, &provider.client, redirect, arrival.pending)
                .await
            {
                Ok(session) => self.signed_in(&session),
                Err(SignInError::ForgotPassword) => self.reset_password(&provider),
                Err(err) => self.signed_out_with(sign_in_failure(&err)),
            }
            return;
        }
        match storage::load_session(SPA_KEYS) {
            Some(session) if session.is_fresh(location::now()) => self.signed_in(&session),
            Some(_) => match auth::renew(&provider).await {
                Ok(session) => self.signed_in(&session),
                Err(_) => {
                    storage::clear();
                    self.signed_out_with(Status::neutral(status::SIGNED_OUT));
                }
            },
            None if sign_in_requested => self.sign_in(),
            None => {
                self.signed_out_with(Status::neutral(status::SIGNED_OUT));
                tabs::tell(Message::Anyone);
            }
        }
    }

    /// Another tab's news: its sign-out ends this tab's session too; a new tab's question is
    /// answered while signed in; and being told that a tab is signed in signs this one in
    /// through the identity provider's session, without the form (once per tab).
    fn heard(self, message: Message) {
        let phase = self.phase.get_untracked();
        match (message, phase) {
            (Message::SignedOut, Phase::SignedIn { .. } | Phase::Loading) => {
                self.cancel_renewal();
                storage::clear();
                self.signed_out_with(Status::neutral(status::SIGNED_OUT_ELSEWHERE));
            }
            (Message::Anyone, Phase::SignedIn { .. }) => tabs::tell(Message::SignedIn),
            (Message::SignedIn, Phase::SignedOut) if !storage::silent_sign_in_tried() => {
                storage::mark_silent_sign_in_tried();
                self.leave_for(None, true, "Signing you in ...");
            }
            _ => {}
        }
    }

    fn signed_in(self, session: &Session) {
        self.phase.set(Phase::SignedIn {
            name: session.name.clone(),
        });
        self.status.set(status::welcome(&session.name));
        self.schedule_renewal(session);
    }

    fn signed_out_with(self, status: Status) {
        self.phase.set(Phase::SignedOut);
        self.status.set(status);
    }

    /// Renews shortly before the access token expires; a failed renewal starts a new sign-in.
    fn schedule_renewal(self, session: &Session) {
        self.cancel_renewal();
        let delay = Duration::from_secs(session.renew_in(location::now()));
        let handle = set_timeout_with_handle(
            move || {
                spawn_local(async move {
                    let Some(provider) = self.provider.get_value() else {
                        return;
                    };
                    match auth::renew(&provider).await {
                        Ok(session) => self.schedule_renewal(&session),
                        Err(_) => self.sign_in_again(),
                    }
                });
            },
            delay,
        );
        self.renewal.set_value(handle.ok());
    }

    fn cancel_renewal(self) {
        if let Some(handle) = self.renewal.try_update_value(Option::take).flatten() {
            handle.clear();
        }
    }

    fn sign_in(self) {
        self.leave_for(None, false, "Redirecting to sign in ...");
    }

    /// B2C's recommendation for SPAs on `AADB2C90118`: start the password-reset user flow,
    /// which signs the user in when it is done. A tenant without one gets the explanation.
    fn reset_password(self, provider: &Provider) {
        let flows = provider.config.policies.as_ref();
        match flows.and_then(|f| f.forgot_password.clone()) {
            Some(flow) => {
                self.leave_for(Some(flow), false, "Redirecting to reset your password ...")
            }
            None => self.signed_out_with(sign_in_failure(&SignInError::ForgotPassword)),
        }
    }

    fn edit_profile(self) {
        let Some(provider) = self.provider.get_value() else {
            return;
        };
        if let Some(flow) = edit_profile_flow(&provider) {
            self.leave_for(Some(flow), false, "Redirecting to edit your profile ...");
        }
    }

    /// Sends the browser to a user flow's sign-in; it comes back to this page.
    fn leave_for(self, flow: Option<String>, silent: bool, saying: &'static str) {
        let Some(provider) = self.provider.get_value() else {
            return;
        };
        self.cancel_renewal();
        self.phase.set(Phase::Leaving);
        self.status.set(Status::neutral(saying));
        spawn_local(async move {
            let return_to = location::path();
            let start = Start {
                flow: flow.as_deref(),
                return_to: &return_to,
                silent,
                ..Start::sign_in(&provider.client)
            };
            if let Err(why) = auth::start_sign_in(&provider, start).await {
                self.phase.set(Phase::SignedOut);
                self.status
                    .set(Status::danger(format!("Sign-in could not start: {why}")));
            }
        });
    }

    fn sign_in_again(self) {
        self.cancel_renewal();
        storage::clear();
        self.sign_in();
    }

    fn call_api(self) {
        if self.busy.get_untracked() {
            return;
        }
        let Some(provider) = self.provider.get_value() else {
            return;
        };
        self.busy.set(true);
        self.status.set(Status::neutral(status::CALLING));
        spawn_local(async move {
            let outcome = api::call(&provider).await;
            self.busy.set(false);
            match outcome {
                api::Outcome::Show(status) => {
                    self.status.set(status);
                    // The call may have renewed the tokens: keep the timer in step.
                    if let Some(session) = storage::load_session(SPA_KEYS) {
                        self.schedule_renewal(&session);
                    }
                }
                api::Outcome::SignInAgain => self.sign_in_again(),
            }
        });
    }

    fn sign_out(self) {
        self.cancel_renewal();
        tabs::tell(Message::SignedOut);
        let Some(provider) = self.provider.get_value() else {
            return;
        };
        if auth::sign_out(&provider) {
            self.phase.set(Phase::Leaving);
            self.status.set(Status::neutral("Signing out ..."));
        } else {
            self.signed_out_with(Status::neutral(status::SIGNED_OUT));
        }
    }
}

fn edit_profile_flow(provider: &Provider) -> Option<String> {
    provider.config.policies.as_ref()?.edit_profile.clone()
}

/// The IdP's own refusals (cancelled, forgot password) are a yellow notice; broken answers red;
/// a silent sign-in that found no session at the IdP just leaves the tab signed out.
fn sign_in_failure(err: &SignInError) -> Status {
    let tone = match err {
        SignInError::NoIdpSession => Tone::Neutral,
        SignInError::Provider(_) | SignInError::ForgotPassword => Tone::Warning,
        _ => Tone::Danger,
    };
    Status {
        tone,
        text: err.to_string(),
    }
}

/// The page: the top bar, then whichever route the address names. The route table is here and
/// only here; every page keeps `#app[data-phase]`, so the suite sees the session on any route.
fn app(
    loaded: Result<Provider, String>,
    mut arrival: Arrival,
    sign_in_requested: bool,
) -> impl IntoView {
    let loaded = loaded.map(Arc::new);
    let has_console = loaded.as_ref().is_ok_and(|p| p.console.is_some());
    // Taken by the console page the first time it is shown (the route's view may run again).
    let console_arrival = StoredValue::new(arrival.take_console());
    let for_console = loaded.clone();
    let ui = Ui {
        phase: RwSignal::new(Phase::Loading),
        status: RwSignal::new(Status::neutral("Loading ...")),
        busy: RwSignal::new(false),
        provider: StoredValue::new(None),
        renewal: StoredValue::new(None),
    };
    spawn_local(ui.start(loaded, arrival, sign_in_requested));
    let phase = ui.phase;
    let console_page = move || {
        let arrival = console_arrival.try_update_value(Option::take).flatten();
        console::page(for_console.clone(), arrival)
    };
    view! {
        <Router>
            {top_bar(ui, has_console)}
            <main id="app" data-phase=move || phase.with(Phase::name)>
                <FlatRoutes fallback=not_found>
                    <Route path=path!("/") view=move || home(ui) />
                    <Route path=path!("/profile") view=move || profile(ui) />
                    <Route path=path!("/console") view=console_page />
                </FlatRoutes>
            </main>
        </Router>
    }
}

/// Brand, the pages, and the account actions (Sign In, or the name and Sign Out).
fn top_bar(ui: Ui, has_console: bool) -> impl IntoView {
    let phase = ui.phase;
    // Plain `Option` views rather than `Show`/`AnyView`: each of those costs KBs of wasm.
    let account = move || {
        signed_in_as(phase).map(|name| {
            view! {
                <span id="username" class="user">{name}</span>
                {edit_profile(ui)}
                <button id="signout" type="button" class="btn btn-light" on:click=move |_| ui.sign_out()>
                    "Sign Out"
                </button>
            }
        })
    };
    let sign_in = move || {
        phase.with(|p| *p == Phase::SignedOut).then(|| {
            view! {
                <button id="signin" type="button" class="btn btn-success" on:click=move |_| ui.sign_in()>
                    "Sign In"
                </button>
            }
        })
    };
    view! {
        <header class="topbar">
            <span class="brand">"Azure Active Directory B2C with Azure API Management"</span>
            <nav class="pages" aria-label="Pages">
                <A href="/">"Home"</A>
                <A href="/profile">"Profile"</A>
                {has_console.then(|| view! { <A href="/console">"Console"</A> })}
            </nav>
            <nav class="actions" aria-label="Account">{account}{sign_in}</nav>
        </header>
    }
}

/// "Edit profile", when config.json names a profile-edit user flow.
fn edit_profile(ui: Ui) -> Option<impl IntoView> {
    ui.provider
        .with_value(|p| p.as_deref().and_then(edit_profile_flow))?;
    Some(view! {
        <button id="editprofile" type="button" class="btn btn-light" on:click=move |_| ui.edit_profile()>
            "Edit profile"
        </button>
    })
}

fn signed_in_as(phase: RwSignal<Phase>) -> Option<String> {
    phase.with(|p| match p {
        Phase::SignedIn { name } => Some(name.clone()),
        _ => None,
    })
}

/// `/`: the seed's page — the status card, Call API and the spinner.
fn home(ui: Ui) -> impl IntoView {
    let Ui {
        phase,
        status,
        busy,
        ..
    } = ui;
    let call_api = move || {
        phase
            .with(|p| matches!(p, Phase::SignedIn { .. }))
            .then(|| {
                view! {
                    <button
                        id="callapi"
                        type="button"
                        class="btn btn-warning"
                        disabled=move || busy.get()
                        on:click=move |_| ui.call_api()
                    >
                        "Call API"
                    </button>
                }
            })
    };
    let progress = move || {
        busy.get()
            .then(|| view! { <span id="progress" class="spinner" aria-hidden="true"></span> })
    };
    view! {
        <section class="card">
            <div id="cardheader" class=move || status.with(|s| s.tone.header_class())>
                <p id="message" role="status" aria-live="polite">
                    {move || status.with(|s| s.text.clone())}
                </p>
            </div>
            <div class="card-body">{call_api}{progress}</div>
        </section>
    }
}

/// `/profile`: the signed-in user's ID token claims; signed out, a prompt to sign in.
fn profile(ui: Ui) -> impl IntoView {
    let phase = ui.phase;
    let heading = move || match signed_in_as(phase) {
        Some(name) => format!("Profile of {name}"),
        None if phase.with(|p| *p == Phase::Loading) => "Loading ...".to_owned(),
        None => status::PROFILE_SIGNED_OUT.to_owned(),
    };
    // Re-read when the session changes (sign-in, renewal with a new ID token, profile edit).
    let rows = move || {
        signed_in_as(phase)?;
        let claims = profile::claims(&storage::load_session(SPA_KEYS)?.id_token)?;
        let rows = claims
            .into_iter()
            .map(|claim| {
                let value = match claim.value {
                    ClaimValue::Text(text) => text,
                    ClaimValue::Time(seconds) => location::local_time(seconds),
                };
                view! {
                    <tr>
                        <th scope="row"><code>{claim.name}</code></th>
                        <td>{value}</td>
                        <td>{claim.meaning}</td>
                    </tr>
                }
            })
            .collect_view();
        Some(view! {
            <table id="claims" class="claims">
                <thead><tr><th scope="col">"Claim"</th><th scope="col">"Value"</th><th scope="col">"Meaning"</th></tr></thead>
                <tbody>{rows}</tbody>
            </table>
        })
    };
    view! {
        <section class="card" id="profile">
            <div id="cardheader" class="card-header">
                <p id="message" role="status" aria-live="polite">{heading}</p>
            </div>
            <div class="card-body">{rows}</div>
        </section>
    }
}

/// Any other path.
fn not_found() -> impl IntoView {
    view! {
        <section class="card" id="notfound">
            <div id="cardheader" class="card-header">
                <p id="message" role="status">"Page not found"</p>
            </div>
            <div class="card-body"><A href="/">"Back to the home page"</A></div>
        </section>
    }
}
