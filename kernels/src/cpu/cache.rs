//! Cache sizes as the OS reports them (sysfs on Linux). VMs can report misleading sizes, so the
//! blocking derived from them is overridable and always recorded.

use serde::{Deserialize, Serialize};
use std::sync::OnceLock;

/// Data/unified cache sizes in bytes, per instance (L1d and L2 per core; L3 per sharing group).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CacheSizes {
    pub l1d: usize,
    pub l2: usize,
    pub l3: usize,
    /// `sysfs` when read from the OS (noted when L3 is missing), `default` when the OS said nothing.
    pub source: &'static str,
}

impl CacheSizes {
    /// Conservative sizes used when the OS reports nothing (32 KiB / 512 KiB / 8 MiB).
    pub const FALLBACK: CacheSizes = CacheSizes {
        l1d: 32 << 10,
        l2: 512 << 10,
        l3: 8 << 20,
        source: "default",
    };
}

/// This machine's caches (read once).
pub fn detected() -> CacheSizes {
    static CACHES: OnceLock<CacheSizes> = OnceLock::new();
    *CACHES.get_or_init(|| read_sysfs().unwrap_or(CacheSizes::FALLBACK))
}

fn read_sysfs() -> Option<CacheSizes> {
    let base = std::path::Path::new("/sys/devices/system/cpu/cpu0/cache");
    let mut sizes = CacheSizes {
        l1d: 0,
        l2: 0,
        l3: 0,
        source: "sysfs",
    };
    for entry in std::fs::read_dir(base).ok()? {
        let dir = entry.ok()?.path();
        let read = |f: &str| {
            std::fs::read_to_string(dir.join(f))
                .ok()
                .map(|s| s.trim().to_string())
        };
        let (Some(level), Some(kind), Some(size)) = (read("level"), read("type"), read("size"))
        else {
            continue;
        };
        if kind == "Instruction" {
            continue;
        }
        let Some(bytes) = parse_size(&size) else {
            continue;
        };
        match level.as_str() {
            "1" => sizes.l1d = bytes,
            "2" => sizes.l2 = bytes,
            "3" => sizes.l3 = bytes,
            _ => {}
        }
    }
    (sizes.l1d > 0 && sizes.l2 > 0).then(|| {
        if sizes.l3 == 0 {
            // No L3 reported: block for L2 and say so.
            sizes.l3 = sizes.l2;
            sizes.source = "sysfs (no L3 reported: L2 size used)";
        }
        sizes
    })
}

/// Parse sysfs sizes such as `48K`, `1024K`, `32M`.
pub fn parse_size(s: &str) -> Option<usize> {
    let s = s.trim();
    let (num, mult) = match s.as_bytes().last()? {
        b'K' => (&s[..s.len() - 1], 1usize << 10),
        b'M' => (&s[..s.len() - 1], 1 << 20),
        b'G' => (&s[..s.len() - 1], 1 << 30),
        _ => (s, 1),
    };
    num.parse::<usize>().ok().map(|n| n * mult)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_sysfs_sizes() {
        assert_eq!(parse_size("48K"), Some(48 << 10));
        assert_eq!(parse_size("32M"), Some(32 << 20));
        assert_eq!(parse_size("512"), Some(512));
        assert_eq!(parse_size("x"), None);
        let c = detected();
        assert!(c.l1d > 0 && c.l2 >= c.l1d);
    }
}
