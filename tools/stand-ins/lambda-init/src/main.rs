//! Stand-in for LocalStack's Lambda runtime init (`/var/rapid/init`), for `make e2e` on a
//! machine that cannot download it.
//!
//! What it replaces: LocalStack runs every Lambda execution environment in a Docker container
//! whose entry point is its customised AWS Runtime Interface Emulator
//! (github.com/localstack/lambda-runtime-init, release v0.1.41-pre for LocalStack 2026.3.0),
//! downloaded from GitHub when the first function is created. When it is used: only when that
//! download fails (`tools/stand-ins/localstack-lambda-docker.py` tries it first and says in one line
//! which init it uses); with network access LocalStack's own init runs and this is not built
//! into any container.
//!
//! What it does, and nothing else: the two halves of that init that a `provided.al2023`
//! function needs.
//! - Towards LocalStack, LocalStack's private protocol (`executor_endpoint.py` in
//!   localstack-core 2026.3.0, which `scripts/e2e.sh` checks is the version installed): it
//!   serves `POST /invoke` (`invoke-id`, `invoked-function-arn`, `payload`, `trace-id`) on
//!   `LOGIN_ETL_INIT_PORT` (default 9563, LocalStack's port; the shim gives each container its
//!   own, as all of them share the host's network), and posts to `LOCALSTACK_RUNTIME_ENDPOINT`
//!   `status/<LOCALSTACK_RUNTIME_ID>/ready` once the bootstrap first asks for an invocation,
//!   `status/<id>/error` when it fails to start, and per invocation `invocations/<id>/logs`
//!   (what the bootstrap printed) then `invocations/<id>/response` or `.../error`.
//! - Towards the function, the Lambda Runtime API (`/2018-06-01/runtime/invocation/next`,
//!   `.../response`, `.../error`, `.../init/error`) on a free loopback port, named to the
//!   bootstrap in `AWS_LAMBDA_RUNTIME_API`.
//!
//! Not emulated: timeouts (LocalStack enforces the function's), extensions, X-Ray, and more
//! than one invocation at a time per environment (classic Lambda runs one).

use std::collections::HashMap;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Command, ExitCode, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// One invocation from LocalStack, waiting for the bootstrap's next `/next`.
struct Invocation {
    id: String,
    function_arn: String,
    trace_id: String,
    payload: String,
}

/// What the threads share: the invocation handed over, the bootstrap's output since the last
/// invocation ended, and where LocalStack listens.
struct Init {
    endpoint: String,
    runtime_id: String,
    timeout_ms: u64,
    next: Mutex<Option<Invocation>>,
    arrived: Condvar,
    in_flight: Mutex<Option<String>>,
    output: Mutex<(Vec<u8>, Instant)>,
    ready: AtomicBool,
}

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("lambda-init (stand-in): {err}");
            ExitCode::FAILURE
        }
    }
}

fn run() -> io::Result<()> {
    let env = |name: &str| std::env::var(name).unwrap_or_default();
    let init = Arc::new(Init {
        endpoint: env("LOCALSTACK_RUNTIME_ENDPOINT"),
        runtime_id: env("LOCALSTACK_RUNTIME_ID"),
        timeout_ms: env("AWS_LAMBDA_FUNCTION_TIMEOUT").parse::<u64>().unwrap_or(3) * 1000,
        next: Mutex::new(None),
        arrived: Condvar::new(),
        in_flight: Mutex::new(None),
        output: Mutex::new((Vec::new(), Instant::now())),
        ready: AtomicBool::new(false),
    });
    let invoke_port = env("LOGIN_ETL_INIT_PORT").parse::<u16>().unwrap_or(9563);
    let invokes = TcpListener::bind(("0.0.0.0", invoke_port))?;
    let runtime_api = TcpListener::bind(("127.0.0.1", 0))?;
    let runtime_api_address = runtime_api.local_addr()?.to_string();

    let bootstrap = ["/var/task/bootstrap", "/var/runtime/bootstrap"]
        .into_iter()
        .find(|path| std::path::Path::new(path).exists())
        .unwrap_or("/var/task/bootstrap");
    let mut child = match Command::new(bootstrap)
        .env("AWS_LAMBDA_RUNTIME_API", &runtime_api_address)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
    {
        Ok(child) => child,
        Err(err) => {
            let body = error_document("Runtime.InvalidEntrypoint", &format!("{bootstrap}: {err}"));
            post(&init, &format!("/status/{}/error", init.runtime_id), &body);
            return Err(err);
        }
    };
    if let Some(stdout) = child.stdout.take() {
        let init = Arc::clone(&init);
        thread::spawn(move || collect_output(&init, stdout, false));
    }
    if let Some(stderr) = child.stderr.take() {
        let init = Arc::clone(&init);
        thread::spawn(move || collect_output(&init, stderr, true));
    }
    {
        let init = Arc::clone(&init);
        thread::spawn(move || serve(runtime_api, move |stream| runtime_api_connection(&init, stream)));
    }
    {
        let init = Arc::clone(&init);
        thread::spawn(move || serve(invokes, move |stream| invoke_connection(&init, stream)));
    }

    // The environment lives as long as its bootstrap.
    let status = child.wait()?;
    let message = format!("the bootstrap exited ({status})");
    let in_flight = lock(&init.in_flight).take();
    if let Some(id) = in_flight {
        send_logs(&init, &id);
        post(&init, &format!("/invocations/{id}/error"), &error_document("Runtime.ExitError", &message));
    } else if !init.ready.load(Ordering::SeqCst) {
        post(&init, &format!("/status/{}/error", init.runtime_id), &error_document("Runtime.ExitError", &message));
    }
    Err(io::Error::other(message))
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Copies the bootstrap's output to the container's own (as Lambda's init does) and keeps it
/// for the invocation's logs.
fn collect_output(init: &Init, stream: impl Read, to_stderr: bool) {
    let mut reader = BufReader::new(stream);
    let mut line = Vec::new();
    while matches!(reader.read_until(b'\n', &mut line), Ok(n) if n > 0) {
        let _ = if to_stderr { io::stderr().write_all(&line) } else { io::stdout().write_all(&line) };
        let mut output = lock(&init.output);
        output.0.extend_from_slice(&line);
        output.1 = Instant::now();
        line.clear();
    }
}

fn serve(listener: TcpListener, handle: impl Fn(TcpStream) -> io::Result<()> + Send + Sync + Clone + 'static) {
    for stream in listener.incoming().flatten() {
        let handle = handle.clone();
        thread::spawn(move || {
            if let Err(err) = handle(stream) {
                eprintln!("lambda-init (stand-in): {err}");
            }
        });
    }
}

/// LocalStack's side: `POST /invoke`, answered at once; the result goes back through its endpoint.
fn invoke_connection(init: &Init, stream: TcpStream) -> io::Result<()> {
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut writer = stream;
    while let Some(request) = read_request(&mut reader)? {
        if request.method != "POST" || request.path != "/invoke" {
            respond(&mut writer, 404, &[], b"")?;
            continue;
        }
        let fields = parse_object(&String::from_utf8_lossy(&request.body));
        let Some(fields) = fields else {
            respond(&mut writer, 400, &[], b"invalid invoke document")?;
            continue;
        };
        let field = |name: &str| fields.get(name).cloned().unwrap_or_default();
        *lock(&init.next) = Some(Invocation {
            id: field("invoke-id"),
            function_arn: field("invoked-function-arn"),
            trace_id: field("trace-id"),
            payload: field("payload"),
        });
        init.arrived.notify_all();
        respond(&mut writer, 200, &[], b"")?;
    }
    Ok(())
}

/// The function's side: the Lambda Runtime API.
fn runtime_api_connection(init: &Init, stream: TcpStream) -> io::Result<()> {
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut writer = stream;
    while let Some(request) = read_request(&mut reader)? {
        let path = request.path.trim_start_matches("/2018-06-01/runtime");
        let parts: Vec<&str> = path.trim_matches('/').split('/').collect();
        match (request.method.as_str(), parts.as_slice()) {
            ("GET", ["invocation", "next"]) => {
                if !init.ready.swap(true, Ordering::SeqCst) {
                    post(init, &format!("/status/{}/ready", init.runtime_id), "{}");
                }
                let mut next = lock(&init.next);
                let invocation = loop {
                    if let Some(invocation) = next.take() {
                        break invocation;
                    }
                    next = init.arrived.wait(next).unwrap_or_else(|poisoned| poisoned.into_inner());
                };
                drop(next);
                *lock(&init.in_flight) = Some(invocation.id.clone());
                let now = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis()).unwrap_or_default();
                let deadline = (now + u128::from(init.timeout_ms)).to_string();
                let headers = [
                    ("Lambda-Runtime-Aws-Request-Id", invocation.id.as_str()),
                    ("Lambda-Runtime-Deadline-Ms", deadline.as_str()),
                    ("Lambda-Runtime-Invoked-Function-Arn", invocation.function_arn.as_str()),
                    ("Lambda-Runtime-Trace-Id", invocation.trace_id.as_str()),
                    ("Content-Type", "application/json"),
                ];
                respond(&mut writer, 200, &headers, invocation.payload.as_bytes())?;
            }
            ("POST", ["invocation", id, outcome @ ("response" | "error")]) => {
                respond(&mut writer, 202, &[], b"{\"status\":\"OK\"}")?;
                lock(&init.in_flight).take();
                send_logs(init, id);
                post(init, &format!("/invocations/{id}/{outcome}"), &String::from_utf8_lossy(&request.body));
            }
            ("POST", ["init", "error"]) => {
                respond(&mut writer, 202, &[], b"{\"status\":\"OK\"}")?;
                post(init, &format!("/status/{}/error", init.runtime_id), &String::from_utf8_lossy(&request.body));
            }
            _ => respond(&mut writer, 404, &[], b"")?,
        }
    }
    Ok(())
}

/// The invocation's output, once the bootstrap has been quiet for 20 ms (at most 200 ms): its
/// last lines are written just before it posts the response.
fn send_logs(init: &Init, id: &str) {
    let started = Instant::now();
    while started.elapsed() < Duration::from_millis(200) && lock(&init.output).1.elapsed() < Duration::from_millis(20) {
        thread::sleep(Duration::from_millis(5));
    }
    let logs = std::mem::take(&mut lock(&init.output).0);
    let document = format!("{{\"logs\":{}}}", json_string(&String::from_utf8_lossy(&logs)));
    post(init, &format!("/invocations/{id}/logs"), &document);
}

fn error_document(kind: &str, message: &str) -> String {
    format!("{{\"errorType\":{},\"errorMessage\":{}}}", json_string(kind), json_string(message))
}

struct Request {
    method: String,
    path: String,
    body: Vec<u8>,
}

/// One HTTP/1.1 request (`Content-Length` or chunked body); `None` when the peer closed.
fn read_request(reader: &mut impl BufRead) -> io::Result<Option<Request>> {
    let mut line = String::new();
    if reader.read_line(&mut line)? == 0 {
        return Ok(None);
    }
    let mut words = line.split_whitespace();
    let method = words.next().unwrap_or_default().to_string();
    let path = words.next().unwrap_or_default().to_string();
    let mut headers = HashMap::new();
    loop {
        line.clear();
        if reader.read_line(&mut line)? == 0 || line.trim().is_empty() {
            break;
        }
        if let Some((name, value)) = line.split_once(':') {
            headers.insert(name.trim().to_ascii_lowercase(), value.trim().to_string());
        }
    }
    let mut body = Vec::new();
    if headers.get("transfer-encoding").is_some_and(|value| value.eq_ignore_ascii_case("chunked")) {
        loop {
            line.clear();
            reader.read_line(&mut line)?;
            let size = usize::from_str_radix(line.trim().split(';').next().unwrap_or("0"), 16)
                .map_err(|_| io::Error::new(io::ErrorKind::InvalidData, "bad chunk size"))?;
            let mut chunk = vec![0; size + 2];
            reader.read_exact(&mut chunk)?;
            if size == 0 {
                break;
            }
            body.extend_from_slice(&chunk[..size]);
        }
    } else if let Some(length) = headers.get("content-length").and_then(|value| value.parse::<usize>().ok()) {
        body.resize(length, 0);
        reader.read_exact(&mut body)?;
    }
    Ok(Some(Request { method, path, body }))
}

fn respond(writer: &mut impl Write, status: u16, headers: &[(&str, &str)], body: &[u8]) -> io::Result<()> {
    let mut head = format!("HTTP/1.1 {status} {}\r\nContent-Length: {}\r\n", reason(status), body.len());
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str("\r\n");
    writer.write_all(head.as_bytes())?;
    writer.write_all(body)?;
    writer.flush()
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        202 => "Accepted",
        400 => "Bad Request",
        _ => "Not Found",
    }
}

/// POSTs a JSON document to LocalStack's endpoint for this environment; a failure is printed,
/// as LocalStack's own init does, and LocalStack's invocation then times out.
fn post(init: &Init, path: &str, body: &str) {
    if let Err(err) = try_post(&init.endpoint, path, body) {
        eprintln!("lambda-init (stand-in): POST {}{path}: {err}", init.endpoint);
    }
}

fn try_post(endpoint: &str, path: &str, body: &str) -> io::Result<()> {
    let rest = endpoint
        .strip_prefix("http://")
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "LOCALSTACK_RUNTIME_ENDPOINT is not http://"))?;
    let (authority, prefix) = rest.split_once('/').map_or((rest, String::new()), |(a, p)| (a, format!("/{p}")));
    let mut stream = TcpStream::connect(authority)?;
    write!(
        stream,
        "POST {prefix}{path} HTTP/1.1\r\nHost: {authority}\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )?;
    let mut status = String::new();
    BufReader::new(stream).read_line(&mut status)?;
    match status.split_whitespace().nth(1) {
        Some(code) if code.starts_with('2') => Ok(()),
        _ => Err(io::Error::other(format!("answered {}", status.trim()))),
    }
}

fn json_string(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('"');
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// A JSON object's string members (LocalStack's invoke document has only strings); other
/// scalar members are skipped.
fn parse_object(text: &str) -> Option<HashMap<String, String>> {
    let mut chars = text.chars().peekable();
    let mut fields = HashMap::new();
    let skip_ws = |chars: &mut std::iter::Peekable<std::str::Chars>| {
        while chars.peek().is_some_and(|c| c.is_whitespace()) {
            chars.next();
        }
    };
    skip_ws(&mut chars);
    if chars.next()? != '{' {
        return None;
    }
    loop {
        skip_ws(&mut chars);
        match chars.next()? {
            '}' => return Some(fields),
            ',' => continue,
            '"' => {}
            _ => return None,
        }
        let key = parse_string(&mut chars)?;
        skip_ws(&mut chars);
        if chars.next()? != ':' {
            return None;
        }
        skip_ws(&mut chars);
        if chars.peek() == Some(&'"') {
            chars.next();
            fields.insert(key, parse_string(&mut chars)?);
        } else {
            while chars.peek().is_some_and(|c| *c != ',' && *c != '}') {
                chars.next();
            }
        }
    }
}

/// The rest of a JSON string whose opening quote was read.
fn parse_string(chars: &mut impl Iterator<Item = char>) -> Option<String> {
    let mut out = String::new();
    let hex4 = |chars: &mut dyn Iterator<Item = char>| -> Option<u32> {
        let digits: String = chars.take(4).collect();
        u32::from_str_radix(&digits, 16).ok()
    };
    loop {
        match chars.next()? {
            '"' => return Some(out),
            '\\' => match chars.next()? {
                'n' => out.push('\n'),
                'r' => out.push('\r'),
                't' => out.push('\t'),
                'b' => out.push('\u{8}'),
                'f' => out.push('\u{c}'),
                'u' => {
                    let high = hex4(chars)?;
                    let code = if (0xD800..0xDC00).contains(&high) {
                        if chars.next()? != '\\' || chars.next()? != 'u' {
                            return None;
                        }
                        let low = hex4(chars)?;
                        0x10000 + ((high - 0xD800) << 10) + (low.checked_sub(0xDC00)?)
                    } else {
                        high
                    };
                    out.push(char::from_u32(code)?);
                }
                other => out.push(other),
            },
            c => out.push(c),
        }
    }
}
