//! HTTP/1.1 message reading shared by the `hello` server and the `hello-load` client: a head (start
//! line + headers) and a body by Content-Length or chunked encoding. Std only.

use std::io::{self, BufRead};

/// The longest head either side accepts.
const MAX_HEAD: usize = 64 * 1024;

/// A request or response head.
#[derive(Debug, Default)]
pub struct Head {
    /// `GET /path HTTP/1.1` or `HTTP/1.1 200 OK`.
    pub start: String,
    pub headers: Vec<(String, String)>,
}

impl Head {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }

    /// Whether the peer asked to keep the connection open (HTTP/1.1 unless `close`, 1.0 only with
    /// `keep-alive`).
    pub fn keep_alive(&self) -> bool {
        let connection = self.header("connection").unwrap_or_default().to_ascii_lowercase();
        if self.start.contains("HTTP/1.0") {
            connection.contains("keep-alive")
        } else {
            !connection.contains("close")
        }
    }
}

/// What reading a head found.
pub enum HeadRead {
    Head(Head),
    /// The peer closed the connection before sending a byte.
    Closed,
}

/// Read one head. `Closed` when the stream ends before its first byte.
pub fn read_head(reader: &mut impl BufRead) -> io::Result<HeadRead> {
    let mut head = Head::default();
    let mut total = 0usize;
    let mut line = String::new();
    loop {
        line.clear();
        let n = reader.read_line(&mut line)?;
        if n == 0 {
            if total == 0 {
                return Ok(HeadRead::Closed);
            }
            return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "connection closed inside a head"));
        }
        total += n;
        if total > MAX_HEAD {
            return Err(io::Error::new(io::ErrorKind::InvalidData, "head too large"));
        }
        let text = line.trim_end_matches(['\r', '\n']);
        if head.start.is_empty() {
            if text.is_empty() {
                continue; // stray empty lines between messages are allowed
            }
            head.start = text.to_string();
        } else if text.is_empty() {
            return Ok(HeadRead::Head(head));
        } else if let Some((name, value)) = text.split_once(':') {
            head.headers.push((name.trim().to_string(), value.trim().to_string()));
        } else {
            return Err(io::Error::new(io::ErrorKind::InvalidData, "malformed header line"));
        }
    }
}

/// Read the body that follows `head`: chunked, by Content-Length, or (`until_close`, responses
/// without either) everything until the peer closes.
pub fn read_body(reader: &mut impl BufRead, head: &Head, until_close: bool) -> io::Result<Vec<u8>> {
    let mut body = Vec::new();
    let chunked =
        head.header("transfer-encoding").is_some_and(|te| te.to_ascii_lowercase().contains("chunked"));
    if chunked {
        loop {
            let mut size_line = String::new();
            if reader.read_line(&mut size_line)? == 0 {
                return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "connection closed inside a chunk"));
            }
            let size_text = size_line.trim().split(';').next().unwrap_or_default();
            let size = usize::from_str_radix(size_text, 16)
                .map_err(|_| io::Error::new(io::ErrorKind::InvalidData, "bad chunk size"))?;
            if size == 0 {
                // Trailers end with an empty line.
                loop {
                    let mut trailer = String::new();
                    if reader.read_line(&mut trailer)? == 0 || trailer.trim().is_empty() {
                        return Ok(body);
                    }
                }
            }
            let start = body.len();
            body.resize(start + size, 0);
            reader.read_exact(&mut body[start..])?;
            let mut crlf = [0u8; 2];
            reader.read_exact(&mut crlf)?;
        }
    }
    match head.header("content-length") {
        Some(length) => {
            let length: usize = length
                .parse()
                .map_err(|_| io::Error::new(io::ErrorKind::InvalidData, "bad Content-Length"))?;
            body.resize(length, 0);
            reader.read_exact(&mut body)?;
        }
        None if until_close => {
            reader.read_to_end(&mut body)?;
        }
        None => {}
    }
    Ok(body)
}
