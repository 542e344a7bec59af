//! Build information for the run-file `harness` block (`perfledger::env::harness_info`).
//!
//! Exposes, through `cargo::rustc-env`:
//! - `PERFLEDGER_GIT_COMMIT`: `git rev-parse HEAD` of the checkout this crate was built from;
//! - `PERFLEDGER_GIT_DIRTY`: `true`/`false`, whether `git status --porcelain` printed anything;
//! - `PERFLEDGER_RUSTC`: `$RUSTC -V`;
//! - `PERFLEDGER_PROFILE`, `PERFLEDGER_TARGET`: cargo's `PROFILE` and `TARGET`;
//! - `PERFLEDGER_FEATURES`: the enabled features of this crate, comma-separated.
//!
//! Anything that cannot be determined (no git, not a git checkout, a crate unpacked inside some
//! other repository) is simply not set, and the library reports `None`. The script never fails.

use std::path::{Path, PathBuf};
use std::process::Command;

fn main() {
    println!("cargo::rerun-if-changed=build.rs");

    let manifest_dir = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").unwrap_or_default());

    // Sources compiled into the binary: editing one changes the dirty flag (or makes a fresh
    // checkout's commit readable) and rebuilds the binary anyway, so rerunning this script then
    // costs only a few git calls.
    if let Some(root) = manifest_dir.parent() {
        for p in [
            "harness/src",
            "kernels/src",
            "shaders",
            "Cargo.toml",
            "Cargo.lock",
        ] {
            let path = root.join(p);
            if path.exists() {
                println!("cargo::rerun-if-changed={}", path.display());
            }
        }
    }

    if let Some(git) = GitInfo::read(&manifest_dir) {
        println!("cargo::rustc-env=PERFLEDGER_GIT_COMMIT={}", git.commit);
        if let Some(dirty) = git.dirty {
            println!("cargo::rustc-env=PERFLEDGER_GIT_DIRTY={dirty}");
        }
        for path in &git.watch {
            println!("cargo::rerun-if-changed={}", path.display());
        }
    }

    if let Some(rustc) = rustc_version() {
        println!("cargo::rustc-env=PERFLEDGER_RUSTC={rustc}");
    }
    let profile = std::env::var("PROFILE").unwrap_or_default();
    println!("cargo::rustc-env=PERFLEDGER_PROFILE={profile}");
    let target = std::env::var("TARGET").unwrap_or_default();
    println!("cargo::rustc-env=PERFLEDGER_TARGET={target}");
    println!(
        "cargo::rustc-env=PERFLEDGER_FEATURES={}",
        features().join(",")
    );
}

struct GitInfo {
    commit: String,
    dirty: Option<bool>,
    /// Files whose change means the commit or the dirty flag may have changed.
    watch: Vec<PathBuf>,
}

impl GitInfo {
    fn read(manifest_dir: &Path) -> Option<GitInfo> {
        // A crate unpacked inside some unrelated repository (vendored, registry cache) must not
        // report that repository's commit: the manifest has to be tracked by it.
        git(manifest_dir, &["ls-files", "--error-unmatch", "Cargo.toml"])?;
        let commit = git(manifest_dir, &["rev-parse", "HEAD"])?;
        if commit.len() < 40 || !commit.bytes().all(|b| b.is_ascii_hexdigit()) {
            return None;
        }
        // `--no-optional-locks`: `git status` would otherwise refresh and rewrite the index,
        // racing with whoever else is committing in the same checkout.
        let dirty = git(
            manifest_dir,
            &["--no-optional-locks", "status", "--porcelain"],
        )
        .map(|out| !out.is_empty());

        let mut watch = Vec::new();
        // `--absolute-git-dir` / `--git-common-dir` also cover worktrees, where `.git` is a file.
        if let Some(git_dir) = git(manifest_dir, &["rev-parse", "--absolute-git-dir"]) {
            let git_dir = PathBuf::from(git_dir);
            let common = git(manifest_dir, &["rev-parse", "--git-common-dir"])
                .map(|c| {
                    let c = manifest_dir.join(c);
                    c.canonicalize().unwrap_or(c)
                })
                .unwrap_or_else(|| git_dir.clone());
            // HEAD moves on checkout; the branch ref (or packed-refs) moves on commit; the index
            // changes on add/commit/reset.
            watch.push(git_dir.join("HEAD"));
            watch.push(git_dir.join("index"));
            if let Some(head_ref) = git(manifest_dir, &["symbolic-ref", "-q", "HEAD"]) {
                watch.push(common.join(head_ref));
            }
            watch.push(common.join("packed-refs"));
        }
        watch.retain(|p| p.exists());
        Some(GitInfo {
            commit,
            dirty,
            watch,
        })
    }
}

/// Run git in `dir`; `None` when git is missing, fails, or prints nothing usable.
fn git(dir: &Path, args: &[&str]) -> Option<String> {
    let out = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(args)
        .output()
        .ok()?;
    if !out.status.success() {
        return None;
    }
    Some(String::from_utf8(out.stdout).ok()?.trim().to_string())
}

fn rustc_version() -> Option<String> {
    let rustc = std::env::var_os("RUSTC").unwrap_or_else(|| "rustc".into());
    let out = Command::new(rustc).arg("-V").output().ok()?;
    if !out.status.success() {
        return None;
    }
    let v = String::from_utf8(out.stdout).ok()?.trim().to_string();
    (!v.is_empty()).then_some(v)
}

/// Enabled features of this crate, with their names as written in Cargo.toml.
fn features() -> Vec<String> {
    // `CARGO_CFG_FEATURE` keeps the original spelling (`gpu-timing`); older cargo only has
    // `CARGO_FEATURE_GPU_TIMING`, whose name cannot be mapped back exactly (lowercased as is).
    let mut features: Vec<String> = match std::env::var("CARGO_CFG_FEATURE") {
        Ok(list) => list
            .split(',')
            .filter(|f| !f.is_empty())
            .map(str::to_string)
            .collect(),
        Err(_) => std::env::vars()
            .filter_map(|(k, _)| k.strip_prefix("CARGO_FEATURE_").map(str::to_lowercase))
            .collect(),
    };
    features.sort();
    features.dedup();
    features
}
