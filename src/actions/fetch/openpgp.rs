//! OpenPGP detached signatures (`.asc`) against trusted keys, with rPGP
//! (`pgp`, pure Rust): seed 003 L46-75, `gpg --import KEYS` then
//! `gpg --verify ....asc`, without gpg or a keyring of the admin's.
//!
//! Keys come from a keyring file (binary or armored packets, or the GnuPG
//! keybox `gpg --no-default-keyring --keyring FILE` writes) or an Apache
//! `KEYS` file (text, with armored key blocks among `pub`/`uid` listings).

use std::io::{BufReader, Read};
use std::path::Path;

use pgp::composed::{Deserializable, DetachedSignature, SignedPublicKey};
use pgp::types::KeyDetails;

/// What a signature is checked against.
pub struct Check {
    pub signature: DetachedSignature,
    pub keys: Vec<SignedPublicKey>,
    /// Full fingerprints (hex) the signer's key must have, when not empty.
    pub fingerprints: Vec<String>,
    pub url: String,
}

const ARMOR_BEGIN: &str = "-----BEGIN PGP PUBLIC KEY BLOCK-----";
const ARMOR_END: &str = "-----END PGP PUBLIC KEY BLOCK-----";

/// Every usable key in a keyring, keybox or KEYS file. Keys rPGP cannot
/// read (KEYS files keep keys from 2012 and before) are left out; no key at
/// all is an error.
pub fn load_keys(bytes: &[u8]) -> Result<Vec<SignedPublicKey>, String> {
    let mut keys = Vec::new();
    let mut unreadable = 0;
    let mut take = |it: pgp::errors::Result<
        Box<dyn Iterator<Item = pgp::errors::Result<SignedPublicKey>> + '_>,
    >| match it {
        Ok(it) => {
            for k in it {
                match k {
                    Ok(k) => keys.push(k),
                    Err(_) => unreadable += 1,
                }
            }
        }
        Err(_) => unreadable += 1,
    };
    if let Some(blocks) = keybox_blocks(bytes) {
        for block in blocks {
            take(SignedPublicKey::from_bytes_many(block));
        }
    } else if let Ok(text) = std::str::from_utf8(bytes)
        && text.contains(ARMOR_BEGIN)
    {
        let mut rest = text;
        while let Some(start) = rest.find(ARMOR_BEGIN) {
            let end = rest[start..]
                .find(ARMOR_END)
                .map(|e| start + e + ARMOR_END.len())
                .unwrap_or(rest.len());
            let block = &rest[start..end];
            take(SignedPublicKey::from_armor_many_buf(block.as_bytes()).map(|(it, _)| it));
            rest = &rest[end..];
        }
    } else {
        take(SignedPublicKey::from_bytes_many(bytes));
    }
    if keys.is_empty() {
        return Err(format!(
            "no OpenPGP public key could be read from it ({unreadable} unreadable)"
        ));
    }
    Ok(keys)
}

/// The OpenPGP key blocks of a GnuPG keybox (`.kbx`, and what `gpg
/// --keyring FILE` creates when FILE is new): a header blob holding
/// "KBXf", then blobs of `length u32, type u8 (2: OpenPGP), version u8,
/// flags u16, keyblock offset u32, keyblock length u32, ...` (GnuPG's
/// kbx/keybox-blob.c). `None` when it is not a keybox.
fn keybox_blocks(bytes: &[u8]) -> Option<Vec<&[u8]>> {
    if bytes.len() < 32 || &bytes[8..12] != b"KBXf" || bytes[4] != 1 {
        return None;
    }
    let be32 = |b: &[u8], at: usize| -> Option<usize> {
        b.get(at..at + 4)
            .map(|s| u32::from_be_bytes([s[0], s[1], s[2], s[3]]) as usize)
    };
    let mut out = Vec::new();
    let mut at = 0;
    while at < bytes.len() {
        let len = be32(bytes, at)?;
        let blob = bytes.get(at..at.checked_add(len)?)?;
        if len < 5 {
            return None;
        }
        if blob[4] == 2 {
            let off = be32(blob, 8)?;
            let klen = be32(blob, 12)?;
            out.push(blob.get(off..off.checked_add(klen)?)?);
        }
        at += len;
    }
    Some(out)
}

/// A detached signature, armored or binary.
pub fn parse_signature(bytes: &[u8]) -> Result<DetachedSignature, String> {
    DetachedSignature::from_reader_single(BufReader::new(bytes))
        .map(|(s, _)| s)
        .map_err(|e| format!("not an OpenPGP signature: {e}"))
}

/// Keys as a binary keyring (what apt's `signed-by=` reads), each with
/// its primary fingerprint in upper-case hex.
pub fn binary_keyring(keys: &[SignedPublicKey]) -> Result<(Vec<u8>, Vec<String>), String> {
    use pgp::ser::Serialize;
    let mut out = Vec::new();
    let mut fingerprints = Vec::new();
    for k in keys {
        k.to_writer(&mut out)
            .map_err(|e| format!("cannot write the key: {e}"))?;
        fingerprints.push(fingerprint_hex(&k.fingerprint()).to_uppercase());
    }
    Ok((out, fingerprints))
}

fn fingerprint_hex(fp: &pgp::types::Fingerprint) -> String {
    crate::plan::hex(fp.as_bytes())
}

fn normalise(fp: &str) -> String {
    fp.chars()
        .filter(|c| !c.is_whitespace())
        .collect::<String>()
        .to_ascii_lowercase()
}

impl Check {
    /// Verifies the signature over `data`, read to its end. `Ok` names
    /// the key that made it.
    pub fn verify(&self, data: &mut dyn Read, path: &Path) -> Result<String, String> {
        let sig = &self.signature.signature;
        let fps = sig.issuer_fingerprint();
        let ids = sig.issuer_key_id();
        let pins: Vec<String> = self.fingerprints.iter().map(|f| normalise(f)).collect();
        // The key (primary or subkey) the signature names as its maker.
        for key in &self.keys {
            let primary_fp = fingerprint_hex(&key.fingerprint());
            let made_by = |d: &dyn KeyDetails| {
                fps.iter().any(|f| **f == d.fingerprint())
                    || ids.iter().any(|i| **i == d.legacy_key_id())
            };
            let pinned = |fp: &str| pins.is_empty() || pins.iter().any(|p| p == fp);
            if made_by(&key.primary_key) {
                if !pinned(&primary_fp) {
                    return Err(self.refused(
                        path,
                        &format!("made by key {primary_fp}, which is not among `fingerprints`"),
                    ));
                }
                return sig
                    .verify(&key.primary_key, data)
                    .map(|_| format!("OpenPGP signature {} by key {primary_fp}", self.url))
                    .map_err(|e| {
                        self.refused(path, &format!("bad signature by key {primary_fp}: {e}"))
                    });
            }
            for sub in &key.public_subkeys {
                if !made_by(&sub.key) {
                    continue;
                }
                let sub_fp = fingerprint_hex(&sub.key.fingerprint());
                if !pinned(&primary_fp) && !pinned(&sub_fp) {
                    return Err(self.refused(
                        path,
                        &format!("made by key {primary_fp}, which is not among `fingerprints`"),
                    ));
                }
                // A subkey counts only if its owner bound it: anyone can
                // append a subkey to a copy of a trusted key.
                sub.verify_bindings(&key.primary_key).map_err(|e| {
                    self.refused(
                        path,
                        &format!("subkey {sub_fp} is not validly bound to key {primary_fp}: {e}"),
                    )
                })?;
                return sig
                    .verify(&sub.key, data)
                    .map(|_| {
                        format!(
                            "OpenPGP signature {} by key {primary_fp} (subkey {sub_fp})",
                            self.url
                        )
                    })
                    .map_err(|e| {
                        self.refused(path, &format!("bad signature by key {primary_fp}: {e}"))
                    });
            }
        }
        let by: Vec<String> = fps
            .iter()
            .map(|f| fingerprint_hex(f))
            .chain(ids.iter().map(|i| i.to_string()))
            .collect();
        Err(self.refused(
            path,
            &format!(
                "made by key {}, which is not among the {} trusted key(s)",
                if by.is_empty() {
                    "(unnamed)".to_string()
                } else {
                    by.join(" / ")
                },
                self.keys.len()
            ),
        ))
    }

    fn refused(&self, path: &Path, why: &str) -> String {
        format!("{}: signature {}: {why}: refused", path.display(), self.url)
    }
}
