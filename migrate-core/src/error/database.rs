//! [`DatabaseError`]: a driver's error, with every password it quotes redacted.

/// A database driver's error. Its message is the driver's, with any password in a URL and the
/// value of any `password=` replaced by `***`; [`source`](std::error::Error::source) continues
/// with the driver error's own causes (none when one of them quotes such a password), and
/// [`driver_error`](Self::driver_error) gives the driver's error for downcasting.
pub struct DatabaseError {
    message: String,
    driver: Option<Box<dyn std::error::Error + Send + Sync + 'static>>,
    /// A cause below the driver's message quotes a password: `source()` stops here.
    causes_hidden: bool,
    connection_failed: bool,
}

impl DatabaseError {
    pub(super) fn new(driver: Box<dyn std::error::Error + Send + Sync + 'static>) -> Self {
        let message = redact_secrets(&driver.to_string());
        // A cause below the driver's message that quotes a password would show it through
        // `source()` (an error report walks it): the causes are not shown then.
        let mut causes = std::iter::successors(driver.source(), |err| err.source());
        let causes_hidden = causes.any(|err| {
            let text = err.to_string();
            redact_secrets(&text) != text
        });
        DatabaseError {
            message,
            driver: Some(driver),
            causes_hidden,
            connection_failed: false,
        }
    }

    /// A driver error made of a message alone (a corrupt tracking row, say).
    pub fn message(message: impl Into<String>) -> Self {
        DatabaseError {
            message: redact_secrets(&message.into()),
            driver: None,
            causes_hidden: false,
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
        if self.causes_hidden {
            return None;
        }
        self.driver.as_deref().and_then(|d| d.source())
    }
}

/// Replaces the password of every `scheme://user:password@host` in `text`, and the value of
/// every `password=` (a URL's query, a connection string), with `***`.
fn redact_secrets(text: &str) -> String {
    redact_password_parameters(&redact_url_authorities(text))
}

/// Replaces the value of every `password=` (in any case; spaces allowed around `=`) in `text`
/// with `***`: a quoted value to its closing quote, else up to the next `&`, `;`, `#`, quote or
/// whitespace.
fn redact_password_parameters(text: &str) -> String {
    const KEY: &str = "password";
    let lower = text.to_ascii_lowercase();
    let mut out = String::with_capacity(text.len());
    let mut at = 0;
    while let Some(found) = lower[at..].find(KEY) {
        let after_key = at + found + KEY.len();
        let rest = &text[after_key..];
        let spaced = rest.len() - rest.trim_start().len();
        let Some(value) = rest.trim_start().strip_prefix('=') else {
            // `password` without `=` after it: ordinary text.
            out.push_str(&text[at..after_key]);
            at = after_key;
            continue;
        };
        let value_start = after_key + spaced + 1 + (value.len() - value.trim_start().len());
        out.push_str(&text[at..value_start]);
        let value = &text[value_start..];
        let value_len = match value.chars().next() {
            Some(quote @ ('\'' | '"')) => value[1..]
                .find(quote)
                .map_or(value.len(), |close| close + 2),
            _ => value
                .find(|c: char| matches!(c, '&' | ';' | '#' | '"' | '\'') || c.is_whitespace())
                .unwrap_or(value.len()),
        };
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
            redact_secrets("cannot reach postgres://app:s3cret@db:5432/app?x=1 now"),
            "cannot reach postgres://app:***@db:5432/app?x=1 now"
        );
        assert_eq!(redact_secrets("mysql://root@h/db"), "mysql://root@h/db");
        assert_eq!(
            redact_secrets("a://u:p@h b://v:q@i"),
            "a://u:***@h b://v:***@i"
        );
        assert_eq!(redact_secrets("no url"), "no url");
    }

    #[test]
    fn password_parameters_lose_their_values() {
        assert_eq!(
            redact_secrets("postgres://db/app?user=app&Password=s3cret&sslmode=off"),
            "postgres://db/app?user=app&Password=***&sslmode=off"
        );
        assert_eq!(
            redact_secrets("host=db password=s3cret user=app"),
            "host=db password=*** user=app"
        );
        assert_eq!(redact_secrets("ends password=x"), "ends password=***");
        assert_eq!(
            redact_secrets("password='a b' user=app"),
            "password=*** user=app"
        );
        assert_eq!(
            redact_secrets(r#"password = "x y" next"#),
            "password = *** next"
        );
        assert_eq!(redact_secrets("password=''"), "password=***");
        assert_eq!(
            redact_secrets("the password is wrong; password"),
            "the password is wrong; password"
        );
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
        assert!(!format!("{err:?}").contains("hunter2"));
        // Still there for a caller that downcasts on purpose.
        assert!(err.driver_error().is_some_and(|d| d.is::<Outer>()));
    }
}
