//! Starting throwaway servers: temporary directories, free ports, unprivileged users, and a
//! watchdog that tears the server down when the test process ends, however it ends.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// Finds an executable: the first of `candidates` that exists, then `name` on the `PATH`.
pub(crate) fn find_binary(name: &str, candidates: &[PathBuf]) -> Option<PathBuf> {
    candidates
        .iter()
        .find(|p| p.is_file())
        .cloned()
        .or_else(|| {
            std::env::var_os("PATH").and_then(|paths| {
                std::env::split_paths(&paths)
                    .map(|dir| dir.join(name))
                    .find(|p| p.is_file())
            })
        })
}

/// Whether this process runs as root (PostgreSQL refuses to).
pub(crate) fn is_root() -> bool {
    rustix::process::geteuid().is_root()
}

/// A command run as `user` when this process is root (through `runuser`), else as is.
pub(crate) fn command_as(user: Option<&str>, program: &Path) -> Command {
    match user {
        Some(user) => {
            let mut cmd = Command::new("runuser");
            cmd.args(["-u", user, "--"]).arg(program);
            cmd
        }
        None => Command::new(program),
    }
}

/// Runs a command to completion, returning its combined output on failure.
pub(crate) fn run(cmd: &mut Command, what: &str) -> Result<(), String> {
    let output = cmd
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("{what}: cannot run: {e}"))?;
    if output.status.success() {
        Ok(())
    } else {
        Err(format!(
            "{what} failed ({}): {}{}",
            output.status,
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        ))
    }
}

/// How many times a server start is tried on a new port: a port found free can be taken by
/// another process before the server binds it.
pub(crate) const PORT_ATTEMPTS: usize = 5;

/// A free TCP port on the loopback interface (free now; see [`PORT_ATTEMPTS`]).
pub(crate) fn free_port() -> Result<u16, String> {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .map_err(|e| format!("no free port: {e}"))
}

/// A fresh directory for one server. It outlives this call: the watchdog removes it.
pub(crate) fn server_dir(kind: &str) -> Result<PathBuf, String> {
    tempfile::Builder::new()
        .prefix(&format!("migrate-test-{kind}-"))
        .tempdir()
        .map(tempfile::TempDir::keep)
        .map_err(|e| format!("cannot create a temporary directory: {e}"))
}

/// Hands `dir` to `user` (when running as root).
pub(crate) fn give_to(dir: &Path, user: Option<&str>) -> Result<(), String> {
    match user {
        Some(user) => run(
            Command::new("chown").args(["-R", user]).arg(dir),
            "chown of the server directory",
        ),
        None => Ok(()),
    }
}

/// Starts a watchdog shell that waits for this process to end, then runs `stop` and removes
/// `dir`: the server is torn down even when a test panics or the runner is killed.
pub(crate) fn watchdog(stop: &str, dir: &Path) -> Result<(), String> {
    use std::os::unix::process::CommandExt;
    // In a process group of its own, and deaf to the signals a terminal or a CI timeout sends
    // the test's group (Ctrl-C): it must outlive the test to stop the server, which `pg_ctl`
    // and `pgbouncer -d` detach from that group anyway.
    let script = format!(
        "trap '' INT TERM HUP; while kill -0 {pid} 2>/dev/null; do sleep 1; done; {stop}; rm -rf '{dir}'",
        pid = std::process::id(),
        dir = dir.display()
    );
    Command::new("sh")
        .args(["-c", &script])
        .process_group(0)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map(|_| ())
        .map_err(|e| format!("cannot start the watchdog: {e}"))
}
