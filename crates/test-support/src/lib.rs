//! Test support shared by `tests/` and `benches/`. Not part of the function.
//!
//! # Layout
//!
//! - `records`: SQS records (from sqs-batch's `testing` builders), login bodies, event files,
//!   and the tests' masking key ([`sqs_message`], [`fifo_message`], [`event`], [`masker`]);
//! - `localstack`: the one LocalStack set-up ([`localstack_config`], [`sqs`]) and queues of a
//!   test's own;
//! - `database`: a test database's targets and URLs, older schemas, the operators' [`operator_db_for`],
//!   and what tests do to the table;
//! - `handlers`: handlers over a test database, directly or through PgBouncer ([`handler_for`]);
//! - `cli`: `login-etl-cli` as a process ([`cli_binary`], [`cli_process`]);
//! - `proxy`: a TCP proxy that can cut the database off ([`SwitchableProxy`]);
//! - `ca` and `cluster`: a private CA ([`TestCa`]) and a PostgreSQL cluster of a test's own
//!   ([`TestCluster`]), for TLS and outage tests;
//! - [`bench`](mod@bench): the benchmarks' databases; [`runtime_api`]: a Lambda Runtime API that serves
//!   several invocations at once.

pub mod bench;
pub mod runtime_api;

mod ca;
mod cli;
mod cluster;
mod database;
mod handlers;
mod localstack;
mod proxy;
mod records;

use std::sync::atomic::{AtomicU32, Ordering};

pub use ca::TestCa;
pub use cli::{cli_binary, cli_process};
pub use cluster::TestCluster;
pub use database::{
    count, create_take_home_table, database_url, direct_target, install_poison_trigger, migrate_through,
    operator_db_for, row_count, sessions_waiting_on_a_lock,
};
pub use handlers::{
    fast_pool_settings, handler_for, handler_for_pool_size, handler_with_settings, handler_with_target, loader_target,
    through_pgbouncer,
};
pub use localstack::{localstack_config, localstack_endpoint, queue_without_redrive, sqs};
pub use proxy::SwitchableProxy;
pub use records::{SENT_MILLIS, TEST_KEY_HEX, event, fifo_message, load_event, login_body, masker, sqs_message};

/// A queue (or secret) name no other test uses.
pub fn unique_name(prefix: &str) -> String {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let n = COUNTER.fetch_add(1, Ordering::SeqCst);
    let nanos =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.subsec_nanos()).unwrap_or(0);
    format!("{prefix}-{}-{nanos}-{n}", std::process::id())
}

/// A new directory under the system's temporary one, named [`unique_name`]`(prefix)`, for a
/// test's files (keys, events). The test removes it.
pub fn fresh_dir(prefix: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(unique_name(prefix));
    std::fs::create_dir_all(&dir).expect("a temporary directory");
    dir
}
