//! The parser's cost as an instruction count, which the machine's load does not change: one
//! realistic body (the `core` bench's) parsed and validated `N` times through the real
//! parser, or planned through the batch path (`plan`: parse, mask, plan) in batches of 10.
//!
//! ```console
//! $ cargo build --release -p login-etl-core --example parse_many
//! $ valgrind --tool=callgrind --callgrind-out-file=/dev/null target/release/examples/parse_many 0
//! $ valgrind --tool=callgrind --callgrind-out-file=/dev/null target/release/examples/parse_many 100000
//! ```
//!
//! The difference of the two totals (`Collected`), divided by 100,000, is the instructions per
//! record (docs/figures.md, "The built-in fields' rules read from the policy").

use std::hint::black_box;

use login_etl_core::batch;
use login_etl_core::mask::{Masker, MaskingKey};
use login_etl_core::message::LoginRecord;

const BODY: &str = r#"{"user_id":"424cdd21-063a-43a7-b91b-7ca1a833afae","app_version":"2.3.0","device_type":"android","ip":"199.172.111.135","locale":"RU","device_id":"593-47-5928"}"#;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let n: usize = args.next().as_deref().unwrap_or("100000").parse()?;
    let plan = args.next().as_deref() == Some("plan");
    let mut valid = 0usize;
    if plan {
        let masker = Masker::hmac(&MaskingKey::from_hex(&"5a".repeat(32))?);
        let batch: Vec<_> =
            (0..10).map(|i| sqs_batch::testing::message(&format!("00000000-0000-4000-8000-{i:012}"), BODY)).collect();
        for _ in 0..n / 10 {
            let plan = batch::plan(black_box(&batch), &masker, None)?;
            valid += plan.contract.accepted().len();
        }
    } else {
        for _ in 0..n {
            valid += usize::from(LoginRecord::parse(black_box(BODY)).is_ok());
        }
    }
    println!("{valid} of {n} bodies valid");
    Ok(())
}
