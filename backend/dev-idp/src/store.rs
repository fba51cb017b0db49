//! Persistence in one SQLite file in the data directory: users, sign-in failures, sessions,
//! authorization codes, refresh-token families and signing keys.
//!
//! One connection behind a mutex: every write is serialised, so concurrent sign-ups cannot lose
//! each other's rows, and the refresh-token rotation check-and-set is atomic. Secrets (codes,
//! refresh tokens, session ids) are stored only as SHA-256 hashes. Callers run these methods on a
//! blocking thread ([`Store::run`]) and never hash passwords while holding the lock.

use std::path::Path;
use std::sync::{Arc, Mutex};

use rusqlite::types::{FromSql, FromSqlResult, ToSql, ToSqlOutput, ValueRef};
use rusqlite::{Connection, OptionalExtension, params, params_from_iter};

use crate::oauth::{ClientId, CodeChallenge, RedirectUri, Scopes};
use crate::user_flow::Policy;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("database lock poisoned")]
    Poisoned,
    #[error("background task failed")]
    Join,
}

pub struct Store {
    conn: Mutex<Connection>,
}

#[derive(Debug, Clone)]
pub struct User {
    pub id: String,
    pub email: String,
    pub display_name: String,
    pub password_hash: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Inserted {
    Created,
    EmailTaken,
}

/// Failed sign-ins for one sign-in name, whether or not such an account exists.
#[derive(Debug, Clone, Copy, Default)]
pub struct Failures {
    pub count: u32,
    pub locks: u32,
    pub locked_until: i64,
}

/// The outcome of [`Store::reserve_attempt`].
#[derive(Debug, Clone, Copy)]
pub enum Attempt {
    /// A lock is in force: the guess must not be evaluated.
    Locked,
    /// Counted as a failure until it proves right; the count after it (may have just locked).
    Reserved(Failures),
}

#[derive(Debug, Clone)]
pub struct Session {
    pub user_id: String,
    pub auth_time: i64,
}

/// What a user granted a client in one sign-in: carried by the authorization code, then by the
/// refresh-token family its redemption opens.
#[derive(Debug, Clone)]
pub struct Grant {
    pub user_id: String,
    pub client_id: ClientId,
    pub scopes: Scopes,
    pub policy: Policy,
    pub auth_time: i64,
    pub expires_at: i64,
}

/// The columns a [`Grant`] is stored in (codes and families alike), in [`Grant::values`]' order.
const GRANT_COLUMNS: &str = "user_id, client_id, scopes, policy, auth_time, expires_at";

impl Grant {
    /// The grant in the row's [`GRANT_COLUMNS`], starting at column `first`.
    fn from_row(r: &rusqlite::Row<'_>, first: usize) -> rusqlite::Result<Self> {
        Ok(Self {
            user_id: r.get(first)?,
            client_id: r.get(first + 1)?,
            scopes: r.get(first + 2)?,
            policy: r.get(first + 3)?,
            auth_time: r.get(first + 4)?,
            expires_at: r.get(first + 5)?,
        })
    }

    /// The values of [`GRANT_COLUMNS`].
    fn values(&self) -> [&dyn ToSql; 6] {
        [
            &self.user_id,
            &self.client_id,
            &self.scopes,
            &self.policy,
            &self.auth_time,
            &self.expires_at,
        ]
    }
}

/// The protocol's text values are stored as they are spelt.
macro_rules! text_column {
    ($($t:ty),*) => {$(
        impl ToSql for $t {
            fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
                Ok(ToSqlOutput::from(self.as_str()))
            }
        }

        impl FromSql for $t {
            fn column_result(value: ValueRef<'_>) -> FromSqlResult<Self> {
                String::column_result(value).map(Self::new)
            }
        }
    )*};
}

text_column!(ClientId, RedirectUri, Policy);

/// A scope set is stored space-separated.
impl ToSql for Scopes {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(ToSqlOutput::from(self.joined()))
    }
}

impl FromSql for Scopes {
    fn column_result(value: ValueRef<'_>) -> FromSqlResult<Self> {
        String::column_result(value).map(|list| Self::parse(&list))
    }
}

/// An authorization code's grant and what binds it: the redirect URI, the PKCE challenge (none
/// for a web app's hybrid flow, whose code only its secret redeems) and the sign-in's nonce.
#[derive(Debug, Clone)]
pub struct CodeRecord {
    pub grant: Grant,
    pub redirect_uri: RedirectUri,
    pub code_challenge: Option<CodeChallenge>,
    pub nonce: Option<String>,
}

pub enum Redemption {
    Valid(CodeRecord),
    /// Already redeemed once: everything issued from it has now been revoked.
    Reused,
    Unknown,
}

#[derive(Debug, Clone)]
pub struct Family {
    pub id: String,
    pub grant: Grant,
}

pub enum Rotation {
    Rotated(Family),
    /// A refresh token used a second time: its whole family is now revoked.
    Reused,
    /// Unknown, expired, revoked, or issued to another client.
    Invalid,
}

/// A password-reset verification code sent (or, for an unknown address, pretended sent).
#[derive(Debug, Clone)]
pub struct Verification {
    /// Normalised email address.
    pub email: String,
    /// `None` when no account has the address: its code can never match.
    pub user_id: Option<String>,
    pub code_mac: Vec<u8>,
    pub expires_at: i64,
}

/// The outcome of [`Store::insert_verification`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sent {
    Stored,
    /// Too many codes for this address in the last minute.
    AddressLimited,
    /// Too many outstanding codes altogether.
    Full,
}

/// The outcome of [`Store::check_code`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CodeCheck {
    Verified,
    Wrong,
    TooManyTries,
    Expired,
    /// Unknown verification, or its code was already used.
    Used,
}

#[derive(Debug, Clone)]
pub struct StoredKey {
    pub kid: String,
    pub pkcs8: Vec<u8>,
    pub created_at: i64,
}

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS users (
    id TEXT PRIMARY KEY,
    email TEXT NOT NULL UNIQUE COLLATE NOCASE,
    display_name TEXT NOT NULL,
    password_hash TEXT NOT NULL,
    created_at INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS signin_failures (
    name TEXT PRIMARY KEY,
    count INTEGER NOT NULL,
    locks INTEGER NOT NULL,
    locked_until INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS sessions (
    hash TEXT PRIMARY KEY,
    user_id TEXT NOT NULL,
    auth_time INTEGER NOT NULL,
    expires_at INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS codes (
    hash TEXT PRIMARY KEY,
    client_id TEXT NOT NULL,
    redirect_uri TEXT NOT NULL,
    code_challenge TEXT NOT NULL,
    nonce TEXT,
    user_id TEXT NOT NULL,
    scopes TEXT NOT NULL,
    policy TEXT NOT NULL,
    auth_time INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    used INTEGER NOT NULL DEFAULT 0,
    revoked INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS families (
    id TEXT PRIMARY KEY,
    origin_code TEXT,
    user_id TEXT NOT NULL,
    client_id TEXT NOT NULL,
    scopes TEXT NOT NULL,
    policy TEXT NOT NULL,
    auth_time INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    revoked INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS families_origin ON families(origin_code);
CREATE TABLE IF NOT EXISTS refresh_tokens (
    hash TEXT PRIMARY KEY,
    family_id TEXT NOT NULL REFERENCES families(id),
    used INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS verifications (
    hash TEXT PRIMARY KEY,
    email TEXT NOT NULL,
    user_id TEXT,
    code_mac BLOB NOT NULL,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    tries INTEGER NOT NULL DEFAULT 0,
    verified INTEGER NOT NULL DEFAULT 0,
    used INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS verifications_email ON verifications(email, created_at);
CREATE TABLE IF NOT EXISTS signing_keys (
    kid TEXT PRIMARY KEY,
    pkcs8 BLOB NOT NULL,
    created_at INTEGER NOT NULL,
    retired_at INTEGER
);
";

impl Store {
    /// Opens (creating if needed) `devidp.sqlite3` in `dir`.
    pub fn open(dir: &Path) -> Result<Self, StoreError> {
        let conn = Connection::open(dir.join("devidp.sqlite3"))?;
        // Another process (`dev-idp rotate-keys`) may write at the same time.
        conn.busy_timeout(std::time::Duration::from_secs(5))?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        conn.pragma_update(None, "foreign_keys", "ON")?;
        conn.execute_batch(SCHEMA)?;
        let store = Self {
            conn: Mutex::new(conn),
        };
        store.normalize_emails()?;
        Ok(store)
    }

    /// Rewrites every stored email in its normalised form ([`crate::email::normalized`]); rows
    /// written before that form existed may differ. When two rows fold to one address the older
    /// account keeps it; each younger one is renamed `duplicate-{id}:{email}` (kept, never matched
    /// by a sign-in) and logged by id.
    fn normalize_emails(&self) -> Result<(), StoreError> {
        let renamed = self.with(|c| {
            let tx = c.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
            let rows: Vec<(String, String)> = tx
                .prepare("SELECT id, email FROM users ORDER BY created_at, rowid")?
                .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
                .collect::<rusqlite::Result<_>>()?;
            let mut claimed = std::collections::HashSet::new();
            let mut changes = Vec::new();
            let mut duplicates = Vec::new();
            for (id, email) in rows {
                let mut target = crate::email::normalized(&email);
                if !claimed.insert(target.clone()) {
                    target = format!("duplicate-{id}:{email}");
                    duplicates.push(id.clone());
                }
                if target != email {
                    changes.push((id, target));
                }
            }
            // Two passes through unique placeholders, so no intermediate state breaks UNIQUE.
            for (id, _) in &changes {
                tx.execute(
                    "UPDATE users SET email = 'migrating:' || id WHERE id = ?1",
                    [id],
                )?;
            }
            for (id, target) in &changes {
                tx.execute(
                    "UPDATE users SET email = ?1 WHERE id = ?2",
                    params![target, id],
                )?;
            }
            tx.commit()?;
            Ok(duplicates)
        })?;
        for id in renamed {
            tracing::warn!(user_id = %id, "an older account has the same normalised email; this one was renamed duplicate-{{id}}:… and can no longer sign in");
        }
        Ok(())
    }

    fn with<T>(
        &self,
        f: impl FnOnce(&mut Connection) -> rusqlite::Result<T>,
    ) -> Result<T, StoreError> {
        let mut conn = self.conn.lock().map_err(|_| StoreError::Poisoned)?;
        Ok(f(&mut conn)?)
    }

    /// Runs `f` on a blocking thread: SQLite calls may wait on disk or on another process's lock.
    pub async fn run<T, F>(self: &Arc<Self>, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Store) -> Result<T, StoreError> + Send + 'static,
    {
        let store = Arc::clone(self);
        tokio::task::spawn_blocking(move || f(&store))
            .await
            .map_err(|_| StoreError::Join)?
    }

    /// Changes whenever *another* connection (another process) has committed since the last
    /// call on this one: the running server's cheap signal that `dev-idp rotate-keys` ran.
    pub fn data_version(&self) -> Result<i64, StoreError> {
        self.with(|c| c.query_row("PRAGMA data_version", [], |r| r.get(0)))
    }

    // --- users ---

    /// Stores the user under the normalised form of `user.email`; an existing account with the
    /// same form makes it [`Inserted::EmailTaken`].
    pub fn insert_user(&self, user: &User, now: i64) -> Result<Inserted, StoreError> {
        let email = crate::email::normalized(&user.email);
        self.with(|c| {
            let n = c.execute(
                "INSERT INTO users (id, email, display_name, password_hash, created_at)
                 VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT(email) DO NOTHING",
                params![user.id, email, user.display_name, user.password_hash, now],
            )?;
            Ok(if n == 1 {
                Inserted::Created
            } else {
                Inserted::EmailTaken
            })
        })
    }

    /// The account whose normalised email equals that of `email`.
    pub fn user_by_email(&self, email: &str) -> Result<Option<User>, StoreError> {
        self.user_where("email = ?1", &crate::email::normalized(email))
    }

    pub fn user_by_id(&self, id: &str) -> Result<Option<User>, StoreError> {
        self.user_where("id = ?1", id)
    }

    fn user_where(&self, condition: &str, value: &str) -> Result<Option<User>, StoreError> {
        let sql =
            format!("SELECT id, email, display_name, password_hash FROM users WHERE {condition}");
        self.with(|c| {
            c.query_row(&sql, [value], |r| {
                Ok(User {
                    id: r.get(0)?,
                    email: r.get(1)?,
                    display_name: r.get(2)?,
                    password_hash: r.get(3)?,
                })
            })
            .optional()
        })
    }

    pub fn user_count(&self) -> Result<i64, StoreError> {
        self.with(|c| c.query_row("SELECT count(*) FROM users", [], |r| r.get(0)))
    }

    // --- failed sign-ins ---

    /// Reserves one sign-in attempt for `name` before its password is checked: in one
    /// transaction, refuses it while a lock is in force, otherwise counts it as a failure up
    /// front (`decide` then locks at the threshold). Counting before the slow hash is what keeps
    /// concurrent guesses from all reading the same count: the N-th reservation locks, so at
    /// most `threshold` guesses per window are ever evaluated. A right guess clears the count.
    pub fn reserve_attempt(
        &self,
        name: &str,
        now: i64,
        decide: impl FnOnce(Failures) -> Failures,
    ) -> Result<Attempt, StoreError> {
        self.with(|c| {
            let tx = c.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
            let mut f = tx
                .query_row(
                    "SELECT count, locks, locked_until FROM signin_failures WHERE name = ?1",
                    [name],
                    |r| Ok(Failures { count: r.get(0)?, locks: r.get(1)?, locked_until: r.get(2)? }),
                )
                .optional()?
                .unwrap_or_default();
            if f.locked_until > now {
                return Ok(Attempt::Locked);
            }
            f.count += 1;
            let f = decide(f);
            tx.execute(
                "INSERT INTO signin_failures (name, count, locks, locked_until) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT(name) DO UPDATE SET count = ?2, locks = ?3, locked_until = ?4",
                params![name, f.count, f.locks, f.locked_until],
            )?;
            tx.commit()?;
            Ok(Attempt::Reserved(f))
        })
    }

    pub fn clear_failures(&self, name: &str) -> Result<(), StoreError> {
        self.with(|c| {
            c.execute("DELETE FROM signin_failures WHERE name = ?1", [name])
                .map(drop)
        })
    }

    pub fn set_display_name(&self, user_id: &str, name: &str) -> Result<(), StoreError> {
        self.with(|c| {
            c.execute(
                "UPDATE users SET display_name = ?1 WHERE id = ?2",
                params![name, user_id],
            )
            .map(drop)
        })
    }

    // --- password-reset verification codes ---

    /// Stores a sent code unless the address had `per_address` codes in the last minute or
    /// `outstanding` unexpired codes exist altogether (both checked in the same transaction).
    pub fn insert_verification(
        &self,
        hash: &str,
        v: &Verification,
        now: i64,
        per_address: i64,
        outstanding: i64,
    ) -> Result<Sent, StoreError> {
        self.with(|c| {
            let tx = c.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
            let recent: i64 = tx.query_row(
                "SELECT count(*) FROM verifications WHERE email = ?1 AND created_at > ?2 - 60",
                params![v.email, now],
                |r| r.get(0),
            )?;
            if recent >= per_address {
                return Ok(Sent::AddressLimited);
            }
            let open: i64 = tx.query_row(
                "SELECT count(*) FROM verifications WHERE expires_at > ?1",
                [now],
                |r| r.get(0),
            )?;
            if open >= outstanding {
                return Ok(Sent::Full);
            }
            tx.execute(
                "INSERT INTO verifications (hash, email, user_id, code_mac, created_at, expires_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![hash, v.email, v.user_id, v.code_mac, now, v.expires_at],
            )?;
            tx.commit()?;
            Ok(Sent::Stored)
        })
    }

    /// Checks a typed code: in one transaction the try is counted before `matches` compares,
    /// so concurrent guesses cannot exceed `max_tries`. A right code marks it verified (and used
    /// up as a code: a second verification is refused).
    pub fn check_code(
        &self,
        hash: &str,
        now: i64,
        max_tries: u32,
        matches: impl FnOnce(&[u8]) -> bool,
    ) -> Result<CodeCheck, StoreError> {
        self.with(|c| {
            let tx = c.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
            let row: Option<(Vec<u8>, i64, u32, bool)> = tx
                .query_row(
                    "SELECT code_mac, expires_at, tries, verified OR used FROM verifications WHERE hash = ?1",
                    [hash],
                    |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
                )
                .optional()?;
            let Some((mac, expires_at, tries, spent)) = row else {
                return Ok(CodeCheck::Used);
            };
            if spent {
                return Ok(CodeCheck::Used);
            }
            if expires_at <= now {
                return Ok(CodeCheck::Expired);
            }
            if tries >= max_tries {
                return Ok(CodeCheck::TooManyTries);
            }
            tx.execute("UPDATE verifications SET tries = tries + 1 WHERE hash = ?1", [hash])?;
            let outcome = if matches(&mac) {
                // The new password may take a while to choose: ten minutes from here.
                tx.execute(
                    "UPDATE verifications SET verified = 1, expires_at = ?2 + 600 WHERE hash = ?1",
                    params![hash, now],
                )?;
                CodeCheck::Verified
            } else {
                CodeCheck::Wrong
            };
            tx.commit()?;
            Ok(outcome)
        })
    }

    /// Ends a verified, unexpired, unused reset: sets the account's password hash and clears
    /// its failed sign-ins, in one transaction. `None` when there is nothing to complete.
    pub fn complete_reset(
        &self,
        hash: &str,
        now: i64,
        password_hash: &str,
    ) -> Result<Option<String>, StoreError> {
        self.with(|c| {
            let tx = c.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
            let row: Option<(String, Option<String>)> = tx
                .query_row(
                    "SELECT email, user_id FROM verifications
                     WHERE hash = ?1 AND verified = 1 AND used = 0 AND expires_at > ?2",
                    params![hash, now],
                    |r| Ok((r.get(0)?, r.get(1)?)),
                )
                .optional()?;
            let Some((email, Some(user_id))) = row else {
                return Ok(None);
            };
            tx.execute("UPDATE verifications SET used = 1 WHERE hash = ?1", [hash])?;
            let updated = tx.execute(
                "UPDATE users SET password_hash = ?1 WHERE id = ?2",
                params![password_hash, user_id],
            )?;
            tx.execute("DELETE FROM signin_failures WHERE name = ?1", [&email])?;
            tx.commit()?;
            Ok((updated == 1).then_some(user_id))
        })
    }

    // --- sessions ---

    pub fn create_session(
        &self,
        hash: &str,
        session: &Session,
        expires_at: i64,
    ) -> Result<(), StoreError> {
        self.with(|c| {
            c.execute(
                "INSERT INTO sessions (hash, user_id, auth_time, expires_at) VALUES (?1, ?2, ?3, ?4)",
                params![hash, session.user_id, session.auth_time, expires_at],
            )
            .map(drop)
        })
    }

    pub fn session(&self, hash: &str, now: i64) -> Result<Option<Session>, StoreError> {
        self.with(|c| {
            c.query_row(
                "SELECT user_id, auth_time FROM sessions WHERE hash = ?1 AND expires_at > ?2",
                params![hash, now],
                |r| {
                    Ok(Session {
                        user_id: r.get(0)?,
                        auth_time: r.get(1)?,
                    })
                },
            )
            .optional()
        })
    }

    pub fn delete_session(&self, hash: &str) -> Result<(), StoreError> {
        self.with(|c| {
            c.execute("DELETE FROM sessions WHERE hash = ?1", [hash])
                .map(drop)
        })
    }

    // --- authorization codes ---

    pub fn insert_code(&self, hash: &str, code: &CodeRecord) -> Result<(), StoreError> {
        // A code without PKCE (a web app's) stores an empty challenge, which no verifier matches.
        let challenge = code
            .code_challenge
            .as_ref()
            .map_or("", CodeChallenge::as_str);
        let own = params![hash, code.redirect_uri, challenge, code.nonce];
        self.with(|c| {
            c.execute(
                &format!(
                    "INSERT INTO codes (hash, redirect_uri, code_challenge, nonce, {GRANT_COLUMNS})
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)"
                ),
                params_from_iter(own.iter().chain(&code.grant.values())),
            )
            .map(drop)
        })
    }

    /// Marks the code used. A second redemption revokes the code and every family it started.
    pub fn redeem_code(&self, hash: &str) -> Result<Redemption, StoreError> {
        self.with(|c| {
            let tx = c.transaction()?;
            let row = tx
                .query_row(
                    &format!(
                        "SELECT redirect_uri, code_challenge, nonce, used, {GRANT_COLUMNS}
                         FROM codes WHERE hash = ?1"
                    ),
                    [hash],
                    |r| {
                        let record = CodeRecord {
                            redirect_uri: r.get(0)?,
                            code_challenge: CodeChallenge::parse(&r.get::<_, String>(1)?),
                            nonce: r.get(2)?,
                            grant: Grant::from_row(r, 4)?,
                        };
                        Ok((record, r.get::<_, bool>(3)?))
                    },
                )
                .optional()?;
            let outcome = match row {
                None => Redemption::Unknown,
                Some((_, true)) => {
                    tx.execute("UPDATE codes SET revoked = 1 WHERE hash = ?1", [hash])?;
                    tx.execute(
                        "UPDATE families SET revoked = 1 WHERE origin_code = ?1",
                        [hash],
                    )?;
                    Redemption::Reused
                }
                Some((record, false)) => {
                    tx.execute("UPDATE codes SET used = 1 WHERE hash = ?1", [hash])?;
                    Redemption::Valid(record)
                }
            };
            tx.commit()?;
            Ok(outcome)
        })
    }

    // --- refresh-token families ---

    /// Starts a family with its first refresh token. Returns false (and stores nothing) when the
    /// originating code was revoked in the meantime by a reuse.
    pub fn create_family(
        &self,
        family: &Family,
        origin_code: Option<&str>,
        token_hash: &str,
    ) -> Result<bool, StoreError> {
        self.with(|c| {
            let tx = c.transaction()?;
            if let Some(code) = origin_code {
                let revoked: bool = tx
                    .query_row("SELECT revoked FROM codes WHERE hash = ?1", [code], |r| {
                        r.get(0)
                    })
                    .optional()?
                    .unwrap_or(true);
                if revoked {
                    return Ok(false);
                }
            }
            let own = params![family.id, origin_code];
            tx.execute(
                &format!(
                    "INSERT INTO families (id, origin_code, {GRANT_COLUMNS})
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)"
                ),
                params_from_iter(own.iter().chain(&family.grant.values())),
            )?;
            tx.execute(
                "INSERT INTO refresh_tokens (hash, family_id) VALUES (?1, ?2)",
                params![token_hash, family.id],
            )?;
            tx.commit()?;
            Ok(true)
        })
    }

    /// Exchanges a refresh token for its successor in one transaction.
    pub fn rotate_refresh(
        &self,
        hash: &str,
        new_hash: &str,
        client_id: &str,
        now: i64,
    ) -> Result<Rotation, StoreError> {
        self.with(|c| {
            let tx = c.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
            let token: Option<(String, bool)> = tx
                .query_row(
                    "SELECT family_id, used FROM refresh_tokens WHERE hash = ?1",
                    [hash],
                    |r| Ok((r.get(0)?, r.get(1)?)),
                )
                .optional()?;
            let Some((family_id, used)) = token else {
                return Ok(Rotation::Invalid);
            };
            if used {
                tx.execute(
                    "UPDATE families SET revoked = 1 WHERE id = ?1",
                    [&family_id],
                )?;
                tx.commit()?;
                return Ok(Rotation::Reused);
            }
            let family: Option<(Family, bool)> = tx
                .query_row(
                    &format!("SELECT id, revoked, {GRANT_COLUMNS} FROM families WHERE id = ?1"),
                    [&family_id],
                    |r| {
                        let family = Family {
                            id: r.get(0)?,
                            grant: Grant::from_row(r, 2)?,
                        };
                        Ok((family, r.get(1)?))
                    },
                )
                .optional()?;
            let Some((family, revoked)) = family else {
                return Ok(Rotation::Invalid);
            };
            // A token presented by the wrong client is not consumed: the rightful holder keeps it.
            let grant = &family.grant;
            if revoked || grant.expires_at <= now || grant.client_id.as_str() != client_id {
                return Ok(Rotation::Invalid);
            }
            tx.execute("UPDATE refresh_tokens SET used = 1 WHERE hash = ?1", [hash])?;
            tx.execute(
                "INSERT INTO refresh_tokens (hash, family_id) VALUES (?1, ?2)",
                params![new_hash, family.id],
            )?;
            tx.commit()?;
            Ok(Rotation::Rotated(family))
        })
    }

    // --- signing keys ---

    /// Keys still published, newest first; the first one signs.
    pub fn active_keys(&self) -> Result<Vec<StoredKey>, StoreError> {
        self.with(|c| {
            let mut stmt = c.prepare(
                "SELECT kid, pkcs8, created_at FROM signing_keys WHERE retired_at IS NULL
                 ORDER BY created_at DESC, rowid DESC",
            )?;
            let rows = stmt.query_map([], |r| {
                Ok(StoredKey {
                    kid: r.get(0)?,
                    pkcs8: r.get(1)?,
                    created_at: r.get(2)?,
                })
            })?;
            rows.collect()
        })
    }

    pub fn insert_key(&self, key: &StoredKey) -> Result<(), StoreError> {
        self.with(|c| {
            c.execute(
                "INSERT INTO signing_keys (kid, pkcs8, created_at) VALUES (?1, ?2, ?3)",
                params![key.kid, key.pkcs8, key.created_at],
            )
            .map(drop)
        })
    }

    /// Retires every published key except the newest; returns how many were retired.
    pub fn retire_old_keys(&self, now: i64) -> Result<usize, StoreError> {
        self.with(|c| {
            c.execute(
                "UPDATE signing_keys SET retired_at = ?1 WHERE retired_at IS NULL AND rowid NOT IN
                   (SELECT rowid FROM signing_keys WHERE retired_at IS NULL
                    ORDER BY created_at DESC, rowid DESC LIMIT 1)",
                [now],
            )
        })
    }

    /// Deletes expired codes, sessions and families so the file does not grow without bound.
    pub fn purge_expired(&self, now: i64) -> Result<(), StoreError> {
        self.with(|c| {
            let tx = c.transaction()?;
            // Used codes are kept past expiry for a while so a late reuse is still detected.
            tx.execute("DELETE FROM codes WHERE expires_at < ?1 - 86400", [now])?;
            tx.execute("DELETE FROM sessions WHERE expires_at < ?1", [now])?;
            // Kept a minute past expiry: the per-address send limit counts the last minute.
            tx.execute("DELETE FROM verifications WHERE expires_at < ?1 - 60", [now])?;
            tx.execute(
                "DELETE FROM refresh_tokens WHERE family_id IN (SELECT id FROM families WHERE expires_at < ?1)",
                [now],
            )?;
            tx.execute("DELETE FROM families WHERE expires_at < ?1", [now])?;
            tx.commit()
        })
    }
}
