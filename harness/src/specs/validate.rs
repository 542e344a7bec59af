//! Validation of single entries: ids, sources, peaks, PCI ids, and each entry's invariants.

use super::*;

pub(crate) fn check_id(field: &str, id: &str) -> Result<(), FieldError> {
    let ok = !id.is_empty()
        && id
            .bytes()
            .next()
            .is_some_and(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
        && id.bytes().all(|b| {
            b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.' || b == b'_'
        });
    if ok {
        Ok(())
    } else {
        Err(FieldError::new(
            field,
            format!("{id:?} is not an id (lowercase letters, digits, '-', '.', '_')"),
        ))
    }
}

pub(crate) fn check_source(source: &str) -> Result<(), FieldError> {
    let s = source.trim();
    if s.is_empty() || s == "-" {
        return Err(FieldError::new(
            "source",
            "missing: every entry names its source",
        ));
    }
    Ok(())
}

pub(crate) fn check_peaks(
    peaks: &BTreeMap<SpecDType, Peak>,
    sparse: &BTreeMap<SpecDType, f64>,
    field: &str,
) -> Result<(), FieldError> {
    for (dt, p) in peaks {
        let f = format!("{field}.{}.dense", dt.name());
        p.dense.check(&f, true)?;
        if let Some(&s) = sparse.get(dt) {
            if p.dense.upper() >= s {
                return Err(FieldError::new(
                    f,
                    format!(
                        "{} is not below the published sparse figure {} for {}: a sparse \
                         figure used as dense",
                        p.dense,
                        fmt_num(s),
                        dt.name()
                    ),
                ));
            }
        }
    }
    for (dt, s) in sparse {
        if !super::figure::plausible(*s) {
            return Err(FieldError::new(
                format!("sparse_tflops.{}", dt.name()),
                format!(
                    "{s} is not a finite number > 0 and at most {:e}",
                    super::figure::MAX_FIGURE
                ),
            ));
        }
    }
    Ok(())
}

pub(crate) fn check_pci(p: &PciIds, i: usize) -> Result<(), FieldError> {
    let hex = |s: &str| {
        s.strip_prefix("0x")
            .is_some_and(|h| h.len() == 4 && h.bytes().all(|b| b.is_ascii_hexdigit()))
    };
    if !hex(&p.vendor_id) {
        return Err(FieldError::new(
            format!("identify.pci[{i}].vendor_id"),
            format!("{:?} is not a 16-bit hex id (0x10de)", p.vendor_id),
        ));
    }
    for (j, d) in p.device_ids.iter().enumerate() {
        if !hex(d) {
            return Err(FieldError::new(
                format!("identify.pci[{i}].device_ids[{j}]"),
                format!("{d:?} is not a 16-bit hex id (0x2330)"),
            ));
        }
    }
    Ok(())
}

/// Parse `0x10de`.
pub fn parse_hex_id(s: &str) -> Option<u32> {
    u32::from_str_radix(s.strip_prefix("0x")?, 16).ok()
}

impl Accelerator {
    /// The entry's own invariants (ids, source, dense peaks, figures, ceilings, PCI ids).
    pub fn validate(&self) -> Result<(), FieldError> {
        check_id("id", &self.id)?;
        for (i, a) in self.aliases.iter().enumerate() {
            check_id(&format!("aliases[{i}]"), a)?;
        }
        check_source(&self.source)?;
        if self.unit == Unit::Core {
            return Err(FieldError::new(
                "unit",
                "accelerators are per chip or per instance (CPUs go under `cpus`)",
            ));
        }
        check_peaks(&self.peak_tflops, &self.sparse_tflops, "peak_tflops")?;
        for (name, f) in [
            ("memory_gb", &self.memory_gb),
            ("mem_bw_tbs", &self.mem_bw_tbs),
            ("tdp_w", &self.tdp_w),
        ] {
            if let Some(f) = f {
                f.check(name, true)?;
            }
        }
        if let Some(c) = &self.cores_per_chip {
            check_source(&c.source).map_err(|e| e.within("cores_per_chip"))?;
            if c.count == 0 {
                return Err(FieldError::new(
                    "cores_per_chip.count",
                    "must be at least 1",
                ));
            }
            if let Some(l) = &c.logical {
                if l.degrees.is_empty()
                    || l.degrees.iter().any(|&d| d == 0 || c.count % d != 0)
                    || !l.degrees.contains(&l.default_degree)
                {
                    return Err(FieldError::new(
                        "cores_per_chip.logical",
                        format!(
                            "degrees {:?} must divide the {} cores and include the default {}",
                            l.degrees, c.count, l.default_degree
                        ),
                    ));
                }
            }
        }
        for (i, c) in self.measured_ceilings.iter().enumerate() {
            let field = format!("measured_ceilings[{i}]");
            check_source(&c.source).map_err(|e| e.within(&field))?;
            if !super::figure::plausible(c.tflops) {
                return Err(FieldError::new(
                    format!("{field}.tflops"),
                    format!(
                        "{} is not a finite number > 0 and at most {:e}",
                        c.tflops,
                        super::figure::MAX_FIGURE
                    ),
                ));
            }
            match self.peak_tflops.get(&c.dtype) {
                Some(p) if c.tflops <= p.dense.upper() => {}
                Some(p) => {
                    return Err(FieldError::new(
                        format!("{field}.tflops"),
                        format!(
                            "{} is above the dense {} peak {}",
                            fmt_num(c.tflops),
                            c.dtype.name(),
                            p.dense
                        ),
                    ))
                }
                None => {
                    return Err(FieldError::new(
                        format!("{field}.dtype"),
                        format!("no {} peak to measure against", c.dtype.name()),
                    ))
                }
            }
        }
        for (i, p) in self.identify.pci.iter().enumerate() {
            check_pci(p, i)?;
        }
        Ok(())
    }

    /// The share of one chip that `logical` logical cores at degree `degree` (physical cores
    /// per logical core; `None`: the chip's default) hold, and what it is
    /// (`2 of 8 NeuronCore-v4: 1 logical at degree 2`). `Err` when the chip has no cores
    /// entry, the degree is not allowed, or the cores exceed the chip.
    pub fn core_share(&self, logical: u32, degree: Option<u32>) -> Result<(f64, String), String> {
        let c = self
            .cores_per_chip
            .as_ref()
            .ok_or_else(|| format!("{} has no cores_per_chip entry", self.name))?;
        let (degree, how) = match (&c.logical, degree) {
            (Some(l), Some(d)) if l.degrees.contains(&d) => (d, format!("{} = {d}", l.setting)),
            (Some(l), Some(d)) => {
                return Err(format!(
                    "{} = {d} is not a degree {} allows ({:?})",
                    l.setting, self.name, l.degrees
                ))
            }
            (Some(l), None) => (
                l.default_degree,
                format!("{} not stated: default {}", l.setting, l.default_degree),
            ),
            (None, Some(1)) => (1, "physical cores".to_string()),
            (None, Some(d)) => {
                return Err(format!(
                    "{} has no logical cores (degree {d} given)",
                    self.name
                ))
            }
            (None, None) => (1, "physical cores".to_string()),
        };
        let physical = logical.saturating_mul(degree);
        if logical == 0 || physical > c.count {
            return Err(format!(
                "{logical} logical × {degree} = {physical} {} on a chip of {}",
                c.name, c.count
            ));
        }
        Ok((
            physical as f64 / c.count as f64,
            format!(
                "{physical} of {} {}: {logical} logical at {how}",
                c.count, c.name
            ),
        ))
    }

    /// Dense peak GFLOP/s for a dtype (upper value of a range).
    pub fn peak_gflops(&self, dt: SpecDType) -> Option<f64> {
        self.peak_tflops.get(&dt).map(|p| p.dense.upper() * 1e3)
    }

    /// Memory bandwidth, GB/s (upper value of a range).
    pub fn bw_gbs(&self) -> Option<f64> {
        self.mem_bw_tbs.as_ref().map(|f| f.upper() * 1e3)
    }

    /// The published measured matmul ceiling for a dtype, GFLOP/s.
    pub fn published_ceiling(&self, dt: SpecDType) -> Option<&PublishedCeiling> {
        self.measured_ceilings
            .iter()
            .find(|c| c.dtype == dt && c.kind == CeilingKind::MaxAchievableMatmul)
    }
}

impl Cpu {
    pub fn validate(&self) -> Result<(), FieldError> {
        check_id("id", &self.id)?;
        for (i, a) in self.aliases.iter().enumerate() {
            check_id(&format!("aliases[{i}]"), a)?;
        }
        check_source(&self.source)?;
        if self.unit != Unit::Core {
            return Err(FieldError::new("unit", "CPU peaks are per core"));
        }
        check_peaks(
            &self.peak_gflops_per_core,
            &BTreeMap::new(),
            "peak_gflops_per_core",
        )?;
        if let Some(c) = self.clock_ghz {
            if !super::figure::plausible(c) {
                return Err(FieldError::new(
                    "clock_ghz",
                    format!(
                        "{c} is not a finite number > 0 and at most {:e}",
                        super::figure::MAX_FIGURE
                    ),
                ));
            }
        }
        Ok(())
    }

    /// Dense peak GFLOP/s per core for a dtype.
    pub fn peak_gflops_per_core(&self, dt: SpecDType) -> Option<f64> {
        self.peak_gflops_per_core.get(&dt).map(|p| p.dense.upper())
    }
}

impl Offer {
    pub fn validate(&self) -> Result<(), FieldError> {
        check_id("id", &self.id)?;
        check_source(&self.source)?;
        if self.instance.trim().is_empty() {
            return Err(FieldError::new("instance", "is empty"));
        }
        let lower = self.instance.to_ascii_lowercase();
        for word in ["capacity block", "on-demand", "spot", "reserved"] {
            if lower.contains(word) {
                return Err(FieldError::new(
                    "instance",
                    format!(
                        "{:?} carries a pricing model in its name: use `pricing_model` and an \
                         offer of its own",
                        self.instance
                    ),
                ));
            }
        }
        if self.device_count == 0 {
            return Err(FieldError::new("device_count", "must be at least 1"));
        }
        if self.device.is_none()
            && self
                .device_name
                .as_deref()
                .is_none_or(|n| n.trim().is_empty())
        {
            return Err(FieldError::new(
                "device",
                "name the device: a spec id in `device`, or the seller's name in `device_name`",
            ));
        }
        if self.usd_per_hour.is_some() && self.usd_per_device_hour.is_some() {
            return Err(FieldError::new(
                "usd_per_device_hour",
                "give either usd_per_hour (whole offer) or usd_per_device_hour, not both",
            ));
        }
        if let Some(p) = &self.usd_per_hour {
            p.check("usd_per_hour", true)?;
        }
        if let Some(p) = &self.usd_per_device_hour {
            p.check("usd_per_device_hour", true)?;
        }
        if let Some(v) = self.vcpus {
            if v < self.device_count && v > 0 {
                // CPU instances: device_count is physical cores, never more than vCPUs.
                return Err(FieldError::new(
                    "vcpus",
                    format!("{v} vCPUs but {} physical cores", self.device_count),
                ));
            }
        }
        Ok(())
    }
}
