//! A throwaway PostgreSQL cluster from the installed `initdb` and `pg_ctl`.

use super::process::{
    command_as, find_binary, free_port, give_to, is_root, run, server_dir, watchdog, PORT_ATTEMPTS,
};
use std::path::PathBuf;

/// The user a root test process runs PostgreSQL as (it refuses root).
const UNPRIVILEGED_USER: &str = "nobody";

/// Starts a cluster on a free loopback port; returns its admin URL, or why it could not.
pub(crate) fn start() -> Result<String, String> {
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
    // Members of the role `password_login` must give their password (SCRAM); everyone else is
    // trusted. Tests create such a member to see what a wrong password does.
    let hba = data.join("pg_hba.conf");
    let rules = std::fs::read_to_string(&hba).map_err(|e| format!("read pg_hba.conf: {e}"))?;
    std::fs::write(
        &hba,
        format!("host all +password_login 127.0.0.1/32 scram-sha-256\n{rules}"),
    )
    .map_err(|e| format!("write pg_hba.conf: {e}"))?;
    let stop = format!(
        "{} {} -D '{}' stop -m immediate",
        user.map(|u| format!("runuser -u {u} --"))
            .unwrap_or_default(),
        pg_ctl.display(),
        data.display()
    );
    watchdog(&stop, &dir)?;
    let mut failure = String::new();
    for _ in 0..PORT_ATTEMPTS {
        let port = free_port()?;
        let options = format!(
            "-p {port} -k {} -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off \
             -c full_page_writes=off -c max_connections=300",
            dir.display()
        );
        match run(
            command_as(user, &pg_ctl)
                .arg("-D")
                .arg(&data)
                .arg("-l")
                .arg(dir.join("server.log"))
                .args(["-w", "-t", "60", "-o", &options, "start"]),
            "pg_ctl start",
        ) {
            Ok(()) => return Ok(format!("postgres://postgres@127.0.0.1:{port}/postgres")),
            // Most likely the port was taken between the check and the bind: try another.
            Err(e) => failure = e,
        }
    }
    Err(failure)
}
