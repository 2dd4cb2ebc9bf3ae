//! hoist's OpenSSH sessions against booted test hosts over real sshd:
//! one master connection shared by many commands, quoting, stdin that
//! never shows in argv, streamed output, checked copies, bounded waits,
//! and clear errors for an unknown host key or an unreachable host.

use std::time::{Duration, Instant};

use hoist::ssh::{Options, Session, Target};
use hoist_testbed::{Suite, Testbed};

fn options(tb: &Testbed, dir: &std::path::Path) -> Options {
    Options {
        config: Some(tb.ssh_config()),
        connect_timeout: Duration::from_secs(5),
        control_dir: dir.to_path_buf(),
    }
}

fn target(host: &str) -> Target {
    Target {
        host: host.into(),
        user: None,
        port: None,
        key: None,
    }
}

#[test]
fn one_master_connection_serves_every_command() -> hoist_testbed::Result<()> {
    let tb = Testbed::builder().host("a", Suite::Bookworm).start()?;
    let h = tb.host("a")?;
    let dir = tempdir("master");
    let s = Session::open(target("a"), &options(&tb, &dir)).expect("connects");

    // Arguments arrive as they were given, whatever the remote shell.
    let out = s
        .run(
            &["printf", "%s|", "a b", "$HOME", "it's", ";true"],
            None,
            Duration::from_secs(10),
        )
        .expect("runs");
    assert_eq!(out.stdout, "a b|$HOME|it's|;true|");

    // Twenty commands, one TCP connection: sshd saw one session.
    for i in 0..20 {
        let o = s
            .run(&["echo", &i.to_string()], None, Duration::from_secs(10))
            .expect("runs");
        assert_eq!(o.stdout.trim(), i.to_string());
    }
    let conns = h.exec("ss -Htn state established '( sport = :22 )' | wc -l")?;
    // The harness's own exec connection may be counted too.
    let n: u32 = conns.stdout.trim().parse().unwrap();
    assert!(n <= 2, "{n} ssh connections for 21 commands");

    // A secret on stdin is read there and is in no process's argv (the
    // search reads its pattern from a file, so it is not in its own).
    let secret = "s3cret-on-stdin-only";
    let o = s
        .run(
            &[
                "sh",
                "-c",
                "read x; printf %s \"$x\" > /tmp/pat; grep -lFf /tmp/pat /proc/[0-9]*/cmdline 2>/dev/null | wc -l; echo \"${#x}\"",
            ],
            Some(format!("{secret}\n").as_bytes()),
            Duration::from_secs(10),
        )
        .expect("runs");
    assert_eq!(
        o.stdout.lines().collect::<Vec<_>>(),
        ["0", &secret.len().to_string()]
    );

    // Lines come while the command runs, not at its end.
    let started = Instant::now();
    let mut seen = Vec::new();
    let code = s
        .stream(
            &["sh", "-c", "echo one; sleep 2; echo two"],
            Duration::from_secs(20),
            &mut |l| seen.push((l.to_string(), started.elapsed())),
        )
        .expect("streams");
    assert_eq!(code, Some(0));
    assert_eq!(
        seen.iter().map(|(l, _)| l.as_str()).collect::<Vec<_>>(),
        ["one", "two"]
    );
    assert!(
        seen[1].1 - seen[0].1 >= Duration::from_secs(1),
        "the first line was held back: {seen:?}"
    );

    // Fed on stdin and streamed: what the command reads comes back line
    // by line (run-once steps: the action in, progress lines out).
    let mut lines = Vec::new();
    let (code, _) = s
        .stream_fed(
            &[
                "sh",
                "-c",
                "read a; echo \"got $a\"; read b; echo \"got $b\"",
            ],
            Some(b"first\nsecond\n"),
            Duration::from_secs(20),
            &mut |l| lines.push(l.to_string()),
        )
        .expect("streams");
    assert_eq!(code, Some(0));
    assert_eq!(lines, ["got first", "got second"]);

    // A command past its bound is killed, and said so.
    let code = s
        .stream(&["sleep", "30"], Duration::from_secs(1), &mut |_| {})
        .expect("streams");
    assert_eq!(code, None);

    // A copy lands whole, with its mode, or not at all.
    let body = b"#!/bin/sh\necho copied\n".repeat(1000);
    s.put(
        &body,
        "/usr/local/bin/copied",
        0o755,
        Duration::from_secs(20),
    )
    .expect("copied");
    let o = s
        .run(
            &[
                "sh",
                "-c",
                "stat -c %a /usr/local/bin/copied; sha256sum < /usr/local/bin/copied",
            ],
            None,
            Duration::from_secs(10),
        )
        .unwrap();
    let want = sha256_hex(&body);
    assert_eq!(o.stdout, format!("755\n{want}  -\n"));
    let err = s
        .put(b"x", "/no/such/dir/file", 0o644, Duration::from_secs(10))
        .unwrap_err();
    assert!(err.contains("/no/such/dir/file"), "{err}");

    drop(s);
    assert!(
        std::fs::read_dir(&dir).unwrap().next().is_none(),
        "the control socket is gone after close"
    );
    std::fs::remove_dir_all(&dir).unwrap();
    tb.teardown()?;
    Ok(())
}

#[test]
fn an_unknown_host_key_or_a_dead_host_is_an_error_not_a_question() -> hoist_testbed::Result<()> {
    let tb = Testbed::builder().host("k", Suite::Bookworm).start()?;
    let h = tb.host("k")?;
    let dir = tempdir("refused");
    // The admin's known_hosts does not know this host.
    let cfg = dir.join("ssh_config");
    let text = std::fs::read_to_string(tb.ssh_config()).unwrap();
    let empty = dir.join("empty_known_hosts");
    std::fs::write(&empty, "").unwrap();
    let text = text
        .lines()
        .map(|l| {
            if l.trim_start().starts_with("UserKnownHostsFile") {
                format!("  UserKnownHostsFile {}", empty.display())
            } else {
                l.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join("\n");
    std::fs::write(&cfg, text).unwrap();
    let mut o = options(&tb, &dir);
    o.config = Some(cfg);
    let started = Instant::now();
    let err = Session::open(target("k"), &o).err().expect("refused");
    assert!(err.contains("Host key verification failed"), "{err}");
    assert!(started.elapsed() < Duration::from_secs(30), "not bounded");

    // A host that is down: refused within the connect bound.
    let good = options(&tb, &dir);
    h.power_off()?;
    let started = Instant::now();
    let err = Session::open(target("k"), &good).err().expect("refused");
    assert!(err.contains("cannot connect"), "{err}");
    assert!(started.elapsed() < Duration::from_secs(30), "not bounded");
    std::fs::remove_dir_all(&dir).unwrap();
    tb.teardown()?;
    Ok(())
}

/// A short private directory: control sockets need short paths.
fn tempdir(tag: &str) -> std::path::PathBuf {
    let d = std::path::PathBuf::from(format!("/tmp/hs-{}-{tag}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn sha256_hex(b: &[u8]) -> String {
    use sha2::{Digest, Sha256};
    Sha256::digest(b)
        .iter()
        .map(|x| format!("{x:02x}"))
        .collect()
}
