//! A real PostgreSQL server for tests: Debian's binaries (`postgresql` package,
//! `/usr/lib/postgresql/<major>/bin`, or `CAIRN_PG_BIN`), one cluster per user in
//! `$TMPDIR/cairn-pg-<uid>`, made by `initdb` once and started by `pg_ctl` on a
//! unix socket only (no TCP port; socket mode 0700 so that no other local user
//! reaches its `trust` authentication).
//!
//! Tests run in many processes at once (nextest runs each test in its own), so the
//! server is shared: every [`PgServer`] holds a shared `flock` on the cluster's lock
//! file; starting (and `initdb`) happens under the exclusive lock; the last holder
//! to let go stops the server (`pg_ctl stop -m fast`). Each test gets its own
//! database ([`PgServer::database`], dropped with its guard), so cases run in
//! parallel.
//!
//! `initdb` refuses root: as root, the cluster belongs to the `postgres` user and
//! `initdb`/`pg_ctl` run as it (`runuser`).

use std::fs::File;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};

/// The PostgreSQL user the tests connect as (the cluster's superuser).
pub const USER: &str = "cairn";

/// A running test cluster, kept running while this value lives.
#[derive(Debug)]
pub struct PgServer {
    dir: PathBuf,
    bin: PathBuf,
    lock: Option<File>,
}

/// One database on the test cluster, dropped (`dropdb --force`) with this guard.
#[derive(Debug)]
pub struct PgDatabase {
    name: String,
    url: String,
    dir: PathBuf,
    bin: PathBuf,
}

impl PgDatabase {
    /// `postgres://cairn@<socket dir>/<name>`: connect over the unix socket.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The database's name.
    pub fn name(&self) -> &str {
        &self.name
    }
}

impl Drop for PgDatabase {
    fn drop(&mut self) {
        let _ = Command::new(self.bin.join("dropdb"))
            .args(["--force", "-h"])
            .arg(&self.dir)
            .args(["-U", USER, &self.name])
            .output();
    }
}

/// The directory of PostgreSQL's server binaries.
pub fn bin_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("CAIRN_PG_BIN") {
        return PathBuf::from(dir);
    }
    let mut majors: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let major = e.file_name().to_str()?.parse().ok()?;
            let bin = e.path().join("bin");
            bin.join("initdb").is_file().then_some((major, bin))
        })
        .collect();
    majors.sort();
    majors.pop().map(|(_, bin)| bin).unwrap_or_else(|| {
        panic!(
            "PostgreSQL's server binaries are not installed (Debian: apt-get install \
             postgresql; or set CAIRN_PG_BIN): scripts/install-deps installs them"
        )
    })
}

fn is_root() -> bool {
    std::fs::metadata("/proc/self").is_ok_and(|m| m.uid() == 0)
}

/// `cmd` run as the cluster's owner (`postgres` when we are root).
fn as_owner(program: &Path) -> Command {
    if is_root() {
        let mut c = Command::new("runuser");
        c.args(["-u", "postgres", "--"]).arg(program);
        c
    } else {
        Command::new(program)
    }
}

/// Runs `cmd`, which must succeed; its standard output.
fn run(mut cmd: Command, what: &str) -> String {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run {what}: {e}"));
    assert!(
        out.status.success(),
        "{what} failed ({}): {}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

impl PgServer {
    /// Starts (or joins) the test cluster.
    pub fn start() -> PgServer {
        let uid = std::fs::metadata("/proc/self").map_or(0, |m| m.uid());
        PgServer::start_in(std::env::temp_dir().join(format!("cairn-pg-{uid}")))
    }

    /// Starts (or joins) the cluster in `dir`.
    fn start_in(dir: PathBuf) -> PgServer {
        let bin = bin_dir();
        if !dir.exists() {
            // Made whole (owner included) under another name, then renamed into
            // place: another process never sees it half made.
            let mut fresh = dir.clone().into_os_string();
            fresh.push(format!(".{}", std::process::id()));
            let fresh = PathBuf::from(fresh);
            // One a killed process of the same (reused) id left half made.
            let _ = std::fs::remove_dir_all(&fresh);
            std::fs::create_dir(&fresh)
                .unwrap_or_else(|e| panic!("cannot create {}: {e}", fresh.display()));
            give_to_owner(&fresh);
            if std::fs::rename(&fresh, &dir).is_err() {
                let _ = std::fs::remove_dir(&fresh);
            }
        }
        // Never use a directory someone else made (it is in a shared /tmp).
        let meta = std::fs::symlink_metadata(&dir).unwrap_or_else(|e| panic!("{e}"));
        let owner_ok = if is_root() {
            Command::new("id")
                .args(["-u", "postgres"])
                .output()
                .ok()
                .and_then(|o| String::from_utf8(o.stdout).ok())
                .and_then(|s| s.trim().parse::<u32>().ok())
                == Some(meta.uid())
        } else {
            Some(meta.uid()) == std::fs::metadata("/proc/self").ok().map(|m| m.uid())
        };
        assert!(
            meta.is_dir() && owner_ok,
            "{} is not a directory of the cluster's owner",
            dir.display()
        );
        loop {
            let lock = File::options()
                .read(true)
                .write(true)
                .create(true)
                .truncate(false)
                .open(dir.join("lock"))
                .unwrap_or_else(|e| panic!("cannot open the cluster's lock file: {e}"));
            lock.lock()
                .unwrap_or_else(|e| panic!("cannot lock the test cluster: {e}"));
            let data = dir.join("data");
            // A cluster of another major version (the binaries were upgraded)
            // cannot start: made again.
            let made_by = std::fs::read_to_string(data.join("PG_VERSION")).unwrap_or_default();
            if made_by.trim() != major(&bin) {
                let _ = std::fs::remove_dir_all(&data);
                initdb(&bin, &dir);
            }
            if !running(&bin, &data) {
                // Many test processes share it.
                pg_ctl_start(&bin, &dir, "-c max_connections=200");
                // Nobody held it while it was down, so every test database
                // on it is one a killed test left: without this, each one
                // would stay on the disk for good.
                drop_left_databases(&bin, &dir);
            }
            // Hold it shared from now on. Between the two calls another process's
            // last holder may have stopped it: then start again.
            lock.unlock().unwrap_or_else(|e| panic!("{e}"));
            lock.lock_shared().unwrap_or_else(|e| panic!("{e}"));
            if running(&bin, &data) {
                return PgServer {
                    dir,
                    bin,
                    lock: Some(lock),
                };
            }
        }
    }

    /// A new, empty database of its own for one test. The cluster outlives
    /// the test processes and a long run reuses process ids, so the name
    /// carries the time it was made as well as the process and a counter: a
    /// database a killed test left behind never collides with a new one.
    pub fn database(&self) -> PgDatabase {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        let name = format!(
            "cairn_test_{}_{nanos}_{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        createdb(&self.bin, &self.dir, &name);
        PgDatabase {
            url: socket_url(&self.dir, &name),
            name,
            dir: self.dir.clone(),
            bin: self.bin.clone(),
        }
    }

    /// The directory holding the server's unix socket.
    pub fn socket_dir(&self) -> &Path {
        &self.dir
    }
}

impl Drop for PgServer {
    fn drop(&mut self) {
        drop(self.lock.take());
        // The last holder stops the server: nobody else holds the lock then.
        let Ok(lock) = File::options()
            .read(true)
            .write(true)
            .open(self.dir.join("lock"))
        else {
            return;
        };
        if lock.try_lock().is_ok() {
            let _ = pg_ctl_stop(&self.bin, &self.dir, "fast").output();
            let _ = lock.unlock();
        }
    }
}

/// The major version of the binaries in `bin` (`pg_ctl --version`: "pg_ctl
/// (PostgreSQL) 15.14 (Debian 15.14-0+deb12u1)" is "15").
fn major(bin: &Path) -> String {
    let out = Command::new(bin.join("pg_ctl"))
        .arg("--version")
        .output()
        .unwrap_or_else(|e| panic!("cannot run pg_ctl --version: {e}"));
    let text = String::from_utf8_lossy(&out.stdout);
    text.split_whitespace()
        .nth(2)
        .and_then(|v| v.split('.').next())
        .unwrap_or_default()
        .to_owned()
}

fn running(bin: &Path, data: &Path) -> bool {
    let mut status = as_owner(&bin.join("pg_ctl"));
    status.arg("-D").arg(data).arg("status");
    status.output().is_ok_and(|o| o.status.success())
}

/// Hands `dir` to the cluster's owner (`postgres` when we are root).
fn give_to_owner(dir: &Path) {
    if is_root() {
        let mut chown = Command::new("chown");
        chown.arg("postgres:postgres").arg(dir);
        run(chown, "chown of a cluster's directory");
    }
}

/// `initdb` of a cluster in `<dir>/data`: `trust` for the [`USER`] superuser
/// (the socket's mode keeps others out), UTF-8, the `C` locale, no fsync.
fn initdb(bin: &Path, dir: &Path) {
    let mut initdb = as_owner(&bin.join("initdb"));
    initdb
        .args([
            "-N",
            "-A",
            "trust",
            "-U",
            USER,
            "-E",
            "UTF8",
            "--locale=C",
            "-D",
        ])
        .arg(dir.join("data"));
    run(initdb, "initdb");
}

/// Starts the cluster in `<dir>/data` on a unix socket in `dir` only (mode
/// 0700, no TCP, fsync off; `options`, more server options) and waits until
/// it takes connections.
fn pg_ctl_start(bin: &Path, dir: &Path, options: &str) {
    let mut start = as_owner(&bin.join("pg_ctl"));
    start
        .arg("-D")
        .arg(dir.join("data"))
        .args(["-s", "-w", "-l"])
        .arg(dir.join("server.log"))
        .arg("-o")
        .arg(format!(
            "-k {} -c listen_addresses='' -c unix_socket_permissions=0700 -c fsync=off {options}",
            dir.display()
        ))
        .arg("start");
    run(start, "pg_ctl start");
}

/// `pg_ctl stop -m MODE` of the cluster in `<dir>/data`, waiting until it is
/// down.
fn pg_ctl_stop(bin: &Path, dir: &Path, mode: &str) -> Command {
    let mut stop = as_owner(&bin.join("pg_ctl"));
    stop.arg("-D")
        .arg(dir.join("data"))
        .args(["-s", "-w", "-m", mode, "stop"]);
    stop
}

/// Drops every test database ([`PgServer::database`]'s names) on the cluster
/// whose socket is in `dir`. Only for a cluster just started, which no test
/// holds yet.
fn drop_left_databases(bin: &Path, dir: &Path) {
    let mut list = Command::new(bin.join("psql"));
    list.args(["-X", "-A", "-t", "-h"])
        .arg(dir)
        .args(["-U", USER, "-d", "postgres", "-c"])
        .arg(r"SELECT datname FROM pg_database WHERE datname LIKE 'cairn\_test\_%'");
    for name in run(list, "listing the test databases").lines() {
        let mut drop = Command::new(bin.join("dropdb"));
        drop.args(["--force", "-h"])
            .arg(dir)
            .args(["-U", USER, name]);
        run(drop, "dropdb of a database a killed test left");
    }
}

/// `createdb NAME` on the cluster whose socket is in `dir`.
fn createdb(bin: &Path, dir: &Path, name: &str) {
    let mut create = Command::new(bin.join("createdb"));
    create
        .arg("-h")
        .arg(dir)
        .args(["-U", USER, "-T", "template0", name]);
    run(create, "createdb");
}

/// `postgres://cairn@<socket dir>/<name>`.
fn socket_url(dir: &Path, name: &str) -> String {
    format!(
        "postgres://{USER}@{}/{name}",
        percent_encode(&dir.to_string_lossy())
    )
}

fn percent_encode(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// A PostgreSQL cluster of one test's own (`initdb` into a fresh directory,
/// its own unix socket), which the test stops and starts again — the database
/// going away in the middle of a run — without touching the shared cluster
/// other tests use. Its one database is `cairn_test`. Stopped (`-m immediate`)
/// and removed when dropped.
#[derive(Debug)]
pub struct PrivatePg {
    dir: PathBuf,
    bin: PathBuf,
}

impl PrivatePg {
    /// Makes and starts the cluster, with database `cairn_test`.
    pub fn start() -> PrivatePg {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let bin = bin_dir();
        let dir = std::env::temp_dir().join(format!(
            "cairn-pg-own-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir(&dir)
            .unwrap_or_else(|e| panic!("cannot create {}: {e}", dir.display()));
        give_to_owner(&dir);
        initdb(&bin, &dir);
        let pg = PrivatePg { dir, bin };
        pg.start_again();
        createdb(&pg.bin, &pg.dir, "cairn_test");
        pg
    }

    /// `postgres://cairn@<socket dir>/cairn_test`.
    pub fn url(&self) -> String {
        socket_url(&self.dir, "cairn_test")
    }

    /// Stops the server (`pg_ctl stop -m fast`: sessions are ended, as when an
    /// administrator stops it) and waits until it is down.
    pub fn stop(&self) {
        run(pg_ctl_stop(&self.bin, &self.dir, "fast"), "pg_ctl stop");
    }

    /// Starts the server (again) and waits until it takes connections.
    pub fn start_again(&self) {
        pg_ctl_start(&self.bin, &self.dir, "");
    }
}

impl Drop for PrivatePg {
    fn drop(&mut self) {
        let _ = pg_ctl_stop(&self.bin, &self.dir, "immediate").output();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn databases(server: &PgServer) -> Vec<String> {
        let mut list = Command::new(server.bin.join("psql"));
        list.args(["-X", "-A", "-t", "-h"])
            .arg(&server.dir)
            .args(["-U", USER, "-d", "postgres", "-c"])
            .arg("SELECT datname FROM pg_database ORDER BY datname");
        run(list, "listing the databases")
            .lines()
            .map(str::to_owned)
            .collect()
    }

    #[test]
    fn a_database_a_killed_test_left_is_dropped_at_the_next_start() {
        let parent = tempfile::tempdir().expect("tempdir");
        give_to_owner(parent.path());
        let dir = parent.path().join("cluster");

        let server = PgServer::start_in(dir.clone());
        let kept = server.database();
        let left = server.database();
        let left_name = left.name().to_owned();
        // A test killed while it ran: its guard never drops its database.
        std::mem::forget(left);
        // Not a test database: kept whatever happens.
        createdb(&server.bin, &server.dir, "cairn_other");
        assert!(databases(&server).contains(&left_name));
        drop(kept);
        // The last holder stops the cluster; the next start sweeps it.
        drop(server);
        assert!(
            !running(&bin_dir(), &dir.join("data")),
            "stopped by its last holder"
        );

        let server = PgServer::start_in(dir);
        let names = databases(&server);
        assert!(!names.contains(&left_name), "{names:?}");
        assert!(
            names.iter().all(|n| !n.starts_with("cairn_test_")),
            "{names:?}"
        );
        assert!(names.contains(&"cairn_other".to_owned()), "{names:?}");
        assert!(names.contains(&"postgres".to_owned()), "{names:?}");
    }
}
