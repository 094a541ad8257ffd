//! known_hosts lookups that libssh2 lacks: which key types a file holds for a host (hashed entries
//! included), so the handshake asks for one of those and strict checking does not report a false
//! mismatch.

use base64::Engine as _;
use hmac::{Hmac, Mac};
use sha1::Sha1;
use sha2::{Digest, Sha256};

/// The name a host has in known_hosts: `host`, or `[host]:port` when the port is not 22.
pub fn lookup_name(host: &str, port: u16) -> String {
    if port == 22 { host.to_string() } else { format!("[{host}]:{port}") }
}

fn hashed_matches(entry: &str, name: &str) -> bool {
    // |1|base64(salt)|base64(hmac-sha1(salt, name))
    let mut parts = entry.trim_start_matches("|1|").splitn(2, '|');
    let (Some(salt), Some(hash)) = (parts.next(), parts.next()) else { return false };
    let b64 = base64::engine::general_purpose::STANDARD;
    let (Ok(salt), Ok(hash)) = (b64.decode(salt), b64.decode(hash)) else { return false };
    let Ok(mut mac) = Hmac::<Sha1>::new_from_slice(&salt) else { return false };
    mac.update(name.as_bytes());
    mac.verify_slice(&hash).is_ok()
}

fn pattern_matches(pattern: &str, name: &str) -> bool {
    if pattern.starts_with("|1|") {
        return hashed_matches(pattern, name);
    }
    // Wildcards are rare in known_hosts; match them simply.
    if pattern.contains('*') || pattern.contains('?') {
        return wildcard(pattern.as_bytes(), name.as_bytes());
    }
    pattern == name
}

fn wildcard(p: &[u8], s: &[u8]) -> bool {
    match (p.first(), s.first()) {
        (None, None) => true,
        (Some(b'*'), _) => wildcard(&p[1..], s) || (!s.is_empty() && wildcard(p, &s[1..])),
        (Some(b'?'), Some(_)) => wildcard(&p[1..], &s[1..]),
        (Some(a), Some(b)) if a == b => wildcard(&p[1..], &s[1..]),
        _ => false,
    }
}

/// Key types (`ssh-ed25519`, `ecdsa-sha2-nistp256`, …) recorded for `name`, in file order.
pub fn key_types_for(contents: &str, name: &str) -> Vec<String> {
    let mut types = Vec::new();
    for line in contents.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') || line.starts_with('@') {
            continue;
        }
        let mut fields = line.split_whitespace();
        let (Some(hosts), Some(key_type)) = (fields.next(), fields.next()) else { continue };
        let mut negated = false;
        let mut matched = false;
        for pattern in hosts.split(',') {
            if let Some(neg) = pattern.strip_prefix('!') {
                negated |= pattern_matches(neg, name);
            } else {
                matched |= pattern_matches(pattern, name);
            }
        }
        if matched && !negated && !types.iter().any(|t| t == key_type) {
            types.push(key_type.to_string());
        }
    }
    types
}

/// OpenSSH-style fingerprint of a raw host key blob: `SHA256:<base64, no padding>`.
pub fn fingerprint(key: &[u8]) -> String {
    let digest = Sha256::digest(key);
    format!("SHA256:{}", base64::engine::general_purpose::STANDARD_NO_PAD.encode(digest))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_hashed_and_port_entries() {
        // Hashed entry for "[127.0.0.1]:2222" made with salt "0123456789abcdefghij".
        let b64 = base64::engine::general_purpose::STANDARD;
        let salt = b"0123456789abcdefghij";
        let mut mac = Hmac::<Sha1>::new_from_slice(salt).expect("hmac");
        mac.update(b"[127.0.0.1]:2222");
        let hash = mac.finalize().into_bytes();
        let file = format!(
            "# comment\nexample.org,10.0.0.1 ssh-rsa AAAA\n|1|{}|{} ecdsa-sha2-nistp256 AAAA\n[127.0.0.1]:2222 ssh-ed25519 AAAA\n@revoked * ssh-dss AAAA\n",
            b64.encode(salt),
            b64.encode(hash)
        );
        assert_eq!(
            key_types_for(&file, &lookup_name("127.0.0.1", 2222)),
            ["ecdsa-sha2-nistp256", "ssh-ed25519"]
        );
        assert_eq!(key_types_for(&file, &lookup_name("10.0.0.1", 22)), ["ssh-rsa"]);
        assert!(key_types_for(&file, "other").is_empty());
    }
}
