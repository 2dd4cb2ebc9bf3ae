//! dnf and yum: the commands for each operation. No RPM host exists in this
//! project's test machines, so these are generated and unit-tested here,
//! and run for real only on an RPM host; the built-in undo is apt's alone.

use super::{Manager, Op, Packages};

/// The argv for the step with `dnf` or `yum`. rpm never asks about changed
/// configuration files: it keeps the admin's and writes `.rpmnew` beside.
pub fn command(p: &Packages, manager: Manager) -> Vec<String> {
    let tool = if manager == Manager::Yum {
        "yum"
    } else {
        "dnf"
    };
    let mut argv = vec![tool.to_string(), "-y".to_string()];
    let names = p.names.iter().cloned();
    let verb: &[&str] = match p.op {
        Op::Update => &["makecache"],
        Op::Download if tool == "dnf" => &["upgrade", "--downloadonly"],
        Op::Download => &["update", "--downloadonly"],
        Op::Install => &["install"],
        Op::Upgrade if tool == "dnf" => &["upgrade"],
        Op::Upgrade => &["update"],
        Op::DistUpgrade if tool == "dnf" => &["distro-sync"],
        Op::DistUpgrade => &["distribution-synchronization"],
        Op::Remove | Op::Purge => &["remove"],
    };
    argv.extend(verb.iter().map(|s| s.to_string()));
    if p.op != Op::Update && p.op != Op::DistUpgrade {
        argv.extend(names);
    }
    argv
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::actions::packages::Conffiles;

    fn p(op: Op, names: &[&str]) -> Packages {
        Packages {
            op,
            names: names.iter().map(|s| s.to_string()).collect(),
            manager: Manager::Auto,
            conffiles: Conffiles::KeepOld,
            hold_restarts: vec![],
        }
    }

    #[test]
    fn plan_only_no_rpm_host_commands_for_dnf_and_yum() {
        // Seed 003's RHEL path: `yum upgrade cloudstack-management`.
        assert_eq!(
            command(&p(Op::Upgrade, &["cloudstack-management"]), Manager::Yum),
            ["yum", "-y", "update", "cloudstack-management"]
        );
        assert_eq!(
            command(&p(Op::Upgrade, &["cloudstack-management"]), Manager::Dnf),
            ["dnf", "-y", "upgrade", "cloudstack-management"]
        );
        assert_eq!(
            command(&p(Op::Update, &[]), Manager::Dnf),
            ["dnf", "-y", "makecache"]
        );
        assert_eq!(
            command(&p(Op::Download, &["a"]), Manager::Dnf),
            ["dnf", "-y", "upgrade", "--downloadonly", "a"]
        );
        assert_eq!(
            command(&p(Op::DistUpgrade, &[]), Manager::Yum),
            ["yum", "-y", "distribution-synchronization"]
        );
        assert_eq!(
            command(&p(Op::Purge, &["cloud-client"]), Manager::Yum),
            ["yum", "-y", "remove", "cloud-client"]
        );
    }
}
