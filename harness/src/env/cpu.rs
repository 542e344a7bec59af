//! CPU identity, topology and what perturbs CPU numbers (frequency, load, steal time).
//!
//! Every parser takes the file's *content* so it is tested on fixtures from other machines
//! (`fixtures/`); the `read_*` functions only fetch the files. On non-Linux systems the files are
//! absent and the fields stay `None`.

use super::CpuInfo;
use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::Path;

const SYS_CPU: &str = "/sys/devices/system/cpu";

/// What `/proc/cpuinfo` says, summarized over all its processor blocks.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct CpuinfoSummary {
    /// Distinct model names in order of appearance, joined with ` + ` (hybrid parts). On aarch64,
    /// decoded from `CPU implementer` / `CPU part`.
    pub model: Option<String>,
    pub vendor: Option<String>,
    /// Number of `processor` blocks (the online logical CPUs).
    pub processors: u32,
    /// Distinct `physical id`s; `None` when a block lacks one.
    pub sockets: Option<u32>,
    /// Distinct (`physical id`, `core id`) pairs; `None` when a block lacks either.
    pub physical_cores: Option<u32>,
    /// Most logical CPUs sharing one (`physical id`, `core id`) pair.
    pub threads_per_core: Option<u32>,
    /// `siblings / cpu cores` of the first block (x86: logical / physical per package).
    pub siblings_per_core: Option<u32>,
    /// Mean of the `cpu MHz` lines.
    pub mhz: Option<f64>,
}

/// Parse `/proc/cpuinfo` (x86-64 and aarch64 layouts).
pub fn parse_cpuinfo(content: &str) -> CpuinfoSummary {
    let blocks: Vec<BTreeMap<&str, &str>> = content
        .split("\n\n")
        .map(|block| {
            block
                .lines()
                .filter_map(|line| line.split_once(':'))
                .map(|(k, v)| (k.trim(), v.trim()))
                .collect::<BTreeMap<_, _>>()
        })
        .filter(|b| b.contains_key("processor"))
        .collect();

    let mut s = CpuinfoSummary {
        processors: blocks.len() as u32,
        ..Default::default()
    };
    if blocks.is_empty() {
        return s;
    }

    let mut models: Vec<String> = Vec::new();
    for b in &blocks {
        let model = match b.get("model name") {
            Some(m) if !m.is_empty() => Some(m.to_string()),
            _ => arm_model(b),
        };
        if let Some(m) = model {
            if !models.contains(&m) {
                models.push(m);
            }
        }
    }
    s.model = (!models.is_empty()).then(|| models.join(" + "));
    s.vendor = blocks[0]
        .get("vendor_id")
        .filter(|v| !v.is_empty())
        .map(|v| v.to_string())
        .or_else(|| blocks[0].get("CPU implementer").map(|i| arm_implementer(i)));

    let ids: Option<Vec<(u32, u32)>> = blocks
        .iter()
        .map(|b| {
            Some((
                b.get("physical id")?.parse().ok()?,
                b.get("core id")?.parse().ok()?,
            ))
        })
        .collect();
    let packages: Option<BTreeSet<u32>> = blocks
        .iter()
        .map(|b| b.get("physical id")?.parse::<u32>().ok())
        .collect();
    s.sockets = packages.map(|p| p.len() as u32);
    if let Some(ids) = ids {
        let topo = Topology::from_keys(
            ids.iter()
                .map(|&(p, c)| (Some(p as i64), format!("{p}:{c}"))),
        );
        s.physical_cores = topo.physical_cores;
        s.threads_per_core = topo.threads_per_core;
    }
    let num = |k: &str| blocks[0].get(k).and_then(|v| v.parse::<u32>().ok());
    if let (Some(siblings), Some(cores)) = (num("siblings"), num("cpu cores")) {
        if cores > 0 && siblings % cores == 0 {
            s.siblings_per_core = Some(siblings / cores);
        }
    }
    let mhz: Vec<f64> = blocks
        .iter()
        .filter_map(|b| b.get("cpu MHz")?.parse::<f64>().ok())
        .filter(|m| m.is_finite() && *m > 0.0)
        .collect();
    s.mhz = mean(&mhz);
    s
}

/// Implementer codes of aarch64 `MIDR_EL1` (as in the kernel's `cputype.h` and util-linux).
fn arm_implementer(code: &str) -> String {
    let name = match parse_hex(code) {
        Some(0x41) => "ARM",
        Some(0x42) => "Broadcom",
        Some(0x43) => "Cavium",
        Some(0x46) => "Fujitsu",
        Some(0x48) => "HiSilicon",
        Some(0x4e) => "NVIDIA",
        Some(0x51) => "Qualcomm",
        Some(0x61) => "Apple",
        Some(0xc0) => "Ampere",
        _ => return code.to_string(),
    };
    name.to_string()
}

/// `<implementer> <part name>`, or the raw part number when the part is not in the table.
fn arm_model(block: &BTreeMap<&str, &str>) -> Option<String> {
    let implementer = block.get("CPU implementer")?;
    let part = block.get("CPU part")?;
    let known = match (parse_hex(implementer)?, parse_hex(part)?) {
        (0x41, 0xd0c) => Some("Neoverse-N1"),
        (0x41, 0xd40) => Some("Neoverse-V1"),
        (0x41, 0xd49) => Some("Neoverse-N2"),
        (0x41, 0xd4f) => Some("Neoverse-V2"),
        (0x41, 0xd8e) => Some("Neoverse-N3"),
        (0x41, 0xd84) => Some("Neoverse-V3"),
        (0x41, 0xd08) => Some("Cortex-A72"),
        (0x41, 0xd0b) => Some("Cortex-A76"),
        (0x48, 0xd01) => Some("Kunpeng-920"),
        (0x46, 0x001) => Some("A64FX"),
        (0xc0, 0xac3) => Some("AmpereOne"),
        _ => None,
    };
    let vendor = arm_implementer(implementer);
    Some(match known {
        Some(name) => format!("{vendor} {name}"),
        None => format!("{vendor} part {part}"),
    })
}

fn parse_hex(s: &str) -> Option<u32> {
    let s = s.trim();
    let digits = s
        .strip_prefix("0x")
        .or_else(|| s.strip_prefix("0X"))
        .unwrap_or(s);
    u32::from_str_radix(digits, 16).ok()
}

fn mean(xs: &[f64]) -> Option<f64> {
    (!xs.is_empty()).then(|| xs.iter().sum::<f64>() / xs.len() as f64)
}

/// Sockets, physical cores and threads per core from per-CPU (package id, core key) pairs.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Topology {
    pub sockets: Option<u32>,
    pub physical_cores: Option<u32>,
    pub threads_per_core: Option<u32>,
}

impl Topology {
    /// `keys`: one entry per logical CPU, its package id (negative or `None` = unknown) and a key
    /// that is equal exactly for CPUs of the same physical core.
    pub fn from_keys(keys: impl IntoIterator<Item = (Option<i64>, String)>) -> Topology {
        let mut packages = BTreeSet::new();
        let mut package_known = true;
        let mut cores: BTreeMap<String, u32> = BTreeMap::new();
        for (pkg, core) in keys {
            match pkg {
                Some(p) if p >= 0 => {
                    packages.insert(p);
                }
                _ => package_known = false,
            }
            *cores.entry(core).or_default() += 1;
        }
        if cores.is_empty() {
            return Topology::default();
        }
        Topology {
            sockets: (package_known && !packages.is_empty()).then_some(packages.len() as u32),
            physical_cores: Some(cores.len() as u32),
            threads_per_core: cores.values().copied().max(),
        }
    }
}

/// Topology from sysfs: for each CPU, the contents of `topology/physical_package_id` and of
/// `topology/core_cpus_list` (or the older `thread_siblings_list`). CPUs listing the same siblings
/// share a physical core; this holds where `core_id` repeats across dies or is absent.
pub fn topology_from_sysfs(cpus: &[(Option<&str>, Option<&str>)]) -> Topology {
    let keys: Option<Vec<(Option<i64>, String)>> = cpus
        .iter()
        .map(|(pkg, siblings)| {
            let siblings = (*siblings)?.trim();
            if siblings.is_empty() {
                return None;
            }
            Some((
                pkg.and_then(|p| p.trim().parse::<i64>().ok()),
                siblings.to_string(),
            ))
        })
        .collect();
    keys.map(Topology::from_keys).unwrap_or_default()
}

/// Number of CPUs in a kernel CPU list such as `0-3,8,10-11`.
pub fn parse_cpu_list(list: &str) -> Option<u32> {
    let list = list.trim();
    if list.is_empty() {
        return None;
    }
    let mut n = 0u32;
    for part in list.split(',') {
        let part = part.trim();
        match part.split_once('-') {
            Some((a, b)) => {
                let (a, b) = (a.parse::<u32>().ok()?, b.parse::<u32>().ok()?);
                if b < a {
                    return None;
                }
                n += b - a + 1;
            }
            None => {
                part.parse::<u32>().ok()?;
                n += 1;
            }
        }
    }
    Some(n)
}

/// The three load averages of `/proc/loadavg`.
pub fn parse_loadavg(content: &str) -> Option<[f64; 3]> {
    let mut it = content.split_whitespace().map(|v| v.parse::<f64>().ok());
    Some([it.next()??, it.next()??, it.next()??])
}

/// Mean current frequency in MHz from `cpufreq/scaling_cur_freq` contents (kHz).
pub fn mhz_from_scaling_khz<'a>(values: impl IntoIterator<Item = &'a str>) -> Option<f64> {
    let mhz: Vec<f64> = values
        .into_iter()
        .filter_map(|v| v.trim().parse::<f64>().ok())
        .filter(|k| k.is_finite() && *k > 0.0)
        .map(|khz| khz / 1000.0)
        .collect();
    mean(&mhz)
}

/// Cumulative jiffies of the aggregate `cpu` line of `/proc/stat`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CpuTimes {
    /// user + nice + system + idle + iowait + irq + softirq + steal (guest time is already
    /// counted in user/nice).
    pub total: u64,
    pub steal: u64,
}

/// Parse the aggregate `cpu ` line of `/proc/stat`; `None` when it is missing or has no steal
/// column (kernels before 2.6.11).
pub fn parse_proc_stat(content: &str) -> Option<CpuTimes> {
    let line = content
        .lines()
        .find(|l| l.split_whitespace().next() == Some("cpu"))?;
    let fields: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .map(|v| v.parse::<u64>().ok())
        .collect::<Option<_>>()?;
    if fields.len() < 8 {
        return None;
    }
    Some(CpuTimes {
        total: fields[..8].iter().sum(),
        steal: fields[7],
    })
}

/// Share of CPU time stolen by the hypervisor between two `/proc/stat` readings, in percent.
/// `None` when no time elapsed or the counters went backwards.
pub fn steal_pct(start: CpuTimes, end: CpuTimes) -> Option<f64> {
    let total = end.total.checked_sub(start.total)?;
    let steal = end.steal.checked_sub(start.steal)?;
    (total > 0).then(|| 100.0 * steal as f64 / total as f64)
}

/// Measures steal time over a run: reads `/proc/stat` when started and again when asked.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StealMeter {
    start: Option<CpuTimes>,
}

impl StealMeter {
    /// Take the starting reading (at the start of the timed part of a run).
    pub fn start() -> StealMeter {
        StealMeter {
            start: read_proc_stat(),
        }
    }

    /// A meter from a known starting reading (tests, or a reading taken elsewhere).
    pub fn from_times(start: Option<CpuTimes>) -> StealMeter {
        StealMeter { start }
    }

    /// Steal percentage from the start until `end`.
    pub fn steal_pct_until(&self, end: Option<CpuTimes>) -> Option<f64> {
        steal_pct(self.start?, end?)
    }

    /// Steal percentage from the start until now.
    pub fn steal_pct(&self) -> Option<f64> {
        self.steal_pct_until(read_proc_stat())
    }
}

/// The runnable-task count of `/proc/loadavg` (the numerator of its fourth field,
/// `running/total`): tasks running or waiting for a CPU at this instant, the reading thread
/// included.
pub fn parse_loadavg_running(content: &str) -> Option<u32> {
    let field = content.split_whitespace().nth(3)?;
    field.split_once('/')?.0.parse().ok()
}

/// [`parse_loadavg_running`] of this machine now; `None` off Linux.
pub fn read_run_queue() -> Option<u32> {
    parse_loadavg_running(&read("/proc/loadavg")?)
}

/// Online logical CPUs (`/sys/devices/system/cpu/online`, else the process's parallelism).
pub fn online_cpus() -> Option<u32> {
    read(Path::new(SYS_CPU).join("online"))
        .and_then(|l| parse_cpu_list(&l))
        .or_else(|| {
            std::thread::available_parallelism()
                .ok()
                .map(|n| n.get() as u32)
        })
}

/// Where a guest kernel's idle CPUs halt at once: `cpuidle`'s driver (`/sys/devices/system/cpu/
/// cpuidle/current_driver`) is `haltpoll` and its `guest_halt_poll_ns` is 0 (a VM booted with
/// `haltpoll.guest_halt_poll_ns=0`; the driver's own default polls 200 µs). A vCPU that goes idle
/// for a moment is then handed back to the host and waits for it to be scheduled again when
/// work arrives: a pool whose threads sleep between calls (rayon's with `--idle-workers sleep`;
/// matrixmultiply's, under the ndarray peer) can run a multi-threaded row's calls at one
/// thread's rate, while threads that poll between calls (OpenBLAS's; the run's pool with
/// `--idle-workers spin`, the default) keep their vCPUs. On the Intel Xeon 6/207 VM (2 threads)
/// 256³ and 200×300×129 rows read 134–176 and 103–168 GFLOP/s at 0 against 198–267 and
/// 135–225 at 200000, with the pool sleeping, alternated (`results/idle-vcpu/README.md`).
/// Returns the note to print for a run on `threads` threads, `None` when it does not apply.
pub fn halt_poll_note(
    driver: Option<&str>,
    poll_ns: Option<&str>,
    threads: usize,
) -> Option<String> {
    let halts = driver.map(str::trim) == Some("haltpoll")
        && poll_ns.and_then(|v| v.trim().parse::<u64>().ok()) == Some(0);
    (halts && threads > 1).then(|| {
        format!(
            "this VM halts idle vCPUs at once (cpuidle haltpoll, guest_halt_poll_ns = 0): \
             multi-threaded CPU rows whose threads sleep between calls (the ndarray peer's; the \
             run's pool with --idle-workers sleep) may read one thread's rate in some minutes; \
             `echo 200000 > {HALT_POLL_NS}` (root; the driver's default) keeps an idle vCPU \
             polling 200 µs first"
        )
    })
}

/// The `haltpoll` cpuidle driver's polling time before an idle vCPU halts.
const HALT_POLL_NS: &str = "/sys/module/haltpoll/parameters/guest_halt_poll_ns";

/// [`halt_poll_note`] of this machine for a run on `threads` threads.
pub fn read_halt_poll_note(threads: usize) -> Option<String> {
    halt_poll_note(
        read(Path::new(SYS_CPU).join("cpuidle/current_driver")).as_deref(),
        read(HALT_POLL_NS).as_deref(),
        threads,
    )
}

fn read(path: impl AsRef<Path>) -> Option<String> {
    fs::read_to_string(path).ok()
}

/// `/proc/stat`'s aggregate counters now (for a steal share over an interval, [`steal_pct`]).
pub fn read_proc_stat() -> Option<CpuTimes> {
    parse_proc_stat(&read("/proc/stat")?)
}

/// Names of the `cpuN` directories under `/sys/devices/system/cpu`.
fn sysfs_cpu_dirs() -> Vec<std::path::PathBuf> {
    let Ok(entries) = fs::read_dir(SYS_CPU) else {
        return Vec::new();
    };
    let mut dirs: Vec<_> = entries
        .filter_map(|e| e.ok())
        .filter(|e| {
            let name = e.file_name();
            let name = name.to_string_lossy();
            name.strip_prefix("cpu")
                .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
        })
        .map(|e| e.path())
        .collect();
    dirs.sort();
    dirs
}

fn read_sysfs_topology() -> Topology {
    let mut cpus = Vec::new();
    for dir in sysfs_cpu_dirs() {
        let topo = dir.join("topology");
        // Offline CPUs have no topology directory; they are not in the online count either.
        if !topo.is_dir() {
            continue;
        }
        let pkg = read(topo.join("physical_package_id"));
        let siblings =
            read(topo.join("core_cpus_list")).or_else(|| read(topo.join("thread_siblings_list")));
        cpus.push((pkg, siblings));
    }
    let refs: Vec<(Option<&str>, Option<&str>)> = cpus
        .iter()
        .map(|(p, s)| (p.as_deref(), s.as_deref()))
        .collect();
    topology_from_sysfs(&refs)
}

/// Current mean frequency: `cpu MHz` of `/proc/cpuinfo`, else `cpufreq/scaling_cur_freq`.
pub fn current_mhz() -> Option<f64> {
    read("/proc/cpuinfo")
        .and_then(|c| parse_cpuinfo(&c).mhz)
        .or_else(|| {
            let khz: Vec<String> = sysfs_cpu_dirs()
                .iter()
                .filter_map(|d| read(d.join("cpufreq/scaling_cur_freq")))
                .collect();
            mhz_from_scaling_khz(khz.iter().map(String::as_str))
        })
}

/// Cache sizes the CPU kernels block for, with where they came from (`sysfs` or `default`).
fn caches() -> BTreeMap<String, serde_json::Value> {
    let c = perfledger_kernels::cpu::cache::detected();
    BTreeMap::from([
        ("l1d".to_string(), c.l1d.into()),
        ("l2".to_string(), c.l2.into()),
        ("l3".to_string(), c.l3.into()),
        ("source".to_string(), c.source.into()),
    ])
}

/// Collect the CPU fingerprint at the start of a run. `mhz_after` and `steal_pct` are filled by
/// [`finish`] at the end.
pub fn collect(threads_used: usize, pinned: bool, isa_selected: &str) -> CpuInfo {
    let cpuinfo = read("/proc/cpuinfo")
        .map(|c| parse_cpuinfo(&c))
        .unwrap_or_default();

    // vCPUs of the machine, not of this process: affinity masks and cgroup quotas shrink
    // `available_parallelism`, and they are recorded as `threads_used` / `pinned` instead.
    let vcpus = read(Path::new(SYS_CPU).join("online"))
        .and_then(|l| parse_cpu_list(&l))
        .or((cpuinfo.processors > 0).then_some(cpuinfo.processors))
        .or_else(|| {
            std::thread::available_parallelism()
                .ok()
                .map(|n| n.get() as u32)
        });

    // x86 /proc/cpuinfo has physical id / core id; aarch64 has neither: use sysfs topology.
    let (sockets, physical_cores, threads_per_core) = match cpuinfo.physical_cores {
        Some(cores) => (cpuinfo.sockets, Some(cores), cpuinfo.threads_per_core),
        None => {
            let t = read_sysfs_topology();
            (
                cpuinfo.sockets.or(t.sockets),
                t.physical_cores,
                t.threads_per_core,
            )
        }
    };
    let smt = threads_per_core.or(cpuinfo.siblings_per_core).or_else(|| {
        let (v, p) = (vcpus?, physical_cores?);
        (p > 0 && v % p == 0).then(|| v / p)
    });

    CpuInfo {
        model: cpuinfo.model,
        vendor: cpuinfo.vendor,
        sockets,
        physical_cores,
        vcpus,
        smt,
        threads_used,
        pinned,
        isa_detected: perfledger_kernels::isa::detected().names.clone(),
        isa_selected: isa_selected.to_string(),
        caches: caches(),
        mhz_before: cpuinfo.mhz.or_else(current_mhz),
        mhz_after: None,
        load_avg: read("/proc/loadavg").and_then(|l| parse_loadavg(&l)),
        steal_pct: None,
    }
}

/// Record the end-of-run frequency and the steal time since `steal` was started.
pub fn finish(cpu: &mut CpuInfo, steal: &StealMeter) {
    cpu.mhz_after = current_mhz();
    cpu.steal_pct = steal.steal_pct();
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The note applies to a haltpoll guest with no polling, on more than one thread only.
    #[test]
    fn halt_poll_note_only_for_a_haltpoll_guest_that_never_polls() {
        let note = halt_poll_note(Some("haltpoll\n"), Some("0\n"), 2).unwrap();
        assert!(
            note.contains("guest_halt_poll_ns = 0") && note.contains("200000"),
            "{note}"
        );
        assert_eq!(
            halt_poll_note(Some("haltpoll"), Some("0"), 1),
            None,
            "one thread"
        );
        assert_eq!(halt_poll_note(Some("haltpoll"), Some("200000"), 2), None);
        assert_eq!(halt_poll_note(Some("intel_idle"), Some("0"), 2), None);
        assert_eq!(
            halt_poll_note(None, None, 2),
            None,
            "no cpuidle (not Linux)"
        );
        assert_eq!(halt_poll_note(Some("haltpoll"), Some("x"), 2), None);
    }

    const EPYC: &str = include_str!("fixtures/cpuinfo-epyc-2vcpu.txt");
    const XEON_2S: &str = include_str!("fixtures/cpuinfo-xeon-2s-smt.txt");
    const GRAVITON3: &str = include_str!("fixtures/cpuinfo-graviton3-4vcpu.txt");

    #[test]
    fn cpuinfo_of_this_vm() {
        let s = parse_cpuinfo(EPYC);
        assert_eq!(s.model.as_deref(), Some("AMD EPYC"));
        assert_eq!(s.vendor.as_deref(), Some("AuthenticAMD"));
        assert_eq!(s.processors, 2);
        assert_eq!(s.sockets, Some(1));
        assert_eq!(s.physical_cores, Some(2));
        assert_eq!(s.threads_per_core, Some(1));
        assert_eq!(s.siblings_per_core, Some(1));
        let mhz = s.mhz.unwrap();
        assert!(mhz > 2000.0 && mhz < 3000.0, "{mhz}");
    }

    #[test]
    fn cpuinfo_two_sockets_with_smt() {
        let s = parse_cpuinfo(XEON_2S);
        assert_eq!(
            s.model.as_deref(),
            Some("Intel(R) Xeon(R) Platinum 8375C CPU @ 2.90GHz")
        );
        assert_eq!(s.vendor.as_deref(), Some("GenuineIntel"));
        assert_eq!(s.processors, 8);
        assert_eq!(s.sockets, Some(2));
        assert_eq!(s.physical_cores, Some(4));
        assert_eq!(s.threads_per_core, Some(2));
        assert_eq!(s.siblings_per_core, Some(2));
        let mean =
            (3499.998 + 3500.004 + 2900.0 + 3199.512 + 3500.001 + 3499.990 + 2900.0 + 3200.487)
                / 8.0;
        assert!((s.mhz.unwrap() - mean).abs() < 1e-9);
    }

    #[test]
    fn cpuinfo_graviton_has_no_topology_or_mhz() {
        let s = parse_cpuinfo(GRAVITON3);
        assert_eq!(s.model.as_deref(), Some("ARM Neoverse-V1"));
        assert_eq!(s.vendor.as_deref(), Some("ARM"));
        assert_eq!(s.processors, 4);
        // No physical id / core id on aarch64: collect() falls back to sysfs topology.
        assert_eq!(s.sockets, None);
        assert_eq!(s.physical_cores, None);
        assert_eq!(s.threads_per_core, None);
        assert_eq!(s.mhz, None);
    }

    #[test]
    fn cpuinfo_unknown_arm_part_is_named_by_number_and_hybrids_are_joined() {
        let text = "processor\t: 0\nCPU implementer\t: 0x61\nCPU part\t: 0x039\n\n\
                    processor\t: 1\nCPU implementer\t: 0x41\nCPU part\t: 0xd0b\n";
        let s = parse_cpuinfo(text);
        assert_eq!(
            s.model.as_deref(),
            Some("Apple part 0x039 + ARM Cortex-A76")
        );
        assert_eq!(s.vendor.as_deref(), Some("Apple"));
        assert_eq!(parse_cpuinfo("").processors, 0);
        assert_eq!(parse_cpuinfo("").model, None);
    }

    #[test]
    fn sysfs_topology_groups_by_sibling_list() {
        // Graviton3-like: 4 cores, one package, no SMT.
        let g: Vec<(Option<&str>, Option<&str>)> = vec![
            (Some("0\n"), Some("0\n")),
            (Some("0"), Some("1")),
            (Some("0"), Some("2")),
            (Some("0"), Some("3")),
        ];
        assert_eq!(
            topology_from_sysfs(&g),
            Topology {
                sockets: Some(1),
                physical_cores: Some(4),
                threads_per_core: Some(1)
            }
        );
        // 2 sockets x 2 cores x 2 threads, siblings (n, n+4).
        let lists = ["0,4", "1,5", "2,6", "3,7", "0,4", "1,5", "2,6", "3,7"];
        let pkgs = ["0", "0", "1", "1", "0", "0", "1", "1"];
        let x: Vec<_> = pkgs
            .iter()
            .zip(lists)
            .map(|(p, l)| (Some(*p), Some(l)))
            .collect();
        assert_eq!(
            topology_from_sysfs(&x),
            Topology {
                sockets: Some(2),
                physical_cores: Some(4),
                threads_per_core: Some(2)
            }
        );
        // Old arm64 kernels report package -1: sockets unknown, cores still counted.
        let old = vec![(Some("-1"), Some("0")), (Some("-1"), Some("1"))];
        assert_eq!(topology_from_sysfs(&old).sockets, None);
        assert_eq!(topology_from_sysfs(&old).physical_cores, Some(2));
        // A CPU without a sibling list: unknown, not a partial count.
        assert_eq!(
            topology_from_sysfs(&[(Some("0"), None)]),
            Topology::default()
        );
        assert_eq!(topology_from_sysfs(&[]), Topology::default());
    }

    #[test]
    fn cpu_lists() {
        assert_eq!(parse_cpu_list("0-1\n"), Some(2));
        assert_eq!(parse_cpu_list("0"), Some(1));
        assert_eq!(parse_cpu_list("0-3,8,10-11"), Some(7));
        assert_eq!(parse_cpu_list(""), None);
        assert_eq!(parse_cpu_list("3-1"), None);
        assert_eq!(parse_cpu_list("a"), None);
    }

    #[test]
    fn loadavg_and_scaling_freq() {
        assert_eq!(
            parse_loadavg("0.56 0.21 0.07 3/92 5795\n"),
            Some([0.56, 0.21, 0.07])
        );
        assert_eq!(parse_loadavg("0.56 0.21"), None);
        assert_eq!(parse_loadavg("x y z"), None);
        assert_eq!(mhz_from_scaling_khz(["2600000\n", "3000000"]), Some(2800.0));
        assert_eq!(mhz_from_scaling_khz(["", "x"]), None);
    }

    #[test]
    fn proc_stat_and_steal() {
        let start = "cpu  5846 0 2936 68206 195 0 73 8 0 0\ncpu0 2202 0 778 35583 61 0 7 2 0 0\n";
        let end = "cpu  6846 0 3436 69206 195 0 73 508 0 0\ncpu0 2702 0 778 36083 61 0 7 252 0 0\n";
        let (s, e) = (
            parse_proc_stat(start).unwrap(),
            parse_proc_stat(end).unwrap(),
        );
        assert_eq!(
            s,
            CpuTimes {
                total: 5846 + 2936 + 68206 + 195 + 73 + 8,
                steal: 8
            }
        );
        // Deltas: user 1000, system 500, idle 1000, steal 500 → 500 / 3000.
        let pct = steal_pct(s, e).unwrap();
        assert!((pct - 100.0 * 500.0 / 3000.0).abs() < 1e-12, "{pct}");
        assert_eq!(
            StealMeter::from_times(Some(s)).steal_pct_until(Some(e)),
            Some(pct)
        );
        assert_eq!(steal_pct(s, s), None, "no time elapsed");
        assert_eq!(steal_pct(e, s), None, "counters went backwards");
        assert_eq!(StealMeter::from_times(None).steal_pct_until(Some(e)), None);
        // Too old a kernel (no steal column) or no aggregate line.
        assert_eq!(parse_proc_stat("cpu  1 2 3 4 5 6 7\n"), None);
        assert_eq!(parse_proc_stat("cpu0 1 2 3 4 5 6 7 8\n"), None);
    }

    #[test]
    fn steal_meter_on_this_machine_is_a_percentage_or_unknown() {
        let meter = StealMeter::start();
        if let Some(p) = meter.steal_pct() {
            assert!((0.0..=100.0).contains(&p), "{p}");
        }
    }
}
