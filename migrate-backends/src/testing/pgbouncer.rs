//! A throwaway PgBouncer in transaction mode in front of a throwaway PostgreSQL, started from
//! the installed binary (`apt-get install pgbouncer`), as production puts one in front.

use super::process::{
    command_as, find_binary, free_port, give_to, is_root, run, server_dir, watchdog, PORT_ATTEMPTS,
};
use std::path::PathBuf;

const UNPRIVILEGED_USER: &str = "nobody";

/// A running PgBouncer (`pool_mode = transaction`, trust authentication for the users it was
/// given), stopped when the test process ends.
#[derive(Debug)]
pub struct PgBouncer {
    port: u16,
}

impl PgBouncer {
    /// Starts one in front of the PostgreSQL server of `postgres_url`
    /// (`postgres://user@host:port/db`), letting `users` in. `Ok(None)` when the binary is not
    /// installed, reported on stderr as skipped (an error under `MIGRATE_TEST_REQUIRE_ALL=1`);
    /// an error when it is installed and will not start.
    pub fn start(postgres_url: &str, users: &[&str]) -> Result<Option<PgBouncer>, String> {
        let Some(binary) = find_binary("pgbouncer", &[PathBuf::from("/usr/sbin/pgbouncer")]) else {
            if super::require_all() {
                return Err("pgbouncer is required (MIGRATE_TEST_REQUIRE_ALL=1) but not installed: apt-get install pgbouncer".into());
            }
            super::report_skip_once("pgbouncer", "not installed");
            return Ok(None);
        };
        let rest = postgres_url
            .split_once("://")
            .map(|(_, r)| r)
            .ok_or("not a server URL")?;
        let host_port = rest.split_once('@').map_or(rest, |(_, h)| h);
        let host_port = host_port.split('/').next().unwrap_or_default();
        let (host, port) = host_port.rsplit_once(':').ok_or("the URL has no port")?;
        let user = is_root().then_some(UNPRIVILEGED_USER);
        let dir = server_dir("pgbouncer")?;
        // Before anything can fail: every attempt's daemon is stopped, and the directory goes,
        // however the start ends.
        watchdog(
            &format!(
                "for f in '{}'/pgbouncer-*.pid; do kill $(cat \"$f\") 2>/dev/null; done",
                dir.display()
            ),
            &dir,
        )?;
        let users_file = dir.join("users.txt");
        let entries: String = users.iter().map(|u| format!("\"{u}\" \"\"\n")).collect();
        std::fs::write(&users_file, entries).map_err(|e| format!("write users: {e}"))?;
        let mut failure = String::new();
        for attempt in 0..PORT_ATTEMPTS {
            let listen = free_port()?;
            let pidfile = dir.join(format!("pgbouncer-{attempt}.pid"));
            let ini = dir.join("pgbouncer.ini");
            std::fs::write(
                &ini,
                format!(
                    "[databases]\n* = host={host} port={port}\n[pgbouncer]\nlisten_addr = 127.0.0.1\n\
                     listen_port = {listen}\nunix_socket_dir =\nauth_type = trust\nauth_file = {}\n\
                     pool_mode = transaction\nmax_client_conn = 4000\ndefault_pool_size = 40\n\
                     ignore_startup_parameters = extra_float_digits\nlogfile = {}\npidfile = {}\n",
                    users_file.display(),
                    dir.join("pgbouncer.log").display(),
                    pidfile.display()
                ),
            )
            .map_err(|e| format!("write pgbouncer.ini: {e}"))?;
            give_to(&dir, user)?;
            match run(command_as(user, &binary).arg("-d").arg(&ini), "pgbouncer") {
                Ok(()) => {
                    // It forks before it listens, and writes its pid file once it listens (a
                    // daemon that could not bind exits without one): wait for both, so that
                    // another process answering on a port taken meanwhile is not taken for it.
                    for _ in 0..250 {
                        if pidfile.is_file()
                            && std::net::TcpStream::connect(("127.0.0.1", listen)).is_ok()
                        {
                            return Ok(Some(PgBouncer { port: listen }));
                        }
                        std::thread::sleep(std::time::Duration::from_millis(20));
                    }
                    failure = format!("pgbouncer did not listen on port {listen}");
                }
                Err(e) => failure = e,
            }
        }
        Err(failure)
    }

    /// `postgres_url` pointed at this PgBouncer instead of the server.
    pub fn url(&self, postgres_url: &str) -> String {
        let (scheme, rest) = postgres_url
            .split_once("://")
            .unwrap_or(("postgres", postgres_url));
        let (user, host_path) = match rest.split_once('@') {
            Some((user, host_path)) => (format!("{user}@"), host_path),
            None => (String::new(), rest),
        };
        let path = host_path.split_once('/').map_or("", |(_, p)| p);
        format!("{scheme}://{user}127.0.0.1:{}/{path}", self.port)
    }
}
