//! The three pieces of Python hoist re-implements to read inventories as
//! Ansible does, compared with Python itself (Debian's python3, which
//! ansible-core depends on): `ast.literal_eval` as the INI plugin uses it,
//! `shlex.split(comments=True)`, and PyYAML's YAML 1.1 plain scalars. Each
//! input is a listed edge case or generated from pieces; hoist must agree
//! or refuse, never read it differently.

use std::io::Write;
use std::process::{Command, Stdio};

use hoist::fleet::inventory::{plugins, python, yaml};
use serde_json::{Value, json};

const SCRIPT: &str = r#"
import ast, json, shlex, sys, yaml
for line in sys.stdin:
    case = json.loads(line)
    kind, text = case["kind"], case["text"]
    try:
        if kind == "lit":
            try:
                v = ast.literal_eval(text)
            except (ValueError, SyntaxError):
                v = text
            out = {"ok": json.loads(json.dumps(v, allow_nan=False))}
            if isinstance(v, dict) and any(not isinstance(k, str) for k in v):
                out = {"err": "key"}
        elif kind == "shlex":
            out = {"ok": shlex.split(text, comments=True)}
        else:
            d = yaml.safe_load("v: " + text + "\n")
            out = {"ok": json.loads(json.dumps(d["v"], allow_nan=False))}
    except Exception as e:
        out = {"err": type(e).__name__}
    print(json.dumps(out), flush=True)
"#;

/// Python's answers, one per case.
fn python(cases: &[(&str, String)]) -> Vec<Value> {
    let mut child = Command::new("/usr/bin/python3")
        .arg("-c")
        .arg(SCRIPT)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("python3 (installed with ansible-core by the test command)");
    let mut input = String::new();
    for (kind, text) in cases {
        input.push_str(&json!({"kind": kind, "text": text}).to_string());
        input.push('\n');
    }
    let mut stdin = child.stdin.take().unwrap();
    let writer = std::thread::spawn(move || stdin.write_all(input.as_bytes()));
    let out = child.wait_with_output().unwrap();
    writer.join().unwrap().unwrap();
    assert!(out.status.success());
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// A deterministic stream of numbers (no dependency for randomness).
struct Lcg(u64);

impl Lcg {
    fn next(&mut self, n: usize) -> usize {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        ((self.0 >> 33) % n as u64) as usize
    }
}

fn generated(pieces: &[&str], count: usize, max: usize, seed: u64) -> Vec<String> {
    let mut r = Lcg(seed);
    (0..count)
        .map(|_| {
            let n = 1 + r.next(max);
            (0..n).map(|_| pieces[r.next(pieces.len())]).collect()
        })
        .collect()
}

fn hoist(kind: &str, text: &str) -> Result<Value, String> {
    match kind {
        "lit" => python::literal_eval(text),
        "shlex" => python::shlex_split(text)
            .map(|v| json!(v))
            .map_err(|e| e.to_string()),
        _ => {
            let doc = format!("v: {text}\n");
            let root = yaml::load(&doc).map_err(|e| e.1)?.ok_or("empty")?;
            let yaml::Kind::Map(pairs) = root.kind else {
                return Err("not a mapping".into());
            };
            plugins::value(&pairs[0].1, "v", 0).map_err(|r| r.1.message)
        }
    }
}

#[test]
fn literal_eval_shlex_and_yaml_scalars_agree_with_python() {
    let listed_lit = [
        "1",
        "-1",
        "+1",
        "- 1",
        "--1",
        "-(1)",
        "0",
        "00",
        "0_0",
        "07",
        "0755",
        "08",
        "1_000",
        "1__0",
        "1_",
        "0x1F",
        "0X_1f",
        "0o17",
        "0b101",
        "0b2",
        "1.5",
        ".5",
        "5.",
        "1e3",
        "1E-3",
        "1.e5",
        "1._5",
        "1.2.3",
        "10.0.0.1",
        "1j",
        "1+2j",
        "1+2",
        "True",
        "False",
        "None",
        "true",
        "yes",
        "'a'",
        "\"b\"",
        "'a' 'b'",
        "'a'\"b\"",
        "u'x'",
        "U\"x\"",
        "r'\\d'",
        "b'x'",
        "f'x'",
        "rb'x'",
        "'''t'''",
        "'\\x41\\n\\t'",
        "'\\101'",
        "'\\q'",
        "'\\u00e9'",
        "'\\N{DASH}'",
        "'unterminated",
        "[1, 2,]",
        "[1,,2]",
        "(1,)",
        "(1)",
        "()",
        "[]",
        "{}",
        "{'a': 1}",
        "{'a': 1, 'a': 2}",
        "{1: 2}",
        "{'a'}",
        "{1, 2}",
        "set()",
        "...",
        "[1, [2, [3]]]",
        "{'k': [True, None, 1.5]}",
        "hello",
        "hello world",
        "a'b'c",
        "8080 # c",
        "'x' # c",
        "x # c",
        "#",
        "",
        " ",
        "  1",
        "\t1",
        "1 ",
        "/etc/x",
        "1,2",
        "(1,2)",
        "[-1, +2.5]",
        "'a' + 'b'",
        "not True",
        "~1",
        "1if 1 else 2",
        "99999999999999999999",
        "-9223372036854775808",
        "9223372036854775808",
        "1e999",
        "nan",
        "inf",
        "__import__('os')",
        "é",
        "'é'",
        "{'a':{'b':{'c':1}}}",
        "[1 2]",
    ];
    let listed_shlex = [
        "a b",
        "a  b\tc",
        "a#b c",
        "a #b",
        "'a b' c",
        "\"a b\" c",
        "a\\ b",
        "a\\#b",
        "'a\\b'",
        "\"a\\b\"",
        "\"a\\\"b\"",
        "\"a\\\\b\"",
        "'a",
        "\"a",
        "a\\",
        "''",
        "\"\"",
        "x='' y",
        "a'b'c",
        "k=\"'v'\"",
        "#",
        "a # b # c",
        "é ü",
        "a\\\"b",
        "a'b c'd",
    ];
    let listed_yaml = [
        "yes",
        "Yes",
        "YES",
        "yEs",
        "no",
        "on",
        "Off",
        "y",
        "n",
        "true",
        "True",
        "~",
        "null",
        "Null",
        "NULL",
        "nUll",
        "0755",
        "0o755",
        "0x1F",
        "0b101",
        "0b",
        "1_000",
        "1:30",
        "1:30.5",
        "190:20:30",
        "1e3",
        "1.0e3",
        "1.0e+3",
        "1.5",
        ".5",
        "-.5",
        "+1",
        "-0",
        "1.",
        "._5",
        ".inf",
        "-.inf",
        ".nan",
        "2001-12-14",
        "2001-12-14t21:59:43.10-05:00",
        "12:30:45",
        "=",
        "<<",
        "'yes'",
        "\"0755\"",
        "!!str 1",
        "!!int 1",
        "[1, yes]",
        "{a: on}",
        "abc",
        "a b",
        "1_",
        "0_",
        "-",
        "0755_",
        "1__2",
        "0x_",
        "+0x10",
        "-0b11",
        "08",
        "09.5",
        "1:60",
        "1:5",
        "00:30",
    ];
    let mut cases: Vec<(&str, String)> = Vec::new();
    cases.extend(listed_lit.iter().map(|t| ("lit", t.to_string())));
    cases.extend(listed_shlex.iter().map(|t| ("shlex", t.to_string())));
    cases.extend(listed_yaml.iter().map(|t| ("yaml", t.to_string())));
    let lit_pieces = [
        "1", "0", "07", "0x1f", "1.5", ".5", "1e3", "1_0", "'a'", "\"b\"", "u'c'", "True", "None",
        "x", "[", "]", "(", ")", "{", "}", ",", ":", "-", "+", " ", "#c", "'", "\"", "r'\\d'",
        "'\\x41'", "é",
    ];
    for t in generated(&lit_pieces, 4000, 7, 1) {
        cases.push(("lit", t));
    }
    let shlex_pieces = [
        "a", "b=c", " ", "\t", "'", "\"", "\\", "#", "x y", "=", "é", "''",
    ];
    for t in generated(&shlex_pieces, 3000, 8, 2) {
        cases.push(("shlex", t));
    }
    let yaml_pieces = [
        "0", "1", "7", "9", "_", ":", ".", "+", "-", "e", "E", "x", "b", "o", "O", "n", "y", "yes",
        "on", "ff", "~", "5", "3", "inf", "nan",
    ];
    for t in generated(&yaml_pieces, 3000, 5, 3) {
        cases.push(("yaml", t));
    }
    let answers = python(&cases);
    assert_eq!(answers.len(), cases.len());
    let (mut same, mut refused, mut different) = (0, 0, Vec::new());
    for ((kind, text), answer) in cases.iter().zip(&answers) {
        let theirs = answer.get("ok");
        match (hoist(kind, text), theirs) {
            (Ok(v), Some(t)) if &v == t => same += 1,
            // YAML that is not a scalar hoist can test here.
            (Err(_), None) if *kind == "yaml" => refused += 1,
            (Err(_), _) => refused += 1,
            (Ok(v), t) => different.push(format!(
                "{kind} {text:?}: python {t:?} ({answer}), hoist {v}"
            )),
        }
    }
    println!(
        "{} cases: {same} identical, {refused} refused by hoist, {} different",
        cases.len(),
        different.len()
    );
    assert!(different.is_empty(), "{different:#?}");
    // Most generated inputs are read, not refused.
    assert!(
        same * 10 > cases.len() * 7,
        "only {same} of {} identical",
        cases.len()
    );
}
