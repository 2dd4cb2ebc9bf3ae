//! JSON as Ansible's loader reads a file first (`json.loads`, before
//! trying YAML): strict JSON, a key seen twice keeping its last value,
//! `{"__ansible_vault": ...}` and `{"__ansible_unsafe": ...}` objects.
//! Written by hand for the positions of its values (hoist's errors point
//! at them) and to refuse what Python reads and hoist could not keep
//! exactly (integers beyond 64 bits, `NaN`, `Infinity`, lone surrogates).

use std::collections::HashMap;

use super::yaml::{Kind, Node};

/// What came of trying JSON.
pub enum Json {
    /// The text is JSON: its value.
    Value(Node),
    /// Not JSON: Ansible tries YAML next.
    NotJson,
    /// JSON that hoist does not read (where, why).
    Refused(std::ops::Range<usize>, String),
}

pub fn load(text: &str) -> Json {
    let mut p = P {
        b: text.as_bytes(),
        s: text,
        i: 0,
    };
    p.ws();
    match p.value(0) {
        Ok(v) => {
            p.ws();
            if p.i == p.b.len() {
                Json::Value(v)
            } else {
                Json::NotJson
            }
        }
        Err(E::No) => Json::NotJson,
        Err(E::Refused(at, why)) => Json::Refused(at..at + 1, why),
    }
}

enum E {
    No,
    Refused(usize, String),
}

struct P<'a> {
    b: &'a [u8],
    s: &'a str,
    i: usize,
}

impl P<'_> {
    fn ws(&mut self) {
        while self.i < self.b.len() && matches!(self.b[self.i], b' ' | b'\t' | b'\n' | b'\r') {
            self.i += 1;
        }
    }

    fn lit(&mut self, word: &str) -> bool {
        if self.s[self.i..].starts_with(word) {
            self.i += word.len();
            true
        } else {
            false
        }
    }

    fn value(&mut self, depth: usize) -> Result<Node, E> {
        if depth > 200 {
            return Err(E::Refused(self.i, "JSON nested too deeply".into()));
        }
        let start = self.i;
        let kind = match self.b.get(self.i) {
            Some(b'{') => {
                self.i += 1;
                let mut pairs: Vec<(Node, Node)> = Vec::new();
                let mut index: HashMap<String, usize> = HashMap::new();
                self.ws();
                if self.b.get(self.i) == Some(&b'}') {
                    self.i += 1;
                } else {
                    loop {
                        self.ws();
                        let kstart = self.i;
                        if self.b.get(self.i) != Some(&b'"') {
                            return Err(E::No);
                        }
                        let k = self.string()?;
                        let key = Node {
                            kind: Kind::Str(k.clone()),
                            span: kstart..self.i,
                        };
                        self.ws();
                        if self.b.get(self.i) != Some(&b':') {
                            return Err(E::No);
                        }
                        self.i += 1;
                        self.ws();
                        let v = self.value(depth + 1)?;
                        match index.get(&k) {
                            Some(&i) => pairs[i].1 = v,
                            None => {
                                index.insert(k, pairs.len());
                                pairs.push((key, v));
                            }
                        }
                        self.ws();
                        match self.b.get(self.i) {
                            Some(b',') => self.i += 1,
                            Some(b'}') => {
                                self.i += 1;
                                break;
                            }
                            _ => return Err(E::No),
                        }
                    }
                }
                special(pairs, start)?
            }
            Some(b'[') => {
                self.i += 1;
                let mut items = Vec::new();
                self.ws();
                if self.b.get(self.i) == Some(&b']') {
                    self.i += 1;
                } else {
                    loop {
                        self.ws();
                        items.push(self.value(depth + 1)?);
                        self.ws();
                        match self.b.get(self.i) {
                            Some(b',') => self.i += 1,
                            Some(b']') => {
                                self.i += 1;
                                break;
                            }
                            _ => return Err(E::No),
                        }
                    }
                }
                Kind::Seq(items)
            }
            Some(b'"') => Kind::Str(self.string()?),
            Some(b't') if self.lit("true") => Kind::Bool(true),
            Some(b'f') if self.lit("false") => Kind::Bool(false),
            Some(b'n') if self.lit("null") => Kind::Null,
            Some(b'N' | b'I') if self.lit("NaN") || self.lit("Infinity") => {
                return Err(E::Refused(
                    start,
                    "NaN and Infinity are not numbers hoist reads".into(),
                ));
            }
            Some(b'-') if self.s[self.i..].starts_with("-Infinity") => {
                return Err(E::Refused(
                    start,
                    "-Infinity is not a number hoist reads".into(),
                ));
            }
            Some(b'-' | b'0'..=b'9') => self.number()?,
            _ => return Err(E::No),
        };
        Ok(Node {
            kind,
            span: start..self.i.max(start + 1),
        })
    }

    fn number(&mut self) -> Result<Kind, E> {
        let start = self.i;
        let digits = |p: &mut Self| {
            let s = p.i;
            while p.b.get(p.i).is_some_and(u8::is_ascii_digit) {
                p.i += 1;
            }
            p.i > s
        };
        if self.b[self.i] == b'-' {
            self.i += 1;
        }
        if self.b.get(self.i) == Some(&b'0') {
            self.i += 1;
        } else if !digits(self) {
            return Err(E::No);
        }
        let mut float = false;
        if self.b.get(self.i) == Some(&b'.') {
            self.i += 1;
            if !digits(self) {
                return Err(E::No);
            }
            float = true;
        }
        if matches!(self.b.get(self.i), Some(b'e' | b'E')) {
            self.i += 1;
            if matches!(self.b.get(self.i), Some(b'+' | b'-')) {
                self.i += 1;
            }
            if !digits(self) {
                return Err(E::No);
            }
            float = true;
        }
        let text = &self.s[start..self.i];
        if float {
            match text.parse::<f64>() {
                Ok(f) if f.is_finite() => Ok(Kind::Float(f)),
                _ => Err(E::Refused(start, format!("{text} is not a finite number"))),
            }
        } else {
            text.parse::<i64>()
                .map(Kind::Int)
                .map_err(|_| E::Refused(start, format!("{text} is beyond 64-bit integers")))
        }
    }

    fn string(&mut self) -> Result<String, E> {
        self.i += 1;
        let mut out = String::new();
        loop {
            let rest = &self.s[self.i..];
            let Some(c) = rest.chars().next() else {
                return Err(E::No);
            };
            match c {
                '"' => {
                    self.i += 1;
                    return Ok(out);
                }
                '\\' => {
                    let e = rest.as_bytes().get(1).copied();
                    self.i += 2;
                    match e {
                        Some(b'"') => out.push('"'),
                        Some(b'\\') => out.push('\\'),
                        Some(b'/') => out.push('/'),
                        Some(b'b') => out.push('\x08'),
                        Some(b'f') => out.push('\x0c'),
                        Some(b'n') => out.push('\n'),
                        Some(b'r') => out.push('\r'),
                        Some(b't') => out.push('\t'),
                        Some(b'u') => {
                            let at = self.i - 2;
                            let hi = self.hex4()?;
                            let c = if (0xD800..0xDC00).contains(&hi)
                                && self.s[self.i..].starts_with("\\u")
                            {
                                self.i += 2;
                                let lo = self.hex4()?;
                                if !(0xDC00..0xE000).contains(&lo) {
                                    return Err(E::Refused(at, "a lone UTF-16 surrogate".into()));
                                }
                                char::from_u32(0x10000 + ((hi - 0xD800) << 10) + (lo - 0xDC00))
                            } else {
                                char::from_u32(hi)
                            };
                            out.push(c.ok_or(E::Refused(at, "a lone UTF-16 surrogate".into()))?);
                        }
                        _ => return Err(E::No),
                    }
                }
                c if (c as u32) < 0x20 => return Err(E::No),
                c => {
                    out.push(c);
                    self.i += c.len_utf8();
                }
            }
        }
    }

    fn hex4(&mut self) -> Result<u32, E> {
        let h = self.s.get(self.i..self.i + 4).ok_or(E::No)?;
        if !h.bytes().all(|c| c.is_ascii_hexdigit()) {
            return Err(E::No);
        }
        self.i += 4;
        u32::from_str_radix(h, 16).map_err(|_| E::No)
    }
}

/// Ansible's JSON decoder turns `{"__ansible_vault": ...}` into a vault
/// value and `{"__ansible_unsafe": ...}` into text.
fn special(pairs: Vec<(Node, Node)>, at: usize) -> Result<Kind, E> {
    for (k, v) in &pairs {
        let Kind::Str(name) = &k.kind else { continue };
        match (name.as_str(), &v.kind) {
            ("__ansible_vault", _) => return Ok(Kind::Vault),
            ("__ansible_unsafe", Kind::Str(s)) => return Ok(Kind::Unsafe(s.clone())),
            ("__ansible_unsafe", _) => {
                return Err(E::Refused(at, "__ansible_unsafe holds text".into()));
            }
            _ => {}
        }
    }
    Ok(Kind::Map(pairs))
}
