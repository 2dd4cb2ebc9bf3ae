//! OpenPGP detached signatures (`.asc`) against trusted keys, with rPGP
//! (`pgp`, pure Rust): seed 003 L46-75, `gpg --import KEYS` then
//! `gpg --verify ....asc`, without gpg or a keyring of the admin's.
//!
//! Keys come from a keyring file (binary or armored packets, or the GnuPG
//! keybox `gpg --no-default-keyring --keyring FILE` writes) or an Apache
//! `KEYS` file (text, with armored key blocks among `pub`/`uid` listings).
//!
//! A key (or signing subkey) its owner revoked, or that expired (by now,
//! or before the signature was made), vouches for nothing, as apt refuses
//! a repository signed by one. rPGP parses the revocation and self
//! signatures but leaves their meaning to its user: `standing` reads it,
//! counting only signatures that verify against the key itself (anyone can
//! append packets to a copy of a key).

use std::io::{BufReader, Read};
use std::path::Path;
use std::time::SystemTime;

use pgp::composed::{Deserializable, DetachedSignature, SignedPublicKey, SignedPublicSubKey};
use pgp::packet::{RevocationCode, Signature, SignatureType};
use pgp::types::{KeyDetails, Tag, Timestamp};

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
    hex::encode(fp.as_bytes())
}

fn normalise(fp: &str) -> String {
    fp.chars()
        .filter(|c| !c.is_whitespace())
        .collect::<String>()
        .to_ascii_lowercase()
}

/// Whether a key may vouch for a signature: revoked (and why), and when
/// it stops (its owner's newest self-signature says).
struct Standing {
    revoked: Option<String>,
    expires: Option<SystemTime>,
}

fn created(sig: &Signature) -> u32 {
    sig.created().map(Timestamp::as_secs).unwrap_or(0)
}

fn reason(sig: &Signature) -> String {
    let code = match sig.revocation_reason_code() {
        Some(RevocationCode::KeySuperseded) => "superseded",
        Some(RevocationCode::KeyCompromised) => "compromised",
        Some(RevocationCode::KeyRetired) => "retired",
        _ => "no reason given",
    };
    let text = sig
        .revocation_reason_string()
        .map(|b| String::from_utf8_lossy(b).trim().to_string())
        .filter(|t| !t.is_empty());
    match text {
        Some(t) => format!("{code}: \"{t}\""),
        None => code.to_string(),
    }
}

/// The end of a key's life from its newest valid self-signature; `None`
/// (or a zero duration) is never.
fn expiry(key_created: Timestamp, newest: Option<&Signature>) -> Option<SystemTime> {
    let d: std::time::Duration = newest?.key_expiration_time()?.into();
    (!d.is_zero()).then(|| SystemTime::from(key_created) + d)
}

/// A primary key's standing over every copy of it in the trusted files: a
/// revocation in any copy counts, and the newest self-signature of all
/// (a refreshed copy extends an old one's expiry).
fn primary_standing(copies: &[&SignedPublicKey]) -> Standing {
    let Some(first) = copies.first() else {
        return Standing {
            revoked: None,
            expires: None,
        };
    };
    let pk = &first.primary_key;
    let revoked = copies
        .iter()
        .flat_map(|k| &k.details.revocation_signatures)
        .find(|s| s.verify_key(pk).is_ok())
        .map(reason);
    let newest = copies
        .iter()
        .flat_map(|k| {
            let direct = k
                .details
                .direct_signatures
                .iter()
                .filter(|s| s.verify_key(pk).is_ok());
            let certified = k.details.users.iter().flat_map(|u| {
                u.signatures
                    .iter()
                    .filter(move |s| s.verify_certification(pk, Tag::UserId, &u.id).is_ok())
            });
            direct.chain(certified)
        })
        .max_by_key(|s| created(s));
    Standing {
        revoked,
        expires: expiry(pk.created_at(), newest),
    }
}

/// A subkey's own standing (its binding and revocation signatures by the
/// primary), over every copy of it.
fn subkey_standing(primary: &SignedPublicKey, copies: &[&SignedPublicSubKey]) -> Standing {
    let Some(first) = copies.first() else {
        return Standing {
            revoked: None,
            expires: None,
        };
    };
    let sigs = || {
        copies.iter().flat_map(|c| &c.signatures).filter(|s| {
            s.verify_subkey_binding(&primary.primary_key, &first.key)
                .is_ok()
        })
    };
    Standing {
        revoked: sigs()
            .find(|s| s.typ() == Some(SignatureType::SubkeyRevocation))
            .map(reason),
        expires: expiry(
            first.key.created_at(),
            sigs()
                .filter(|s| s.typ() == Some(SignatureType::SubkeyBinding))
                .max_by_key(|s| created(s)),
        ),
    }
}

fn date(t: SystemTime) -> String {
    humantime::format_rfc3339_seconds(t).to_string()
}

impl Standing {
    /// Why `what` may not vouch for a signature made at `signed` (if the
    /// signature says), checked at `now`.
    fn refusal(&self, what: &str, signed: Option<SystemTime>, now: SystemTime) -> Option<String> {
        if let Some(r) = &self.revoked {
            return Some(format!("{what} is revoked by its owner ({r})"));
        }
        let exp = self.expires?;
        match signed {
            Some(at) if at >= exp => Some(format!(
                "{what} expired on {}, before the signature was made ({})",
                date(exp),
                date(at)
            )),
            _ if now >= exp => Some(format!("{what} expired on {}", date(exp))),
            _ => None,
        }
    }
}

/// Why `key` may not be trusted now (revoked, or expired), if it may not:
/// a keyring is not given a key that can vouch for nothing.
pub fn unusable_now(key: &SignedPublicKey) -> Option<String> {
    let what = format!("key {}", fingerprint_hex(&key.fingerprint()).to_uppercase());
    primary_standing(&[key]).refusal(&what, None, SystemTime::now())
}

impl Check {
    /// Every copy of the key with this primary fingerprint among the
    /// trusted ones (a keyring and a KEYS file may both hold it).
    fn copies(&self, fp: &pgp::types::Fingerprint) -> Vec<&SignedPublicKey> {
        self.keys
            .iter()
            .filter(|k| k.fingerprint() == *fp)
            .collect()
    }

    /// Refuses a signature by a revoked or expired key (or subkey).
    fn standing(
        &self,
        path: &Path,
        key: &SignedPublicKey,
        sub: Option<&SignedPublicSubKey>,
    ) -> Result<(), String> {
        let signed = self.signature.signature.created().map(SystemTime::from);
        let now = SystemTime::now();
        let copies = self.copies(&key.fingerprint());
        let primary_fp = fingerprint_hex(&key.fingerprint());
        let mut why = primary_standing(&copies).refusal(&format!("key {primary_fp}"), signed, now);
        if let (None, Some(sub)) = (&why, sub) {
            let sub_fp = sub.key.fingerprint();
            let subs: Vec<&SignedPublicSubKey> = copies
                .iter()
                .flat_map(|k| &k.public_subkeys)
                .filter(|s| s.key.fingerprint() == sub_fp)
                .collect();
            why = subkey_standing(key, &subs).refusal(
                &format!("subkey {} of key {primary_fp}", fingerprint_hex(&sub_fp)),
                signed,
                now,
            );
        }
        match why {
            Some(why) => Err(self.refused(path, &why)),
            None => Ok(()),
        }
    }

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
                self.standing(path, key, None)?;
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
                self.standing(path, key, Some(sub))?;
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
