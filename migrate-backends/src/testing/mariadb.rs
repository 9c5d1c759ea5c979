//! A throwaway MariaDB server from the installed `mariadb-install-db` and `mariadbd`.

use super::process::{find_binary, free_port, is_root, run, server_dir, watchdog, PORT_ATTEMPTS};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Starts a server on a free loopback port; returns its admin URL, or why it could not.
pub(crate) fn start() -> Result<String, String> {
    let mariadbd = find_binary("mariadbd", &[PathBuf::from("/usr/sbin/mariadbd")])
        .ok_or("mariadbd not found")?;
    let install = find_binary(
        "mariadb-install-db",
        &[PathBuf::from("/usr/bin/mariadb-install-db")],
    )
    .ok_or("mariadb-install-db not found")?;
    let dir = server_dir("mariadb")?;
    // Before anything can fail: the directory goes however the start ends (each attempt's
    // watchdog stops its server too).
    watchdog("true", &dir)?;
    let data = dir.join("data");
    let root_user: &[&str] = if is_root() { &["--user=root"] } else { &[] };
    run(
        Command::new(&install)
            .arg("--no-defaults")
            .arg(format!("--datadir={}", data.display()))
            .args(["--auth-root-authentication-method=normal", "--skip-test-db"])
            .args(root_user),
        "mariadb-install-db",
    )?;
    let mut failure = String::new();
    for attempt in 0..PORT_ATTEMPTS {
        match serve(&mariadbd, &dir, root_user, attempt) {
            Ok(url) => return Ok(url),
            // Most likely the port was taken between the check and the bind: try another.
            Err(e) => failure = e,
        }
    }
    Err(failure)
}

/// Starts `mariadbd` on a free port and waits until it accepts connections.
fn serve(
    mariadbd: &std::path::Path,
    dir: &std::path::Path,
    root_user: &[&str],
    attempt: usize,
) -> Result<String, String> {
    let data = dir.join("data");
    let port = free_port()?;
    let log = dir.join(format!("error-{attempt}.log"));
    // Privileges are checked, so that tests can see what a wrong password does; the init file
    // lets the password-less root in over loopback TCP (name resolution is off, so the client
    // is `127.0.0.1`, not `localhost`).
    let init = dir.join("init.sql");
    std::fs::write(
        &init,
        "CREATE USER IF NOT EXISTS 'root'@'127.0.0.1';\n\
         GRANT ALL PRIVILEGES ON *.* TO 'root'@'127.0.0.1' WITH GRANT OPTION;\n",
    )
    .map_err(|e| format!("cannot write {}: {e}", init.display()))?;
    let mut child = Command::new(mariadbd)
        .arg("--no-defaults")
        .arg(format!("--datadir={}", data.display()))
        .arg(format!("--socket={}", dir.join("mariadb.sock").display()))
        .arg(format!("--pid-file={}", dir.join("mariadb.pid").display()))
        .arg(format!("--log-error={}", log.display()))
        .arg(format!("--port={port}"))
        .arg(format!("--init-file={}", init.display()))
        .args([
            "--bind-address=127.0.0.1",
            "--skip-name-resolve",
            "--skip-log-bin",
            "--innodb-buffer-pool-size=64M",
            "--innodb-flush-log-at-trx-commit=2",
            "--max-connections=500",
        ])
        .args(root_user)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("cannot start mariadbd: {e}"))?;
    watchdog(&format!("kill -9 {} 2>/dev/null", child.id()), dir)?;
    // Ready once it says so in its log, is still running, and accepts TCP connections: a
    // server that exits lost the port (or failed), and a listener that answers before it does
    // may be another process that took the port.
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let exited = child.try_wait().ok().flatten();
        let said_ready =
            std::fs::read_to_string(&log).is_ok_and(|text| text.contains("ready for connections"));
        if exited.is_none()
            && said_ready
            && std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
        {
            return Ok(format!("mysql://root@127.0.0.1:{port}/mysql"));
        }
        if exited.is_some() || Instant::now() > deadline {
            let log = std::fs::read_to_string(&log).unwrap_or_default();
            let _ = child.kill();
            return Err(format!("mariadbd did not start on port {port}: {log}"));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}
