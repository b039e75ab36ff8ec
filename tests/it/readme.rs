//! README.md's by-hand path held to what it describes: the queue it makes behaves as the
//! demo's (a failed message comes back after the same visibility timeout), and the row it
//! shows is what `report` prints for that message.

const README: &str = include_str!("../../README.md");
const DEMO: &str = include_str!("../../scripts/demo.sh");

/// The value of `--visibility-timeout` on the README's `login-etl-cli setup` line.
fn readme_visibility_timeout() -> Option<u32> {
    let line = README.lines().find(|line| line.contains("login-etl-cli setup"))?;
    let after = line.split("--visibility-timeout").nth(1)?;
    after.split_whitespace().next()?.parse().ok()
}

/// The demo's `visibility=N`.
fn demo_visibility_timeout() -> Option<u32> {
    DEMO.lines().find_map(|line| line.strip_prefix("visibility="))?.trim().parse().ok()
}

/// With `setup`'s default (30 s) fifty messages with a few malformed took 155 s by hand, and
/// 2 s in the demo: the README's queue is the demo's.
#[test]
fn the_by_hand_queue_has_the_demo_s_visibility_timeout() {
    let demo = demo_visibility_timeout().expect("scripts/demo.sh sets visibility=N");
    assert_eq!(readme_visibility_timeout(), Some(demo), "README's `login-etl-cli setup` line");
    assert!(README.contains("AWS_DEFAULT_REGION=us-east-1"), "the AWS CLI needs it too");
}

/// The value a README line `export NAME=value …` sets.
fn readme_export(name: &str) -> Option<&'static str> {
    README
        .lines()
        .filter_map(|line| line.strip_prefix("export "))
        .find_map(|line| line.split_whitespace().find_map(|pair| pair.strip_prefix(name)?.strip_prefix('=')))
}

/// The body of the README's `login-etl-cli send --body '…'` line.
fn readme_body() -> Option<&'static str> {
    let line = README.lines().find(|line| line.contains("login-etl-cli send --body '"))?;
    line.split('\'').nth(1)
}

/// The README shows a loaded row as `report` prints it: the body it sends by hand, masked with
/// the public demo key it exports, is the row it shows (its date aside, which is the day's).
#[sqlx::test(migrations = "./migrations")]
async fn the_readme_shows_the_row_report_prints_for_its_own_message(pool: sqlx::PgPool) {
    use login_etl::Handler;
    use login_etl::Loader;
    use login_etl_core::mask::{Masker, MaskingKey};
    use login_etl_test_support::*;

    let key = MaskingKey::from_hex(readme_export("MASKING_KEY").expect("README exports MASKING_KEY")).expect("key");
    let body = readme_body().expect("README sends a body with --body");
    let loader = Loader::new(loader_target(&pool), &fast_pool_settings(), None).expect("loader");
    let loaded = Handler::new(Masker::hmac(&key), loader).handle(&[sqs_message("readme-1", body)]).await;
    assert_eq!(loaded.expect("loaded").records.succeeded(), 1);

    let output = crate::helpers::cli_command(&pool).args(["report", "--limit", "1"]).output().expect("report");
    assert!(output.status.success(), "{output:?}");
    let printed = crate::helpers::stdout(&output);
    let lines: Vec<&str> = printed.lines().collect();
    // The header, and the row without its last column (create_date, the day the test runs).
    let header = lines[lines.len() - 2];
    let row = lines[lines.len() - 1].rsplit_once("  ").map(|(row, _date)| row.trim_end()).expect("a row");
    assert!(README.contains("login-etl-cli report --limit 1"), "README names the command");
    assert!(README.contains(header), "README lacks report's header line:\n{header}");
    assert!(README.contains(row), "README lacks the row report prints for its body:\n{row}");
    let key_line = format!("masked by hmac-sha256 key {}: ", key.key_id());
    assert!(README.contains(&key_line), "README lacks the key line:\n{printed}");
}
