//! One headless Chromium session over WebDriver (chromedriver on a free port, a fresh profile,
//! the project's Chromium flags), shared by the browser suites. Each suite adds its own page
//! helpers in an `impl Browser` block of its own.

use super::{ChildServer, TempDir, log, test_output_dir};
use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// One step's patience; each scenario is bounded as a whole by its own timeout.
pub const STEP: Duration = Duration::from_secs(20);

/// A scenario step: `Err` says what was expected and what was seen.
pub type Step<T = ()> = Result<T, String>;

pub fn err<E: std::fmt::Display>(what: &str) -> impl FnOnce(E) -> String + '_ {
    move |e| format!("{what}: {e}")
}

pub struct Browser {
    pub client: Client,
    driver_url: String,
    session_id: String,
    _driver: ChildServer,
    _profile: TempDir,
}

impl Browser {
    pub async fn start(label: &str) -> Browser {
        for path in ["/usr/bin/chromium", "/usr/bin/chromedriver"] {
            assert!(
                Path::new(path).exists(),
                "{path} is missing: apt-get install chromium chromium-driver (scripts/setup does)"
            );
        }
        let port = testkit::free_port();
        let mut command = std::process::Command::new("/usr/bin/chromedriver");
        command.arg(format!("--port={port}"));
        let log = log(&format!("{label}.chromedriver.log"));
        let mut driver = ChildServer::spawn(command, "chromedriver", log);
        let driver_url = format!("http://127.0.0.1:{port}");
        driver
            .wait_ready(&format!("{driver_url}/status"), STEP)
            .await;

        let profile = TempDir::new(&format!("chromium-{label}"));
        let capabilities = json!({
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": "/usr/bin/chromium",
                "args": [
                    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                    "--no-first-run", "--disable-background-networking",
                    "--disable-component-update", "--disable-sync",
                    "--window-size=1280,900",
                    format!("--user-data-dir={}", profile.path().display()),
                ],
            },
            "goog:loggingPrefs": { "browser": "ALL" },
        });
        let Value::Object(capabilities) = capabilities else {
            unreachable!()
        };
        let client = tokio::time::timeout(
            STEP * 2,
            ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
                .capabilities(capabilities)
                .connect(&driver_url),
        )
        .await
        .expect("chromium did not start within 40 s")
        .unwrap_or_else(|e| panic!("cannot start a chromium session: {e}"));
        let session_id = client.session_id().await.unwrap().unwrap();
        Browser {
            client,
            driver_url,
            session_id,
            _driver: driver,
            _profile: profile,
        }
    }
    pub async fn goto(&self, url: &str) -> Step {
        self.client.goto(url).await.map_err(err(url))
    }
    pub async fn click(&self, css: &str) -> Step {
        let element = self.wait_for_element(css).await?;
        element.click().await.map_err(err(&format!("click {css}")))
    }
    pub async fn type_into(&self, css: &str, text: &str) -> Step {
        let element = self.wait_for_element(css).await?;
        element.clear().await.map_err(err(css))?;
        element.send_keys(text).await.map_err(err(css))
    }
    pub async fn wait_for_element(&self, css: &str) -> Step<fantoccini::elements::Element> {
        let deadline = Instant::now() + STEP;
        loop {
            if let Ok(element) = self.client.find(Locator::Css(css)).await {
                return Ok(element);
            }
            ensure!(
                Instant::now() < deadline,
                "no element {css} within {STEP:?}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    pub async fn js(&self, script: &str) -> Step<Value> {
        self.client
            .execute(script, vec![])
            .await
            .map_err(err("script"))
    }
    pub async fn console_log(&self) -> String {
        let url = format!("{}/session/{}/se/log", self.driver_url, self.session_id);
        let response = reqwest::Client::new()
            .post(url)
            .json(&json!({"type": "browser"}))
            .timeout(Duration::from_secs(5))
            .send()
            .await;
        match response {
            Ok(r) => match r.json::<Value>().await {
                Ok(body) => body["value"]
                    .as_array()
                    .map(|entries| {
                        entries
                            .iter()
                            .map(|e| {
                                format!("{} {} {}\n", e["timestamp"], e["level"], e["message"])
                            })
                            .collect()
                    })
                    .unwrap_or_else(|| body.to_string()),
                Err(e) => format!("(console log unreadable: {e})"),
            },
            Err(e) => format!("(console log unavailable: {e})"),
        }
    }
    /// Screenshot, console log and page source of the current window into test-output/,
    /// as `<label>.png`, `<label>.console.log` and `<label>.html`.
    pub async fn save_evidence(&self, label: &str, console: &str) -> Vec<PathBuf> {
        let dir = test_output_dir();
        let mut saved = Vec::new();
        if let Ok(png) = self.client.screenshot().await {
            let path = dir.join(format!("{label}.png"));
            if std::fs::write(&path, png).is_ok() {
                saved.push(path);
            }
        }
        let path = dir.join(format!("{label}.console.log"));
        if std::fs::write(&path, console).is_ok() {
            saved.push(path);
        }
        if let Ok(html) = self.client.source().await {
            let path = dir.join(format!("{label}.html"));
            let url = self
                .client
                .current_url()
                .await
                .map(|u| u.to_string())
                .unwrap_or_default();
            if std::fs::write(&path, format!("<!-- {url} -->\n{html}")).is_ok() {
                saved.push(path);
            }
        }
        saved
    }
}
