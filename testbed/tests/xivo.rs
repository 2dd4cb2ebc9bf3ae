//! The XiVO stand-in behaves like the seed describes: daemons that answer
//! health checks with the schema their version needs, start in order, a
//! conffile that conflicts, `xivo-upgrade` with the wizard precondition, -d
//! and -f, and the unsupported 1.1 -> 1.2 upgrade refused.

use hoist_testbed::products::xivo;
use hoist_testbed::{AptRepo, Host, Suite, Testbed, leftovers};

fn health(h: &Host, port: u16) -> (u16, String) {
    h.http_get(port, "/health").expect("http get")
}

fn assert_all_healthy(h: &Host, version: &str) {
    for (unit, port, _) in xivo::DAEMONS {
        let (code, body) = health(h, *port);
        assert_eq!(code, 200, "{unit}: {body}");
        assert!(
            body.contains(&format!("\"version\": \"{version}\"")),
            "{unit}: {body}"
        );
    }
}

#[test]
fn xivo_standin_installs_upgrades_and_refuses_what_the_docs_refuse() -> hoist_testbed::Result<()> {
    let mut repo = AptRepo::new()?;
    xivo::add_to(&mut repo)?;
    repo.publish()?;
    let tb = Testbed::builder()
        .host("xivo", Suite::Bookworm)
        .host("old", Suite::Bookworm)
        .repo(&repo)
        .start()?;
    let run_id = tb.run_id().to_owned();
    let h = tb.host("xivo")?;

    h.use_suites(&[&xivo::suite("1.2.2")])?;
    h.exec("apt-get update -q && apt-get install -q -y xivo xivo-upgrade")?;
    assert_all_healthy(&h, "1.2.2");
    let (_, body) = health(&h, 4573);
    assert!(body.contains("\"schema\": 3"), "{body}");

    // Order matters: agid refuses to start while sysconfd is down.
    h.exec("xivo-service stop")?;
    let out = h.exec_unchecked("systemctl start xivo-agid")?;
    assert!(!out.success(), "agid started without sysconfd");
    h.exec("xivo-service start")?;
    assert_all_healthy(&h, "1.2.2");

    // The wizard precondition.
    let out = h.exec_unchecked("xivo-upgrade -f")?;
    assert!(!out.success());
    assert!(out.stderr.contains("wizard"), "{}", out.stderr);
    h.exec("xivo-wizard")?;

    // -d only downloads.
    h.use_suites(&[&xivo::suite("1.2.3")])?;
    let out = h.exec("xivo-upgrade -d")?;
    assert!(out.stdout.contains("new version: 1.2.3"), "{}", out.stdout);
    assert_eq!(
        h.exec("cat /usr/share/xivo/XIVO-VERSION")?.stdout.trim(),
        "1.2.2"
    );
    // (apt reads file: repositories in place: nothing lands in its cache.)
    h.exec("dpkg-query -W -f '${Version}' xivo-agid | grep -qx 1.2.2")?;

    // A local edit of a conffile that 1.2.3 changes: kept, new one beside.
    h.exec("sed -i s/log_level=info/log_level=debug/ /etc/xivo/sysconfd.conf")?;
    let out = h.exec("xivo-upgrade -f")?;
    assert!(
        out.stdout.contains("current version: 1.2.2"),
        "{}",
        out.stdout
    );
    assert!(out.stdout.contains("new version: 1.2.3"), "{}", out.stdout);
    assert_all_healthy(&h, "1.2.3");
    let (_, body) = health(&h, 5003);
    assert!(body.contains("\"schema\": 4"), "migrated: {body}");
    h.exec("grep -q log_level=debug /etc/xivo/sysconfd.conf")?;
    h.exec("grep -q allowed_networks /etc/xivo/sysconfd.conf.dpkg-dist")?;
    let rules = h.exec("iptables -S INPUT")?.stdout;
    assert!(
        !rules.contains("DROP"),
        "upgrade left its SIP DROP rule: {rules}"
    );

    // After the key change, 1.2.4 is signed with XiVO's new key only:
    // refused until it is trusted.
    h.use_suites(&[&xivo::suite("1.2.4")])?;
    let out = h.exec_unchecked("apt-get update -q")?;
    let all = format!("{}{}", out.stdout, out.stderr);
    assert!(
        all.contains("NO_PUBKEY") || all.contains("not signed"),
        "a suite signed by an unknown key was used: {all}"
    );
    // The docs' `apt-key add` of the new key, then the upgrade.
    h.exec(&format!(
        "cp {} /etc/apt/trusted.gpg.d/xivo_current.gpg",
        xivo::NEW_KEY
    ))?;
    let out = h.exec("apt-get update -q")?;
    assert!(!out.stderr.contains("NO_PUBKEY"), "{}", out.stderr);
    h.exec("xivo-upgrade -f")?;
    assert_all_healthy(&h, "1.2.4");

    // A newer code with an old schema is unhealthy, not silently working.
    h.exec(
        "runuser -u postgres -- psql -qAt -d asterisk -c 'UPDATE schema_version SET version = 3'",
    )?;
    assert_eq!(health(&h, 4573).0, 503);

    // 1.1 -> 1.2 is refused by the package itself.
    let old = tb.host("old")?;
    old.use_suites(&[&xivo::suite("1.1.21")])?;
    old.exec("apt-get update -q && apt-get install -q -y xivo")?;
    assert_all_healthy(&old, "1.1.21");
    old.use_suites(&[&xivo::suite("1.2.0")])?;
    let out = old.exec_unchecked("apt-get update -q && apt-get install -q -y xivo")?;
    assert!(!out.success());
    let all = format!("{}{}", out.stdout, out.stderr);
    assert!(all.contains("from XiVO 1.1 is not supported"), "{all}");
    let kept = old.exec("dpkg-query -W -f '${Version}' xivo")?.stdout;
    assert_eq!(kept, "1.1.21", "xivo itself was not upgraded");

    tb.teardown()?;
    let left = leftovers::of_run(&run_id);
    assert!(left.is_empty(), "left behind: {left:#?}");
    Ok(())
}
