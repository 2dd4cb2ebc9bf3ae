//! Acceptance: three bookworm hosts reached over SSH; a stand-in package
//! installed from the signed repository; one host rebooted and reached
//! again; another power-cut and booted again; nothing left behind.

use std::time::Instant;

use hoist_testbed::{
    AptRepo, PackageSpec, RUNTIME_PACKAGE, Suite, Testbed, daemon_unit, leftovers, runtime_package,
};

fn hello(version: &str) -> PackageSpec {
    PackageSpec::new("hello-standin", version)
        .depends(RUNTIME_PACKAGE)
        .conffile("/etc/hello-standin.conf", "port=8080\n")
        .unit(
            "hello-standin.service",
            &daemon_unit(
                "hello-standin",
                version,
                8080,
                None,
                &[],
                Some("/etc/hello-standin.conf"),
            ),
        )
}

#[test]
fn three_hosts_install_reboot_power_cut_and_leave_nothing() -> hoist_testbed::Result<()> {
    let t0 = Instant::now();
    let mut repo = AptRepo::new()?;
    repo.add("stable", &runtime_package())?;
    repo.add("stable", &hello("1.0"))?;
    repo.publish()?;
    let tb = Testbed::builder()
        .host("h1", Suite::Bookworm)
        .host("h2", Suite::Bookworm)
        .host("h3", Suite::Bookworm)
        .repo(&repo)
        .start()?;
    eprintln!("3 hosts up after {:?}", t0.elapsed());
    let run_id = tb.run_id().to_owned();

    for h in tb.hosts() {
        let out = h.exec(
            "hostname; . /etc/os-release; echo $VERSION_ID; ps -p 1 -o comm=; \
             systemd-detect-virt",
        )?;
        let lines: Vec<&str> = out.stdout.lines().collect();
        assert_eq!(
            lines,
            [h.name(), "12", "systemd", "systemd-nspawn"],
            "{}",
            h.name()
        );
    }
    // Hosts see each other on the LAN, by name.
    tb.host("h1")?
        .exec("getent hosts h2 && timeout 5 bash -c '</dev/tcp/h2/22'")?;

    let h1 = tb.host("h1")?;
    h1.use_suites(&["stable"])?;
    h1.exec("apt-get update -q && apt-get install -q -y hello-standin")?;
    let (code, body) = h1.http_get(8080, "/health")?;
    assert_eq!(code, 200, "{body}");
    assert!(body.contains("\"version\": \"1.0\""), "{body}");

    let h2 = tb.host("h2")?;
    h2.exec("echo kept > /root/marker")?;
    let id_before = h2.boot_id()?;
    let t = Instant::now();
    h2.reboot()?;
    eprintln!("reboot of h2 took {:?}", t.elapsed());
    assert_ne!(h2.boot_id()?, id_before, "a reboot gives a new boot id");
    assert_eq!(h2.exec("cat /root/marker")?.stdout.trim(), "kept");
    assert_eq!(h2.boots(), 2);
    assert_eq!(
        h2.clean_shutdowns(),
        [id_before],
        "a reboot shuts down cleanly"
    );

    let h3 = tb.host("h3")?;
    h3.exec("echo kept > /root/marker && sync")?;
    let id_before = h3.boot_id()?;
    let t = Instant::now();
    tb.crash(&h3)?;
    eprintln!("power cut and boot of h3 took {:?}", t.elapsed());
    assert_ne!(h3.boot_id()?, id_before);
    assert_eq!(h3.exec("cat /root/marker")?.stdout.trim(), "kept");
    assert!(h3.clean_shutdowns().is_empty(), "a power cut stops no unit");

    tb.teardown()?;
    let left = leftovers::of_run(&run_id);
    assert!(left.is_empty(), "left behind: {left:#?}");
    eprintln!("whole test took {:?}", t0.elapsed());
    Ok(())
}
