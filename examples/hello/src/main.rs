//! `hello`: the tiny HTTP app hk deploys in its examples and tests.
//!
//! - `GET /` (and `/version`) answers the release's version, `GET /up` answers `ok` (the health
//!   check), `GET /slow?ms=N` answers the version after N ms, and a `POST` to any path echoes its body.
//!   Every answer carries `X-Version`.
//! - Listens on 127.0.0.1:`$PORT` (default 4000; `$BIND` sets the address). The version is the first
//!   line of `VERSION` in the working directory, else `$APP_VERSION`, else the directory's name.
//! - On SIGTERM or SIGINT it stops accepting, finishes the requests in flight (answering them with
//!   `Connection: close`), closes idle keep-alive connections, and exits 0.

use std::io::{BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::os::fd::AsRawFd;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use hello::{HeadRead, read_body, read_head};

/// How long shutdown waits for requests in flight before exiting anyway.
const SHUTDOWN_WAIT: Duration = Duration::from_secs(60);
/// How often idle connections and the listener look at the shutdown flag.
const POLL: Duration = Duration::from_millis(50);

struct Shared {
    version: String,
    stopping: AtomicBool,
    connections: AtomicUsize,
}

fn version() -> String {
    if let Ok(text) = std::fs::read_to_string("VERSION")
        && let Some(line) = text.lines().next().filter(|l| !l.trim().is_empty())
    {
        return line.trim().to_string();
    }
    if let Ok(v) = std::env::var("APP_VERSION")
        && !v.is_empty()
    {
        return v;
    }
    std::env::current_dir()
        .ok()
        .and_then(|d| d.file_name().map(|n| n.to_string_lossy().into_owned()))
        .unwrap_or_else(|| "unknown".into())
}

/// Block SIGTERM and SIGINT in every thread (spawned threads inherit the mask) and return the set, so
/// one thread can take them with `sigwait`.
fn block_signals() -> libc::sigset_t {
    // SAFETY: plain libc calls on a zeroed, initialised signal set owned here.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, libc::SIGTERM);
        libc::sigaddset(&mut set, libc::SIGINT);
        libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
        set
    }
}

fn wait_for_signal(set: libc::sigset_t) -> i32 {
    let mut signal = 0;
    // SAFETY: `set` holds blocked signals; sigwait writes the one taken into `signal`.
    unsafe {
        libc::sigwait(&set, &mut signal);
    }
    signal
}

fn main() {
    let port: u16 = std::env::var("PORT").ok().and_then(|p| p.parse().ok()).unwrap_or(4000);
    let bind = std::env::var("BIND").unwrap_or_else(|_| "127.0.0.1".into());
    let signals = block_signals();
    let listener = match TcpListener::bind((bind.as_str(), port)) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("hello: cannot listen on {bind}:{port}: {e}");
            std::process::exit(1);
        }
    };
    let shared = Arc::new(Shared {
        version: version(),
        stopping: AtomicBool::new(false),
        connections: AtomicUsize::new(0),
    });
    eprintln!("hello {} listening on {bind}:{port}", shared.version);
    {
        let shared = shared.clone();
        std::thread::spawn(move || {
            let signal = wait_for_signal(signals);
            eprintln!("hello: signal {signal}: finishing requests in flight");
            shared.stopping.store(true, Ordering::SeqCst);
        });
    }
    if let Err(e) = listener.set_nonblocking(true) {
        eprintln!("hello: {e}");
        std::process::exit(1);
    }
    loop {
        let stopping = shared.stopping.load(Ordering::SeqCst);
        // Take every connection already waiting, also once stopping: a client that connected
        // before the signal is served (with `Connection: close`), never reset.
        loop {
            match listener.accept() {
                Ok((stream, _)) => {
                    shared.connections.fetch_add(1, Ordering::SeqCst);
                    let shared = shared.clone();
                    std::thread::spawn(move || {
                        serve(stream, &shared);
                        shared.connections.fetch_sub(1, Ordering::SeqCst);
                    });
                }
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    eprintln!("hello: accept: {e}");
                    std::thread::sleep(POLL);
                    break;
                }
            }
        }
        if stopping {
            break;
        }
        wait_readable(&listener, POLL);
    }
    drop(listener);
    let deadline = Instant::now() + SHUTDOWN_WAIT;
    while shared.connections.load(Ordering::SeqCst) > 0 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    eprintln!("hello: stopped ({} connections left)", shared.connections.load(Ordering::SeqCst));
}

fn wait_readable(listener: &TcpListener, max: Duration) {
    let mut fd = libc::pollfd { fd: listener.as_raw_fd(), events: libc::POLLIN, revents: 0 };
    // SAFETY: one valid pollfd for the duration of the call.
    unsafe {
        libc::poll(&mut fd, 1, max.as_millis() as libc::c_int);
    }
}

/// Serve one connection: requests in turn while the client keeps it open and the app is not stopping.
fn serve(stream: TcpStream, shared: &Shared) {
    let _ = stream.set_nonblocking(false);
    let _ = stream.set_nodelay(true);
    let _ = stream.set_read_timeout(Some(POLL));
    let Ok(mut writer) = stream.try_clone() else { return };
    let mut reader = BufReader::new(stream);
    let mut idle_since = Instant::now();
    loop {
        // Between requests: wait for the next one, giving up when stopping or idle for long.
        let next = if reader.buffer().is_empty() { reader.get_mut().peek(&mut [0u8; 1]) } else { Ok(1) };
        match next {
            Ok(0) => return,
            Ok(_) => {}
            Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => {
                if shared.stopping.load(Ordering::SeqCst) || idle_since.elapsed() > Duration::from_secs(120) {
                    return;
                }
                continue;
            }
            Err(_) => return,
        }
        // A request has started: read it whole, whatever happens meanwhile.
        let _ = reader.get_mut().set_read_timeout(Some(Duration::from_secs(30)));
        let head = match read_head(&mut reader) {
            Ok(HeadRead::Head(head)) => head,
            _ => return,
        };
        let body = match read_body(&mut reader, &head, false) {
            Ok(b) => b,
            Err(_) => return,
        };
        let keep = head.keep_alive() && !shared.stopping.load(Ordering::SeqCst);
        let (status, answer) = answer(&head.start, body, &shared.version);
        // Stopping may have begun while the request ran: say so, then close.
        let keep = keep && !shared.stopping.load(Ordering::SeqCst);
        let response = format!(
            "HTTP/1.1 {status}\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nX-Version: {}\r\nConnection: {}\r\n\r\n",
            answer.len(),
            shared.version,
            if keep { "keep-alive" } else { "close" }
        );
        let mut bytes = response.into_bytes();
        bytes.extend_from_slice(&answer);
        if writer.write_all(&bytes).and_then(|_| writer.flush()).is_err() || !keep {
            return;
        }
        let _ = reader.get_mut().set_read_timeout(Some(POLL));
        idle_since = Instant::now();
    }
}

/// Status line and body for a request line.
fn answer(start: &str, body: Vec<u8>, version: &str) -> (&'static str, Vec<u8>) {
    let mut parts = start.split_whitespace();
    let method = parts.next().unwrap_or_default();
    let target = parts.next().unwrap_or("/");
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    let versioned = || format!("{version}\n").into_bytes();
    match (method, path) {
        ("POST", _) => ("200 OK", body),
        ("GET" | "HEAD", "/" | "/version") => ("200 OK", versioned()),
        ("GET" | "HEAD", "/up") => ("200 OK", b"ok\n".to_vec()),
        ("GET" | "HEAD", "/slow") => {
            let ms: u64 = query
                .split('&')
                .find_map(|kv| kv.strip_prefix("ms="))
                .and_then(|v| v.parse().ok())
                .unwrap_or(1000)
                .min(60_000);
            std::thread::sleep(Duration::from_millis(ms));
            ("200 OK", versioned())
        }
        ("GET" | "HEAD", _) => ("404 Not Found", b"not found\n".to_vec()),
        _ => ("405 Method Not Allowed", b"method not allowed\n".to_vec()),
    }
}
