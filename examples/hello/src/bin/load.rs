//! `hello-load`: clients that keep sending requests (through Caddy, during a deploy) until a stop file
//! appears, recording every answer and every transport error; prints one JSON summary at the end.
//!
//! ```text
//! hello-load --target 127.0.0.1:8080 [--host NAME] --stop-file PATH [--out FILE]
//!            [--keepalive N] [--fresh N] [--post N] [--slow N] [--slow-ms MS] [--pause-ms MS] [--min-requests N] [--max-seconds S]
//! ```
//! Kinds of client (N threads each): `keepalive` GETs `/` on one connection; `fresh` GETs `/` on a
//! new connection each time; `post` POSTs a body on one connection and checks the echo; `slow` GETs
//! `/slow?ms=MS` on one connection. With `--min-requests`, they go on after the stop file appears
//! until that many requests were made in all.
//!
//! A request fails on a transport error, a status other than 200, an answer without `X-Version`, or
//! a wrong echo. As every HTTP client library does, a request whose reused keep-alive connection was
//! closed by the server before any byte of an answer arrived is sent once more on a new connection
//! (counted in `retried`); any other error counts as failed.

use std::io::{BufReader, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use hello::{HeadRead, read_body, read_head};
use serde_json::{Value, json};

#[derive(Clone, Copy, PartialEq)]
enum Kind {
    KeepAlive,
    Fresh,
    Post,
    Slow,
}

impl Kind {
    fn label(self) -> &'static str {
        match self {
            Kind::KeepAlive => "keepalive",
            Kind::Fresh => "fresh",
            Kind::Post => "post",
            Kind::Slow => "slow",
        }
    }
}

struct Options {
    target: SocketAddr,
    host: String,
    stop_file: String,
    out: Option<String>,
    slow_ms: u64,
    /// A pause after each request, so a fast target does not drown the machine in records.
    pause: Duration,
    /// Keep going after the stop file appears until this many requests were made in all.
    min_requests: usize,
    max: Duration,
    clients: Vec<(Kind, usize)>,
}

/// One request's outcome: start and end (ms since the epoch), kind, status (0: none), version, error.
struct Record {
    start: u64,
    end: u64,
    kind: Kind,
    status: u16,
    version: String,
    error: String,
    retried: bool,
}

fn now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0)
}

fn usage(message: &str) -> ! {
    eprintln!("hello-load: {message}");
    eprintln!(
        "usage: hello-load --target HOST:PORT [--host NAME] --stop-file PATH [--out FILE] [--keepalive N] [--fresh N] [--post N] [--slow N] [--slow-ms MS] [--pause-ms MS] [--min-requests N] [--max-seconds S]"
    );
    std::process::exit(2);
}

fn options() -> Options {
    let mut args = std::env::args().skip(1);
    let mut target = None;
    let mut host = None;
    let mut stop_file = None;
    let mut out = None;
    let mut slow_ms = 500;
    let mut pause = Duration::ZERO;
    let mut min_requests = 0;
    let mut max = Duration::from_secs(900);
    let mut clients = vec![(Kind::KeepAlive, 2), (Kind::Fresh, 1), (Kind::Post, 1), (Kind::Slow, 1)];
    while let Some(flag) = args.next() {
        let mut value = || args.next().unwrap_or_else(|| usage(&format!("{flag} needs a value")));
        let count = |v: String| v.parse::<usize>().unwrap_or_else(|_| usage("a count is a number"));
        match flag.as_str() {
            "--target" => {
                let text = value();
                target = text.to_socket_addrs().ok().and_then(|mut a| a.next());
                if target.is_none() {
                    usage(&format!("cannot resolve {text}"));
                }
            }
            "--host" => host = Some(value()),
            "--stop-file" => stop_file = Some(value()),
            "--out" => out = Some(value()),
            "--slow-ms" => slow_ms = value().parse().unwrap_or_else(|_| usage("--slow-ms takes a number")),
            "--min-requests" => min_requests = count(value()),
            "--pause-ms" => {
                pause = Duration::from_millis(value().parse().unwrap_or_else(|_| usage("a number of ms")))
            }
            "--max-seconds" => {
                max = Duration::from_secs(value().parse().unwrap_or_else(|_| usage("a number of seconds")))
            }
            "--keepalive" => clients[0].1 = count(value()),
            "--fresh" => clients[1].1 = count(value()),
            "--post" => clients[2].1 = count(value()),
            "--slow" => clients[3].1 = count(value()),
            other => usage(&format!("unknown flag {other}")),
        }
    }
    let target = target.unwrap_or_else(|| usage("--target is required"));
    Options {
        host: host.unwrap_or_else(|| target.to_string()),
        target,
        stop_file: stop_file.unwrap_or_else(|| usage("--stop-file is required")),
        out,
        slow_ms,
        pause,
        min_requests,
        max,
        clients,
    }
}

/// Why an exchange failed, and whether it failed before any byte of an answer (retry-safe on a
/// reused connection).
struct Failure {
    message: String,
    nothing_received: bool,
}

fn connect(target: SocketAddr) -> Result<BufReader<TcpStream>, Failure> {
    let stream = TcpStream::connect_timeout(&target, Duration::from_secs(5))
        .map_err(|e| Failure { message: format!("connect: {e}"), nothing_received: false })?;
    let _ = stream.set_nodelay(true);
    let _ = stream.set_read_timeout(Some(Duration::from_secs(30)));
    let _ = stream.set_write_timeout(Some(Duration::from_secs(10)));
    Ok(BufReader::new(stream))
}

/// Send `request` on `conn` and read the answer: (status, version header, body, keep open).
fn exchange(
    conn: &mut BufReader<TcpStream>,
    request: &[u8],
) -> Result<(u16, String, Vec<u8>, bool), Failure> {
    let early = |e: std::io::Error| Failure { message: e.to_string(), nothing_received: true };
    conn.get_mut().write_all(request).map_err(early)?;
    let head = match read_head(conn) {
        Ok(HeadRead::Head(head)) => head,
        Ok(HeadRead::Closed) => {
            return Err(Failure { message: "closed before answering".into(), nothing_received: true });
        }
        Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => return Err(early(e)),
        Err(e) => {
            return Err(Failure { message: format!("reading the answer: {e}"), nothing_received: false });
        }
    };
    let body = read_body(conn, &head, !head.keep_alive())
        .map_err(|e| Failure { message: format!("reading the body: {e}"), nothing_received: false })?;
    let status = head.start.split_whitespace().nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
    let version = head.header("x-version").unwrap_or_default().to_string();
    Ok((status, version, body, head.keep_alive()))
}

fn client(kind: Kind, worker: usize, options: Arc<Options>, records: Arc<Mutex<Vec<Record>>>) {
    let started = Instant::now();
    let mut conn: Option<BufReader<TcpStream>> = None;
    let mut n = 0u64;
    let done = |records: &Mutex<Vec<Record>>| {
        std::path::Path::new(&options.stop_file).exists()
            && records.lock().map(|r| r.len()).unwrap_or(usize::MAX) >= options.min_requests
    };
    while !done(&records) && started.elapsed() < options.max {
        n += 1;
        let (method, path, body) = match kind {
            Kind::Post => ("POST", "/echo".to_string(), format!("hk-{worker}-{n}")),
            Kind::Slow => ("GET", format!("/slow?ms={}", options.slow_ms), String::new()),
            _ => ("GET", "/".to_string(), String::new()),
        };
        let connection = if kind == Kind::Fresh { "close" } else { "keep-alive" };
        let request = format!(
            "{method} {path} HTTP/1.1\r\nHost: {}\r\nUser-Agent: hello-load\r\nConnection: {connection}\r\nContent-Length: {}\r\n\r\n{body}",
            options.host,
            body.len()
        );
        let start = now_ms();
        let mut retried = false;
        let result = loop {
            let reused = conn.is_some();
            let stream = match conn.take() {
                Some(c) => c,
                None => match connect(options.target) {
                    Ok(c) => c,
                    Err(f) => break Err(f),
                },
            };
            let mut stream = stream;
            match exchange(&mut stream, request.as_bytes()) {
                Ok((status, version, answer, keep)) => {
                    if keep && kind != Kind::Fresh {
                        conn = Some(stream);
                    }
                    break Ok((status, version, answer));
                }
                Err(f) if reused && f.nothing_received && !retried => retried = true,
                Err(f) => break Err(f),
            }
        };
        let end = now_ms();
        let record = match result {
            Ok((status, version, answer)) => {
                let error = if status != 200 {
                    format!("status {status}: {}", String::from_utf8_lossy(&answer).trim())
                } else if version.is_empty() {
                    "no X-Version header".to_string()
                } else if kind == Kind::Post && answer != body.as_bytes() {
                    format!("echo mismatch: sent {body:?}, got {:?}", String::from_utf8_lossy(&answer))
                } else {
                    String::new()
                };
                Record { start, end, kind, status, version, error, retried }
            }
            Err(f) => {
                Record { start, end, kind, status: 0, version: String::new(), error: f.message, retried }
            }
        };
        if let Ok(mut all) = records.lock() {
            all.push(record);
        }
        if !options.pause.is_zero() {
            std::thread::sleep(options.pause);
        }
    }
}

fn main() {
    // A test that dies (a timeout, a failed assertion) must not leave its load running against a
    // guest the next test counts on: end with the process that started this one.
    // SAFETY: prctl with PR_SET_PDEATHSIG only sets a flag of this process.
    unsafe {
        libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM);
    }
    let options = Arc::new(options());
    let records = Arc::new(Mutex::new(Vec::new()));
    let mut threads = Vec::new();
    for (kind, count) in options.clients.clone() {
        for worker in 0..count {
            let (options, records) = (options.clone(), records.clone());
            threads.push(std::thread::spawn(move || client(kind, worker, options, records)));
        }
    }
    for t in threads {
        let _ = t.join();
    }
    let records = records.lock().map(|mut r| std::mem::take(&mut *r)).unwrap_or_default();
    let mut statuses = serde_json::Map::new();
    let mut versions = serde_json::Map::new();
    let mut errors = Vec::new();
    let mut failed = 0u64;
    let mut retried = 0u64;
    for r in &records {
        let key = if r.status == 0 { "error".to_string() } else { r.status.to_string() };
        let count = statuses.entry(key).or_insert(json!(0));
        *count = json!(count.as_u64().unwrap_or(0) + 1);
        if !r.version.is_empty() {
            let count = versions.entry(r.version.clone()).or_insert(json!(0));
            *count = json!(count.as_u64().unwrap_or(0) + 1);
        }
        if !r.error.is_empty() {
            failed += 1;
            if errors.len() < 20 {
                errors.push(json!({"start": r.start, "kind": r.kind.label(), "error": r.error}));
            }
        }
        retried += r.retried as u64;
    }
    let rows: Vec<Value> = records
        .iter()
        .map(|r| json!([r.start, r.end, r.kind.label(), r.status, r.version, !r.error.is_empty()]))
        .collect();
    let summary = json!({
        "requests": records.len(),
        "failed": failed,
        "retried": retried,
        "statuses": statuses,
        "versions": versions,
        "errors": errors,
        "columns": ["start", "end", "kind", "status", "version", "failed"],
        "records": rows,
    });
    let text = summary.to_string();
    match &options.out {
        Some(path) => {
            if let Err(e) = std::fs::write(path, text) {
                eprintln!("hello-load: cannot write {path}: {e}");
                std::process::exit(1);
            }
        }
        None => println!("{text}"),
    }
}
