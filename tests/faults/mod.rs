//! The kill-anywhere suite's product, its recipe, ledger and checks
//! (`tests/faults_kill.rs`).

use std::collections::BTreeMap;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use crate::common::{hoist_in, text};
/// The steps, in the order the plan runs them.
pub const STEPS: [&str; 5] = [
    "stop-app",
    "switch-release",
    "migrate-data",
    "set-config",
    "start-app",
];

/// Cases run this many at a time, each in its own directories.
pub const THREADS: usize = 4;

/// Longer than what a step leaves behind waits, once the step's script
/// ended, before it writes (`LATE`).
pub const SETTLE: Duration = Duration::from_millis(1500);

/// The bound on any one hoist command.
pub const COMMAND_LIMIT: Duration = Duration::from_secs(120);

/// The files of the product before the upgrade.
pub const ORIGINAL: [(&str, &str); 4] = [
    ("VERSION", "1.0\n"),
    ("data", "row 1\nrow 2\n"),
    ("app.conf", "# the admin's comment\nmode = classic\n"),
    ("running", ""),
];

/// Every file under a directory (relative path: bytes), directories as
/// `name/` with no bytes.
pub type Snapshot = BTreeMap<String, Vec<u8>>;

pub fn snapshot(dir: &Path) -> Snapshot {
    fn walk(root: &Path, dir: &Path, into: &mut Snapshot) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for e in entries.flatten() {
            let path = e.path();
            let rel = path
                .strip_prefix(root)
                .unwrap()
                .to_string_lossy()
                .into_owned();
            let Ok(meta) = std::fs::symlink_metadata(&path) else {
                continue;
            };
            if meta.is_dir() {
                into.insert(format!("{rel}/"), Vec::new());
                walk(root, &path, into);
            } else {
                into.insert(rel, std::fs::read(&path).unwrap_or_default());
            }
        }
    }
    let mut s = Snapshot::new();
    walk(dir, dir, &mut s);
    s
}

/// What differs between two snapshots, file by file, for a message.
pub fn diff(want: &Snapshot, got: &Snapshot) -> String {
    let mut out = Vec::new();
    for k in want
        .keys()
        .chain(got.keys().filter(|k| !want.contains_key(*k)))
    {
        let (w, g) = (want.get(k), got.get(k));
        if w != g {
            let show = |b: Option<&Vec<u8>>| match b {
                Some(b) => format!("{:?}", String::from_utf8_lossy(b)),
                None => "absent".to_string(),
            };
            out.push(format!("  {k}: want {}, got {}", show(w), show(g)));
        }
    }
    out.join("\n")
}

/// A product, its ledger and hoist's state, in one directory of a case.
pub struct Product {
    pub root: PathBuf,
}

impl Product {
    pub fn new(root: PathBuf) -> Product {
        let _ = std::fs::remove_dir_all(&root);
        let p = Product { root };
        std::fs::create_dir_all(p.dir()).unwrap();
        std::fs::create_dir_all(p.ledger_dir()).unwrap();
        for (name, bytes) in ORIGINAL {
            std::fs::write(p.dir().join(name), bytes).unwrap();
        }
        std::fs::write(p.recipe(), recipe(&p.dir(), &p.ledger_dir())).unwrap();
        p
    }

    pub fn dir(&self) -> PathBuf {
        self.root.join("product")
    }

    pub fn ledger_dir(&self) -> PathBuf {
        self.root.join("ledger")
    }

    pub fn state_dir(&self) -> PathBuf {
        self.root.join("state")
    }

    pub fn recipe(&self) -> PathBuf {
        self.root.join("recipe.toml")
    }

    pub fn ledger(&self) -> String {
        std::fs::read_to_string(self.ledger_dir().join("ledger")).unwrap_or_default()
    }

    pub fn files(&self) -> Snapshot {
        snapshot(&self.dir())
    }

    pub fn hoist(&self, args: &[&str]) -> Command {
        let mut c = hoist_in(&self.state_dir());
        c.args(args);
        c
    }

    pub fn upgrade(&self) -> Command {
        let mut c = self.hoist(&["upgrade", "--yes", "-r"]);
        c.arg(self.recipe());
        c
    }

    /// `hoist --json status`, parsed.
    pub fn status(&self) -> serde_json::Value {
        let o = self.hoist(&["--json", "status"]).output().unwrap();
        serde_json::from_slice(&o.stdout)
            .unwrap_or_else(|e| panic!("hoist --json status: {e}: {}", text(&o)))
    }
}

/// One step: its script holds `lock.<id>` in the ledger directory while it
/// runs (a second copy of the step finding it taken writes `overlap`), and
/// writes its start and its end to the ledger. It runs in the product's
/// directory; what it leaves behind closes the lock first.
pub fn step(
    id: &str,
    phase: &str,
    body: &str,
    undo: &str,
    probe: Option<&str>,
    d: &Path,
    l: &Path,
) -> String {
    let (d, l) = (d.display(), l.display());
    let probe = probe
        .map(|p| format!("probe = {{ shell = '''{p}''' }}\n"))
        .unwrap_or_default();
    format!(
        "[[steps]]\nid = \"{id}\"\nphase = \"{phase}\"\n{probe}\
         [steps.exec]\ncwd = \"{d}\"\nshell = '''\nset -e\n\
         exec 9>>{l}/lock.{id}\n\
         flock -n 9 || echo overlap {id} $$ >> {l}/ledger\n\
         echo start {id} $$ >> {l}/ledger\n\
         {body}\n\
         echo end {id} $$ >> {l}/ledger\n'''\n\
         [steps.undo.exec]\ncwd = \"{d}\"\nshell = '''\nset -e\n{undo}\n'''\n\n"
    )
}

/// Saves `f` as `f.orig` once, atomically: a step interrupted anywhere and
/// run again, or undone, finds either no copy or the whole original.
pub fn keep(f: &str) -> String {
    format!("[ -e {f}.orig ] || {{ cp -p {f} {f}.orig.tmp; mv {f}.orig.tmp {f}.orig; }}")
}

/// Puts back what `keep` saved, and removes the step's partial files.
pub fn put_back(f: &str, also: &str) -> String {
    format!("[ ! -e {f}.orig ] || mv {f}.orig {f}\nrm -f {f}.orig.tmp {also}")
}

/// What a step leaves behind waits for the step's script to end, then a
/// moment, then writes: never while the step runs, however slow the
/// machine, and before `SETTLE` is over unless something ended it.
pub const LATE: &str = "while kill -0 $$ 2> /dev/null; do sleep 0.05; done; sleep 0.5";

pub fn recipe(d: &Path, l: &Path) -> String {
    let dd = d.display();
    let mut r = format!(
        "[product]\nname = \"app\"\nversion = {{ file = \"{dd}/VERSION\" }}\n\n\
         [[paths]]\nid = \"main\"\nfrom = \"1.*\"\nto = \"2.0\"\n\n"
    );
    r += &step(
        "stop-app",
        "stop",
        &format!(
            "sleep 0.2\n{}\nsleep 0.2\nrm -f running\nsleep 0.1",
            keep("running")
        ),
        &put_back("running", ""),
        None,
        d,
        l,
    );
    r += &step(
        "switch-release",
        "install",
        &format!(
            "{}\nsleep 0.2\nprintf '2.0\\n' > VERSION.part\nsleep 0.2\nmv VERSION.part VERSION\n\
             printf 'code of 2.0\\n' > lib-2.0.part\nsleep 0.1\nmv lib-2.0.part lib-2.0",
            keep("VERSION")
        ),
        &put_back("VERSION", "VERSION.part lib-2.0 lib-2.0.part"),
        Some(&format!(
            "test \"$(cat {dd}/VERSION)\" = 2.0 && test -e {dd}/lib-2.0"
        )),
        d,
        l,
    );
    // Leaves a process in a session of its own, which writes to `data` a
    // second later unless something ends it.
    r += &step(
        "migrate-data",
        "migrate",
        &format!(
            "{}\nsleep 0.2\n\
             setsid sh -c \"{LATE}; echo late >> data\" 9>&- > /dev/null 2>&1 < /dev/null &\n\
             {{ cat data.orig; echo migrated; }} > data.part\nsleep 0.2\nmv data.part data",
            keep("data")
        ),
        &put_back("data", "data.part"),
        None,
        d,
        l,
    );
    // Leaves a process in the step's own process group; its probe says
    // whether its effect is there (the step goes on a moment after it).
    r += &step(
        "set-config",
        "configure",
        &format!(
            "{}\n( {LATE}; echo late >> app.conf ) 9>&- > /dev/null 2>&1 < /dev/null &\n\
             sleep 0.2\nsed 's/^mode = .*/mode = modern/' app.conf.orig > app.conf.part\n\
             sleep 0.2\nmv app.conf.part app.conf\nsleep 0.3",
            keep("app.conf")
        ),
        &put_back("app.conf", "app.conf.part"),
        Some(&format!("grep -qx 'mode = modern' {dd}/app.conf")),
        d,
        l,
    );
    r += &step(
        "start-app",
        "start",
        "sleep 0.2\n: > running.part\nsleep 0.2\nmv running.part running",
        "rm -f running running.part",
        Some(&format!("test -e {dd}/running")),
        d,
        l,
    );
    r
}

/// The ledger's rule: no step ran twice at once.
///
/// - no line says `overlap` (a copy of a step found another holding the
///   step's lock: two ran at once, even if one was later killed);
/// - every line is `start|end <step> <pid>` of a step of the recipe;
/// - a pid starts a step at most once, and ends it at most once, after its
///   start;
/// - between the `start S P` and `end S P` of a copy that finished, no
///   other line of step S (another copy's start or end).
pub fn check_ledger(ledger: &str) -> Result<(), String> {
    let mut lines: Vec<(&str, &str, &str)> = Vec::new();
    for (n, line) in ledger.lines().enumerate() {
        let w: Vec<&str> = line.split(' ').collect();
        match w[..] {
            ["overlap", s, p] => {
                return Err(format!(
                    "line {}: step {s} (pid {p}) started while another copy of it held its lock",
                    n + 1
                ));
            }
            [kind @ ("start" | "end"), s, p] if STEPS.contains(&s) && p.parse::<u32>().is_ok() => {
                lines.push((kind, s, p))
            }
            _ => return Err(format!("line {}: unexpected {line:?}", n + 1)),
        }
    }
    for s in STEPS {
        let mine: Vec<(usize, &str, &str)> = lines
            .iter()
            .enumerate()
            .filter(|(_, l)| l.1 == s)
            .map(|(i, l)| (i, l.0, l.2))
            .collect();
        for (pos, &(i, kind, pid)) in mine.iter().enumerate() {
            let same = |k: &str| mine.iter().filter(|m| m.1 == k && m.2 == pid).count();
            if same(kind) > 1 {
                return Err(format!(
                    "step {s}: pid {pid} has {} `{kind}` lines",
                    same(kind)
                ));
            }
            if kind == "end" {
                let Some(&(_, before_kind, before_pid)) = pos.checked_sub(1).map(|p| &mine[p])
                else {
                    return Err(format!(
                        "line {}: end of {s} by pid {pid} with no start",
                        i + 1
                    ));
                };
                if before_kind != "start" || before_pid != pid {
                    return Err(format!(
                        "line {}: step {s} by pid {pid} ended after `{before_kind} {s} {before_pid}` \
                         came between its start and its end: two copies ran at once",
                        i + 1
                    ));
                }
            }
        }
    }
    Ok(())
}

/// Processes whose working directory is under `dir`: a step's, or what it
/// left behind.
pub fn processes_in(dir: &Path) -> Vec<(i32, String)> {
    let mut found = Vec::new();
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return found;
    };
    for e in entries.flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<i32>().ok()) else {
            continue;
        };
        let Ok(cwd) = std::fs::read_link(e.path().join("cwd")) else {
            continue;
        };
        if !cwd.starts_with(dir) {
            continue;
        }
        let stat = std::fs::read_to_string(e.path().join("stat")).unwrap_or_default();
        let zombie = stat
            .rsplit_once(')')
            .is_some_and(|(_, rest)| rest.trim_start().starts_with(['Z', 'X']));
        if zombie {
            continue;
        }
        let cmd = std::fs::read(e.path().join("cmdline"))
            .map(|c| String::from_utf8_lossy(&c).replace('\0', " "))
            .unwrap_or_default();
        found.push((pid, cmd.trim().to_string()));
    }
    found
}

/// How a hoist command ended, with everything it said.
pub struct Ended {
    pub code: Option<i32>,
    pub signal: Option<i32>,
    pub said: String,
}

impl std::fmt::Display for Ended {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match (self.code, self.signal) {
            (Some(c), _) => write!(f, "exit {c}")?,
            (_, Some(s)) => write!(f, "signal {s}")?,
            _ => write!(f, "no status")?,
        }
        write!(f, ", said:\n{}", self.said)
    }
}

/// Starts `cmd` with its output in `out`.
pub fn spawn(mut cmd: Command, out: &Path) -> Child {
    let f = File::create(out).unwrap();
    cmd.stdin(std::process::Stdio::null())
        .stdout(f.try_clone().unwrap())
        .stderr(f)
        .spawn()
        .unwrap()
}

/// Waits for `child`, at most `COMMAND_LIMIT` (then kills it and says so).
pub fn wait(mut child: Child, out: &Path) -> Result<Ended, String> {
    use std::os::unix::process::ExitStatusExt;
    let deadline = Instant::now() + COMMAND_LIMIT;
    loop {
        if let Some(st) = child.try_wait().unwrap() {
            return Ok(Ended {
                code: st.code(),
                signal: st.signal(),
                said: std::fs::read_to_string(out).unwrap_or_default(),
            });
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            return Err(format!(
                "{} did not end within {COMMAND_LIMIT:?}: {}",
                out.display(),
                std::fs::read_to_string(out).unwrap_or_default()
            ));
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

pub fn run(cmd: Command, out: &Path) -> Result<Ended, String> {
    wait(spawn(cmd, out), out)
}

/// The uninterrupted run, once per test binary.
pub struct Reference {
    pub original: Snapshot,
    pub end: Snapshot,
    /// From the start of `hoist upgrade` to its exit.
    pub duration: Duration,
}

pub fn reference() -> &'static Reference {
    static R: OnceLock<Reference> = OnceLock::new();
    R.get_or_init(|| {
        let p = Product::new(root("reference"));
        let original = p.files();
        let started = Instant::now();
        let o = run(p.upgrade(), &p.root.join("upgrade.out")).unwrap();
        let duration = started.elapsed();
        assert_eq!(o.code, Some(0), "the uninterrupted run: {o}");
        let end = p.files();
        check_ledger(&p.ledger()).unwrap();
        // Once each, in order, each by one process.
        let ledger = p.ledger();
        let kinds: Vec<String> = ledger
            .lines()
            .map(|l| l.rsplit_once(' ').unwrap().0.to_string())
            .collect();
        let want: Vec<String> = STEPS
            .iter()
            .flat_map(|s| [format!("start {s}"), format!("end {s}")])
            .collect();
        assert_eq!(kinds, want, "{ledger}");
        let left = processes_in(&p.dir());
        assert!(left.is_empty(), "the uninterrupted run left {left:?}");
        std::thread::sleep(SETTLE);
        assert_eq!(p.files(), end, "a change after the uninterrupted run");
        assert_eq!(p.ledger(), ledger, "a step ran after the uninterrupted run");
        let _ = std::fs::remove_dir_all(&p.root);
        Reference {
            original,
            end,
            duration,
        }
    })
}

pub fn root(name: &str) -> PathBuf {
    std::env::temp_dir().join(format!("hoist-faults-{}-{name}", std::process::id()))
}

/// xorshift64, seeded through splitmix64.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        let mut z = seed.wrapping_add(0x9e37_79b9_7f4a_7c15);
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        Rng((z ^ (z >> 31)) | 1)
    }

    pub fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }

    /// Uniform in `[0, d]`, to the microsecond.
    pub fn within(&mut self, d: Duration) -> Duration {
        Duration::from_micros(self.next() % (d.as_micros() as u64 + 1))
    }
}

/// FNV-1a: a test's own share of the seed.
pub fn fnv(s: &str) -> u64 {
    s.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// The suite's seed: `FAULTS_SEED`, else the clock.
pub fn base_seed() -> u64 {
    static S: OnceLock<u64> = OnceLock::new();
    *S.get_or_init(|| {
        std::env::var("FAULTS_SEED")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| {
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .unwrap()
                    .as_nanos() as u64
            })
    })
}
