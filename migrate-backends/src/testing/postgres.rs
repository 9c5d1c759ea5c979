//! A throwaway PostgreSQL cluster from the installed `initdb` and `pg_ctl`.

use super::process::{
    command_as, find_binary, free_port, give_to, is_root, run, server_dir, watchdog, PORT_ATTEMPTS,
};
use std::path::PathBuf;

/// The user a root test process runs PostgreSQL as (it refuses root).
const UNPRIVILEGED_USER: &str = "nobody";

/// A running throwaway cluster: what it takes to restart it.
pub(crate) struct Cluster {
    pub(crate) url: String,
    pg_ctl: PathBuf,
    data: PathBuf,
    log: PathBuf,
    options: String,
    user: Option<&'static str>,
}

/// Starts a cluster on a free loopback port; returns its admin URL, or why it could not.
pub(crate) fn start() -> Result<String, String> {
    Cluster::start().map(|cluster| cluster.url)
}

impl Cluster {
    /// Starts a cluster of its own on a free loopback port, stopped when the process ends.
    pub(crate) fn start() -> Result<Cluster, String> {
        let mut candidates: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
            .map(|dirs| {
                dirs.filter_map(|d| d.ok())
                    .map(|d| d.path().join("bin/initdb"))
                    .collect()
            })
            .unwrap_or_default();
        candidates.sort();
        candidates.reverse();
        let initdb = find_binary("initdb", &candidates).ok_or("initdb not found")?;
        let bin = initdb
            .parent()
            .ok_or("initdb has no directory")?
            .to_path_buf();
        let pg_ctl = bin.join("pg_ctl");
        if !pg_ctl.is_file() {
            return Err(format!("pg_ctl not found beside {}", initdb.display()));
        }
        let user = is_root().then_some(UNPRIVILEGED_USER);
        let dir = server_dir("postgres")?;
        give_to(&dir, user)?;
        let data = dir.join("data");
        // Before anything can fail: the directory goes however the start ends.
        let stop = format!(
            "{} {} -D '{}' stop -m immediate 2>/dev/null",
            user.map(|u| format!("runuser -u {u} --"))
                .unwrap_or_default(),
            pg_ctl.display(),
            data.display()
        );
        watchdog(&stop, &dir)?;
        run(
            command_as(user, &initdb).arg("-D").arg(&data).args([
                "-U",
                "postgres",
                "-A",
                "trust",
                "-E",
                "UTF8",
                "--no-sync",
            ]),
            "initdb",
        )?;
        // Members of the role `password_login` must give their password (SCRAM); everyone
        // else is trusted. Tests create such a member to see what a wrong password does.
        let hba = data.join("pg_hba.conf");
        let rules = std::fs::read_to_string(&hba).map_err(|e| format!("read pg_hba.conf: {e}"))?;
        std::fs::write(
            &hba,
            format!("host all +password_login 127.0.0.1/32 scram-sha-256\n{rules}"),
        )
        .map_err(|e| format!("write pg_hba.conf: {e}"))?;
        let mut failure = String::new();
        for _ in 0..PORT_ATTEMPTS {
            let port = free_port()?;
            let mut cluster = Cluster {
                url: format!("postgres://postgres@127.0.0.1:{port}/postgres"),
                options: format!(
                    "-p {port} -k {} -c listen_addresses=127.0.0.1 -c fsync=off \
                     -c synchronous_commit=off -c full_page_writes=off -c max_connections=300",
                    dir.display()
                ),
                log: dir.join("server.log"),
                pg_ctl: pg_ctl.clone(),
                data: data.clone(),
                user,
            };
            match cluster.pg_ctl("start") {
                Ok(()) => return Ok(cluster),
                // Most likely the port was taken between the check and the bind: try another.
                Err(e) => {
                    failure = e;
                    cluster.url.clear();
                }
            }
        }
        Err(failure)
    }

    /// Restarts the cluster on the same port: a fast shutdown ends every session, as a
    /// server restart in production does.
    pub(crate) fn restart(&self) -> Result<(), String> {
        self.pg_ctl("restart")
    }

    fn pg_ctl(&self, action: &str) -> Result<(), String> {
        let mode: &[&str] = if action == "start" {
            &[]
        } else {
            &["-m", "fast"]
        };
        run(
            command_as(self.user, &self.pg_ctl)
                .arg("-D")
                .arg(&self.data)
                .arg("-l")
                .arg(&self.log)
                .args(["-w", "-t", "60", "-o", &self.options])
                .args(mode)
                .arg(action),
            &format!("pg_ctl {action}"),
        )
    }
}

/// A PostgreSQL cluster of one test's own, for what the shared server must not suffer: a
/// restart in the middle of a run, say. It is started like the shared one, from the
/// installed `initdb` and `pg_ctl`, on a free loopback port, and stopped when the process ends.
///
/// ```no_run
/// # async fn demo() -> migrate_core::error::Result<()> {
/// use migrate_backends::testing::PostgresServer;
/// let Some(server) = PostgresServer::start()? else {
///     return Ok(()); // reported as skipped: no PostgreSQL binaries here
/// };
/// let executor = migrate_backends::connect(server.url()).await?;
/// server.restart()?; // every session ends; the next connection works again
/// # drop(executor);
/// # Ok(())
/// # }
/// ```
pub struct PostgresServer {
    cluster: Cluster,
}

impl std::fmt::Debug for PostgresServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostgresServer")
            .field("url", &self.cluster.url)
            .finish_non_exhaustive()
    }
}

impl PostgresServer {
    /// Starts a cluster. `Ok(None)` when PostgreSQL's binaries cannot be had (reported on
    /// stderr as skipped), or an error instead under `MIGRATE_TEST_REQUIRE_ALL=1`.
    pub fn start() -> migrate_core::error::Result<Option<PostgresServer>> {
        match Cluster::start() {
            Ok(cluster) => Ok(Some(PostgresServer { cluster })),
            Err(why) => super::unavailable(super::Backend::Postgres, &why).map(|()| None),
        }
    }

    /// Its admin URL (user `postgres`, database `postgres`, no password).
    pub fn url(&self) -> &str {
        &self.cluster.url
    }

    /// Restarts it on the same port with a fast shutdown, which ends every session the way a
    /// server restart in production does; returns once it accepts connections again.
    pub fn restart(&self) -> migrate_core::error::Result<()> {
        self.cluster.restart().map_err(|why| {
            migrate_core::error::Error::Config(format!("cannot restart PostgreSQL: {why}"))
        })
    }
}
