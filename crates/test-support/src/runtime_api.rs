//! A Lambda Runtime API that answers as many `/next` polls at once as the runtime makes, the
//! way Lambda Managed Instances do, for the tests and benchmarks that run the real bootstrap
//! (`login-etl`) several invocations at a time. It is kept only for what no real emulator
//! here does: AWS's Runtime Interface Emulator (which `make sam-local` runs in SAM's
//! container) serves one invocation at a time, so it cannot show whether invocations overlap
//! or leak into one another, and it sends no X-Ray trace header (`Lambda-Runtime-Trace-Id`),
//! which the logs' `xrayTraceId` comes from. Everything else runs under the real emulator.
//!
//! HTTP/1.1 with keep-alive over plain TCP, only what a custom runtime uses: `GET
//! /2018-06-01/runtime/invocation/next` (parked until an event is queued), `POST
//! …/invocation/{id}/response`, `POST …/invocation/{id}/error` and `POST
//! …/runtime/init/error`. Anything else (the Extensions API) gets 404, which the function
//! logs and goes on from.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Notify;
use tokio::task::JoinHandle;

/// What the function answered for one invocation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    /// `POST …/response`: the function's result.
    Response(serde_json::Value),
    /// `POST …/error`: the invocation failed (Lambda retries the batch).
    Error(serde_json::Value),
}

/// One invocation as the harness handed it out, and what came back.
#[derive(Debug, Clone)]
pub struct Invocation {
    pub request_id: String,
    pub trace_id: String,
    /// When the runtime's `/next` poll received it.
    pub handed_out: Option<Instant>,
    /// When the answer arrived, and the answer.
    pub answered: Option<(Instant, Answer)>,
}

#[derive(Default)]
struct State {
    queue: Mutex<VecDeque<(String, String, Vec<u8>)>>,
    queued: Notify,
    invocations: Mutex<HashMap<String, Invocation>>,
    answered: Notify,
    init_error: Mutex<Option<serde_json::Value>>,
    /// `/next` polls now parked, waiting for an event.
    parked_polls: AtomicUsize,
    /// Handed out and not yet answered.
    running: AtomicUsize,
    /// The most invocations ever running at once.
    most_running: AtomicUsize,
    /// Answers received.
    answers: AtomicUsize,
}

/// The harness: listening on 127.0.0.1 until dropped.
pub struct RuntimeApi {
    address: String,
    state: Arc<State>,
    server: JoinHandle<()>,
}

impl Drop for RuntimeApi {
    fn drop(&mut self) {
        self.server.abort();
    }
}

static NEXT_ID: AtomicU64 = AtomicU64::new(0);

impl RuntimeApi {
    /// Listens on a free port of 127.0.0.1.
    pub async fn start() -> std::io::Result<RuntimeApi> {
        RuntimeApi::start_on(0).await
    }

    /// Listens on `port` of 127.0.0.1 (0: any free one).
    pub async fn start_on(port: u16) -> std::io::Result<RuntimeApi> {
        let listener = TcpListener::bind(("127.0.0.1", port)).await?;
        let address = listener.local_addr()?.to_string();
        let state = Arc::new(State::default());
        let serving = Arc::clone(&state);
        let server = tokio::spawn(async move {
            let mut connections = tokio::task::JoinSet::new();
            while let Ok((stream, _)) = listener.accept().await {
                let _ = stream.set_nodelay(true);
                connections.spawn(serve(stream, Arc::clone(&serving)));
                while connections.try_join_next().is_some() {}
            }
        });
        Ok(RuntimeApi { address, state, server })
    }

    /// The value for `AWS_LAMBDA_RUNTIME_API`.
    pub fn address(&self) -> &str {
        &self.address
    }

    /// Queues an event for the next `/next` poll; returns its request id. Every invocation
    /// gets its own request id and X-Ray trace header, as Lambda sends them.
    pub fn enqueue(&self, event: &[u8]) -> String {
        let n = NEXT_ID.fetch_add(1, Ordering::Relaxed);
        let nanos = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or_default();
        let request_id = format!("{:08x}-{:04x}-4000-8000-{:012x}", std::process::id(), n % 0x10000, nanos % (1 << 48));
        let trace_id = format!(
            "Root=1-{:08x}-{:024x};Parent={:016x};Sampled=1",
            nanos / 1_000_000_000 % (1 << 32),
            nanos ^ u128::from(n),
            n
        );
        self.state.invocations.lock().expect("harness lock").insert(
            request_id.clone(),
            Invocation { request_id: request_id.clone(), trace_id: trace_id.clone(), handed_out: None, answered: None },
        );
        self.state.queue.lock().expect("harness lock").push_back((request_id.clone(), trace_id, event.to_vec()));
        self.state.queued.notify_waiters();
        request_id
    }

    /// The invocation `request_id` as it stands.
    pub fn invocation(&self, request_id: &str) -> Option<Invocation> {
        self.state.invocations.lock().expect("harness lock").get(request_id).cloned()
    }

    /// Waits for `request_id`'s answer, at most `within`.
    pub async fn answer(&self, request_id: &str, within: Duration) -> Option<(Invocation, Answer)> {
        let wait = async {
            loop {
                let answered = self.state.answered.notified();
                tokio::pin!(answered);
                answered.as_mut().enable();
                if let Some(invocation) = self.invocation(request_id)
                    && let Some((_, answer)) = invocation.answered.clone()
                {
                    return (invocation, answer);
                }
                answered.await;
            }
        };
        tokio::time::timeout(within, wait).await.ok()
    }

    /// Waits until `polls` `/next` polls are parked (the runtime is idle and ready for that
    /// many invocations), at most `within`; whether they were.
    pub async fn wait_for_parked_polls(&self, polls: usize, within: Duration) -> bool {
        let started = Instant::now();
        while started.elapsed() < within {
            if self.parked_polls() >= polls {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        false
    }

    /// `/next` polls now waiting for an event.
    pub fn parked_polls(&self) -> usize {
        self.state.parked_polls.load(Ordering::SeqCst)
    }

    /// Invocations handed out and not answered yet.
    pub fn running(&self) -> usize {
        self.state.running.load(Ordering::SeqCst)
    }

    /// The most invocations that were ever running at once.
    pub fn most_running(&self) -> usize {
        self.state.most_running.load(Ordering::SeqCst)
    }

    /// How many invocations have been answered.
    pub fn answers(&self) -> usize {
        self.state.answers.load(Ordering::SeqCst)
    }

    /// Waits until `count` invocations have been answered, at most `within`; whether they were.
    pub async fn wait_for_answers(&self, count: usize, within: Duration) -> bool {
        let wait = async {
            loop {
                let answered = self.state.answered.notified();
                tokio::pin!(answered);
                answered.as_mut().enable();
                if self.answers() >= count {
                    return;
                }
                answered.await;
            }
        };
        tokio::time::timeout(within, wait).await.is_ok()
    }

    /// What the function reported to `/runtime/init/error`, if anything.
    pub fn init_error(&self) -> Option<serde_json::Value> {
        self.state.init_error.lock().expect("harness lock").clone()
    }
}

/// One runtime connection: requests one after another (keep-alive) until it closes.
async fn serve(stream: TcpStream, state: Arc<State>) {
    let (read, mut write) = stream.into_split();
    let mut read = BufReader::new(read);
    while let Ok(Some((method, path, body))) = read_request(&mut read).await {
        let reply = route(&method, &path, &body, &state).await;
        if write.write_all(&reply).await.is_err() {
            return;
        }
    }
}

/// Reads one request: the method, the path and the body (by `Content-Length`).
async fn read_request(
    read: &mut BufReader<tokio::net::tcp::OwnedReadHalf>,
) -> std::io::Result<Option<(String, String, Vec<u8>)>> {
    let mut line = String::new();
    if read.read_line(&mut line).await? == 0 {
        return Ok(None);
    }
    let mut parts = line.split_whitespace();
    let (method, path) = (parts.next().unwrap_or_default().to_owned(), parts.next().unwrap_or_default().to_owned());
    let mut length = 0usize;
    loop {
        let mut header = String::new();
        if read.read_line(&mut header).await? == 0 {
            return Ok(None);
        }
        let header = header.trim_end();
        if header.is_empty() {
            break;
        }
        if let Some((name, value)) = header.split_once(':')
            && name.trim().eq_ignore_ascii_case("content-length")
        {
            length = value.trim().parse().unwrap_or(0);
        }
    }
    let mut body = vec![0; length];
    read.read_exact(&mut body).await?;
    Ok(Some((method, path, body)))
}

fn http(status: &str, headers: &[(&str, &str)], body: &[u8]) -> Vec<u8> {
    let mut head = format!("HTTP/1.1 {status}\r\nContent-Length: {}\r\n", body.len());
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str("\r\n");
    let mut reply = head.into_bytes();
    reply.extend_from_slice(body);
    reply
}

async fn route(method: &str, path: &str, body: &[u8], state: &State) -> Vec<u8> {
    let path = path.trim_start_matches("/2018-06-01/runtime");
    let accepted = || http("202 Accepted", &[("Content-Type", "application/json")], b"{\"status\":\"OK\"}");
    match (method, path) {
        ("GET", "/invocation/next") => next_invocation(state).await,
        ("POST", "/init/error") => {
            *state.init_error.lock().expect("harness lock") = serde_json::from_slice(body).ok();
            accepted()
        }
        ("POST", invocation) => {
            let Some((request_id, kind)) =
                invocation.strip_prefix("/invocation/").and_then(|rest| rest.rsplit_once('/'))
            else {
                return http("404 Not Found", &[], b"");
            };
            let value = serde_json::from_slice(body).unwrap_or(serde_json::Value::Null);
            let answer = match kind {
                "response" => Answer::Response(value),
                "error" => Answer::Error(value),
                _ => return http("404 Not Found", &[], b""),
            };
            if let Some(invocation) = state.invocations.lock().expect("harness lock").get_mut(request_id) {
                invocation.answered = Some((Instant::now(), answer));
                state.running.fetch_sub(1, Ordering::SeqCst);
                state.answers.fetch_add(1, Ordering::SeqCst);
            }
            state.answered.notify_waiters();
            accepted()
        }
        _ => http("404 Not Found", &[("Content-Type", "application/json")], b"{\"errorMessage\":\"not served\"}"),
    }
}

/// Parks until an event is queued, then hands it out with Lambda's headers.
async fn next_invocation(state: &State) -> Vec<u8> {
    state.parked_polls.fetch_add(1, Ordering::SeqCst);
    let (request_id, trace_id, event) = loop {
        let queued = state.queued.notified();
        tokio::pin!(queued);
        queued.as_mut().enable();
        if let Some(next) = state.queue.lock().expect("harness lock").pop_front() {
            break next;
        }
        queued.await;
    };
    state.parked_polls.fetch_sub(1, Ordering::SeqCst);
    let running = state.running.fetch_add(1, Ordering::SeqCst) + 1;
    state.most_running.fetch_max(running, Ordering::SeqCst);
    if let Some(invocation) = state.invocations.lock().expect("harness lock").get_mut(&request_id) {
        invocation.handed_out = Some(Instant::now());
    }
    let deadline = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis()).unwrap_or_default() + 60_000;
    http(
        "200 OK",
        &[
            ("Content-Type", "application/json"),
            ("Lambda-Runtime-Aws-Request-Id", &request_id),
            ("Lambda-Runtime-Deadline-Ms", &deadline.to_string()),
            ("Lambda-Runtime-Invoked-Function-Arn", "arn:aws:lambda:us-east-1:000000000000:function:login-etl"),
            ("Lambda-Runtime-Trace-Id", &trace_id),
        ],
        &event,
    )
}

/// The environment the bootstrap gets under this harness, as Lambda sets it (besides what a
/// caller adds): the Runtime API, the function's name, memory and version, JSON logs.
pub fn lambda_env(api: &RuntimeApi) -> Vec<(&'static str, String)> {
    vec![
        ("AWS_LAMBDA_RUNTIME_API", api.address().to_owned()),
        ("AWS_LAMBDA_FUNCTION_NAME", "login-etl".into()),
        ("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "2048".into()),
        ("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST".into()),
        ("AWS_LAMBDA_LOG_FORMAT", "JSON".into()),
        ("AWS_REGION", "us-east-1".into()),
        ("PATH", std::env::var("PATH").unwrap_or_default()),
    ]
}

/// A bootstrap's stdout, collected line by line on a thread of its own.
#[derive(Clone, Default)]
pub struct Lines(Arc<Mutex<Vec<String>>>);

impl Lines {
    /// Reads `stdout` until it closes.
    pub fn collect(stdout: impl std::io::Read + Send + 'static) -> Lines {
        let lines = Lines::default();
        let filling = lines.clone();
        std::thread::spawn(move || {
            use std::io::BufRead;
            for line in std::io::BufReader::new(stdout).lines().map_while(Result::ok) {
                filling.0.lock().expect("lines lock").push(line);
            }
        });
        lines
    }

    pub fn all(&self) -> Vec<String> {
        self.0.lock().expect("lines lock").clone()
    }

    /// The JSON lines, parsed (a non-JSON line is skipped).
    pub fn json(&self) -> Vec<serde_json::Value> {
        self.all().iter().filter_map(|line| serde_json::from_str(line).ok()).collect()
    }
}

/// A bootstrap running under a [`RuntimeApi`], its stdout and stderr collected.
pub struct Bootstrap {
    pub child: std::process::Child,
    pub stdout: Lines,
    pub stderr: Lines,
}

impl Bootstrap {
    /// Starts `binary` (e.g. `env!("CARGO_BIN_EXE_login-etl")`) with exactly [`lambda_env`]
    /// and `env`, nothing inherited.
    pub fn spawn(binary: &str, api: &RuntimeApi, env: &[(&str, String)]) -> std::io::Result<Bootstrap> {
        let mut command = std::process::Command::new(binary);
        command.env_clear();
        for (name, value) in lambda_env(api).iter().chain(env) {
            command.env(name, value);
        }
        let mut child = command
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()?;
        let stdout = Lines::collect(child.stdout.take().expect("piped stdout"));
        let stderr = Lines::collect(child.stderr.take().expect("piped stderr"));
        Ok(Bootstrap { child, stdout, stderr })
    }

    /// Sends SIGTERM, as Lambda does when it shuts an execution environment down.
    pub fn terminate(&self) {
        let pid = libc::pid_t::try_from(self.child.id()).expect("pid");
        // SAFETY: kill(2) on our own child's pid.
        unsafe { libc::kill(pid, libc::SIGTERM) };
    }

    /// Waits for the process to exit, at most `within`; its status if it did. Async, so the
    /// harness on the same runtime keeps serving meanwhile.
    pub async fn wait_exit(&mut self, within: Duration) -> Option<std::process::ExitStatus> {
        let started = Instant::now();
        while started.elapsed() < within {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Some(status);
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        None
    }
}

impl Drop for Bootstrap {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}
