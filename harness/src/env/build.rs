//! How this binary was built: values the crate's build script (`harness/build.rs`) exposes.

use super::HarnessInfo;

/// Parse the build script's `true`/`false` dirty flag.
fn parse_dirty(v: Option<&str>) -> Option<bool> {
    match v? {
        "true" => Some(true),
        "false" => Some(false),
        _ => None,
    }
}

fn parse_features(v: &str) -> Vec<String> {
    v.split(',')
        .map(str::trim)
        .filter(|f| !f.is_empty())
        .map(str::to_string)
        .collect()
}

fn non_empty(v: Option<&'static str>) -> Option<String> {
    v.filter(|s| !s.is_empty()).map(str::to_string)
}

/// The build fingerprint. `git_commit` / `git_dirty` are `None` when the binary was not built
/// from a git checkout (or without git); `git_dirty` reflects the tree when the build script last
/// ran (it reruns on commits, index changes and edits to the compiled sources).
pub fn harness_info() -> HarnessInfo {
    HarnessInfo {
        version: env!("CARGO_PKG_VERSION").to_string(),
        git_commit: non_empty(option_env!("PERFLEDGER_GIT_COMMIT")),
        git_dirty: parse_dirty(option_env!("PERFLEDGER_GIT_DIRTY")),
        rustc: non_empty(option_env!("PERFLEDGER_RUSTC")),
        profile: env!("PERFLEDGER_PROFILE").to_string(),
        target: env!("PERFLEDGER_TARGET").to_string(),
        features: parse_features(env!("PERFLEDGER_FEATURES")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_build_script_values() {
        assert_eq!(parse_dirty(Some("true")), Some(true));
        assert_eq!(parse_dirty(Some("false")), Some(false));
        assert_eq!(parse_dirty(Some("")), None);
        assert_eq!(parse_dirty(None), None);
        assert_eq!(parse_features(""), Vec::<String>::new());
        assert_eq!(parse_features("gpu,gpu-timing"), vec!["gpu", "gpu-timing"]);
    }

    #[test]
    fn harness_info_of_this_build() {
        let h = harness_info();
        assert_eq!(h.version, env!("CARGO_PKG_VERSION"));
        assert!(
            h.profile == "release" || h.profile == "debug",
            "{}",
            h.profile
        );
        assert!(!h.target.is_empty());
        assert!(
            h.rustc.as_deref().is_some_and(|r| r.starts_with("rustc ")),
            "{:?}",
            h.rustc
        );
        if let Some(c) = &h.git_commit {
            assert_eq!(c.len(), 40);
            assert!(h.git_dirty.is_some());
        }
    }
}
