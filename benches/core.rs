//! Per-record cost of the pure core: parse + validate + mask + plan, no I/O.
//! `make bench` (or `cargo bench --bench core`); criterion reports time per batch and
//! elements/s, from which ns/record = time / batch size.

use std::hint::black_box;

use aws_lambda_events::sqs::SqsMessage;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use login_etl_core::batch;
use login_etl_core::mask::{MaskedField, Masker, MaskingKey};
use login_etl_core::message::LoginRecord;

const BODY: &str = r#"{"user_id":"424cdd21-063a-43a7-b91b-7ca1a833afae","app_version":"2.3.0","device_type":"android","ip":"199.172.111.135","locale":"RU","device_id":"593-47-5928"}"#;

fn records(n: usize) -> Vec<SqsMessage> {
    (0..n)
        .map(|i| {
            let body = BODY.replace("199.172.111.135", &format!("10.0.{}.{}", i / 256 % 256, i % 256));
            login_etl_test_support::sqs_message(&format!("00000000-0000-4000-8000-{i:012}"), &body)
        })
        .collect()
}

fn core(c: &mut Criterion) {
    let key = MaskingKey::from_hex(&"5a".repeat(32)).expect("key");
    let hmac = Masker::hmac(&key);
    let sha = Masker::sha256_compat();

    let mut single = c.benchmark_group("record");
    single.throughput(Throughput::Elements(1));
    single.bench_function("parse_validate", |b| b.iter(|| LoginRecord::parse(black_box(BODY))));
    single.bench_function("mask_hmac", |b| b.iter(|| hmac.mask(MaskedField::Ip, black_box("199.172.111.135"))));
    single.bench_function("mask_sha256", |b| b.iter(|| sha.mask(MaskedField::Ip, black_box("199.172.111.135"))));
    single.finish();

    let mut plans = c.benchmark_group("plan");
    for n in [10usize, 10_000] {
        let batch = records(n);
        plans.throughput(Throughput::Elements(n as u64));
        plans.bench_function(format!("hmac/{n}"), |b| b.iter(|| batch::plan(black_box(&batch), &hmac, None)));
    }
    plans.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().warm_up_time(std::time::Duration::from_secs(1)).measurement_time(std::time::Duration::from_secs(3));
    targets = core
}
criterion_main!(benches);
