//! Faults while writing: a full disk, SIGKILL at any point of a write, an output path that cannot
//! be written. Each ends with a clear message (or, for SIGKILL, nothing), and no existing file is
//! truncated or overwritten: checksums before and after. CI runs as root, so "unwritable" is a
//! path under /proc; the full disk is a 64 KiB tmpfs where the sandbox allows mounting one (else
//! the case says so and is left out).

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

fn bin() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_perfledger"));
    c.env_remove("PERFLEDGER_INSTANCE");
    c
}

/// A real run file (committed), 105 KB: its HTML report is several times that.
fn good_run() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../results/gpu-h200-tune/run.json")
}

/// A 64 KiB tmpfs, unmounted on drop.
struct Tiny(tempfile::TempDir);

impl Tiny {
    fn mount() -> Option<Tiny> {
        let d = tempfile::tempdir().ok()?;
        let ok = Command::new("mount")
            .args(["-t", "tmpfs", "-o", "size=64k", "tmpfs"])
            .arg(d.path())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        ok.then_some(Tiny(d))
    }
    fn path(&self) -> &Path {
        self.0.path()
    }
}

impl Drop for Tiny {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(self.0.path()).status();
    }
}

#[test]
fn a_full_disk_fails_the_write_with_a_message_and_keeps_the_old_file() {
    let Some(tiny) = Tiny::mount() else {
        eprintln!(
            "NOTICE: cannot mount a tmpfs here (not root, or no mount): full-disk case left out"
        );
        return;
    };
    let old = tiny.path().join("report.html");
    std::fs::write(&old, b"<p>an earlier report</p>").unwrap();
    let before = std::fs::read(&old).unwrap();
    let out = bin()
        .args(["report", "--format", "html", "--force", "--out"])
        .arg(&old)
        .arg(good_run())
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success(),
        "a report larger than the disk was written: {err}"
    );
    assert!(
        err.contains("No space left") && err.contains("report.html"),
        "{err}"
    );
    assert!(!err.contains("panicked"), "{err}");
    assert_eq!(
        std::fs::read(&old).unwrap(),
        before,
        "the earlier report changed"
    );
    // No temporary file left taking the space.
    let left: Vec<_> = std::fs::read_dir(tiny.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(
        left,
        vec![std::ffi::OsString::from("report.html")],
        "{left:?}"
    );
}

/// Write a report over an earlier one (`--force`) eight times, interrupting the writer with
/// `interrupt` after 0 to 320 ms; each time the target must be the earlier file or the whole
/// new report (never a part), and the writer must not panic. Returns (old, new) counts.
fn interrupted_report_writes(
    what: &str,
    interrupt: impl Fn(&mut std::process::Child),
) -> [usize; 2] {
    let dir = tempfile::tempdir().unwrap();
    // The complete new report, written once without interruption.
    let whole = dir.path().join("whole.html");
    let s = bin()
        .args(["report", "--format", "html", "--out"])
        .arg(&whole)
        .arg(good_run())
        .status()
        .unwrap();
    assert!(s.success());
    let new = std::fs::read(&whole).unwrap();
    let target = dir.path().join("report.html");
    let old = b"<p>an earlier report</p>".to_vec();
    let mut outcomes = [0usize; 2];
    for delay_ms in [0u64, 5, 10, 20, 40, 80, 160, 320] {
        std::fs::write(&target, &old).unwrap();
        let mut child = bin()
            .args(["report", "--format", "html", "--force", "--out"])
            .arg(&target)
            .arg(good_run())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(delay_ms));
        interrupt(&mut child);
        let out = child.wait_with_output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!err.contains("panicked"), "{err}");
        let now = std::fs::read(&target).unwrap();
        if now == old {
            outcomes[0] += 1;
        } else {
            assert_eq!(
                now.len(),
                new.len(),
                "{what} after {delay_ms} ms: a partial file"
            );
            assert!(
                now == new,
                "{what} after {delay_ms} ms: neither the old nor the new file"
            );
            outcomes[1] += 1;
        }
    }
    outcomes
}

fn sigint(pid: u32) {
    let _ = Command::new("kill")
        .args(["-INT", &pid.to_string()])
        .status();
}

#[test]
fn sigkill_at_any_point_of_a_write_leaves_the_old_file_or_the_whole_new_one() {
    let outcomes = interrupted_report_writes("killed", |child| {
        let _ = child.kill(); // SIGKILL
    });
    println!(
        "SIGKILL at 8 points: {} left the old file, {} the whole new one",
        outcomes[0], outcomes[1]
    );
}

#[test]
fn an_unwritable_output_path_fails_with_a_message_naming_it() {
    let out = bin()
        .args([
            "report",
            "--format",
            "md",
            "--out",
            "/proc/perfledger-no/report.md",
        ])
        .arg(good_run())
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(err.contains("/proc/perfledger-no/report.md"), "{err}");
    assert!(!err.contains("panicked"), "{err}");
}

/// SIGINT instead of SIGKILL: a report interrupted at any point leaves the earlier file or the
/// whole new one (never a part), ends without a panic, and a run interrupted while it measures
/// replaces an earlier run file (`--force`) only with a whole, valid run file.
#[test]
fn sigint_at_any_point_leaves_the_old_file_or_a_whole_new_one() {
    let outcomes = interrupted_report_writes("interrupted", |child| sigint(child.id()));
    println!(
        "SIGINT at 8 points of a report: {} left the old file, {} the whole new one",
        outcomes[0], outcomes[1]
    );

    let dir = tempfile::tempdir().unwrap();
    // A run replacing an earlier run file, interrupted while it measures.
    let suite = dir.path().join("long.json");
    std::fs::write(
        &suite,
        r#"{"schema": "perfledger.suite/1", "name": "long", "case_budget_s": 30, "cases": [
            {"op": "matmul", "m": 64, "n": 64, "k": 64, "dtypes": ["f32"], "backends": ["cpu"], "kernels": ["packed"]},
            {"op": "matmul", "m": 96, "n": 64, "k": 64, "dtypes": ["f32", "bf16"], "backends": ["cpu"], "kernels": ["packed"]}]}"#,
    )
    .unwrap();
    let runfile = dir.path().join("run.json");
    let earlier = std::fs::read(good_run()).unwrap();
    // An earlier run file beside the target: never touched.
    let sibling = dir.path().join("earlier-run.json");
    std::fs::write(&sibling, &earlier).unwrap();
    for delay_ms in [300u64, 1200] {
        std::fs::write(&runfile, &earlier).unwrap();
        let child = bin()
            .args(["run", "--suite"])
            .arg(&suite)
            .args([
                "--probes",
                "off",
                "--ci-target",
                "0.000001",
                "--force",
                "--out",
            ])
            .arg(&runfile)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(delay_ms));
        sigint(child.id());
        let out = child.wait_with_output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!err.contains("panicked"), "{err}");
        let now = std::fs::read(&runfile).unwrap();
        if now != earlier {
            let doc: serde_json::Value = serde_json::from_slice(&now)
                .unwrap_or_else(|e| panic!("after {delay_ms} ms: not whole JSON: {e}"));
            assert_eq!(doc["complete"], false, "after {delay_ms} ms");
            // perfledger reads it back.
            let o = bin().arg("report").arg(&runfile).output().unwrap();
            assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        }
        assert_eq!(
            std::fs::read(&sibling).unwrap(),
            earlier,
            "the earlier run file changed"
        );
        println!(
            "SIGINT after {delay_ms} ms of a run: exit {:?}, {}",
            out.status.code(),
            if now == earlier {
                "the earlier run file untouched"
            } else {
                "a whole partial run file"
            }
        );
    }
}
