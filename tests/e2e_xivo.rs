//! XiVO's `xivo-upgrade` (seeds 000 and 001) as hoist with the shipped
//! recipe (recipes/xivo), on booted Debian test hosts with the stand-in
//! XiVO packages served by an HTTP mirror answering as mirror.xivo.fr:
//! every 1.2 source version to 1.2.4, the refusals, `-d` then `-f`, and a
//! failure and a power cut in the package upgrade.

mod common;
use common::{install_hoist, sh};

use std::sync::Arc;
use std::time::{Duration, Instant};

use hoist_testbed::products::xivo;
use hoist_testbed::{AptRepo, Host, Mirror, Output, Suite, Testbed, wait_for};

const MIRROR_NAME: &str = "mirror.xivo.fr";
const LIST: &str = "/etc/apt/sources.list.d/xivo.list";
const TARGET: &str = "1.2.4";

/// The repository with every stand-in version, its mirror, and hosts.
struct Site {
    mirror: Mirror,
    tb: Testbed,
    _repo: AptRepo,
}

impl Site {
    /// The mirror goes first: its address is the LAN's, which the
    /// teardown gives back to the next testbed.
    fn teardown(self) {
        drop(self.mirror);
        self.tb.teardown().expect("teardown");
    }
}

fn site(hosts: &[&str]) -> Site {
    let mut repo = AptRepo::new().expect("repository");
    xivo::add_to(&mut repo).expect("stand-in packages");
    repo.publish().expect("publish");
    let mut b = Testbed::builder();
    for h in hosts {
        b = b.host(h, Suite::Bookworm);
    }
    let tb = b.repo(&repo).start().expect("testbed");
    let key = repo.root().join("keys/xivo_current.gpg");
    // seed 000: `wget http://mirror.xivo.fr/xivo_current.key`.
    let mirror = Mirror::start(
        &repo.root(),
        tb.runner_addr().expect("a LAN"),
        80,
        &[("/xivo_current.key", key.as_path())],
    )
    .expect("mirror");
    Site {
        mirror,
        tb,
        _repo: repo,
    }
}

/// A host running XiVO `version` with some data, hoist installed with the
/// shipped recipe and `xivo-upgrade` pointing at it.
fn xivo_at(site: &Site, name: &str, version: &str, wizard: bool) -> Arc<Host> {
    let h = site.tb.host(name).expect("host");
    site.mirror.alias_on(&h, MIRROR_NAME).expect("alias");
    h.use_mirror(
        "xivo",
        &format!("http://{MIRROR_NAME}/"),
        &[&xivo::suite(version)],
    )
    .expect("sources");
    let mut pkgs = String::from("xivo");
    if xivo::has_xivo_upgrade(version) {
        pkgs.push_str(" xivo-upgrade");
    }
    sh(
        &h,
        &format!("apt-get update -q && apt-get install -q -y {pkgs}"),
    );
    if wizard {
        sh(&h, "xivo-wizard");
    }
    sh(
        &h,
        "runuser -u postgres -- psql -qAt -d asterisk -c \
         \"INSERT INTO userfeatures (firstname, lastname) VALUES ('Alice', 'Martin'), ('Bob', NULL)\"",
    );
    install_hoist(&h, "").expect("hoist");
    link_xivo_upgrade(&h);
    h
}

/// The product's command: a symlink to hoist, as XiVO's own package would
/// ship it (ahead of the old script in PATH); the recipe comes with hoist's
/// package.
fn link_xivo_upgrade(h: &Host) {
    sh(h, "ln -sf /usr/bin/hoist /usr/local/sbin/xivo-upgrade");
}

/// `xivo-upgrade ARGS` as an admin types it, whatever its exit status.
fn upgrade(h: &Host, args: &str) -> Output {
    h.exec_unchecked(&format!(
        "NO_COLOR=1 timeout 280 xivo-upgrade {args} </dev/null 2>&1"
    ))
    .expect("xivo-upgrade runs")
}

/// Every daemon answers with `version`'s code on its schema.
fn serves(h: &Host, version: &str) {
    for (unit, port, _) in xivo::DAEMONS {
        let (code, body) = h.http_get(*port, "/health").expect("health");
        assert_eq!(code, 200, "{unit} on {}: {body}", h.name());
        assert!(
            body.contains(&format!("\"version\": \"{version}\"")),
            "{unit} on {}: {body}",
            h.name()
        );
    }
}

fn no_drop_rule(h: &Host) {
    let rules = sh(h, "iptables -S INPUT");
    assert!(
        !rules.contains("DROP"),
        "{}: SIP DROP rule left: {rules}",
        h.name()
    );
}

fn users(h: &Host) -> String {
    sh(
        h,
        "runuser -u postgres -- psql -qAt -d asterisk -c 'SELECT firstname, lastname FROM userfeatures ORDER BY id'",
    )
}

/// Everything an upgrade may change outside apt's caches and hoist's own
/// state: packages, /etc, the database, the firewall, running units.
fn system_state(h: &Host) -> String {
    sh(
        h,
        "dpkg-query -W -f '${Package} ${Version} ${Status}\\n'; \
         find /etc /var/lib/xivo /usr/share/xivo -xdev -type f -print0 2>/dev/null | sort -z | xargs -0 sha256sum; \
         iptables -S; \
         systemctl list-units --state=active --no-legend --plain 'xivo*' asterisk.service postgresql.service | awk '{print $1}'; \
         runuser -u postgres -- pg_dump asterisk | grep -v '^\\\\\\(un\\)\\?restrict'",
    )
}

/// The lines of a `system_state` that name the XiVO source or its keyring
/// (what trusting the new archive key changes), and the others.
fn key_lines(state: &str) -> (Vec<&str>, Vec<&str>) {
    state
        .lines()
        .partition(|l| l.ends_with(LIST) || l.ends_with("/etc/apt/keyrings/xivo.gpg"))
}

/// Units became active in the order XiVO needs (seed 001, step 6).
fn started_in_order(h: &Host) {
    let mut last = 0u64;
    for (unit, _, _) in xivo::DAEMONS {
        let t: u64 = sh(
            h,
            &format!("systemctl show -P ActiveEnterTimestampMonotonic {unit}"),
        )
        .trim()
        .parse()
        .expect("a timestamp");
        assert!(t >= last, "{unit} started before the daemon it needs");
        last = t;
    }
}

#[test]
fn every_1_2_version_upgrades_to_1_2_4() {
    let from = ["1.2.0", "1.2.1", "1.2.2", "1.2.3"];
    let names: Vec<String> = from
        .iter()
        .map(|v| format!("x{}", v.replace('.', "")))
        .collect();
    let refs: Vec<&str> = names.iter().map(String::as_str).collect();
    let site = site(&refs);
    std::thread::scope(|s| {
        for (name, version) in names.iter().zip(from) {
            let site = &site;
            s.spawn(move || upgrade_one(site, name, version));
        }
    });
    site.teardown();
}

fn upgrade_one(site: &Site, name: &str, version: &str) {
    let h = xivo_at(site, name, version, true);
    serves(&h, version);
    // An admin's edit of a conffile 1.2.3 changes: kept, the new one reported.
    let edited = xivo::schema_version(version) < 4;
    if edited {
        sh(
            &h,
            "sed -i s/log_level=info/log_level=debug/ /etc/xivo/sysconfd.conf",
        );
    }
    // The release is published on the mirror: lists on the host are stale.
    sh(
        &h,
        &format!("sed -i 's/xivo-{version}/xivo-{TARGET}/' {LIST}"),
    );

    let mut out = None;
    let seen = watch_while(&h, || out = Some(upgrade(&h, "-f")));
    let out = out.expect("the upgrade ran");
    assert!(out.success(), "{name}: {}", out.stdout);
    // The daemons served the old code through the whole install and went
    // down once, for the ordered restart (seed 001, step 6): the packages'
    // own restarts were held.
    let answers: Vec<Option<&str>> = seen.iter().map(|(a, _)| a.as_deref()).collect();
    assert_eq!(
        answers,
        [Some(version), None, Some(TARGET)],
        "{name}: what asterisk answered during the upgrade"
    );
    // Seed 001: the current and new version on screen.
    assert!(
        out.stdout.contains(&format!("current version: {version}")),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout.contains(&format!("new version: {TARGET}")),
        "{}",
        out.stdout
    );

    serves(&h, TARGET);
    started_in_order(&h);
    sh(&h, &format!("{} --check", xivo::UPDATE_DB));
    assert_eq!(users(&h).trim(), "Alice|Martin\nBob|", "{name}: data kept");
    no_drop_rule(&h);
    // seed 000: from 1.2.0 and 1.2.1 xivo-upgrade is installed first.
    assert_eq!(sh(&h, "dpkg-query -W -f '${Version}' xivo-upgrade"), TARGET);
    // The post-upgrade scripts ran, each once.
    let log = sh(&h, "cat /var/lib/hoist/runs/*.log");
    for line in [
        "no device templates on this host",
        "no HA configuration",
        "web-interface default language: en_US",
    ] {
        assert_eq!(log.matches(line).count(), 1, "{name}: {line:?} in\n{log}");
    }
    if edited {
        sh(&h, "grep -q log_level=debug /etc/xivo/sysconfd.conf");
        assert!(
            out.stdout.contains("/etc/xivo/sysconfd.conf.dpkg-dist"),
            "{name}: the new conffile is not reported: {}",
            out.stdout
        );
    }
    // 1.2.4 is signed with the new archive key only: the key is trusted
    // on the host now, through the keyring its source names.
    sh(&h, "test -s /etc/apt/keyrings/xivo.gpg");
    sh(
        &h,
        &format!("grep -q 'signed-by=/etc/apt/keyrings/xivo.gpg' {LIST}"),
    );
    let update = sh(&h, "apt-get update -q 2>&1");
    assert!(!update.contains("NO_PUBKEY"), "{name}: {update}");
    // Up to date now: nothing to do, nothing run again.
    let again = upgrade(&h, "-f");
    assert!(again.success(), "{}", again.stdout);
    assert!(again.stdout.contains("up to date"), "{}", again.stdout);
}

#[test]
fn refused_before_anything_changes() {
    let site = site(&["old", "nowizard", "latekey"]);
    std::thread::scope(|s| {
        let site = &site;
        s.spawn(move || {
            // seed 000: 1.1 -> 1.2 "is not supported right now".
            let h = xivo_at(site, "old", "1.1.21", true);
            sh(&h, &format!("sed -i 's/xivo-1.1.21/xivo-{TARGET}/' {LIST}"));
            let before = system_state(&h);
            let out = upgrade(&h, "-f");
            assert_eq!(out.code(), Some(1), "{}", out.stdout);
            assert!(
                out.stdout.contains(
                    "Upgrading to XiVO 1.2 from a previous version (i.e. XiVO 1.1) is not supported right now."
                ),
                "{}",
                out.stdout
            );
            assert_eq!(system_state(&h), before, "a refused upgrade changed the host");
            serves(&h, "1.1.21");
        });
        s.spawn(move || {
            // seed 000: "You can't use xivo-upgrade if you have not run the wizard".
            let h = xivo_at(site, "nowizard", "1.2.3", false);
            sh(&h, &format!("sed -i 's/xivo-1.2.3/xivo-{TARGET}/' {LIST}"));
            let before = system_state(&h);
            let out = upgrade(&h, "-f");
            assert_eq!(out.code(), Some(1), "{}", out.stdout);
            assert!(
                out.stdout
                    .contains("You can't use xivo-upgrade if you have not run the wizard"),
                "{}",
                out.stdout
            );
            assert_eq!(
                system_state(&h),
                before,
                "a refused upgrade changed the host"
            );
            serves(&h, "1.2.3");
        });
        s.spawn(move || key_before_any_refresh(site));
    });
    site.teardown();
}

/// apt's lists, by content: what `apt-get update` changes.
const LISTS: &str = "find /var/lib/apt/lists -type f -print0 | sort -z | xargs -0 -r sha256sum";

/// Seed 000: the new archive key "before upgrading from XiVO 1.2.3 or
/// earlier". 1.2.4 is signed with it only: the plan sees 1.2.4 through the
/// key without trusting it on the host, and the recipe with its key step
/// after the refresh (the order it had before) cannot see 1.2.4 at all.
fn key_before_any_refresh(site: &Site) {
    let h = xivo_at(site, "latekey", "1.2.3", true);
    sh(&h, &format!("sed -i 's/xivo-1.2.3/xivo-{TARGET}/' {LIST}"));
    let before = system_state(&h);
    let lists = sh(&h, LISTS);

    let plan = h
        .exec_unchecked(
            "NO_COLOR=1 timeout 280 hoist plan -r /usr/share/hoist/recipes/xivo </dev/null 2>&1",
        )
        .expect("hoist plan runs");
    assert!(plan.success(), "{}", plan.stdout);
    assert!(
        plan.stdout
            .starts_with(&format!("xivo: 1.2.3 -> {TARGET}\n")),
        "{}",
        plan.stdout
    );
    assert_eq!(system_state(&h), before, "the plan changed the host");
    assert_eq!(sh(&h, LISTS), lists, "the plan changed apt's lists");
    assert_eq!(
        sh(&h, "ls -d /tmp/hoist-candidate-* 2>/dev/null || true"),
        ""
    );

    sh(
        &h,
        "cp -a /usr/share/hoist/recipes/xivo /root/late-key && \
         sed -i '/^id = \"trust-new-archive-key\"$/{n;s/^phase = \"prepare\"$/phase = \"pre\"/}' /root/late-key/recipe.toml && \
         grep -A1 '^id = \"trust-new-archive-key\"$' /root/late-key/recipe.toml | grep -qx 'phase = \"pre\"'",
    );
    let late = h
        .exec_unchecked(
            "NO_COLOR=1 timeout 280 hoist upgrade -r /root/late-key --yes </dev/null 2>&1",
        )
        .expect("hoist upgrade runs");
    assert!(!late.success(), "{}", late.stdout);
    assert!(late.stdout.contains("NO_PUBKEY"), "{}", late.stdout);
    assert!(
        !late.stdout.contains(&format!("new version: {TARGET}")),
        "{}",
        late.stdout
    );
    assert_eq!(
        system_state(&h),
        before,
        "a refused upgrade changed the host"
    );
    serves(&h, "1.2.3");

    // The shipped order, on the same host.
    let out = upgrade(&h, "-f");
    assert!(out.success(), "{}", out.stdout);
    serves(&h, TARGET);
}

#[test]
fn download_only_then_force_downloads_nothing_more() {
    let site = site(&["dl"]);
    let h = xivo_at(&site, "dl", "1.2.3", true);
    sh(&h, &format!("sed -i 's/xivo-1.2.3/xivo-{TARGET}/' {LIST}"));
    let before = system_state(&h);
    let fetched_before = site.mirror.debs_served_to(&h);

    let out = upgrade(&h, "-d");
    assert!(out.success(), "{}", out.stdout);
    assert!(
        out.stdout.contains(&format!("new version: {TARGET}")),
        "{}",
        out.stdout
    );
    // -d trusts the new archive key, without which nothing of 1.2.4 can be
    // downloaded (seed 000: the key comes before upgrading), and changes
    // nothing else but the package cache.
    let after = system_state(&h);
    let (key_before, rest_before) = key_lines(&before);
    let (key_after, rest_after) = key_lines(&after);
    assert_eq!(
        rest_after, rest_before,
        "-d changed more than the package cache and the key"
    );
    assert_eq!(key_before.len(), 1, "{key_before:?}");
    assert_eq!(
        key_after.len(),
        2,
        "the keyring is not there: {key_after:?}"
    );
    assert_ne!(key_after, key_before);
    sh(
        &h,
        &format!("grep -q 'signed-by=/etc/apt/keyrings/xivo.gpg' {LIST}"),
    );
    serves(&h, "1.2.3");
    let cached = sh(&h, "ls /var/cache/apt/archives/");
    assert!(cached.contains(&format!("xivo_{TARGET}_")), "{cached}");
    let fetched = site.mirror.debs_served_to(&h);
    assert!(fetched > fetched_before, "-d downloaded nothing");

    let out = upgrade(&h, "-f");
    assert!(out.success(), "{}", out.stdout);
    serves(&h, TARGET);
    assert_eq!(
        site.mirror.debs_served_to(&h),
        fetched,
        "-f downloaded again what -d had downloaded"
    );
    drop(h);
    site.teardown();
}

/// Waits (bounded) until dpkg is at work in the dist-upgrade.
fn wait_for_dpkg(h: &Host) {
    let probe = "pgrep -f 'apt-get.*dist-upgrade' >/dev/null && pgrep -x dpkg >/dev/null && echo yes || true";
    wait_for(
        "dpkg at work in the dist-upgrade",
        Duration::from_secs(120),
        Duration::from_millis(50),
        || sh(h, probe).contains("yes").then_some(()),
    )
    .expect("dpkg ran in the dist-upgrade");
}

#[test]
fn failure_and_power_cut_in_the_package_upgrade() {
    let site = site(&["fail", "cut"]);
    std::thread::scope(|s| {
        let site = &site;
        s.spawn(move || {
            let h = xivo_at(site, "fail", "1.2.3", true);
            sh(&h, &format!("sed -i 's/xivo-1.2.3/xivo-{TARGET}/' {LIST}"));
            let data = users(&h);
            let before = system_state(&h);
            // The schema migration the new xivo-manage-db runs in its
            // postinst fails (its index name is taken): dpkg stops in the
            // middle of the dist-upgrade, other packages already at 1.2.4.
            sh(
                &h,
                "runuser -u postgres -- psql -qAt -d asterisk -c \
                 'CREATE INDEX linefeatures_name_idx ON userfeatures (firstname)'",
            );
            let before = (before, system_state(&h));
            let out = upgrade(&h, "-f");
            assert!(!out.success(), "{}", out.stdout);
            assert!(
                out.stdout.contains("upgrade-packages: FAILED"),
                "{}",
                out.stdout
            );
            assert!(out.stdout.contains("Rolled back"), "{}", out.stdout);
            serves(&h, "1.2.3");
            assert_eq!(users(&h), data);
            no_drop_rule(&h);
            assert_eq!(sh(&h, "dpkg-query -W -f '${Version}' xivo"), "1.2.3");
            assert_eq!(system_state(&h), before.1, "rollback is not exact");
            let _ = before.0;
        });
        s.spawn(move || {
            let h = xivo_at(site, "cut", "1.2.3", true);
            sh(&h, &format!("sed -i 's/xivo-1.2.3/xivo-{TARGET}/' {LIST}"));
            let data = users(&h);
            sh(
                &h,
                "systemd-run --unit=xivo-upgrade-run --setenv=NO_COLOR=1 \
                 sh -c 'xivo-upgrade -f </dev/null >/root/upgrade.out 2>&1'",
            );
            wait_for_dpkg(&h);
            site.tb.crash(&h).expect("power cut and boot");
            // After the power cut the admin finishes it: forward when dpkg
            // can finish its work, back when a package was cut half-unpacked
            // (dpkg --configure -a cannot finish it then).
            let out = h
                .exec_unchecked("NO_COLOR=1 timeout 280 hoist resume </dev/null 2>&1")
                .expect("resume runs");
            let log = sh(&h, "tail -n 40 /var/lib/hoist/runs/1.log; true");
            if out.success() {
                serves(&h, TARGET);
            } else {
                assert!(out.stdout.contains("Rolled back"), "{}\n{log}", out.stdout);
                serves(&h, "1.2.3");
                assert_eq!(sh(&h, "dpkg-query -W -f '${Version}' xivo"), "1.2.3");
            }
            assert_eq!(users(&h), data);
            no_drop_rule(&h);
            sh(&h, "dpkg --audit | (! grep .)");
        });
    });
    site.teardown();
}

/// What asterisk's port (the stand-in SIP/HTTP service) answered while `run` ran, polled every 10 ms:
/// the version it served, or `None` when it did not answer, one entry per
/// change, with how long each lasted.
fn watch_while(h: &Host, run: impl FnOnce()) -> Vec<(Option<String>, Duration)> {
    use std::sync::atomic::{AtomicBool, Ordering};
    let done = AtomicBool::new(false);
    std::thread::scope(|s| {
        let probe = s.spawn(|| {
            let mut seen: Vec<(Option<String>, Duration)> = Vec::new();
            let mut last = Instant::now();
            while !done.load(Ordering::SeqCst) {
                let answer = match h.http_get(5060, "/health") {
                    Ok((200, body)) => body
                        .split("\"version\": \"")
                        .nth(1)
                        .and_then(|v| v.split('"').next())
                        .map(String::from),
                    _ => None,
                };
                let now = Instant::now();
                if let Some(prev) = seen.last_mut() {
                    prev.1 += now - last;
                }
                if seen.last().is_none_or(|(a, _)| *a != answer) {
                    seen.push((answer, Duration::ZERO));
                }
                last = now;
                std::thread::sleep(Duration::from_millis(10));
            }
            seen
        });
        run();
        done.store(true, Ordering::SeqCst);
        probe.join().expect("probe")
    })
}

/// The time asterisk's port did not answer while `run` ran.
fn downtime_while(h: &Host, run: impl FnOnce()) -> Duration {
    watch_while(h, run)
        .iter()
        .filter(|(a, _)| a.is_none())
        .map(|(_, d)| *d)
        .sum()
}

/// Service downtime of hoist against the seed's naive order (stop,
/// update, download, install, start) with a slowed-down download, and the
/// bare restart of the daemons as the floor. Numbers, not assertions:
/// `scripts/bench-xivo-downtime` runs it.
#[test]
#[ignore = "benchmark, run on demand with scripts/bench-xivo-downtime"]
fn bench_downtime_against_the_naive_order() {
    let rate: u64 = std::env::var("BENCH_RATE")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(20_000);
    let site = site(&["hoist", "naive"]);
    let (hh, nh) = std::thread::scope(|s| {
        let site = &site;
        let a = s.spawn(move || xivo_at(site, "hoist", "1.2.3", true));
        let b = s.spawn(move || xivo_at(site, "naive", "1.2.3", true));
        (a.join().expect("hoist host"), b.join().expect("naive host"))
    });
    for h in [&hh, &nh] {
        sh(h, &format!("sed -i 's/xivo-1.2.3/xivo-{TARGET}/' {LIST}"));
    }
    // The floor: the daemons stopped and started in order, as the naive
    // order and hoist's restart both do, on the host hoist upgrades, three
    // times before and three times after: it is short and the machine
    // noisy.
    let bare_restarts = |n: usize| -> Vec<Duration> {
        (0..n)
            .map(|_| {
                downtime_while(&hh, || {
                    sh(&hh, "xivo-service stop && xivo-service start");
                })
            })
            .collect()
    };
    let mut bares = bare_restarts(3);
    site.mirror.set_rate(rate);
    let t = Instant::now();
    let naive = downtime_while(&nh, || {
        sh(
            &nh,
            "xivo-service stop && apt-get update -q && apt-get -q -y -o Dpkg::Options::=--force-confold dist-upgrade && xivo-service start",
        );
    });
    let naive_total = t.elapsed();
    let t = Instant::now();
    let hoist = downtime_while(&hh, || {
        let out = upgrade(&hh, "-f");
        assert!(out.success(), "{}", out.stdout);
    });
    let hoist_total = t.elapsed();
    bares.extend(bare_restarts(3));
    bares.sort();
    let bare = bares[bares.len() / 2];
    serves(&hh, TARGET);
    serves(&nh, TARGET);
    let ms = |d: Duration| d.as_millis();
    println!(
        "download rate {rate} B/s\n\
         bare restart (stop+start): downtime {} ms (median of {:?} ms)\n\
         naive order: downtime {} ms of {} ms\n\
         hoist:       downtime {} ms of {} ms\n\
         hoist / bare = {:.2}, naive / hoist = {:.2}",
        ms(bare),
        bares.iter().map(|d| ms(*d)).collect::<Vec<_>>(),
        ms(naive),
        ms(naive_total),
        ms(hoist),
        ms(hoist_total),
        hoist.as_secs_f64() / bare.as_secs_f64().max(0.001),
        naive.as_secs_f64() / hoist.as_secs_f64().max(0.001),
    );
    drop((hh, nh));
    site.teardown();
}
