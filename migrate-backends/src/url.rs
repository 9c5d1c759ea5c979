//! The credentials of a database URL, so that errors about that URL can leave them out.

/// The pieces of `scheme://userinfo@host:port/path?query#fragment` the helpers below need.
struct Parts<'u> {
    scheme: &'u str,
    userinfo: Option<&'u str>,
    host: &'u str,
    /// The path, without query or fragment.
    path: &'u str,
}

fn parts(url: &str) -> Option<Parts<'_>> {
    let (scheme, rest) = url.split_once("://")?;
    let (authority, tail) = rest.split_at(rest.find(['/', '?', '#']).unwrap_or(rest.len()));
    let path = &tail[..tail.find(['?', '#']).unwrap_or(tail.len())];
    let (userinfo, host) = match authority.rsplit_once('@') {
        Some((userinfo, host)) => (Some(userinfo), host),
        None => (None, authority),
    };
    Some(Parts {
        scheme,
        userinfo,
        host,
        path,
    })
}

/// The query keys whose values are secrets: PostgreSQL's URLs take the password itself, and
/// the passphrase of the client's TLS key.
const SECRET_KEYS: [&str; 2] = ["password", "sslpassword"];

/// Every password `url` gives, as written: in its user information (`user:password@`), and
/// in its query's `password=` and `sslpassword=` (empty ones left out);
/// [`percent_decode`] gives the other form a message might show.
pub(crate) fn passwords(url: &str) -> Vec<String> {
    let in_userinfo = parts(url)
        .and_then(|p| p.userinfo)
        .and_then(|userinfo| userinfo.split_once(':'))
        .map(|(_, password)| password.to_string());
    let query = url.split_once('?').map_or("", |(_, query)| {
        &query[..query.find('#').unwrap_or(query.len())]
    });
    let in_query = query.split('&').filter_map(|pair| {
        let (key, value) = pair.split_once('=')?;
        SECRET_KEYS
            .contains(&percent_decode(key).as_str())
            .then(|| value.to_string())
    });
    in_userinfo
        .into_iter()
        .chain(in_query)
        .filter(|p| !p.is_empty())
        .collect()
}

/// The server a URL names, as `scheme://host:port/database`: no user, no password, no query.
#[cfg_attr(not(any(feature = "postgres", feature = "mysql")), allow(dead_code))]
pub(crate) fn server(url: &str) -> String {
    match parts(url) {
        Some(p) => format!("{}://{}{}", p.scheme, p.host, p.path),
        None => "the database URL".to_string(),
    }
}

/// `url` naming the database `database` on the same server, with the same user and query.
#[cfg_attr(not(any(feature = "snapshot", feature = "testing")), allow(dead_code))]
pub(crate) fn with_database(url: &str, database: &str) -> Option<String> {
    let p = parts(url)?;
    let (_, rest) = url.split_once("://")?;
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let after_path = &rest[authority_end + p.path.len()..];
    Some(format!(
        "{}://{}/{database}{after_path}",
        p.scheme,
        &rest[..authority_end]
    ))
}

/// `text` with the password of `url` replaced by `***`, as written and percent-decoded: for a
/// host that prints messages which might quote the URL it was given.
///
/// ```
/// let url = "postgres://app:s%40cret@db.internal/app";
/// let text = format!("cannot reach {url} (password s@cret)");
/// assert_eq!(
///     migrate_backends::redact_url_password(&text, url),
///     "cannot reach postgres://app:***@db.internal/app (password ***)"
/// );
/// ```
///
/// A password shorter than 4 characters is blanked only where a URL writes it
/// (`:pw@`, `password=pw`): as bare text it would blank unrelated digits and words (a count of
/// `2` in JSON, a version `2.3.0`).
pub fn redact_url_password(text: &str, url: &str) -> String {
    blankings(url)
        .into_iter()
        .fold(text.to_string(), |text, (form, blank)| {
            text.replace(&form, &blank)
        })
}

/// What to replace, and with what, to blank every password of `url` out of a text: each
/// password as written and percent-decoded, wherever it appears, or, shorter than
/// [`SHORT_PASSWORD`], only where a URL writes it (`:pw@`, `password=pw`).
fn blankings(url: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for secret in passwords(url) {
        let decoded = percent_decode(&secret);
        for form in [secret, decoded] {
            if form.is_empty() {
                continue;
            }
            if form.chars().count() >= SHORT_PASSWORD {
                out.push((form, "***".to_string()));
            } else {
                out.push((format!(":{form}@"), ":***@".to_string()));
                out.push((format!("password={form}"), "password=***".to_string()));
            }
        }
    }
    out
}

/// The length from which a password is blanked wherever it appears in a text.
const SHORT_PASSWORD: usize = 4;

/// `err` with the password of `url` blanked out, as [`redact_url_password`] blanks a text.
pub(crate) fn redact_password(
    err: migrate_core::error::Error,
    url: &str,
) -> migrate_core::error::Error {
    blankings(url)
        .into_iter()
        .fold(err, |err, (form, blank)| err.redact_as(&form, &blank))
}

/// The `key=value` pairs of a URL's query (`a=b&c=d`), escapes decoded, as sqlx reads a
/// SQLite URL's.
#[cfg_attr(not(feature = "sqlite"), allow(dead_code))]
pub(crate) fn query_pairs(query: &str) -> impl Iterator<Item = (String, String)> + '_ {
    query.split('&').map(|pair| {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        (percent_decode(key), percent_decode(value))
    })
}

/// `text` with `%XX` escapes decoded (invalid escapes are kept as written).
pub(crate) fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        match (
            bytes[i],
            bytes.get(i + 1).copied().and_then(hex),
            bytes.get(i + 2).copied().and_then(hex),
        ) {
            (b'%', Some(hi), Some(lo)) => {
                out.push((hi * 16 + lo) as u8);
                i += 3;
            }
            (b, _, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The first password of `url`, or an empty string.
    fn password(url: &str) -> String {
        passwords(url).into_iter().next().unwrap_or_default()
    }

    #[test]
    fn finds_the_password() {
        assert_eq!(password("postgres://app:s%40cret@db:5432/app"), "s%40cret");
        assert_eq!(percent_decode("s%40cret"), "s@cret");
        assert_eq!(password("mysql://root@localhost/db"), "");
        assert_eq!(password("sqlite://app.db"), "");
        assert_eq!(password("postgres://u:p@h/d?x=@"), "p");
        assert_eq!(password("not a url"), "");
        assert_eq!(
            passwords("postgres://app:@db/app?password=hunter2"),
            ["hunter2"],
            "an empty password before the @ hides none in the query"
        );
        assert_eq!(
            redact_url_password("pw1 pw2", "postgres://app:pw1x@db/app?password=pw2x"),
            "pw1 pw2"
        );
        assert_eq!(
            redact_url_password("pw1x pw2x", "postgres://app:pw1x@db/app?password=pw2x"),
            "*** ***"
        );
        let short = "postgres://app:2@db/app";
        assert_eq!(
            redact_url_password(r#"{"pending": 2, "url": "postgres://app:2@db/app"}"#, short),
            r#"{"pending": 2, "url": "postgres://app:***@db/app"}"#
        );
        assert_eq!(
            password("postgres://app@db/app?sslmode=disable&password=s%40cret#x"),
            "s%40cret"
        );
        assert_eq!(
            redact_url_password(
                "cannot reach postgres://app@db/app?password=hunter2 (hunter2)",
                "postgres://app@db/app?password=hunter2"
            ),
            "cannot reach postgres://app@db/app?password=*** (***)"
        );
        // The TLS key's passphrase is a secret too, beside a password.
        let tls = "postgres://app:pw-one@db/app?sslkey=/k&sslpassword=k3y-phrase";
        assert_eq!(passwords(tls), ["pw-one", "k3y-phrase"]);
        assert_eq!(
            redact_url_password(&format!("target {tls}"), tls),
            "target postgres://app:***@db/app?sslkey=/k&sslpassword=***"
        );
    }

    #[test]
    fn a_short_password_leaves_an_errors_other_words_alone() {
        use migrate_core::error::Error;
        let url = "postgres://app:a@db/nodb";
        let err = redact_password(
            Error::database(std::io::Error::other("database \"nodb\" does not exist")),
            url,
        );
        let Error::Database(db) = &err else {
            panic!("{err:?}")
        };
        assert_eq!(
            err.to_string(),
            "database error: database \"nodb\" does not exist",
            "a one-letter password blanked every `a`"
        );
        assert!(db.driver_error().is_some(), "the driver's error is kept");
        let quoted = redact_password(
            Error::database(std::io::Error::other(format!("cannot reach {url}"))),
            url,
        );
        assert_eq!(
            quoted.to_string(),
            "database error: cannot reach postgres://app:***@db/nodb"
        );
    }

    #[test]
    fn names_the_server_without_credentials() {
        assert_eq!(
            server("postgres://app:s%40cret@db:5432/app?sslmode=disable"),
            "postgres://db:5432/app"
        );
        assert_eq!(
            server("mysql://root@127.0.0.1:1/x"),
            "mysql://127.0.0.1:1/x"
        );
        assert_eq!(server("not a url"), "the database URL");
    }

    #[test]
    fn names_another_database_on_the_same_server() {
        assert_eq!(
            with_database("postgres://app:pw@db:5432/app?sslmode=disable", "scratch").as_deref(),
            Some("postgres://app:pw@db:5432/scratch?sslmode=disable")
        );
        assert_eq!(
            with_database("mysql://root@127.0.0.1:1", "scratch").as_deref(),
            Some("mysql://root@127.0.0.1:1/scratch")
        );
        assert_eq!(with_database("not a url", "x"), None);
    }
}
