//! A PostgreSQL cluster of a test's own, which the test may stop, start, or serve over TLS only.

use crate::ca::TestCa;
use crate::unique_name;

/// A PostgreSQL cluster of the test's own (initdb + pg_ctl in a temp dir, trust auth, its own
/// port), which the test may stop and start: the shared server is never touched.
pub struct TestCluster {
    pub port: u16,
    dir: std::path::PathBuf,
    /// Served with TLS only ([`TestCluster::start_with_tls`]).
    tls: bool,
}

impl TestCluster {
    const BIN: &'static str = "/usr/lib/postgresql/15/bin";

    /// Runs a PostgreSQL tool as the `postgres` user when we are root (initdb refuses root).
    fn tool(name: &str) -> std::process::Command {
        let path = format!("{}/{name}", Self::BIN);
        let root = std::process::Command::new("id").arg("-u").output().is_ok_and(|o| o.stdout.starts_with(b"0"));
        if root {
            let mut command = std::process::Command::new("runuser");
            command.args(["-u", "postgres", "--", &path]);
            command
        } else {
            std::process::Command::new(path)
        }
    }

    fn run(mut command: std::process::Command, what: &str) {
        let output = command.output().unwrap_or_else(|err| panic!("{what}: {err}"));
        assert!(output.status.success(), "{what}: {}", String::from_utf8_lossy(&output.stderr));
    }

    fn init() -> TestCluster {
        let port = std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).expect("free port").port();
        let dir = std::env::temp_dir().join(unique_name("pg-cluster"));
        std::fs::create_dir_all(&dir).expect("cluster dir");
        let _ = std::process::Command::new("chown").args(["postgres:postgres"]).arg(&dir).status();
        let mut initdb = Self::tool("initdb");
        initdb.args(["--auth=trust", "--username=postgres", "--no-sync", "-D"]).arg(dir.join("data"));
        Self::run(initdb, "initdb");
        TestCluster { port, dir, tls: false }
    }

    pub fn start() -> TestCluster {
        let cluster = Self::init();
        cluster.start_server();
        cluster
    }

    /// A cluster that serves `ca`'s server certificate and refuses every connection without
    /// TLS (`hostssl` only), so a test that connects has connected over TLS.
    pub fn start_with_tls(ca: &TestCa) -> TestCluster {
        let mut cluster = Self::init();
        let data = cluster.dir.join("data");
        for file in ["server.crt", "server.key"] {
            std::fs::copy(ca.dir.join(file), data.join(file)).expect("server certificate");
        }
        std::fs::write(data.join("pg_hba.conf"), "local all all trust\nhostssl all all 127.0.0.1/32 trust\n")
            .expect("pg_hba.conf");
        // PostgreSQL refuses a key others may read; the server runs as postgres.
        let _ = std::process::Command::new("chown")
            .args(["postgres:postgres", "server.crt", "server.key", "pg_hba.conf"])
            .current_dir(&data)
            .status();
        let _ = std::process::Command::new("chmod").args(["600", "server.key"]).current_dir(&data).status();
        cluster.tls = true;
        cluster.start_server();
        cluster
    }

    pub fn start_server(&self) {
        let mut pg_ctl = Self::tool("pg_ctl");
        pg_ctl
            .args(["start", "-w", "-t", "30", "-l"])
            .arg(self.dir.join("log"))
            .arg("-D")
            .arg(self.dir.join("data"))
            .arg("-o")
            .arg(format!(
                "-p {} -c listen_addresses=127.0.0.1 -k {} -c fsync=off{}",
                self.port,
                self.dir.display(),
                // log_connections: a TLS test reads which sessions the server authorized.
                if self.tls {
                    " -c ssl=on -c ssl_cert_file=server.crt -c ssl_key_file=server.key -c log_connections=on"
                } else {
                    ""
                }
            ));
        Self::run(pg_ctl, "pg_ctl start");
    }

    /// Stops the server as a crash or failover would look to clients (`immediate`).
    pub fn stop_server(&self) {
        let mut pg_ctl = Self::tool("pg_ctl");
        pg_ctl.args(["stop", "-w", "-m", "immediate", "-D"]).arg(self.dir.join("data"));
        Self::run(pg_ctl, "pg_ctl stop");
    }

    pub fn url(&self, dbname: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{dbname}?sslmode=disable", self.port)
    }

    /// How many sessions the server has authorized so far (a TLS cluster logs its
    /// connections): a client that refused the server's certificate never gets one.
    pub fn sessions_authorized(&self) -> usize {
        assert!(self.tls, "only a TLS cluster logs its connections");
        std::fs::read_to_string(self.dir.join("log")).unwrap_or_default().matches("connection authorized").count()
    }
}

impl Drop for TestCluster {
    fn drop(&mut self) {
        let mut pg_ctl = Self::tool("pg_ctl");
        pg_ctl.args(["stop", "-m", "immediate", "-D"]).arg(self.dir.join("data"));
        let _ = pg_ctl.output();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
