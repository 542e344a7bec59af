//! The database: the embedded documents, then user spec and price files (later entries with an
//! existing id replace it), lookups by id and alias, price ages.

use super::*;

/// Where an entry came from.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Origin {
    /// `embedded specs (...)` or the user file's path.
    pub file: String,
    /// From a user file (`--specs`, `--prices`)?
    pub user: bool,
}

/// What a name resolves to.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Entry<'a> {
    Accelerator(&'a Accelerator),
    Cpu(&'a Cpu),
    Offer(&'a Offer),
}

impl Entry<'_> {
    pub fn id(&self) -> &str {
        match self {
            Entry::Accelerator(a) => &a.id,
            Entry::Cpu(c) => &c.id,
            Entry::Offer(o) => &o.id,
        }
    }
}

/// Options of loading (dates are judged against `as_of`, so tests are deterministic).
#[derive(Clone, Debug)]
pub struct LoadOptions {
    /// The report's date (`--as-of`, default today).
    pub as_of: Date,
    /// Prices older than this many days are flagged.
    pub max_price_age_days: i64,
}

impl Default for LoadOptions {
    fn default() -> Self {
        LoadOptions {
            as_of: today(),
            max_price_age_days: DEFAULT_MAX_PRICE_AGE_DAYS,
        }
    }
}

/// The merged, validated database.
#[derive(Clone, Debug)]
pub struct Database {
    pub accelerators: Vec<Accelerator>,
    pub cpus: Vec<Cpu>,
    pub offers: Vec<Offer>,
    /// Lowercased alias → id.
    aliases: BTreeMap<String, String>,
    /// id → origin.
    pub origins: BTreeMap<String, Origin>,
    /// id → JSON path of the entry in its file (`offers[3]`), for cross-reference errors.
    paths: BTreeMap<String, String>,
    pub options: LoadOptions,
}

pub(crate) fn parse_doc<T: serde::de::DeserializeOwned>(
    text: &str,
    file: &str,
    schema: &str,
) -> Result<T, SpecError> {
    let value: Value = serde_json::from_str(text).map_err(|cause| SpecError::Syntax {
        file: file.to_string(),
        cause,
    })?;
    match value.get("schema") {
        Some(Value::String(s)) if s == schema => {}
        other => {
            return Err(SpecError::Field {
                file: file.to_string(),
                field: "schema".into(),
                reason: format!(
                    "is {}, expected \"{schema}\"",
                    other.map(|v| v.to_string()).unwrap_or("missing".into())
                ),
            })
        }
    }
    let mut de = serde_json::Deserializer::from_str(text);
    serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let field = e.path().to_string();
        SpecError::Field {
            file: file.to_string(),
            field: if field == "." { String::new() } else { field },
            reason: e.into_inner().to_string(),
        }
    })
}

/// Parse and check a spec document on its own (no cross-references).
pub fn parse_specs(
    text: &str,
    file: &str,
    user: bool,
    opts: &LoadOptions,
) -> Result<SpecsDoc, SpecError> {
    let doc: SpecsDoc = parse_doc(text, file, SPECS_SCHEMA)?;
    let mut seen = BTreeSet::new();
    for (i, a) in doc.accelerators.iter().enumerate() {
        let at = format!("accelerators[{i}]");
        a.validate()
            .map_err(|e| SpecError::field(file, e.within(&at)))?;
        check_date(&a.as_of, user, opts).map_err(|e| SpecError::field(file, e.within(&at)))?;
        if !seen.insert(a.id.clone()) {
            return Err(SpecError::field(
                file,
                FieldError::new(format!("{at}.id"), format!("duplicate id {:?}", a.id)),
            ));
        }
    }
    for (i, c) in doc.cpus.iter().enumerate() {
        let at = format!("cpus[{i}]");
        c.validate()
            .map_err(|e| SpecError::field(file, e.within(&at)))?;
        check_date(&c.as_of, user, opts).map_err(|e| SpecError::field(file, e.within(&at)))?;
        if !seen.insert(c.id.clone()) {
            return Err(SpecError::field(
                file,
                FieldError::new(format!("{at}.id"), format!("duplicate id {:?}", c.id)),
            ));
        }
    }
    Ok(doc)
}

/// Parse and check a price document on its own (device ids are checked on merging).
pub fn parse_prices(
    text: &str,
    file: &str,
    user: bool,
    opts: &LoadOptions,
) -> Result<PricesDoc, SpecError> {
    let doc: PricesDoc = parse_doc(text, file, PRICES_SCHEMA)?;
    let mut seen = BTreeSet::new();
    for (i, o) in doc.offers.iter().enumerate() {
        let at = format!("offers[{i}]");
        o.validate()
            .map_err(|e| SpecError::field(file, e.within(&at)))?;
        check_date(&o.as_of, user, opts).map_err(|e| SpecError::field(file, e.within(&at)))?;
        if !seen.insert(o.id.clone()) {
            return Err(SpecError::field(
                file,
                FieldError::new(format!("{at}.id"), format!("duplicate id {:?}", o.id)),
            ));
        }
    }
    Ok(doc)
}

/// A user file's date may not lie after the report's date. (Embedded entries newer than a
/// back-dated `--as-of` are shown, flagged in the age column.)
pub(crate) fn check_date(as_of: &AsOf, user: bool, opts: &LoadOptions) -> Result<(), FieldError> {
    if user && as_of.date > opts.as_of {
        return Err(FieldError::new(
            "as_of",
            format!(
                "{} is in the future (the report's date is {})",
                as_of.text, opts.as_of
            ),
        ));
    }
    Ok(())
}

impl Database {
    /// The embedded database alone, judged at `opts.as_of`.
    pub fn embedded(opts: &LoadOptions) -> Result<Database, SpecError> {
        Database::load(&[], &[], opts)
    }

    /// The embedded documents, then user spec files, then user price files (later entries with
    /// an existing id replace it). Every error names its file and field.
    pub fn load(
        spec_files: &[PathBuf],
        price_files: &[PathBuf],
        opts: &LoadOptions,
    ) -> Result<Database, SpecError> {
        let read = |p: &Path| {
            crate::input::read_to_string(p).map_err(|cause| SpecError::Read {
                file: p.display().to_string(),
                cause,
            })
        };
        let mut specs = vec![(EMBEDDED_SPECS.to_string(), false, SPECS_JSON.to_string())];
        for p in spec_files {
            specs.push((p.display().to_string(), true, read(p)?));
        }
        let mut prices = vec![(EMBEDDED_PRICES.to_string(), false, PRICES_JSON.to_string())];
        for p in price_files {
            prices.push((p.display().to_string(), true, read(p)?));
        }
        let specs: Vec<(String, bool, SpecsDoc)> = specs
            .into_iter()
            .map(|(f, user, t)| parse_specs(&t, &f, user, opts).map(|d| (f, user, d)))
            .collect::<Result<_, _>>()?;
        let prices: Vec<(String, bool, PricesDoc)> = prices
            .into_iter()
            .map(|(f, user, t)| parse_prices(&t, &f, user, opts).map(|d| (f, user, d)))
            .collect::<Result<_, _>>()?;
        Database::merge(specs, prices, opts.clone())
    }

    /// Record where entry `id` (at field `path` of `file`) came from; refuse it when the other
    /// kind of entry (`other`) already uses the id (`taken`).
    pub(crate) fn note_entry(
        &mut self,
        file: &str,
        user: bool,
        id: &str,
        path: String,
        taken: bool,
        other: &str,
    ) -> Result<(), SpecError> {
        if taken {
            return Err(SpecError::field(
                file,
                FieldError::new(
                    format!("{path}.id"),
                    format!("{id:?} is already {other} id"),
                ),
            ));
        }
        self.origins.insert(
            id.to_string(),
            Origin {
                file: file.to_string(),
                user,
            },
        );
        self.paths.insert(id.to_string(), path);
        Ok(())
    }

    /// Merge parsed documents (in order; a later id replaces an earlier one) and check the
    /// cross-references: unique ids and aliases across everything, offer devices that exist.
    pub fn merge(
        specs: Vec<(String, bool, SpecsDoc)>,
        prices: Vec<(String, bool, PricesDoc)>,
        options: LoadOptions,
    ) -> Result<Database, SpecError> {
        let mut db = Database {
            accelerators: Vec::new(),
            cpus: Vec::new(),
            offers: Vec::new(),
            aliases: BTreeMap::new(),
            origins: BTreeMap::new(),
            paths: BTreeMap::new(),
            options,
        };
        for (file, user, doc) in specs {
            for (i, a) in doc.accelerators.into_iter().enumerate() {
                let taken = db.cpus.iter().any(|c| c.id == a.id);
                db.note_entry(
                    &file,
                    user,
                    &a.id,
                    format!("accelerators[{i}]"),
                    taken,
                    "a CPU",
                )?;
                upsert(&mut db.accelerators, a, |e| &e.id, |e| &mut e.aliases);
            }
            for (i, c) in doc.cpus.into_iter().enumerate() {
                let taken = db.accelerators.iter().any(|a| a.id == c.id);
                db.note_entry(
                    &file,
                    user,
                    &c.id,
                    format!("cpus[{i}]"),
                    taken,
                    "an accelerator",
                )?;
                upsert(&mut db.cpus, c, |e| &e.id, |e| &mut e.aliases);
            }
        }
        for (file, user, doc) in prices {
            for (i, o) in doc.offers.into_iter().enumerate() {
                if db.accelerators.iter().any(|a| a.id == o.id)
                    || db.cpus.iter().any(|c| c.id == o.id)
                {
                    return Err(SpecError::field(
                        &file,
                        FieldError::new(
                            format!("offers[{i}].id"),
                            format!("{:?} is already a spec id", o.id),
                        ),
                    ));
                }
                db.origins.insert(
                    o.id.clone(),
                    Origin {
                        file: file.clone(),
                        user,
                    },
                );
                db.paths.insert(o.id.clone(), format!("offers[{i}]"));
                match db.offers.iter_mut().find(|x| x.id == o.id) {
                    Some(x) => *x = o,
                    None => db.offers.push(o),
                }
            }
        }
        db.build_aliases()?;
        // Offers point at devices that exist; their ids resolve through aliases.
        let mut resolved = Vec::new();
        for o in &db.offers {
            let Some(device) = o.device.as_deref() else {
                resolved.push(None);
                continue;
            };
            let id = match db.resolve(device) {
                Some(Entry::Accelerator(a)) => a.id.clone(),
                Some(Entry::Cpu(c)) => c.id.clone(),
                _ => {
                    return Err(SpecError::Field {
                        file: db.origins[&o.id].file.clone(),
                        field: format!("{}.device", db.paths[&o.id]),
                        reason: format!("{:?} is not an accelerator or CPU id or alias", o.device),
                    })
                }
            };
            resolved.push(Some(id));
        }
        for (o, id) in db.offers.iter_mut().zip(resolved) {
            o.device = id;
        }
        Ok(db)
    }

    pub(crate) fn build_aliases(&mut self) -> Result<(), SpecError> {
        let mut ids: BTreeMap<String, String> = BTreeMap::new();
        for id in self
            .accelerators
            .iter()
            .map(|a| &a.id)
            .chain(self.cpus.iter().map(|c| &c.id))
            .chain(self.offers.iter().map(|o| &o.id))
        {
            ids.insert(id.to_ascii_lowercase(), id.clone());
        }
        let mut aliases = BTreeMap::new();
        let entries: Vec<(String, Vec<String>)> = self
            .accelerators
            .iter()
            .map(|a| (a.id.clone(), a.aliases.clone()))
            .chain(self.cpus.iter().map(|c| (c.id.clone(), c.aliases.clone())))
            .collect();
        for (id, list) in entries {
            for (i, alias) in list.iter().enumerate() {
                let key = alias.to_ascii_lowercase();
                let clash = ids
                    .get(&key)
                    .filter(|other| **other != id)
                    .cloned()
                    .or_else(|| {
                        aliases
                            .get(&key)
                            .filter(|other: &&String| **other != id)
                            .cloned()
                    });
                if let Some(other) = clash {
                    return Err(SpecError::Field {
                        file: self.origins[&id].file.clone(),
                        field: format!("{}.aliases[{i}]", self.paths[&id]),
                        reason: format!("alias {alias:?} already names {other:?}"),
                    });
                }
                aliases.insert(key, id.clone());
            }
        }
        self.aliases = aliases;
        Ok(())
    }

    /// Resolve an id or alias (case-insensitive).
    pub fn resolve(&self, name: &str) -> Option<Entry<'_>> {
        let key = name.trim().to_ascii_lowercase();
        let id = self.aliases.get(&key).cloned().unwrap_or(key);
        if let Some(a) = self
            .accelerators
            .iter()
            .find(|a| a.id.eq_ignore_ascii_case(&id))
        {
            return Some(Entry::Accelerator(a));
        }
        if let Some(c) = self.cpus.iter().find(|c| c.id.eq_ignore_ascii_case(&id)) {
            return Some(Entry::Cpu(c));
        }
        self.offers
            .iter()
            .find(|o| o.id.eq_ignore_ascii_case(&id))
            .map(Entry::Offer)
    }

    /// The alias table: alias → id.
    pub fn aliases(&self) -> &BTreeMap<String, String> {
        &self.aliases
    }

    pub fn accelerator(&self, name: &str) -> Option<&Accelerator> {
        match self.resolve(name)? {
            Entry::Accelerator(a) => Some(a),
            _ => None,
        }
    }

    pub fn cpu(&self, name: &str) -> Option<&Cpu> {
        match self.resolve(name)? {
            Entry::Cpu(c) => Some(c),
            _ => None,
        }
    }

    pub fn offer(&self, id: &str) -> Option<&Offer> {
        match self.resolve(id)? {
            Entry::Offer(o) => Some(o),
            _ => None,
        }
    }

    /// Offers of a device (by resolved id).
    pub fn offers_for<'a>(&'a self, device_id: &'a str) -> impl Iterator<Item = &'a Offer> + 'a {
        self.offers
            .iter()
            .filter(move |o| o.device.as_deref() == Some(device_id))
    }

    /// The price a projection for a chip uses when none is named (`--targets CHIP@OFFER`): an
    /// offer from a user price file first (file order), else the embedded offer with a single
    /// price ranked by status (confirmed first), then on-demand before other models, then the
    /// lowest price per chip-hour. Price ranges are never picked.
    pub fn reference_offer<'a>(&'a self, device_id: &'a str) -> Option<&'a Offer> {
        let priced = || {
            self.offers_for(device_id)
                .filter(|o| o.point_price().is_some())
        };
        if let Some(o) = priced().find(|o| self.origins.get(&o.id).is_some_and(|x| x.user)) {
            return Some(o);
        }
        priced().min_by(|a, b| {
            let key = |o: &Offer| {
                (
                    o.status,
                    o.pricing_model != PricingModel::OnDemand,
                    o.device_price().map(|p| p.upper()).unwrap_or(f64::INFINITY),
                )
            };
            let (ka, kb) = (key(a), key(b));
            ka.0.cmp(&kb.0)
                .then(ka.1.cmp(&kb.1))
                .then(ka.2.total_cmp(&kb.2))
        })
    }

    /// Days since the offer's date, counted from `--as-of`, and whether that is past the limit.
    pub fn price_age(&self, o: &Offer) -> (i64, bool) {
        let age = o.as_of.age_days(self.options.as_of);
        (age, age > self.options.max_price_age_days || age < 0)
    }

    pub fn origin(&self, id: &str) -> Option<&Origin> {
        self.origins.get(id)
    }
}

/// Add `entry` to `list`, or replace the entry with the same id. An override keeps the replaced
/// entry's aliases unless it lists its own.
pub(crate) fn upsert<T>(
    list: &mut Vec<T>,
    mut entry: T,
    id: fn(&T) -> &str,
    aliases: fn(&mut T) -> &mut Vec<String>,
) {
    match list.iter_mut().find(|x| id(x) == id(&entry)) {
        Some(x) => {
            if aliases(&mut entry).is_empty() {
                *aliases(&mut entry) = std::mem::take(aliases(x));
            }
            *x = entry;
        }
        None => list.push(entry),
    }
}
