//! The two pieces of Python that Ansible's INI plugin reads values with:
//! `shlex.split(line, comments=True)` for host lines and `ast.literal_eval`
//! for every value (host lines and `[group:vars]` alike; a value that is
//! not a Python literal stays the text it is, comments and all).
//!
//! Both are written from CPython 3.11's `shlex.py` and its grammar. What
//! hoist cannot be sure of reading the same is refused with the reason
//! (`Err`), never guessed: bytes, complex numbers, sets, `...`, integers
//! beyond 64 bits, infinities, `\N{...}` escapes, non-text dictionary keys.

use serde_json::{Map, Number, Value};

/// Python's `shlex.split(line, comments=True)` (POSIX mode, whitespace
/// split): quotes and backslashes as a POSIX shell, and a `#` anywhere
/// outside quotes ends the line, in the middle of a word too (`a#b` is `a`).
pub fn shlex_split(line: &str) -> Result<Vec<String>, &'static str> {
    #[derive(Clone, Copy, PartialEq)]
    enum State {
        Space,
        Word,
        Quote(char),
        Escape(Escaped),
    }
    #[derive(Clone, Copy, PartialEq)]
    enum Escaped {
        Word,
        Quote(char),
    }
    let mut out = Vec::new();
    let mut token = String::new();
    let mut quoted = false;
    let mut state = State::Space;
    let mut chars = line.chars();
    loop {
        let next = chars.next();
        match state {
            State::Space | State::Word => match next {
                None => break,
                Some(' ' | '\t' | '\r' | '\n') => {
                    if !token.is_empty() || quoted {
                        out.push(std::mem::take(&mut token));
                        quoted = false;
                    }
                    state = State::Space;
                }
                Some('#') => {
                    // The rest of the line is a comment.
                    break;
                }
                Some('\\') => state = State::Escape(Escaped::Word),
                Some(q @ ('\'' | '"')) => state = State::Quote(q),
                Some(c) => {
                    token.push(c);
                    state = State::Word;
                }
            },
            State::Quote(q) => {
                quoted = true;
                match next {
                    None => return Err("No closing quotation"),
                    Some(c) if c == q => state = State::Word,
                    Some('\\') if q == '"' => state = State::Escape(Escaped::Quote(q)),
                    Some(c) => token.push(c),
                }
            }
            State::Escape(from) => {
                let Some(c) = next else {
                    return Err("No escaped character");
                };
                // Inside double quotes only the quote and the backslash
                // are escaped; elsewhere the backslash stays.
                if let Escaped::Quote(q) = from
                    && c != q
                    && c != '\\'
                {
                    token.push('\\');
                }
                token.push(c);
                state = match from {
                    Escaped::Word => State::Word,
                    Escaped::Quote(q) => State::Quote(q),
                };
            }
        }
    }
    if !token.is_empty() || quoted {
        out.push(token);
    }
    Ok(out)
}

/// Ansible's `_parse_value`: `ast.literal_eval(text)` when `text` is a
/// Python literal, else `text` itself. `Err` says why hoist will not read
/// it (Ansible would fail on it, or hoist cannot be sure to agree).
pub fn literal_eval(text: &str) -> Result<Value, String> {
    let src = text.trim_start_matches([' ', '\t']);
    let tokens = match tokenize(src)? {
        Some(t) => t,
        None => return Ok(Value::String(text.to_string())),
    };
    let mut p = Parser { tokens, at: 0 };
    let Some(first) = p.expr(0)? else {
        return Ok(Value::String(text.to_string()));
    };
    // `1, 2` is a tuple without its parentheses.
    let lit = if p.eat(',') {
        let mut items = vec![first];
        loop {
            if p.at == p.tokens.len() {
                break;
            }
            match p.expr(0)? {
                Some(v) => items.push(v),
                None => return Ok(Value::String(text.to_string())),
            }
            if !p.eat(',') {
                break;
            }
        }
        Lit::List(items)
    } else {
        first
    };
    if p.at == p.tokens.len() {
        lit.into_value()
    } else {
        Ok(Value::String(text.to_string()))
    }
}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Int(i128),
    Float(f64),
    Str(String),
    Name(&'static str),
    Punct(char),
}

/// Tokens of `src`, `None` when some token cannot be part of a literal
/// (then Python raises `SyntaxError` or `ValueError` and Ansible keeps the
/// text).
fn tokenize(src: &str) -> Result<Option<Vec<Tok>>, String> {
    let b = src.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        match c {
            b' ' | b'\t' => i += 1,
            b'\x0c' | b'\x0b' | b'\r' | b'\n' | b'\\' => {
                return Err("a control character or backslash outside quotes".into());
            }
            b'#' => break,
            b'(' | b')' | b'[' | b']' | b'{' | b'}' | b',' | b':' | b'+' | b'-' => {
                out.push(Tok::Punct(c as char));
                i += 1;
            }
            b'.' if b.get(i + 1).is_some_and(u8::is_ascii_digit) => {
                let (tok, len) = match number(&src[i..])? {
                    Some(n) => n,
                    None => return Ok(None),
                };
                out.push(tok);
                i += len;
            }
            b'.' if src[i..].starts_with("...") => {
                return Err("`...` (Ellipsis) is not a value".into());
            }
            b'0'..=b'9' => {
                let (tok, len) = match number(&src[i..])? {
                    Some(n) => n,
                    None => return Ok(None),
                };
                out.push(tok);
                i += len;
            }
            b'\'' | b'"' => {
                let (s, len) = match string(&src[i..], false)? {
                    Some(s) => s,
                    None => return Ok(None),
                };
                out.push(Tok::Str(s));
                i += len;
            }
            c if c.is_ascii_alphabetic() || c == b'_' || c >= 0x80 => {
                let end = src[i..]
                    .find(|ch: char| !(ch.is_alphanumeric() || ch == '_'))
                    .map_or(src.len(), |e| i + e);
                let word = &src[i..end];
                let quote = b.get(end).copied();
                if matches!(quote, Some(b'\'' | b'"')) {
                    match word.to_ascii_lowercase().as_str() {
                        "u" => {
                            let (s, len) = match string(&src[end..], false)? {
                                Some(s) => s,
                                None => return Ok(None),
                            };
                            out.push(Tok::Str(s));
                            i = end + len;
                            continue;
                        }
                        "r" => {
                            let (s, len) = match string(&src[end..], true)? {
                                Some(s) => s,
                                None => return Ok(None),
                            };
                            out.push(Tok::Str(s));
                            i = end + len;
                            continue;
                        }
                        "b" | "br" | "rb" => {
                            return Err("a bytes literal (b'...') is not text".into());
                        }
                        // f-strings are never literals.
                        _ => return Ok(None),
                    }
                }
                match word {
                    "True" => out.push(Tok::Name("True")),
                    "False" => out.push(Tok::Name("False")),
                    "None" => out.push(Tok::Name("None")),
                    "set" => return Err("a Python set is not a value".into()),
                    _ => return Ok(None),
                }
                i = end;
            }
            _ => return Ok(None),
        }
    }
    Ok(Some(out))
}

/// A Python number at the start of `s`: its token and length. `None`
/// when Python rejects it (`0755`, `1_`, `1abc`).
fn number(s: &str) -> Result<Option<(Tok, usize)>, String> {
    let b = s.as_bytes();
    let digits = |from: usize, ok: fn(u8) -> bool| -> Option<usize> {
        // digit (["_"] digit)*: the end, or None when a `_` is misplaced.
        let mut i = from;
        if !b.get(i).is_some_and(|c| ok(*c)) {
            return None;
        }
        while i < b.len() {
            if ok(b[i]) {
                i += 1;
            } else if b[i] == b'_' && b.get(i + 1).is_some_and(|c| ok(*c)) {
                i += 2;
            } else {
                break;
            }
        }
        Some(i)
    };
    let ident_follows = |i: usize| {
        b.get(i)
            .is_some_and(|c| c.is_ascii_alphanumeric() || *c == b'_' || *c >= 0x80)
    };
    let clean = |t: &str| t.replace('_', "");
    // 0x / 0o / 0b
    if b[0] == b'0' && matches!(b.get(1), Some(b'x' | b'X' | b'o' | b'O' | b'b' | b'B')) {
        let (radix, ok): (u32, fn(u8) -> bool) = match b[1] | 0x20 {
            b'x' => (16, |c| c.is_ascii_hexdigit()),
            b'o' => (8, |c| (b'0'..=b'7').contains(&c)),
            _ => (2, |c| c == b'0' || c == b'1'),
        };
        let start = if b.get(2) == Some(&b'_') { 3 } else { 2 };
        let Some(end) = digits(start, ok) else {
            return Ok(None);
        };
        if ident_follows(end) || b.get(end) == Some(&b'.') {
            return Ok(None);
        }
        return match i128::from_str_radix(&clean(&s[start..end]), radix) {
            Ok(n) => Ok(Some((Tok::Int(n), end))),
            Err(_) => Err(format!("`{}` is too large an integer", &s[..end])),
        };
    }
    // Decimal integer, or a float / imaginary.
    let int_end = if b[0] == b'.' {
        0
    } else {
        match digits(0, |c| c.is_ascii_digit()) {
            Some(e) => e,
            None => return Ok(None),
        }
    };
    let mut end = int_end;
    let mut is_float = false;
    if b.get(end) == Some(&b'.') {
        is_float = true;
        end += 1;
        if b.get(end).is_some_and(u8::is_ascii_digit) {
            match digits(end, |c| c.is_ascii_digit()) {
                Some(e) => end = e,
                None => return Ok(None),
            }
        } else if int_end == 0 {
            return Ok(None);
        }
    }
    if matches!(b.get(end), Some(b'e' | b'E')) {
        let mut e = end + 1;
        if matches!(b.get(e), Some(b'+' | b'-')) {
            e += 1;
        }
        match digits(e, |c| c.is_ascii_digit()) {
            Some(x) => {
                end = x;
                is_float = true;
            }
            None => return Ok(None),
        }
    }
    if matches!(b.get(end), Some(b'j' | b'J')) {
        return Err("a complex number is not a value".into());
    }
    if ident_follows(end) || b.get(end) == Some(&b'.') {
        return Ok(None);
    }
    let text = clean(&s[..end]);
    if is_float {
        return match text.parse::<f64>() {
            Ok(f) if f.is_finite() => Ok(Some((Tok::Float(f), end))),
            _ => Err(format!("`{}` is not a finite number", &s[..end])),
        };
    }
    // Leading zeros are only allowed for zero itself.
    if text.len() > 1 && text.starts_with('0') && text.bytes().any(|c| c != b'0') {
        return Ok(None);
    }
    match text.parse::<i128>() {
        Ok(n) => Ok(Some((Tok::Int(n), end))),
        Err(_) => Err(format!("`{}` is too large an integer", &s[..end])),
    }
}

/// A quoted string at the start of `s` (after its prefix): its value and
/// length. `None` when it is not closed on the line.
fn string(s: &str, raw: bool) -> Result<Option<(String, usize)>, String> {
    let q = s.as_bytes()[0] as char;
    let triple: String = std::iter::repeat_n(q, 3).collect();
    let (delim, mut i) = if s.starts_with(&triple) {
        (triple.as_str(), 3)
    } else {
        (&s[..1], 1)
    };
    let mut out = String::new();
    let body = s;
    loop {
        let Some(c) = body[i..].chars().next() else {
            return Ok(None);
        };
        if body[i..].starts_with(delim) {
            return Ok(Some((out, i + delim.len())));
        }
        if c == '\\' {
            let Some(e) = body[i + 1..].chars().next() else {
                return Ok(None);
            };
            if raw {
                out.push('\\');
                out.push(e);
                i += 1 + e.len_utf8();
                continue;
            }
            i += 1 + e.len_utf8();
            match e {
                '\\' => out.push('\\'),
                '\'' => out.push('\''),
                '"' => out.push('"'),
                'a' => out.push('\x07'),
                'b' => out.push('\x08'),
                'f' => out.push('\x0c'),
                'n' => out.push('\n'),
                'r' => out.push('\r'),
                't' => out.push('\t'),
                'v' => out.push('\x0b'),
                '0'..='7' => {
                    let mut v = e.to_digit(8).unwrap_or(0);
                    for _ in 0..2 {
                        match body[i..].chars().next().and_then(|d| d.to_digit(8)) {
                            Some(d) => {
                                v = v * 8 + d;
                                i += 1;
                            }
                            None => break,
                        }
                    }
                    out.push(char::from_u32(v).ok_or("a bad octal escape")?);
                }
                'x' | 'u' | 'U' => {
                    let n = match e {
                        'x' => 2,
                        'u' => 4,
                        _ => 8,
                    };
                    let hex = body.get(i..i + n).unwrap_or("");
                    if hex.len() != n || !hex.bytes().all(|c| c.is_ascii_hexdigit()) {
                        return Err(format!("a malformed `\\{e}` escape"));
                    }
                    let v = u32::from_str_radix(hex, 16).map_err(|e| e.to_string())?;
                    out.push(
                        char::from_u32(v)
                            .ok_or_else(|| format!("`\\{e}{hex}` is not a character"))?,
                    );
                    i += n;
                }
                'N' => return Err("`\\N{...}` escapes are not read".into()),
                other => {
                    // Unknown escapes keep their backslash.
                    out.push('\\');
                    out.push(other);
                }
            }
            continue;
        }
        if c == '\n' || c == '\r' {
            return Ok(None);
        }
        out.push(c);
        i += c.len_utf8();
    }
}

/// A literal being built: tuples, lists and dictionaries of constants.
enum Lit {
    Int(i128),
    Float(f64),
    Str(String),
    Bool(bool),
    None,
    List(Vec<Lit>),
    Dict(Vec<(Lit, Lit)>),
}

impl Lit {
    fn into_value(self) -> Result<Value, String> {
        Ok(match self {
            Lit::Int(n) => match i64::try_from(n) {
                Ok(n) => Value::Number(n.into()),
                Err(_) => return Err(format!("{n} is beyond 64-bit integers")),
            },
            Lit::Float(f) => Value::Number(Number::from_f64(f).ok_or("not a finite number")?),
            Lit::Str(s) => Value::String(s),
            Lit::Bool(b) => Value::Bool(b),
            Lit::None => Value::Null,
            Lit::List(items) => Value::Array(
                items
                    .into_iter()
                    .map(Lit::into_value)
                    .collect::<Result<_, _>>()?,
            ),
            Lit::Dict(pairs) => {
                let mut m = Map::new();
                for (k, v) in pairs {
                    let Lit::Str(k) = k else {
                        return Err("a dictionary key that is not text".into());
                    };
                    m.insert(k, v.into_value()?);
                }
                Value::Object(m)
            }
        })
    }
}

struct Parser {
    tokens: Vec<Tok>,
    at: usize,
}

const MAX_DEPTH: usize = 50;

impl Parser {
    fn peek(&self) -> Option<&Tok> {
        self.tokens.get(self.at)
    }

    fn eat(&mut self, c: char) -> bool {
        if self.peek() == Some(&Tok::Punct(c)) {
            self.at += 1;
            true
        } else {
            false
        }
    }

    /// One expression: `None` when the tokens do not form a literal.
    fn expr(&mut self, depth: usize) -> Result<Option<Lit>, String> {
        if depth > MAX_DEPTH {
            return Err("a value nested too deeply".into());
        }
        let Some(t) = self.peek().cloned() else {
            return Ok(None);
        };
        self.at += 1;
        let lit = match t {
            Tok::Int(n) => Lit::Int(n),
            Tok::Float(f) => Lit::Float(f),
            Tok::Str(mut s) => {
                // Adjacent strings are one.
                while let Some(Tok::Str(more)) = self.peek() {
                    s.push_str(more);
                    self.at += 1;
                }
                Lit::Str(s)
            }
            Tok::Name("True") => Lit::Bool(true),
            Tok::Name("False") => Lit::Bool(false),
            Tok::Name(_) => Lit::None,
            Tok::Punct(sign @ ('+' | '-')) => match self.peek() {
                Some(Tok::Int(n)) => {
                    let n = *n;
                    self.at += 1;
                    Lit::Int(if sign == '-' { -n } else { n })
                }
                Some(Tok::Float(f)) => {
                    let f = *f;
                    self.at += 1;
                    Lit::Float(if sign == '-' { -f } else { f })
                }
                // `-(1)` is -1 to Python: not worth reading.
                Some(Tok::Punct('(')) => return Err("a sign before parentheses".into()),
                _ => return Ok(None),
            },
            Tok::Punct('(') => {
                if self.eat(')') {
                    return self.binop(Lit::List(Vec::new()));
                }
                let Some(first) = self.expr(depth + 1)? else {
                    return Ok(None);
                };
                if self.eat(')') {
                    first
                } else if self.eat(',') {
                    let mut items = vec![first];
                    if !self.items(&mut items, ')', depth)? {
                        return Ok(None);
                    }
                    Lit::List(items)
                } else {
                    return Ok(None);
                }
            }
            Tok::Punct('[') => {
                let mut items = Vec::new();
                if !self.items(&mut items, ']', depth)? {
                    return Ok(None);
                }
                Lit::List(items)
            }
            Tok::Punct('{') => {
                let mut pairs = Vec::new();
                loop {
                    if self.eat('}') {
                        break;
                    }
                    let Some(k) = self.expr(depth + 1)? else {
                        return Ok(None);
                    };
                    if !self.eat(':') {
                        // `{1, 2}` is a set.
                        if matches!(self.peek(), Some(Tok::Punct(',' | '}'))) {
                            return Err("a Python set is not a value".into());
                        }
                        return Ok(None);
                    }
                    let Some(v) = self.expr(depth + 1)? else {
                        return Ok(None);
                    };
                    pairs.push((k, v));
                    if self.eat('}') {
                        break;
                    }
                    if !self.eat(',') {
                        return Ok(None);
                    }
                }
                // Later keys win, as in a Python dict.
                let mut dict: Vec<(Lit, Lit)> = Vec::new();
                for (k, v) in pairs {
                    if !matches!(k, Lit::Str(_)) {
                        return Err("a dictionary key that is not text".into());
                    }
                    let same = |(o, _): &(Lit, Lit)| match (o, &k) {
                        (Lit::Str(a), Lit::Str(b)) => a == b,
                        _ => false,
                    };
                    match dict.iter().position(same) {
                        Some(i) => dict[i].1 = v,
                        None => dict.push((k, v)),
                    }
                }
                Lit::Dict(dict)
            }
            Tok::Punct(_) => return Ok(None),
        };
        self.binop(lit)
    }

    /// Python accepts `a + bj` (complex numbers) and nothing else; those
    /// are refused, so any operator here means "not a literal".
    fn binop(&mut self, lit: Lit) -> Result<Option<Lit>, String> {
        if matches!(self.peek(), Some(Tok::Punct('+' | '-'))) {
            return Ok(None);
        }
        Ok(Some(lit))
    }

    /// Items up to `close`, trailing comma allowed; false when malformed.
    fn items(&mut self, items: &mut Vec<Lit>, close: char, depth: usize) -> Result<bool, String> {
        loop {
            if self.eat(close) {
                return Ok(true);
            }
            let Some(v) = self.expr(depth + 1)? else {
                return Ok(false);
            };
            items.push(v);
            if self.eat(close) {
                return Ok(true);
            }
            if !self.eat(',') {
                return Ok(false);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn shlex_as_python() {
        assert_eq!(
            shlex_split(r#"h1 a="x y" b='q r' c=1#c"#).unwrap(),
            ["h1", "a=x y", "b=q r", "c=1"]
        );
        assert_eq!(
            shlex_split(r"h motd=hello\ world").unwrap(),
            ["h", "motd=hello world"]
        );
        assert_eq!(
            shlex_split(r#"h n="'inner'" d="a\"b\c""#).unwrap(),
            ["h", "n='inner'", r#"d=a"b\c"#]
        );
        assert_eq!(shlex_split("h x='' # c").unwrap(), ["h", "x="]);
        assert!(shlex_split("h x='a").is_err());
    }

    #[test]
    fn literals_as_python() {
        let ok = |s: &str| literal_eval(s).unwrap();
        assert_eq!(ok("8080 # comment"), json!(8080));
        assert_eq!(ok("hello # c"), json!("hello # c"));
        assert_eq!(ok("'03#pa33w0rd'"), json!("03#pa33w0rd"));
        assert_eq!(ok("True"), json!(true));
        assert_eq!(ok("None"), json!(null));
        assert_eq!(ok("0755"), json!("0755"));
        assert_eq!(ok("1e3"), json!(1000.0));
        assert_eq!(ok("0x1F"), json!(31));
        assert_eq!(ok("1_000"), json!(1000));
        assert_eq!(ok("-5"), json!(-5));
        assert_eq!(ok("10.0.0.1"), json!("10.0.0.1"));
        assert_eq!(ok("[1, 'a', (2,)]"), json!([1, "a", [2]]));
        assert_eq!(ok("{'a': 1, 'a': 2}"), json!({"a": 2}));
        assert_eq!(ok("'a' \"b\""), json!("ab"));
        assert_eq!(ok("a'b'c"), json!("a'b'c"));
        assert_eq!(ok(""), json!(""));
        assert_eq!(ok("yes"), json!("yes"));
        assert_eq!(ok("1+2"), json!("1+2"));
        assert_eq!(ok("1, 'a',"), json!([1, "a"]));
        assert!(literal_eval("{1, 2}").is_err());
        assert!(literal_eval("b'x'").is_err());
        assert!(literal_eval("1j").is_err());
    }
}
