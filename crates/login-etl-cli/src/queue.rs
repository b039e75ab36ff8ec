//! Commands over SQS: `setup`, `send`, `depth`, `redrive` and `drain`.

use std::io::{IsTerminal, Read, Write};
use std::time::{Duration, Instant};

use super::{DepthArgs, DrainArgs, EXIT_FAILING_MESSAGES_LEFT, RedriveArgs, SendArgs, SetupArgs};
use crate::{kms, schema, write_result};
use login_etl::{
    Config, DatabaseSource, DrainEnd, DrainOptions, DrainReport, Handler, MaskingKeySource, Queue, SecretStore,
};
use login_etl_core::sample;
use login_etl_core::schema::Verdict;

/// What `setup` creates things with.
pub struct SetupClients {
    pub sqs: aws_sdk_sqs::Client,
    pub kms: aws_sdk_kms::Client,
    pub secrets: SecretStore,
}

/// Makes (or finds) the KMS key under `args.kms_key_alias`, creates (or updates) the queue and
/// its DLQ encrypted with it, stores `DATABASE_URL` as the database secret (if the database
/// comes from a URL) and the masking key (`MASKING_KEY`, else a random key) unless that secret
/// exists, both written under the same key (an existing masking key is left as it is).
pub async fn setup(
    args: &SetupArgs,
    config: &Config,
    clients: &SetupClients,
    out: &mut impl Write,
) -> anyhow::Result<()> {
    let key_arn =
        kms::ensure_key(&clients.kms, &args.kms_key_alias, "login-etl local harness: raw login events in SQS").await?;
    let (queue_url, dlq_url) = login_etl::ensure_queue_with_dlq(
        &clients.sqs,
        &args.queue_name,
        args.visibility_timeout,
        args.max_receive_count,
        Some(&key_arn),
    )
    .await?;
    // The secrets under the same key, as the stack's masking-key secret.
    let secrets = &clients.secrets.clone().encrypted_with(&key_arn);

    let mut db_secret = None;
    if let Some(DatabaseSource::Url(url)) = &config.database.source {
        let secret =
            login_etl::database_secret_json(url).map_err(|problem| anyhow::anyhow!("DATABASE_URL: {problem}"))?;
        secrets.put(&args.db_secret_id, &secret).await?;
        db_secret = Some(&args.db_secret_id);
    }
    let key_hex = match &config.masking.key {
        Some(MaskingKeySource::Inline(key)) => Some(key.to_hex()),
        _ => None,
    };
    let created = secrets.create_masking_key_if_absent(&args.masking_key_secret_id, key_hex.as_deref()).await?;
    let key_status = if created { "created" } else { "exists, left unchanged" };

    if args.json {
        writeln!(
            out,
            "{}",
            serde_json::json!({
                "queue_url": queue_url,
                "dlq_url": dlq_url,
                "max_receive_count": args.max_receive_count,
                "visibility_timeout": args.visibility_timeout,
                "db_secret_id": db_secret,
                "masking_key_secret_id": args.masking_key_secret_id,
                "masking_key_created": created,
                "kms_key_arn": key_arn,
                "kms_key_alias": args.kms_key_alias,
            })
        )?;
        return Ok(());
    }
    writeln!(out, "queue      {queue_url}")?;
    writeln!(out, "dlq        {dlq_url}  (maxReceiveCount {})", args.max_receive_count)?;
    writeln!(out, "kms key    {key_arn} ({}, SSE-KMS on both queues)", args.kms_key_alias)?;
    if let Some(id) = db_secret {
        writeln!(out, "secret     {id} (from DATABASE_URL)")?;
    }
    writeln!(out, "secret     {} ({key_status})", args.masking_key_secret_id)?;
    Ok(())
}

/// Sends `args.count` sample messages, `args.bad_ratio` of them malformed; or the one body of
/// `--body`; or the bodies of `--file` (`-`: `stdin`), as `validate` reads them. Bodies of the
/// user's own are sent as they are, valid or not: a malformed one is how a DLQ is tried out.
pub async fn send(args: &SendArgs, queue: &Queue, stdin: impl Read, out: &mut impl Write) -> anyhow::Result<()> {
    let (bodies, bad, drifted) = match (&args.body, &args.file, args.count) {
        (Some(body), _, _) => own_bodies(vec![body.clone()]),
        (None, Some(file), _) => {
            let input = schema::read_bodies_file(file, stdin)?;
            let bodies = schema::bodies_of(&input)?;
            let texts: Vec<String> = bodies.into_iter().filter_map(|body| body.text).collect();
            anyhow::ensure!(
                !texts.is_empty(),
                "no body in {}: give one JSON body per line, or an SQS event with a Records array",
                file.display()
            );
            own_bodies(texts)
        }
        (None, None, count) => {
            let count = usize::try_from(count.unwrap_or(1))?;
            let messages = sample::sample_messages(count, args.bad_ratio, args.seed);
            let messages = sample::with_unknown_keys(messages, args.unknown_key_ratio, args.seed);
            let bad = messages.iter().filter(|m| m.expected_failure.is_some()).count();
            let drifted = messages.iter().filter(|m| m.unknown_keys).count();
            (messages.into_iter().map(|m| m.body).collect(), bad, drifted)
        }
    };
    let started = Instant::now();
    let ids = queue.send(&bodies).await?;
    let seconds = started.elapsed().as_secs_f64();
    let value = serde_json::json!({
        "queue_url": queue.url(),
        "sent": ids.len(),
        "malformed": bad,
        "with_unknown_keys": drifted,
        "seconds": seconds
    });
    let sent = ids.len();
    let url = queue.url();
    write_result(
        out,
        args.json,
        value,
        format_args!("sent {sent} messages ({bad} malformed, {drifted} with unknown keys) to {url} in {seconds:.1} s"),
    )?;
    Ok(())
}

/// The user's own bodies, counted by the function's own verdict (as `validate` gives it).
fn own_bodies(bodies: Vec<String>) -> (Vec<String>, usize, usize) {
    let verdicts: Vec<Verdict> = bodies.iter().map(|body| login_etl_core::schema::judge(body)).collect();
    let bad = verdicts.iter().filter(|verdict| !verdict.is_valid()).count();
    let drifted = verdicts
        .iter()
        .filter(|verdict| matches!(verdict, Verdict::Valid { unknown_keys } if !unknown_keys.is_empty()))
        .count();
    (bodies, bad, drifted)
}

/// Drains `queue` through `handler` until it is empty (or `stop` completes, with `--follow`).
/// Progress goes to `notes` when it is a terminal; the summary to `out`. Returns the exit
/// status: [`EXIT_FAILING_MESSAGES_LEFT`] when only failing messages are left on a queue
/// without a redrive policy.
pub async fn drain(
    args: &DrainArgs,
    handler: &Handler,
    queue: &Queue,
    stop: impl std::future::Future<Output = ()>,
    out: &mut impl Write,
    notes: &mut impl Write,
) -> anyhow::Result<u8> {
    let progress = std::io::stderr().is_terminal();
    let options = DrainOptions {
        concurrency: args.concurrency.into(),
        wait_seconds: args.wait_seconds,
        follow: args.follow,
        sqs_retry: Duration::from_secs(args.sqs_retry_seconds),
        progress_every: progress.then_some(Duration::from_millis(500)),
    };
    // A signal stops the pollers cleanly: batches in hand are finished and deleted, and the
    // summary is printed as after any drain.
    let report = login_etl::drain_until(queue, handler, &options, stop, |p| {
        let _ = write!(
            notes,
            "\rreceived {:>8}  inserted {:>8}  failed {:>6}  {:>8.0} msg/s ",
            p.received,
            p.inserted,
            p.failed,
            p.messages_per_second()
        );
    })
    .await?;
    if progress {
        writeln!(notes)?;
    }
    if args.json {
        writeln!(out, "{}", drain_json(queue, &report))?;
    } else {
        write_drain_report(out, queue, &report)?;
    }
    Ok(match report.end {
        DrainEnd::OnlyFailingMessagesLeft { .. } => EXIT_FAILING_MESSAGES_LEFT,
        DrainEnd::Empty | DrainEnd::Stopped => 0,
    })
}

fn drain_json(queue: &Queue, report: &DrainReport) -> serde_json::Value {
    let (end, failing_left) = match report.end {
        DrainEnd::Empty => ("empty", 0),
        DrainEnd::OnlyFailingMessagesLeft { messages } => ("only_failing_left", messages),
        DrainEnd::Stopped => ("stopped", 0),
    };
    serde_json::json!({
        "queue_url": queue.url(),
        "received": report.received,
        "inserted": report.inserted,
        "duplicates": report.duplicates,
        "deleted": report.deleted,
        "failed_by_reason": report.failures_by_code,
        "failed_messages_by_reason": report.failed_messages_by_code,
        "unknown_field_records": report.unknown_field_records,
        "unknown_keys": report.unknown_keys.names(),
        "seconds": report.elapsed.as_secs_f64(),
        "messages_per_second": report.messages_per_second(),
        "end": end,
        "failing_left": failing_left,
    })
}

fn write_drain_report(out: &mut impl Write, queue: &Queue, report: &DrainReport) -> std::io::Result<()> {
    let end = match report.end {
        DrainEnd::Empty => "the queue is empty".to_string(),
        DrainEnd::OnlyFailingMessagesLeft { messages } => format!(
            "only {messages} failing message(s) left and the queue has no redrive policy: they would be retried forever"
        ),
        DrainEnd::Stopped => "stopped by a signal; batches in hand were finished".to_string(),
    };
    writeln!(out, "drained {} in {:.1} s: {end}", queue.url(), report.elapsed.as_secs_f64())?;
    writeln!(out, "  received    {:>8}  (deliveries, redeliveries of failures included)", report.received)?;
    writeln!(out, "  inserted    {:>8}", report.inserted)?;
    writeln!(out, "  duplicates  {:>8}  (already loaded, deleted without a second row)", report.duplicates)?;
    writeln!(out, "  deleted     {:>8}", report.deleted)?;
    let failed: u64 = report.failures_by_code.values().sum();
    let failed_messages: u64 = report.failed_messages_by_code.values().sum();
    writeln!(
        out,
        "  failed      {failed:>8}  deliveries of {failed_messages} messages (left to the visibility timeout and \
         the redrive)"
    )?;
    if !report.failures_by_code.is_empty() {
        writeln!(out, "    {:<28} {:>10} {:>10}", "reason", "deliveries", "messages")?;
    }
    for (reason, count) in &report.failures_by_code {
        let messages = report.failed_messages_by_code.get(reason).copied().unwrap_or(0);
        writeln!(out, "    {reason:<28} {count:>10} {messages:>10}")?;
    }
    if report.unknown_field_records > 0 {
        let more = if report.unknown_keys.names_dropped() { ", …" } else { "" };
        writeln!(
            out,
            "  unknown keys {:>7}  loaded records that carried keys the function does not know ({}{more}): \
             UnknownFieldRecords",
            report.unknown_field_records,
            report.unknown_keys.names().join(", ")
        )?;
    }
    writeln!(out, "  throughput  {:>8.0} messages/s", report.messages_per_second())
}

/// Prints how many messages `queue` holds, by state.
pub async fn depth(args: &DepthArgs, queue: &Queue, out: &mut impl Write) -> anyhow::Result<()> {
    let depth = queue.depth().await?;
    let value = serde_json::json!({
        "queue_url": queue.url(),
        "visible": depth.visible,
        "in_flight": depth.in_flight,
        "delayed": depth.delayed,
    });
    let (url, visible, in_flight, delayed) = (queue.url(), depth.visible, depth.in_flight, depth.delayed);
    write_result(
        out,
        args.json,
        value,
        format_args!("{url} visible={visible} in_flight={in_flight} delayed={delayed}"),
    )?;
    Ok(())
}

/// Moves every dead letter of `dlq` back to `target`, keeping each one's identity.
pub async fn redrive(args: &RedriveArgs, dlq: &Queue, target: &Queue, out: &mut impl Write) -> anyhow::Result<()> {
    let moved = login_etl::redrive(dlq, target).await?;
    let (from, to) = (dlq.url(), target.url());
    let value = serde_json::json!({ "moved": moved, "from": from, "to": to });
    write_result(out, args.json, value, format_args!("moved {moved} dead letters from {from} to {to}"))?;
    Ok(())
}
