//! The binary against bad input files, reader × error class: every reader of a file perfledger
//! does not trust goes through one gate (harness/src/input.rs: regular files only, size capped),
//! then its own parser. Each case must end within a deadline (a FIFO must not block, /dev/zero
//! must not be read until memory runs out), exit 2 with a message naming the file, never panic,
//! and leave the files it was given byte-identical. Prints the number of cases per reader.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// The size limit the oversize class runs under (PERFLEDGER_MAX_INPUT_BYTES): above the good
/// run file the readers also read (105 KB), below the bad file (three times the limit).
const SMALL_LIMIT: usize = 200_000;

struct Case {
    class: &'static str,
    path: PathBuf,
    /// Extra environment (the oversize class lowers the limit).
    env: Option<(&'static str, String)>,
}

/// One bad file of each class in `dir`; classes whose setup this system cannot do are left out
/// (with a notice), never counted as passed.
fn cases(dir: &Path) -> Vec<Case> {
    let mut v = Vec::new();
    let mut file = |class: &'static str, name: &str, bytes: &[u8]| {
        let p = dir.join(name);
        std::fs::write(&p, bytes).unwrap();
        v.push(Case {
            class,
            path: p,
            env: None,
        });
    };
    file("empty", "empty.json", b"");
    file("not UTF-8", "latin1.json", &[b'{', 0xff, 0xfe, b'}']);
    file(
        "truncated",
        "truncated.json",
        br#"{"schema": "perfledger.run/1.6", "#,
    );
    file("wrong JSON type", "array.json", b"[1, 2, 3]");
    let big = dir.join("big.json");
    std::fs::write(&big, vec![b' '; 3 * SMALL_LIMIT]).unwrap();
    v.push(Case {
        class: "over the size limit",
        path: big,
        env: Some(("PERFLEDGER_MAX_INPUT_BYTES", SMALL_LIMIT.to_string())),
    });
    let d = dir.join("a-directory.json");
    std::fs::create_dir(&d).unwrap();
    v.push(Case {
        class: "a directory",
        path: d,
        env: None,
    });
    v.push(Case {
        class: "missing",
        path: dir.join("missing.json"),
        env: None,
    });
    #[cfg(unix)]
    {
        let l = dir.join("loop.json");
        std::os::unix::fs::symlink(&l, &l).unwrap();
        v.push(Case {
            class: "symlink loop",
            path: l,
            env: None,
        });
        if Path::new("/dev/zero").exists() {
            v.push(Case {
                class: "/dev/zero",
                path: PathBuf::from("/dev/zero"),
                env: None,
            });
        }
        let fifo = dir.join("fifo.json");
        if Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .is_ok_and(|s| s.success())
        {
            v.push(Case {
                class: "a FIFO",
                path: fifo,
                env: None,
            });
        } else {
            eprintln!("NOTICE: mkfifo unavailable: the FIFO class is left out");
        }
    }
    v
}

/// Run `args` with a deadline; (exit code, stderr).
fn run(args: &[String], env: &Option<(&'static str, String)>) -> (Option<i32>, String) {
    let mut c = Command::new(env!("CARGO_BIN_EXE_perfledger"));
    c.args(args)
        .env_remove("PERFLEDGER_INSTANCE")
        .env("PERFLEDGER_TUNE_CACHE", "/nonexistent/perfledger-tune.json")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    if let Some((k, v)) = env {
        c.env(k, v);
    }
    let mut child = c.spawn().unwrap();
    let start = Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            let mut err = String::new();
            use std::io::Read;
            child
                .stderr
                .take()
                .unwrap()
                .read_to_string(&mut err)
                .unwrap();
            return (status.code(), err);
        }
        if start.elapsed() > Duration::from_secs(30) {
            let _ = child.kill();
            panic!("`perfledger {}` still running after 30 s", args.join(" "));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn s(p: &Path) -> String {
    p.display().to_string()
}

fn checksum(p: &Path) -> Option<Vec<u8>> {
    std::fs::read(p).ok()
}

#[test]
fn every_reader_refuses_every_class_of_bad_file_with_exit_2_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let good_run = dir.path().join("good-run.json");
    std::fs::copy(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../results/gpu-h200-tune/run.json"),
        &good_run,
    )
    .unwrap();
    let out = dir.path().join("out.json");
    type Args = Box<dyn Fn(&Path) -> Vec<String>>;
    let g = s(&good_run);
    let o = s(&out);
    let readers: Vec<(&str, Args)> = vec![
        (
            "suite (run --suite)",
            Box::new(|p| vec!["run".into(), "--suite".into(), s(p), "--plan".into()]),
        ),
        (
            "tune cache (run --tune-cache)",
            Box::new(|p| {
                vec![
                    "run".into(),
                    "--suite".into(),
                    "quick".into(),
                    "--plan".into(),
                    "--tune-cache".into(),
                    s(p),
                ]
            }),
        ),
        (
            "run file (report)",
            Box::new(|p| vec!["report".into(), s(p)]),
        ),
        ("run file (export)", {
            Box::new(|p| vec!["export".into(), "--format".into(), "bmf".into(), s(p)])
        }),
        ("run file (compare)", {
            let g = g.clone();
            Box::new(move |p| {
                vec![
                    "compare".into(),
                    "--base".into(),
                    g.clone(),
                    "--candidate".into(),
                    s(p),
                ]
            })
        }),
        ("run file (import --into)", {
            Box::new(|p| vec!["import".into(), "/dev/null".into(), "--into".into(), s(p)])
        }),
        ("external rows (import)", {
            let g = g.clone();
            Box::new(move |p| vec!["import".into(), s(p), "--into".into(), g.clone()])
        }),
        ("spec file (report --specs)", {
            let g = g.clone();
            Box::new(move |p| vec!["report".into(), g.clone(), "--specs".into(), s(p)])
        }),
        ("price file (report --prices)", {
            let g = g.clone();
            Box::new(move |p| vec!["report".into(), g.clone(), "--prices".into(), s(p)])
        }),
        ("noise file (compare --noise)", {
            let g = g.clone();
            Box::new(move |p| {
                vec![
                    "compare".into(),
                    "--base".into(),
                    g.clone(),
                    "--candidate".into(),
                    g.clone(),
                    "--noise".into(),
                    s(p),
                ]
            })
        }),
        ("SkyPilot catalog (prices import-sky-catalog)", {
            let o = o.clone();
            Box::new(move |p| {
                vec![
                    "prices".into(),
                    "import-sky-catalog".into(),
                    "--as-of".into(),
                    "2026-12-01".into(),
                    "--out".into(),
                    o.clone(),
                    s(p),
                ]
            })
        }),
    ];
    let before = checksum(&good_run);
    let mut failures = Vec::new();
    for (reader, args) in &readers {
        let mut n = 0;
        for case in cases(&tempfile::tempdir_in(dir.path()).unwrap().keep()) {
            let argv = args(&case.path);
            let (code, err) = run(&argv, &case.env);
            n += 1;
            let named = err.contains(&case.path.display().to_string())
                || case
                    .path
                    .file_name()
                    .is_some_and(|f| err.contains(&*f.to_string_lossy()));
            if code != Some(2) || !named || err.contains("panicked") {
                failures.push(format!(
                    "{reader} × {}: exit {code:?}, stderr: {}",
                    case.class,
                    err.trim()
                ));
            }
        }
        println!("{reader}: {n} cases");
    }
    assert_eq!(checksum(&good_run), before, "the good run file changed");
    assert!(!out.exists(), "a refused catalog wrote its --out");
    assert!(
        failures.is_empty(),
        "{} failing cases:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn threads_beyond_the_machine_are_refused_with_the_number_available() {
    let online = std::thread::available_parallelism().map_or(1, |n| n.get());
    let args: Vec<String> = ["run", "--suite", "quick", "--plan", "--threads"]
        .iter()
        .map(|s| s.to_string())
        .chain([(online + 1).to_string()])
        .collect();
    let (code, err) = run(&args, &None);
    assert_eq!(code, Some(2), "{err}");
    assert!(
        err.contains("--threads") && err.contains(&format!("{online} CPUs are available")),
        "{err}"
    );
    let ok: Vec<String> = ["run", "--suite", "quick", "--plan", "--threads"]
        .iter()
        .map(|s| s.to_string())
        .chain([online.to_string()])
        .collect();
    let (code, err) = run(&ok, &None);
    assert_eq!(code, Some(0), "{err}");
}

#[test]
fn strings_from_files_cannot_drive_the_terminal() {
    let dir = tempfile::tempdir().unwrap();
    let suite = dir.path().join("hostile.json");
    std::fs::write(
        &suite,
        "{\"schema\": \"perfledger.suite/1\", \"name\": \"hostile\", \"cases\": [\
         {\"op\": \"matmul\", \"name\": \"x\\u001b[2J\\u202egnp.exe\", \"m\": 8, \"n\": 8, \"k\": 8, \
         \"dtypes\": [\"f32\"], \"backends\": [\"cpu\"]}]}",
    )
    .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_perfledger"))
        .args(["run", "--suite", &s(&suite), "--plan", "--threads", "1"])
        .output()
        .unwrap();
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    assert!(
        !text.contains('\u{1b}') && !text.contains('\u{202e}'),
        "{text:?}"
    );
    if out.status.success() {
        // The plan lists the case, its hostile characters made visible.
        assert!(text.contains("x\\u{1b}[2J\\u{202e}gnp.exe"), "{text}");
    } else {
        // Or the suite refuses the name, and the refusal is as safe.
        assert_eq!(out.status.code(), Some(2), "{text}");
    }
}
