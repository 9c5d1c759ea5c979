//! [`DatabaseError`]: a driver's error, with every password it quotes redacted.

/// A database driver's error. Its message is the driver's, with any password in a URL replaced
/// by `***`; [`source`](std::error::Error::source) continues with the driver error's own causes,
/// and [`driver_error`](Self::driver_error) gives the driver's error for downcasting.
pub struct DatabaseError {
    message: String,
    driver: Option<Box<dyn std::error::Error + Send + Sync + 'static>>,
    connection_failed: bool,
}

impl DatabaseError {
    pub(super) fn new(driver: Box<dyn std::error::Error + Send + Sync + 'static>) -> Self {
        let message = redact_urls(&driver.to_string());
        // A cause below the driver's message that quotes a URL's password would show it
        // through `source()`: the driver's error is not kept then.
        let mut causes = std::iter::successors(driver.source(), |err| err.source());
        let leaks = causes.any(|err| {
            let text = err.to_string();
            redact_urls(&text) != text
        });
        DatabaseError {
            message,
            driver: (!leaks).then_some(driver),
            connection_failed: false,
        }
    }

    /// A driver error made of a message alone (a corrupt tracking row, say).
    pub fn message(message: impl Into<String>) -> Self {
        DatabaseError {
            message: redact_urls(&message.into()),
            driver: None,
            connection_failed: false,
        }
    }

    /// Marks the error as the connection's, not the statement's: the server could not be
    /// reached or the connection was lost (an I/O error, no pooled connection within the
    /// pool's timeout). [`Error::category`](super::Error::category) is then `Unreachable`.
    pub fn connection_failed(mut self) -> Self {
        self.connection_failed = true;
        self
    }

    /// Whether the connection failed, rather than a statement on it
    /// ([`connection_failed`](Self::connection_failed)).
    pub fn is_connection_failure(&self) -> bool {
        self.connection_failed
    }

    pub(super) fn redact_as(mut self, secret: &str, replacement: &str) -> Self {
        self.message = self.message.replace(secret, replacement);
        if self.driver_text_contains(secret) {
            // The driver's own error would show the secret through `source()` or `Debug`.
            self.driver = None;
        }
        self
    }

    fn driver_text_contains(&self, secret: &str) -> bool {
        let mut next = self
            .driver
            .as_deref()
            .map(|d| d as &(dyn std::error::Error + 'static));
        while let Some(err) = next {
            if err.to_string().contains(secret) || format!("{err:?}").contains(secret) {
                return true;
            }
            next = err.source();
        }
        false
    }

    /// The same error, its message preceded by what was being done (`creating the tracking
    /// tables of …`): the driver's message alone rarely names the object at fault.
    ///
    /// ```
    /// use migrate_core::error::DatabaseError;
    /// let err = DatabaseError::message("permission denied for schema public")
    ///     .context("creating the tracking table `versions`");
    /// assert_eq!(
    ///     err.to_string(),
    ///     "database error: creating the tracking table `versions`: permission denied for schema public"
    /// );
    /// ```
    pub fn context(mut self, doing: impl std::fmt::Display) -> Self {
        self.message = format!("{doing}: {}", self.message);
        self
    }

    /// The driver's error (a `sqlx::Error`, for the built-in backends), for downcasting.
    pub fn driver_error(&self) -> Option<&(dyn std::error::Error + Send + Sync + 'static)> {
        self.driver.as_deref()
    }
}

impl std::fmt::Display for DatabaseError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "database error: {}", self.message)
    }
}

impl std::fmt::Debug for DatabaseError {
    /// The redacted message only: a driver's `Debug` may print connection options.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DatabaseError")
            .field("message", &self.message)
            .finish_non_exhaustive()
    }
}

impl std::error::Error for DatabaseError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        // The driver's message is already this error's: continue below it.
        self.driver.as_deref().and_then(|d| d.source())
    }
}

/// Replaces the password of every `scheme://user:password@host` in `text`, and the value of
/// every `password=` (a URL's query, a connection string), with `***`.
fn redact_urls(text: &str) -> String {
    redact_password_parameters(&redact_url_authorities(text))
}

/// Replaces the value of every `password=` (in any case) in `text` with `***`: up to the next
/// `&`, `;`, `#`, quote or whitespace.
fn redact_password_parameters(text: &str) -> String {
    const KEY: &str = "password=";
    let lower = text.to_ascii_lowercase();
    let mut out = String::with_capacity(text.len());
    let mut at = 0;
    while let Some(found) = lower[at..].find(KEY) {
        let value_start = at + found + KEY.len();
        out.push_str(&text[at..value_start]);
        let value_len = text[value_start..]
            .find(|c: char| matches!(c, '&' | ';' | '#' | '"' | '\'') || c.is_whitespace())
            .unwrap_or(text.len() - value_start);
        if value_len > 0 {
            out.push_str("***");
        }
        at = value_start + value_len;
    }
    out.push_str(&text[at..]);
    out
}

/// Replaces the password of every `scheme://user:password@host` in `text` with `***`.
fn redact_url_authorities(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find("://") {
        let (before, after) = rest.split_at(start + 3);
        out.push_str(before);
        let authority_end = after
            .find(|c: char| c == '/' || c == '?' || c == '#' || c.is_whitespace())
            .unwrap_or(after.len());
        let authority = &after[..authority_end];
        match (authority.rfind('@'), authority.find(':')) {
            (Some(at), Some(colon)) if colon < at => {
                out.push_str(&authority[..=colon]);
                out.push_str("***");
                out.push_str(&authority[at..]);
            }
            _ => out.push_str(authority),
        }
        rest = &after[authority_end..];
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_lose_their_passwords() {
        assert_eq!(
            redact_urls("cannot reach postgres://app:s3cret@db:5432/app?x=1 now"),
            "cannot reach postgres://app:***@db:5432/app?x=1 now"
        );
        assert_eq!(redact_urls("mysql://root@h/db"), "mysql://root@h/db");
        assert_eq!(
            redact_urls("a://u:p@h b://v:q@i"),
            "a://u:***@h b://v:***@i"
        );
        assert_eq!(redact_urls("no url"), "no url");
    }

    #[test]
    fn password_parameters_lose_their_values() {
        assert_eq!(
            redact_urls("postgres://db/app?user=app&Password=s3cret&sslmode=off"),
            "postgres://db/app?user=app&Password=***&sslmode=off"
        );
        assert_eq!(
            redact_urls("host=db password=s3cret user=app"),
            "host=db password=*** user=app"
        );
        assert_eq!(redact_urls("password= empty"), "password= empty");
        assert_eq!(redact_urls("ends password=x"), "ends password=***");
    }

    #[derive(Debug)]
    struct Outer(Inner);
    #[derive(Debug)]
    struct Inner;
    impl std::fmt::Display for Outer {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("could not connect")
        }
    }
    impl std::fmt::Display for Inner {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("refused by mysql://root:hunter2@db/app")
        }
    }
    impl std::error::Error for Outer {
        fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
            Some(&self.0)
        }
    }
    impl std::error::Error for Inner {}

    #[test]
    fn a_cause_quoting_a_password_is_not_kept() {
        use std::error::Error as _;
        let err = DatabaseError::new(Box::new(Outer(Inner)));
        assert_eq!(err.to_string(), "database error: could not connect");
        assert!(err.source().is_none(), "the cause would show the password");
        assert!(err.driver_error().is_none());
        assert!(!format!("{err:?}").contains("hunter2"));
    }
}
