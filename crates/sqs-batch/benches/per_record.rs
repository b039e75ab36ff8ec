//! The per-record path's cost: one event of 10,000 records through `Processor::run` with a
//! handler that sleeps 1 ms (I/O-bound) at concurrency 1, 10 and 100, beside the runtime
//! example's unbounded `join_all` on the same event; and a no-op handler, whose time is the
//! plan's own overhead per record.
//!
//! `cargo bench -p sqs-batch --features testing --bench per_record` (also in `make bench`).
//! At concurrency 100 the run should finish within 1.2× of the ideal (10,000 × 1 ms / 100 =
//! 100 ms); the last line says whether it did. Each figure is the median of its runs.
//!
//! The handler's 1 ms is [`precise_sleep`], not `tokio::time::sleep`: tokio's timer wheel
//! counts whole milliseconds and rounds a deadline up, so its "1 ms" lasts about 2 ms here and
//! would measure the timer, not the crate. Both are shown, each beside its floor: the same
//! number of sleeps in 100 chains with no crate at all.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::future::Future;
use std::pin::Pin;
use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender, channel};
use std::sync::{Mutex, OnceLock};
use std::task::{Context, Poll, Waker};
use std::thread;
use std::time::{Duration, Instant};

use aws_lambda_events::sqs::SqsMessage;
use futures_util::future::join_all;
use sqs_batch::testing::message;
use sqs_batch::{Processor, Record, RecordFailure};

const RECORDS: usize = 10_000;
const SLEEP: Duration = Duration::from_millis(1);

fn event() -> Vec<SqsMessage> {
    (0..RECORDS).map(|i| message(&format!("{i:08x}-0000-4000-8000-000000000000"), r#"{"n": 1}"#)).collect()
}

/// A timer thread that wakes each sleeper at its deadline to within the OS's sleep slack
/// (tens of microseconds), where tokio's timer rounds up to the next whole millisecond.
fn timer() -> &'static Mutex<Sender<(Instant, Waker)>> {
    static TIMER: OnceLock<Mutex<Sender<(Instant, Waker)>>> = OnceLock::new();
    TIMER.get_or_init(|| {
        let (sender, receiver) = channel();
        thread::spawn(move || run_timer(receiver));
        Mutex::new(sender)
    })
}

fn run_timer(receiver: Receiver<(Instant, Waker)>) {
    // Linux wakes a sleeping thread up to 50 µs late by default (its timer slack); 1 ns here.
    #[cfg(target_os = "linux")]
    // SAFETY: PR_SET_TIMERSLACK takes a plain integer and changes only this thread's slack.
    unsafe {
        libc::prctl(
            libc::PR_SET_TIMERSLACK,
            1 as libc::c_ulong,
            0 as libc::c_ulong,
            0 as libc::c_ulong,
            0 as libc::c_ulong,
        );
    }
    let mut due: BinaryHeap<Reverse<(Instant, u64)>> = BinaryHeap::new();
    let mut wakers = std::collections::HashMap::new();
    let mut next_id = 0u64;
    loop {
        let now = Instant::now();
        while let Some(Reverse((deadline, id))) = due.peek().copied() {
            if deadline > now {
                break;
            }
            due.pop();
            if let Some(waker) = wakers.remove(&id) {
                Waker::wake(waker);
            }
        }
        let wait = due.peek().map(|Reverse((deadline, _))| deadline.saturating_duration_since(now));
        let received = match wait {
            Some(wait) => receiver.recv_timeout(wait),
            None => receiver.recv().map_err(|_| RecvTimeoutError::Disconnected),
        };
        match received {
            Ok((deadline, waker)) => {
                due.push(Reverse((deadline, next_id)));
                wakers.insert(next_id, waker);
                next_id += 1;
            }
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => return,
        }
    }
}

struct PreciseSleep {
    deadline: Instant,
    registered: bool,
}

impl Future for PreciseSleep {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if Instant::now() >= self.deadline {
            return Poll::Ready(());
        }
        if !self.registered {
            self.registered = true;
            let sender = timer().lock().expect("timer lock");
            sender.send((self.deadline, cx.waker().clone())).expect("the timer thread runs");
        }
        Poll::Pending
    }
}

/// `duration` of simulated I/O, woken by the timer thread.
fn precise_sleep(duration: Duration) -> PreciseSleep {
    PreciseSleep { deadline: Instant::now() + duration, registered: false }
}

async fn sleeping(_: Record) -> Result<(), RecordFailure> {
    precise_sleep(SLEEP).await;
    Ok(())
}

async fn tokio_sleeping(_: Record) -> Result<(), RecordFailure> {
    tokio::time::sleep(SLEEP).await;
    Ok(())
}

async fn noop(_: Record) -> Result<(), RecordFailure> {
    Ok(())
}

fn median(mut runs: Vec<Duration>) -> Duration {
    runs.sort();
    runs[runs.len() / 2]
}

#[derive(Clone, Copy, PartialEq)]
enum Handler {
    Precise,
    Tokio,
    Noop,
}

async fn time_run(concurrency: usize, handler: Handler, runs: usize) -> Duration {
    let processor = Processor::default().with_concurrency(concurrency);
    let mut times = Vec::with_capacity(runs);
    for _ in 0..runs {
        let records = event();
        let started = Instant::now();
        let outcome = match handler {
            Handler::Precise => processor.run(records, None, sleeping).await,
            Handler::Tokio => processor.run(records, None, tokio_sleeping).await,
            Handler::Noop => processor.run(records, None, noop).await,
        };
        times.push(started.elapsed());
        let outcome = outcome.expect("every record has an id");
        assert_eq!(outcome.succeeded(), RECORDS);
    }
    median(times)
}

/// The runtime example's shape: every record's future at once, `join_all`.
async fn time_join_all(runs: usize) -> Duration {
    let mut times = Vec::with_capacity(runs);
    for _ in 0..runs {
        let records = event();
        let started = Instant::now();
        let results = join_all(records.into_iter().map(|record| async move {
            let _ = record.message_id;
            precise_sleep(SLEEP).await;
            Ok::<(), RecordFailure>(())
        }))
        .await;
        times.push(started.elapsed());
        assert!(results.iter().all(Result::is_ok));
    }
    median(times)
}

/// The floor for a bounded run: `lanes` chains of sleeps, no crate, same timer.
async fn time_sleep_floor(lanes: usize, tokio_timer: bool, runs: usize) -> Duration {
    let mut times = Vec::with_capacity(runs);
    for _ in 0..runs {
        let started = Instant::now();
        join_all((0..lanes).map(|_| async move {
            for _ in 0..RECORDS / lanes {
                if tokio_timer {
                    tokio::time::sleep(SLEEP).await;
                } else {
                    precise_sleep(SLEEP).await;
                }
            }
        }))
        .await;
        times.push(started.elapsed());
    }
    median(times)
}

fn row(name: &str, took: Duration, ideal: Duration) {
    println!("{name:<40} {:>8.1}ms {:>13.2}x", took.as_secs_f64() * 1e3, took.as_secs_f64() / ideal.as_secs_f64());
}

fn main() {
    // Criterion-style arguments (`--bench`) are ignored: this is a plain timing run.
    let runtime = tokio::runtime::Builder::new_current_thread().enable_time().build().expect("a runtime");
    runtime.block_on(async {
        println!("one event of {RECORDS} records, handler sleeping {SLEEP:?}; medians");
        println!("{:<40} {:>10} {:>14}", "run", "time", "x ideal");
        let mut at_100 = Duration::ZERO;
        for (concurrency, runs) in [(1, 1), (10, 3), (100, 5)] {
            let took = time_run(concurrency, Handler::Precise, runs).await;
            row(&format!("Processor::run, concurrency {concurrency}"), took, SLEEP * (RECORDS / concurrency) as u32);
            if concurrency == 100 {
                at_100 = took;
            }
        }
        let ideal_100 = SLEEP * (RECORDS / 100) as u32;
        row("floor: 100 chains of sleeps, no crate", time_sleep_floor(100, false, 5).await, ideal_100);
        let unbounded = time_join_all(5).await;
        println!(
            "{:<40} {:>8.1}ms {:>14}",
            "join_all, unbounded (runtime example)",
            unbounded.as_secs_f64() * 1e3,
            "-"
        );
        row("tokio::time::sleep, concurrency 100", time_run(100, Handler::Tokio, 3).await, ideal_100);
        row("floor with tokio::time::sleep", time_sleep_floor(100, true, 3).await, ideal_100);
        for concurrency in [1, 100] {
            let took = time_run(concurrency, Handler::Noop, 11).await;
            println!(
                "{:<40} {:>8.1}ms {:>11.0} ns/record",
                format!("no-op handler, concurrency {concurrency}"),
                took.as_secs_f64() * 1e3,
                took.as_secs_f64() * 1e9 / RECORDS as f64
            );
        }
        let ratio = at_100.as_secs_f64() / ideal_100.as_secs_f64();
        let verdict = if ratio <= 1.2 { "within" } else { "ABOVE" };
        println!("concurrency 100: {ratio:.2}x the ideal, {verdict} the 1.2x target");
    });
}
