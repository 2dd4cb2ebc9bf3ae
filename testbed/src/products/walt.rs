//! Stand-in WalT server (seed 004). Version 4 is a Python wheel installed
//! with pip (on bullseye, the "before" OS), whose `walt-server-setup`
//! writes and enables the `walt-server` unit; version 5 is a Debian package
//! (for after the OS upgrade to bookworm). Both keep their state in the
//! PostgreSQL database `walt`, migrated by the daemon when it starts (the
//! "long first start" of the seed), and answer a health check.

use crate::aptrepo::AptRepo;
use crate::debspec::PackageSpec;
use crate::error::Result;
use crate::image::{DEFAULT_PACKAGES, ImageSpec};
use crate::schema::{Engine, Schema, daemon_unit, runtime_package};
use crate::wheel::WheelSpec;

/// Port of the WalT server's health check.
pub const PORT: u16 = 12345;
/// The database both versions use.
pub const DATABASE: &str = "walt";
/// Suite holding the v5 Debian package.
pub const SUITE_V5: &str = "walt-5";
/// Where hosts find the v4 wheel (`pip install --no-index <this>`).
pub const WHEEL_V4: &str = "/srv/hoist-repo/pip/walt_server-4.0-py3-none-any.whl";
/// Marker in the unit that `walt-server-setup` (v4) writes.
const V4_UNIT_MARK: &str = "# written by walt-server-setup";

fn schema(version: u32) -> Schema {
    Schema {
        engine: Engine::PostgreSql,
        database: DATABASE.into(),
        version,
        migrations: vec![
            (1, "CREATE TABLE nodes (mac text PRIMARY KEY, name text NOT NULL, image text);".into()),
            (2, "ALTER TABLE nodes ADD COLUMN model text; CREATE TABLE images (fullname text PRIMARY KEY, ready boolean NOT NULL DEFAULT false);".into()),
        ],
        migrate_in_postinst: false,
    }
}

/// The v4 wheel: the stand-in daemon and migration script as package data,
/// `walt-server-daemon` (migrates, then serves) and `walt-server-setup`.
pub fn wheel_v4() -> WheelSpec {
    let s = schema(1);
    let mut files = vec![
        (
            "walt_server/__init__.py".to_owned(),
            b"__version__ = '4.0'\n".to_vec(),
        ),
        (
            "walt_server/standin_daemon.py".to_owned(),
            include_bytes!("../runtime/daemon.py").to_vec(),
        ),
        (
            "walt_server/migrate.sh".to_owned(),
            include_bytes!("../runtime/migrate.sh").to_vec(),
        ),
        (
            "walt_server/schema/target".to_owned(),
            format!("{}\n", s.version).into_bytes(),
        ),
    ];
    for (v, sql) in &s.migrations {
        if *v <= s.version {
            files.push((
                format!("walt_server/schema/{v}.sql"),
                sql.clone().into_bytes(),
            ));
        }
    }
    files.push((
        "walt_server/cli.py".to_owned(),
        format!(
            r#"import os, subprocess, sys

HERE = os.path.dirname(os.path.abspath(__file__))


def daemon():
    subprocess.run(["sh", os.path.join(HERE, "migrate.sh"), "postgresql", "{db}",
                    os.path.join(HERE, "schema")], check=True)
    os.execv(sys.executable, [sys.executable, "-m", "walt_server.standin_daemon",
             "--name", "walt-server", "--version", "4.0", "--port", "{port}",
             "--db", "postgresql:{db}", "--schema", "{schema}"])


UNIT = """{mark}
[Unit]
Description=WalT server (stand-in 4.0)
After=network.target postgresql.service

[Service]
Type=notify
ExecStart=/usr/local/bin/walt-server-daemon
TimeoutStartSec=60

[Install]
WantedBy=multi-user.target
"""


def setup():
    with open("/etc/systemd/system/walt-server.service", "w") as f:
        f.write(UNIT)
    subprocess.run(["systemctl", "daemon-reload"], check=True)
    subprocess.run(["systemctl", "enable", "--now", "walt-server"], check=True)
"#,
            db = DATABASE,
            port = PORT,
            schema = s.version,
            mark = V4_UNIT_MARK,
        )
        .into_bytes(),
    ));
    WheelSpec {
        name: "walt-server".into(),
        version: "4.0".into(),
        files,
        console_scripts: vec![
            "walt-server-daemon = walt_server.cli:daemon".into(),
            "walt-server-setup = walt_server.cli:setup".into(),
        ],
    }
}

/// The v5 Debian package. Its postinst removes the unit that v4's setup
/// left in /etc (it would shadow the packaged one).
pub fn package_v5() -> PackageSpec {
    let s = schema(2);
    PackageSpec::new("walt-server", "5.0")
        .description("WalT server (stand-in)")
        .depends("postgresql")
        .schema(s.clone())
        .preinst(&format!(
            "if grep -qs '^{V4_UNIT_MARK}' /etc/systemd/system/walt-server.service; then\n\
             \x20 rm -f /etc/systemd/system/walt-server.service /etc/systemd/system/multi-user.target.wants/walt-server.service\n\
             fi"
        ))
        .unit(
            "walt-server.service",
            &daemon_unit(
                "walt-server",
                "5.0",
                PORT,
                Some((&s, "walt-server")),
                &[],
                None,
            ),
        )
}

/// The v5 client (seed 004: `pip3 install walt-server walt-client`): the
/// `walt` command, answering with its version.
pub fn client_v5() -> PackageSpec {
    PackageSpec::new("walt-client", "5.0")
        .description("WalT client (stand-in)")
        .executable(
            "/usr/bin/walt",
            "#!/bin/sh\necho 'walt 5.0 (stand-in client)'\n",
        )
}

/// What the seed installs after the OS upgrade, besides WalT: "apt install
/// buildah podman [docker-ce docker-ce-cli containerd.io] python3-dev"
/// (docker's packages come from docker's own repository, which hosts do
/// not reach).
pub const CONTAINER_TOOLS: &[&str] = &["buildah", "podman", "python3-dev"];

/// The bookworm image whose packages make the OS mirror a WalT host
/// upgrades from (`AptRepo::add_os_mirror`): the default image plus
/// [`CONTAINER_TOOLS`], real Debian packages, so that the recipe installs
/// them offline as it would from Debian's mirror. debootstrap does not
/// resolve virtual packages: `netavark` is named as podman's
/// `container-network-stack`, which apt picks by itself.
pub fn os_mirror_image() -> ImageSpec {
    let mut spec = ImageSpec::new(crate::Suite::Bookworm);
    spec.packages = DEFAULT_PACKAGES
        .iter()
        .chain(CONTAINER_TOOLS)
        .chain(&["netavark"])
        .map(|s| s.to_string())
        .collect();
    spec
}

/// The v4 wheel under `pip/` and the v5 packages in [`SUITE_V5`]. Call
/// [`AptRepo::publish`] afterwards.
pub fn add_to(repo: &mut AptRepo) -> Result<()> {
    let w = wheel_v4();
    repo.add_file(&format!("pip/{}", w.file_name()), &w.build()?)?;
    repo.add(SUITE_V5, &runtime_package())?;
    repo.add(SUITE_V5, &package_v5())?;
    repo.add(SUITE_V5, &client_v5())?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wheel_path_matches_its_name() {
        assert!(WHEEL_V4.ends_with(&wheel_v4().file_name()));
        package_v5().validate().expect("valid spec");
        client_v5().validate().expect("valid spec");
    }
}
