//! CloudStack's encrypted db.properties: `cloudstack-setup-encryption -e
//! file` (seed 003 L3255-3287) replaces the database passwords with
//! `ENC(...)`, jasypt's `PBEWithMD5AndDES` under the management server key,
//! which it writes to the file `key` beside db.properties (root only). The
//! value is base64 of an 8-byte salt then the DES-CBC ciphertext; the DES
//! key and IV are the two halves of MD5 applied 1000 times to key + salt
//! (PKCS#5 v1.5), the padding PKCS#5. Reading it here keeps the steps
//! after the encryption (the database checks of the 2.2.14 path) on the
//! same credentials as the ones before.

use des::Des;
use des::cipher::{BlockDecrypt, KeyInit, generic_array::GenericArray};
use md5::{Digest, Md5};

/// The plain text of `ENC(...)`'s inside, under `password`.
pub fn decrypt(b64: &str, password: &str) -> Result<String, String> {
    let raw = base64(b64.trim()).ok_or("not base64")?;
    if raw.len() < 16 || raw.len() % 8 != 0 {
        return Err("not a jasypt PBEWithMD5AndDES value".into());
    }
    let (salt, ct) = raw.split_at(8);
    let mut d: Vec<u8> = [password.as_bytes(), salt].concat();
    for _ in 0..1000 {
        d = Md5::digest(&d).to_vec();
    }
    let cipher = Des::new_from_slice(&d[..8]).map_err(|e| e.to_string())?;
    let mut prev: [u8; 8] = d[8..16].try_into().map_err(|_| "short digest")?;
    let mut out = Vec::with_capacity(ct.len());
    for block in ct.chunks(8) {
        let mut b = GenericArray::clone_from_slice(block);
        cipher.decrypt_block(&mut b);
        out.extend(b.iter().zip(prev).map(|(x, p)| x ^ p));
        prev.copy_from_slice(block);
    }
    let pad = *out.last().unwrap_or(&0) as usize;
    if pad == 0 || pad > 8 || !out[out.len() - pad..].iter().all(|&x| x as usize == pad) {
        return Err("wrong key (bad padding)".into());
    }
    out.truncate(out.len() - pad);
    String::from_utf8(out).map_err(|_| "wrong key (not text)".into())
}

fn base64(s: &str) -> Option<Vec<u8>> {
    let val = |c: u8| -> Option<u32> {
        Some(match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return None,
        } as u32)
    };
    let s = s.trim_end_matches('=').as_bytes();
    let mut out = Vec::with_capacity(s.len() * 3 / 4);
    let (mut acc, mut bits) = (0u32, 0);
    for &c in s {
        acc = (acc << 6) | val(c)?;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A value made by `openssl enc -des-cbc` with the key and IV jasypt
    /// derives (as the stand-in cloudstack-setup-encryption does): salt
    /// 0102030405060708, key "password", text "cloud-secret".
    #[test]
    fn decrypts_what_jasypt_encrypts() {
        let salt = [1u8, 2, 3, 4, 5, 6, 7, 8];
        let mut d: Vec<u8> = [b"password".as_slice(), &salt].concat();
        for _ in 0..1000 {
            d = Md5::digest(&d).to_vec();
        }
        let o = std::process::Command::new("openssl")
            .args([
                "enc",
                "-des-cbc",
                "-K",
                &hex::encode(&d[..8]),
                "-iv",
                &hex::encode(&d[8..16]),
            ])
            .args(["-provider", "legacy", "-provider", "default", "-a", "-A"])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .and_then(|mut c| {
                use std::io::Write;
                c.stdin.take().unwrap().write_all(b"cloud-secret")?;
                c.wait_with_output()
            })
            .expect("openssl");
        assert!(o.status.success());
        let ct = base64(String::from_utf8_lossy(&o.stdout).trim()).unwrap();
        let value: Vec<u8> = [salt.as_slice(), &ct].concat();
        let b64 = {
            const A: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
            let mut s = String::new();
            for c in value.chunks(3) {
                let n = c
                    .iter()
                    .enumerate()
                    .fold(0u32, |n, (i, b)| n | (*b as u32) << (16 - 8 * i));
                for i in 0..=c.len() {
                    s.push(A[(n >> (18 - 6 * i) & 63) as usize] as char);
                }
                s.push_str(&"=".repeat(3 - c.len()));
            }
            s
        };
        assert_eq!(decrypt(&b64, "password").unwrap(), "cloud-secret");
        assert!(
            decrypt(&b64, "other").is_err() || decrypt(&b64, "other").unwrap() != "cloud-secret"
        );
        assert!(decrypt("!!", "password").is_err());
    }
}
