//! End-to-end tests: the whole stack in a real headless Chromium.
