//! Handlers over a test database, reached directly or through PgBouncer
//! (`LOGIN_ETL_TEST_PGBOUNCER`), with pool settings that fail fast.

use std::time::Duration;

use sqlx::PgPool;

use login_etl::{DbTarget, Handler, Loader, PoolSettings};

use crate::database::direct_target;
use crate::records::masker;

pub fn fast_pool_settings() -> PoolSettings {
    PoolSettings {
        max_connections: 1,
        acquire_timeout: Duration::from_millis(1500),
        statement_timeout: Duration::from_secs(20),
        idle_timeout: Duration::from_secs(60),
    }
}

/// Where the function's loader connects in these tests: the database behind `pool` (a fresh
/// one per `#[sqlx::test]`), reached directly or, when `LOGIN_ETL_TEST_PGBOUNCER` names a
/// `host:port`, through that PgBouncer in transaction mode (`make test` runs the database
/// tests both ways). Test databases use trust authentication: no password.
pub fn loader_target(pool: &PgPool) -> DbTarget {
    let options = pool.connect_options();
    let mut target = direct_target(&options);
    if let Ok(pgbouncer) = std::env::var("LOGIN_ETL_TEST_PGBOUNCER") {
        let (host, port) = pgbouncer.rsplit_once(':').expect("LOGIN_ETL_TEST_PGBOUNCER is host:port");
        target.host = host.to_owned();
        target.port = port.parse().expect("LOGIN_ETL_TEST_PGBOUNCER port");
    }
    target
}

/// Whether these tests run through PgBouncer (see [`loader_target`]).
pub fn through_pgbouncer() -> bool {
    std::env::var("LOGIN_ETL_TEST_PGBOUNCER").is_ok()
}

/// A handler writing to the database behind `pool`.
pub fn handler_for(pool: &PgPool) -> Handler {
    handler_with_target(loader_target(pool))
}

pub fn handler_with_target(target: DbTarget) -> Handler {
    handler_with_settings(target, &fast_pool_settings())
}

pub fn handler_with_settings(target: DbTarget, settings: &PoolSettings) -> Handler {
    Handler::new(masker(), Loader::new(target, settings, None).expect("loader"))
}

/// A handler whose pool can serve `connections` concurrent batches.
pub fn handler_for_pool_size(pool: &PgPool, connections: u32) -> Handler {
    let settings = PoolSettings { max_connections: connections, ..fast_pool_settings() };
    handler_with_settings(loader_target(pool), &settings)
}
