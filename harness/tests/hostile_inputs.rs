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
        br#"{"schema": "perfledger.run/1.9", "#,
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

/// What a reader must do with a class of hostile content.
#[derive(Clone, Copy, Debug)]
enum Expect {
    /// Exit 2, the message naming the file and containing this text (the field, or the value).
    Refused(&'static str),
    /// Exit 0: the reader accepts it (strings are data, rendered inert where they are shown;
    /// foreign formats are lenient about what perfledger does not need).
    Accepted,
}

/// One (reader, class) cell: the file to write and what must happen.
struct Cell {
    reader: &'static str,
    class: &'static str,
    contents: String,
    expect: Expect,
}

fn repo(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join(rel)
}

fn json(rel: &str) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(repo(rel)).unwrap()).unwrap()
}

/// `base` with `f` applied, as text.
fn mutated(base: &serde_json::Value, f: impl FnOnce(&mut serde_json::Value)) -> String {
    let mut v = base.clone();
    f(&mut v);
    serde_json::to_string(&v).unwrap()
}

const HOSTILE_NAME: &str = "x\u{1b}[2J\u{202e}exe.txt\u{200b}<script>|=1+1";

/// The table under construction: one reader's cells at a time, with the classes every one of
/// perfledger's own JSON formats shares written once.
struct Cells {
    v: Vec<Cell>,
    reader: &'static str,
    base: serde_json::Value,
}

impl Cells {
    /// Start the cells of `reader`, whose valid document is `base`.
    fn reader(&mut self, reader: &'static str, base: serde_json::Value) {
        self.reader = reader;
        self.base = base;
    }

    fn add(&mut self, class: &'static str, contents: String, expect: Expect) {
        self.v.push(Cell {
            reader: self.reader,
            class,
            contents,
            expect,
        });
    }

    /// The base document with `f` applied.
    fn edit(&mut self, class: &'static str, f: impl FnOnce(&mut serde_json::Value), e: Expect) {
        let contents = mutated(&self.base, f);
        self.add(class, contents, e);
    }

    /// Unknown top-level field, schema `{name}/{major}` and `{name}/{minor}`, each refused with
    /// the given text.
    fn schema(&mut self, name: &str, major: &str, minor: &str, expect: [&'static str; 2]) {
        use serde_json::json;
        self.edit(
            "unknown field",
            |d| d["bogus_field"] = json!(1),
            Expect::Refused("bogus_field"),
        );
        let (to_major, to_minor) = (format!("{name}/{major}"), format!("{name}/{minor}"));
        self.edit(
            "other major",
            |d| d["schema"] = json!(to_major),
            Expect::Refused(expect[0]),
        );
        self.edit(
            "newer minor",
            |d| d["schema"] = json!(to_minor),
            Expect::Refused(expect[1]),
        );
    }

    /// The negative, zero and 1e308 classes: `set` puts the number where it matters.
    fn numbers(&mut self, set: impl Fn(&mut serde_json::Value, f64), expect: Expect) {
        for (class, x) in [("negative", -1.0), ("zero", 0.0), ("1e308", 1e308)] {
            self.edit(class, |d| set(d, x), expect);
        }
    }

    /// The list `key`'s first element appended again.
    fn duplicate(&mut self, key: &str, expect: Expect) {
        self.edit(
            "duplicate ids",
            |d| {
                let first = d[key][0].clone();
                d[key].as_array_mut().unwrap().push(first);
            },
            expect,
        );
    }
}

/// The table: every reader of perfledger's own JSON formats against the content classes
/// (unknown field, other schema major, newer minor, negative / zero / 1e308 numbers, absurd
/// dimensions, control and bidi characters in names, duplicate ids), and the two foreign formats
/// (SkyPilot catalog CSV, criterion's sample.json) against theirs.
fn content_cells() -> Vec<Cell> {
    use serde_json::json;
    use Expect::{Accepted, Refused};
    let mut t = Cells {
        v: Vec::new(),
        reader: "",
        base: json!(null),
    };
    let big = 1_000_000_000_000_000u64;
    // Suite file.
    t.reader(
        "suite",
        json!({"schema": "perfledger.suite/1", "name": "t", "cases": [
            {"op": "matmul", "m": 8, "n": 8, "k": 8, "dtypes": ["f32"], "backends": ["cpu"]}]}),
    );
    t.schema("perfledger.suite", "9", "1.99", ["schema", "schema"]);
    t.edit(
        "negative",
        |d| d["cases"][0]["m"] = json!(-1),
        Refused("`m`"),
    );
    t.edit(
        "zero",
        |d| d["case_budget_s"] = json!(0),
        Refused("case_budget_s"),
    );
    t.edit(
        "1e308",
        |d| d["run_budget_s"] = json!(1e308),
        Refused("run_budget_s"),
    );
    t.edit(
        "absurd dimensions",
        |d| d["cases"][0]["k"] = json!(10_000_000),
        Refused("absurdly large"),
    );
    t.edit(
        "hostile name",
        |d| d["cases"][0]["name"] = json!(HOSTILE_NAME),
        Accepted,
    );
    t.duplicate("cases", Refused("cases[1]"));
    // Run file (report; the same parser serves compare, export and import --into).
    t.reader("run file", json("results/gpu-h200-tune/run.json"));
    t.schema(
        "perfledger.run",
        "9.0",
        "1.99",
        ["different major", "newer"],
    );
    t.edit(
        "negative",
        |d| d["results"][0]["samples_s"][0] = json!(-1.0),
        Refused("samples_s[0]"),
    );
    t.edit(
        "zero",
        |d| d["results"][0]["samples_s"][0] = json!(0.0),
        Refused("samples_s[0]"),
    );
    t.edit(
        "1e308",
        |d| d["results"][0]["stats"]["median_s"] = json!(1e308),
        Refused("stats"),
    );
    t.edit(
        "absurd dimensions",
        |d| d["results"][0]["shape"]["m"] = json!(big),
        Refused("shape.m"),
    );
    t.edit(
        "hostile name",
        |d| d["results"][0]["device"]["name"] = json!(HOSTILE_NAME),
        Accepted,
    );
    // Duplicate rows are a defined case: compare matches them by occurrence.
    t.duplicate("results", Accepted);
    // External rows (import): JSON lines, no schema field of their own.
    let line = std::fs::read_to_string(repo("results/gpu-h200-tune/peer.jsonl")).unwrap();
    let row: serde_json::Value = serde_json::from_str(line.lines().next().unwrap()).unwrap();
    let n = row["samples_s"].as_array().unwrap().len();
    t.reader("external rows", row.clone());
    t.edit(
        "unknown field",
        |d| d["bogus_field"] = json!(1),
        Refused("bogus_field"),
    );
    t.edit(
        "negative",
        |d| d["samples_s"] = json!(vec![-1.0; n]),
        Refused("samples_s"),
    );
    t.edit(
        "zero",
        |d| d["samples_s"] = json!(vec![0.0; n]),
        Refused(":"),
    );
    t.edit(
        "1e308",
        |d| d["samples_s"] = json!(vec![1e308; n]),
        Refused(":"),
    );
    t.edit(
        "absurd dimensions",
        |d| d["shape"]["m"] = json!(big),
        Refused("shape.m"),
    );
    t.edit(
        "hostile name",
        |d| d["device"]["name"] = json!(HOSTILE_NAME),
        Accepted,
    );
    // Before/after rounds of a peer script are the same workload twice, on purpose.
    let once = serde_json::to_string(&row).unwrap();
    t.add("duplicate ids", format!("{once}\n{once}\n"), Accepted);
    // Spec and price files.
    let specs = json("harness/src/specs/data/specs.json");
    let dt = specs["accelerators"][0]["peak_tflops"]
        .as_object()
        .unwrap()
        .keys()
        .next()
        .unwrap()
        .clone();
    t.reader("spec file", specs);
    t.schema("perfledger.specs", "9.0", "1.99", ["schema", "schema"]);
    t.numbers(
        |d, x| d["accelerators"][0]["peak_tflops"][&dt]["dense"] = json!(x),
        Refused("peak_tflops"),
    );
    t.edit(
        "hostile name",
        |d| d["accelerators"][0]["name"] = json!(HOSTILE_NAME),
        Accepted,
    );
    t.duplicate("accelerators", Refused("duplicate id"));
    t.reader("price file", json("harness/src/specs/data/prices.json"));
    t.schema("perfledger.prices", "9.0", "1.99", ["schema", "schema"]);
    t.numbers(
        |d, x| d["offers"][0]["usd_per_hour"] = json!(x),
        Refused("usd_per_hour"),
    );
    t.edit(
        "absurd dimensions",
        |d| d["offers"][0]["device_count"] = json!(1e308),
        Refused("device_count"),
    );
    t.edit(
        "hostile name",
        |d| d["offers"][0]["instance"] = json!(HOSTILE_NAME),
        Accepted,
    );
    t.duplicate("offers", Refused("duplicate id"));
    // Tune cache.
    t.reader("tune cache", json("results/gpu-h200-tune/tune.json"));
    t.schema("perfledger.tune", "9", "1.99", ["schema", "schema"]);
    t.numbers(
        |d, x| d["entries"][0]["gflops"] = json!(x),
        Refused("entries[0].gflops"),
    );
    // A configuration's legality depends on the adapter: checked when the entry would be used
    // (ignored with a note, the default runs), not at load.
    t.edit(
        "absurd dimensions",
        |d| d["entries"][0]["params"]["bm"] = json!(1_000_000_000),
        Accepted,
    );
    t.edit(
        "hostile name",
        |d| d["entries"][0]["adapter"]["name"] = json!(HOSTILE_NAME),
        Accepted,
    );
    t.duplicate("entries", Refused("a second entry"));
    // SkyPilot catalog (foreign, lenient about columns it does not use, strict about its own).
    let csv =
        std::fs::read_to_string(repo("harness/tests/fixtures/sky-catalog/aws/vms.csv")).unwrap();
    let (header, body) = csv.split_once('\n').unwrap();
    let rows: Vec<&str> = body.lines().collect();
    let with = |h: &str, rows: &[String]| format!("{h}\n{}\n", rows.join("\n"));
    // The catalog with the first row's column `col` set to `value`.
    let set_first = |col: &str, value: &str| -> String {
        let at = header.split(',').position(|c| c == col).unwrap();
        let mut first: Vec<&str> = rows[0].split(',').collect();
        first[at] = value;
        let mut all = vec![first.join(",")];
        all.extend(rows[1..].iter().map(|s| s.to_string()));
        with(header, &all)
    };
    t.reader("SkyPilot catalog", json!(null));
    let extra: Vec<String> = rows.iter().map(|l| format!("{l},1")).collect();
    t.add(
        "unknown field",
        with(&format!("{header},Bogus"), &extra),
        Accepted,
    );
    t.add("negative", set_first("Price", "-1"), Refused("Price"));
    t.add("1e308", set_first("Price", "1e308"), Refused("Price"));
    let plain: Vec<String> = rows.iter().map(|s| s.to_string()).collect();
    t.add(
        "missing needed column",
        with(&header.replace("Price,", "Cost,"), &plain),
        Refused("Price"),
    );
    // The instance type becomes part of an offer id, which perfledger needs: strict.
    let hostile = HOSTILE_NAME.replace(['|', '='], "");
    t.add(
        "hostile name",
        set_first("InstanceType", &hostile),
        Refused("is not an id"),
    );
    // criterion's sample.json inside a tree (foreign: extra fields fine, times must be times).
    t.reader(
        "criterion tree",
        json("harness/tests/fixtures/criterion-0.7/criterion/matmul_32x32x32/matmul.cpu.naive.scalar.f32-f32-f32/new/sample.json"),
    );
    t.edit("unknown field", |d| d["bogus_field"] = json!(1), Accepted);
    t.edit(
        "negative",
        |d| d["times"][0] = json!(-1.0),
        Refused("sample.json"),
    );
    t.edit(
        "zero",
        |d| d["iters"][0] = json!(0.0),
        Refused("sample.json"),
    );
    t.edit(
        "1e308",
        |d| d["times"][0] = json!(1e308),
        Refused("sample.json"),
    );
    t.v
}

/// Copy the criterion fixture tree into `dir`, with `sample` as the matmul benchmark's
/// sample.json; returns the tree's root.
fn criterion_tree(dir: &Path, sample: &str) -> PathBuf {
    fn copy(from: &Path, to: &Path) {
        std::fs::create_dir_all(to).unwrap();
        for e in std::fs::read_dir(from).unwrap() {
            let e = e.unwrap();
            let t = to.join(e.file_name());
            if e.file_type().unwrap().is_dir() {
                copy(&e.path(), &t);
            } else {
                std::fs::copy(e.path(), &t).unwrap();
            }
        }
    }
    let root = dir.join("criterion");
    copy(
        &repo("harness/tests/fixtures/criterion-0.7/criterion"),
        &root,
    );
    std::fs::write(
        root.join("matmul_32x32x32/matmul.cpu.naive.scalar.f32-f32-f32/new/sample.json"),
        sample,
    )
    .unwrap();
    root
}

#[test]
fn every_reader_applies_its_contract_to_hostile_content() {
    let cells = content_cells();
    let mut failures = Vec::new();
    let mut counts: std::collections::BTreeMap<&str, usize> = Default::default();
    for (i, c) in cells.iter().enumerate() {
        let dir = tempfile::tempdir().unwrap();
        let good_run = dir.path().join("good-run.json");
        std::fs::copy(repo("results/gpu-h200-tune/run.json"), &good_run).unwrap();
        let out = dir.path().join("out.json");
        let ext = match c.reader {
            "external rows" => "jsonl",
            "SkyPilot catalog" => "csv",
            _ => "json",
        };
        let file = dir.path().join(format!("case-{i}.{ext}"));
        std::fs::write(&file, &c.contents).unwrap();
        let (f, g, o) = (s(&file), s(&good_run), s(&out));
        let args: Vec<String> = match c.reader {
            "suite" => vec!["run".into(), "--suite".into(), f.clone(), "--plan".into()],
            "run file" => vec!["report".into(), f.clone()],
            "external rows" => vec!["import".into(), f.clone(), "--into".into(), g.clone()],
            "spec file" => vec!["report".into(), g.clone(), "--specs".into(), f.clone()],
            "price file" => vec!["report".into(), g.clone(), "--prices".into(), f.clone()],
            "tune cache" => ["run", "--suite", "quick", "--plan", "--tune-cache", &f]
                .map(String::from)
                .to_vec(),
            "SkyPilot catalog" => [
                "prices",
                "import-sky-catalog",
                "--as-of",
                "2026-12-01",
                "--provider",
                "aws",
                "--out",
                &o,
                &f,
            ]
            .map(String::from)
            .to_vec(),
            "criterion tree" => {
                let tree = criterion_tree(dir.path(), &c.contents);
                vec![
                    "ingest-criterion".into(),
                    s(&tree),
                    "--out".into(),
                    o.clone(),
                ]
            }
            other => panic!("no command for reader {other}"),
        };
        let given = checksum(&file);
        let before_run = checksum(&good_run);
        let (code, err) = run(&args, &None);
        *counts.entry(c.reader).or_default() += 1;
        let mut problem = None;
        if err.contains("panicked") {
            problem = Some("panicked".to_string());
        }
        match c.expect {
            Expect::Refused(text) => {
                let named = err.contains(&f)
                    || err.contains(&format!("case-{i}"))
                    || (c.reader == "criterion tree" && err.contains("sample.json"));
                if code != Some(2) || !named || !err.contains(text) {
                    problem = Some(format!("expected exit 2 naming the file and `{text}`"));
                }
                if out.exists() {
                    problem = Some("a refused input wrote --out".into());
                }
            }
            Expect::Accepted => {
                if code != Some(0) {
                    problem = Some("expected it to be accepted (exit 0)".into());
                }
            }
        }
        if checksum(&file) != given {
            problem = Some("the given file changed".into());
        }
        if matches!(c.expect, Expect::Refused(_)) && checksum(&good_run) != before_run {
            problem = Some("a refused import changed the run file".into());
        }
        if let Some(p) = problem {
            failures.push(format!(
                "{} × {}: {p}; exit {code:?}, stderr: {}",
                c.reader,
                c.class,
                err.trim()
            ));
        }
    }
    for (reader, n) in &counts {
        println!("{reader}: {n} content cases");
    }
    println!("{} content cases in all", cells.len());
    assert!(
        failures.is_empty(),
        "{} failing cases:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

/// The CLI's own values: out-of-range numbers are usage errors (exit 2) naming the option, never
/// accepted and never a panic.
#[test]
fn cli_values_out_of_range_are_usage_errors_naming_the_option() {
    let cases: &[(&[&str], &str)] = &[
        (&["--case-budget", "0"], "--case-budget"),
        (&["--case-budget", "NaN"], "--case-budget"),
        (&["--case-budget", "1e308"], "--case-budget"),
        (&["--run-budget", "inf"], "--run-budget"),
        (&["--run-budget", "1e308"], "--run-budget"),
        (&["--threads", "0"], "--threads"),
        (&["--threads", "99999999999999999999"], "--threads"),
        (&["--seed", "abc"], "--seed"),
    ];
    for (extra, option) in cases {
        let args: Vec<String> = ["run", "--suite", "quick", "--plan"]
            .iter()
            .chain(extra.iter())
            .map(|s| s.to_string())
            .collect();
        let (code, err) = run(&args, &None);
        assert_eq!(code, Some(2), "{extra:?}: {err}");
        assert!(
            err.contains(option) && !err.contains("panicked"),
            "{extra:?}: {err}"
        );
    }
    println!("CLI values: {} cases", cases.len());
}

/// `import` names the line of the file a refused row is on, blank lines counted.
#[test]
fn import_names_the_file_line_of_a_refused_row() {
    let dir = tempfile::tempdir().unwrap();
    let into = dir.path().join("run.json");
    std::fs::copy(repo("results/gpu-h200-tune/run.json"), &into).unwrap();
    let before = checksum(&into);
    let text = std::fs::read_to_string(repo("results/gpu-h200-tune/peer.jsonl")).unwrap();
    let good = text.lines().next().unwrap();
    let mut bad: serde_json::Value = serde_json::from_str(good).unwrap();
    let n = bad["samples_s"].as_array().unwrap().len();
    bad["samples_s"] = serde_json::json!(vec![0.0; n]);
    let file = dir.path().join("rows.jsonl");
    std::fs::write(&file, format!("\n{good}\n\n{bad}\n")).unwrap();
    let (code, err) = run(
        &["import".into(), s(&file), "--into".into(), s(&into)],
        &None,
    );
    assert_eq!(code, Some(2), "{err}");
    assert!(
        err.contains("rows.jsonl") && err.contains("line 4"),
        "{err}"
    );
    assert_eq!(
        checksum(&into),
        before,
        "a refused import changed the run file"
    );
}
