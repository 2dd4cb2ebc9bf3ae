//! The CloudStack and WalT stand-ins behave like their seeds describe:
//! CloudStack's renamed packages replace the old ones and take the agent's
//! properties over, databases migrate when the servers start, a locally
//! edited conffile really conflicts; WalT 4 installs with pip, WalT 5 as a
//! Debian package that migrates the same database.

use hoist_testbed::products::{cloudstack as cs, walt};
use hoist_testbed::{AptRepo, Host, Suite, Testbed, leftovers};

fn health(h: &Host, port: u16) -> (u16, String) {
    h.http_get(port, "/health").expect("http get")
}

fn assert_healthy(h: &Host, port: u16, version: &str, schema: Option<u32>) {
    let (code, body) = health(h, port);
    assert_eq!(code, 200, "port {port}: {body}");
    assert!(
        body.contains(&format!("\"version\": \"{version}\"")),
        "{body}"
    );
    if let Some(s) = schema {
        assert!(body.contains(&format!("\"schema\": {s},")), "{body}");
    }
}

fn cloudstack(h: &Host) -> hoist_testbed::Result<()> {
    h.use_suites(&[&cs::suite("4.0.2")])?;
    h.exec("apt-get update -q && apt-get install -q -y cloud-client cloud-usage cloud-agent")?;
    // As CloudStack's packages, they do not start their services: the
    // admin does, once the database is there.
    let (ms, us, ag) = cs::services("4.0.2");
    h.exec(&format!(
        "systemctl start mariadb && systemctl start {ms} {us} {ag}"
    ))?;
    assert_healthy(
        h,
        cs::MANAGEMENT_PORT,
        "4.0.2",
        Some(cs::cloud_schema_version("4.0.2")),
    );
    assert_healthy(h, cs::USAGE_PORT, "4.0.2", Some(1));
    assert_healthy(h, cs::AGENT_PORT, "4.0.2", None);
    h.exec("echo guid=agent-one >> /etc/cloud/agent/agent.properties")?;

    // 4.0 -> 4.3: new names replace the old, the agent keeps its identity.
    h.use_suites(&[&cs::suite("4.3.0")])?;
    h.exec(&format!(
        "service {ms} stop && service {us} stop && service {ag} stop && \
             apt-get update -q && \
             apt-get install -q -y cloudstack-management cloudstack-usage cloudstack-agent && \
             systemctl start cloudstack-management cloudstack-usage"
    ))?;
    h.exec("! dpkg -s cloud-client 2>/dev/null | grep -q 'Status: install ok installed'")?;
    h.exec("grep -qx guid=agent-one /etc/cloudstack/agent/agent.properties")?;
    h.exec("grep -qx 'Cloudstack Release 4.3.0' /etc/cloudstack-release")?;
    assert_healthy(
        h,
        cs::MANAGEMENT_PORT,
        "4.3.0",
        Some(cs::cloud_schema_version("4.3.0")),
    );
    assert_healthy(h, cs::USAGE_PORT, "4.3.0", Some(2));
    h.exec(&format!(
        "mysql -N -e 'SELECT version FROM cloud.schema_version' | grep -qx {}",
        cs::cloud_schema_version("4.3.0")
    ))?;

    // An edited db.properties that 4.3.2 also changes: dpkg asks, and with
    // nobody to answer the upgrade fails; told to keep ours, it goes on.
    h.exec(
        "sed -i s/db.cloud.port=3306/db.cloud.port=3307/ /etc/cloudstack/management/db.properties",
    )?;
    h.use_suites(&[&cs::suite("4.3.2")])?;
    h.exec("apt-get update -q")?;
    let out = h.exec_unchecked("apt-get install -q -y cloudstack-management")?;
    assert!(
        !out.success(),
        "conffile conflict went unnoticed: {}",
        out.stdout
    );
    let all = format!("{}{}", out.stdout, out.stderr);
    assert!(all.contains("db.properties"), "{all}");
    h.exec(
        "dpkg --configure -a --force-confold && \
         apt-get install -q -y -o Dpkg::Options::=--force-confold cloudstack-management && \
         systemctl restart cloudstack-management",
    )?;
    h.exec("grep -q db.cloud.port=3307 /etc/cloudstack/management/db.properties")?;
    h.exec("grep -q keyStore /etc/cloudstack/management/db.properties.dpkg-dist")?;
    assert_healthy(
        h,
        cs::MANAGEMENT_PORT,
        "4.3.2",
        Some(cs::cloud_schema_version("4.3.2")),
    );
    Ok(())
}

fn walt_server(h: &Host) -> hoist_testbed::Result<()> {
    h.exec(&format!(
        "pip3 install -q --no-index {} && walt-server-setup",
        walt::WHEEL_V4
    ))?;
    assert_healthy(h, walt::PORT, "4.0", Some(1));
    h.exec("runuser -u postgres -- psql -qAt -d walt -c \"INSERT INTO nodes VALUES ('00:11', 'rpi-1', 'default')\"")?;
    // The seed's first steps, then v5 from its Debian package.
    h.exec(
        "systemctl stop walt-server && systemctl disable walt-server && \
         runuser -u postgres -- pg_dump -Fc walt > /root/walt-db.dump && \
         python3 -m pip uninstall -q -y walt-server",
    )?;
    h.use_suites(&[walt::SUITE_V5])?;
    h.exec("apt-get update -q && apt-get install -q -y walt-server")?;
    assert_healthy(h, walt::PORT, "5.0", Some(2));
    let nodes = h.exec("runuser -u postgres -- psql -qAt -d walt -c 'SELECT name FROM nodes'")?;
    assert_eq!(
        nodes.stdout.trim(),
        "rpi-1",
        "data kept across the migration"
    );
    Ok(())
}

#[test]
fn cloudstack_and_walt_standins_upgrade_like_their_seeds() -> hoist_testbed::Result<()> {
    let mut repo = AptRepo::new()?;
    cs::add_to(&mut repo)?;
    walt::add_to(&mut repo)?;
    repo.publish()?;
    let tb = Testbed::builder()
        .host("cs", Suite::Bookworm)
        .host("walt", Suite::Bullseye)
        .repo(&repo)
        .start()?;
    let run_id = tb.run_id().to_owned();
    let (cs_host, walt_host) = (tb.host("cs")?, tb.host("walt")?);
    // Independent hosts: check both at once.
    let (a, b) = std::thread::scope(|s| {
        let a = s.spawn(|| cloudstack(&cs_host));
        let b = s.spawn(|| walt_server(&walt_host));
        (a.join(), b.join())
    });
    a.expect("cloudstack thread")?;
    b.expect("walt thread")?;
    tb.teardown()?;
    let left = leftovers::of_run(&run_id);
    assert!(left.is_empty(), "left behind: {left:#?}");
    Ok(())
}
