//! Operating system, kernel, hostname and memory (Linux files; `None` elsewhere).

use std::fs;

fn read(path: &str) -> Option<String> {
    fs::read_to_string(path).ok()
}

fn non_empty(s: &str) -> Option<String> {
    let s = s.trim();
    (!s.is_empty()).then(|| s.to_string())
}

/// `PRETTY_NAME` of an os-release file, else `NAME VERSION`, else `NAME`.
pub fn parse_os_release(content: &str) -> Option<String> {
    let get = |key: &str| {
        content.lines().find_map(|line| {
            let (k, v) = line.split_once('=')?;
            (k.trim() == key)
                .then(|| unquote(v.trim()))
                .and_then(|v| non_empty(&v))
        })
    };
    get("PRETTY_NAME").or_else(|| match (get("NAME"), get("VERSION")) {
        (Some(n), Some(v)) => Some(format!("{n} {v}")),
        (n, _) => n,
    })
}

/// Shell-style value of os-release(5): optional single or double quotes, backslash escapes.
fn unquote(v: &str) -> String {
    let inner = match v.as_bytes() {
        [b'"', .., b'"'] | [b'\'', .., b'\''] if v.len() >= 2 => &v[1..v.len() - 1],
        _ => v,
    };
    let mut out = String::with_capacity(inner.len());
    let mut chars = inner.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => out.extend(chars.next()),
            c => out.push(c),
        }
    }
    out
}

/// `MemTotal` of `/proc/meminfo`, in bytes.
pub fn parse_meminfo_total(content: &str) -> Option<u64> {
    parse_meminfo(content, "MemTotal:")
}

/// A `/proc/meminfo` field (`key` with its colon), in bytes.
pub fn parse_meminfo(content: &str, key: &str) -> Option<u64> {
    let line = content.lines().find(|l| l.starts_with(key))?;
    let mut it = line[key.len()..].split_whitespace();
    let value: u64 = it.next()?.parse().ok()?;
    let mult = match it.next() {
        Some("kB") | Some("KB") | Some("kb") => 1024,
        None => 1,
        Some(_) => return None,
    };
    value.checked_mul(mult)
}

/// Operating system name, from `/etc/os-release` (or `/usr/lib/os-release`).
pub fn os_name() -> Option<String> {
    read("/etc/os-release")
        .or_else(|| read("/usr/lib/os-release"))
        .and_then(|c| parse_os_release(&c))
}

/// Kernel release (`uname -r`).
pub fn kernel() -> Option<String> {
    read("/proc/sys/kernel/osrelease").and_then(|s| non_empty(&s))
}

/// Host name.
pub fn hostname() -> Option<String> {
    read("/proc/sys/kernel/hostname")
        .and_then(|s| non_empty(&s))
        .or_else(|| read("/etc/hostname").and_then(|s| non_empty(&s)))
}

/// Total memory in bytes.
pub fn memory_bytes() -> Option<u64> {
    read("/proc/meminfo").and_then(|c| parse_meminfo_total(&c))
}

/// Memory available for new allocations without swapping (`MemAvailable`), in bytes.
pub fn memory_available_bytes() -> Option<u64> {
    read("/proc/meminfo").and_then(|c| parse_meminfo(&c, "MemAvailable:"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn os_release() {
        let debian = "PRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\nNAME=\"Debian GNU/Linux\"\n\
                      VERSION_ID=\"12\"\nVERSION=\"12 (bookworm)\"\nID=debian\n";
        assert_eq!(
            parse_os_release(debian).as_deref(),
            Some("Debian GNU/Linux 12 (bookworm)")
        );
        let al2023 = "NAME=\"Amazon Linux\"\nVERSION=\"2023\"\nID=\"amzn\"\n\
                      PRETTY_NAME='Amazon Linux 2023.6.20250203'\n";
        assert_eq!(
            parse_os_release(al2023).as_deref(),
            Some("Amazon Linux 2023.6.20250203")
        );
        assert_eq!(
            parse_os_release("NAME=Alpine\nVERSION=3.20\n").as_deref(),
            Some("Alpine 3.20")
        );
        assert_eq!(
            parse_os_release("NAME=\"Say \\\"hi\\\"\"\n").as_deref(),
            Some("Say \"hi\"")
        );
        assert_eq!(parse_os_release("PRETTY_NAME=\"\"\nID=x\n"), None);
        assert_eq!(parse_os_release(""), None);
    }

    #[test]
    fn meminfo() {
        let m = "MemTotal:       24684092 kB\nMemFree:        18210608 kB\n";
        assert_eq!(parse_meminfo_total(m), Some(24684092 * 1024));
        assert_eq!(parse_meminfo_total("MemFree: 1 kB\n"), None);
        assert_eq!(parse_meminfo_total("MemTotal: x kB\n"), None);
        assert_eq!(parse_meminfo_total("MemTotal: 3 MB\n"), None);
    }
}
