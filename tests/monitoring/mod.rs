//! Names in the monitoring files (the Grafana dashboard, the alert rules)
//! and in a `/metrics` exposition. A few lines of scanning each, enough for
//! the files as written here: no PromQL, YAML or exposition parser crate
//! for a test.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;

/// Labels Prometheus adds to every series it scrapes.
const TARGET_LABELS: [&str; 2] = ["instance", "job"];

/// One family as `/metrics` serves it.
#[derive(Debug, Default)]
pub struct Family {
    kind: String,
    labels: BTreeSet<String>,
}

/// Every family in an exposition, by name.
pub struct Served(BTreeMap<String, Family>);

impl Served {
    pub fn parse(text: &str) -> Served {
        let mut families = BTreeMap::new();
        for line in text.lines() {
            if let Some(rest) = line.strip_prefix("# TYPE ") {
                let (name, kind) = rest.split_once(' ').expect("# TYPE <name> <kind>");
                let kind = kind.to_owned();
                families.insert(
                    name.to_owned(),
                    Family {
                        kind,
                        ..Family::default()
                    },
                );
            }
        }
        let mut served = Served(families);
        for line in text
            .lines()
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
        {
            let named = &named_in(line)[0];
            let base = served.family(&named.name).map(|(base, _)| base.to_owned());
            let base = base.unwrap_or_else(|| panic!("a sample of no family: {line}"));
            let labels = named.labels.iter().filter(|l| *l != "le").cloned();
            served.0.get_mut(&base).unwrap().labels.extend(labels);
        }
        served
    }

    /// Whether a family of that name is served.
    pub fn serves(&self, name: &str) -> bool {
        self.0.contains_key(name)
    }

    /// The family `name` belongs to, and the histogram suffix it names.
    fn family(&self, name: &str) -> Option<(&str, Option<&str>)> {
        if let Some((base, _)) = self.0.get_key_value(name) {
            return Some((base, None));
        }
        ["_bucket", "_sum", "_count"]
            .into_iter()
            .find_map(|suffix| {
                let base = name.strip_suffix(suffix)?;
                let (base, family) = self.0.get_key_value(base)?;
                (family.kind == "histogram").then_some((base.as_str(), Some(suffix)))
            })
    }

    /// Why `named` is not something `/metrics` serves, if it is not. In an
    /// expression a histogram is named by a series (`_bucket`, ...) and every
    /// label matched must exist.
    fn fault(&self, named: &Named, in_expression: bool) -> Option<String> {
        let name = &named.name;
        let Some((base, suffix)) = self.family(name) else {
            return Some(format!("{name} is not served"));
        };
        if !in_expression {
            return None;
        }
        let family = &self.0[base];
        if family.kind == "histogram" && suffix.is_none() {
            return Some(format!(
                "{name} is a histogram: query its _bucket, _sum or _count"
            ));
        }
        let known = |label: &str| {
            family.labels.contains(label)
                || TARGET_LABELS.contains(&label)
                || (label == "le" && suffix == Some("_bucket"))
        };
        let unknown = named.labels.iter().find(|l| !known(l))?;
        Some(format!("{name} has no label {unknown}"))
    }

    pub fn faults<'a>(
        &self,
        named: impl IntoIterator<Item = &'a Named>,
        expr: bool,
    ) -> Vec<String> {
        named
            .into_iter()
            .filter_map(|n| self.fault(n, expr))
            .collect()
    }
}

/// A metric named in PromQL, an exposition line or prose, with the label
/// names its selector matches on.
#[derive(Debug)]
pub struct Named {
    pub name: String,
    pub labels: Vec<String>,
}

fn is_ident(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_' || c == ':'
}

/// Every `siphon_…` and `process_…` identifier in `text`.
pub fn named_in(text: &str) -> Vec<Named> {
    let mut found = Vec::new();
    let mut prev = ' ';
    for (i, c) in text.char_indices() {
        let rest = &text[i..];
        let starts = rest.starts_with("siphon_") || rest.starts_with("process_");
        if starts && !is_ident(prev) {
            let len = rest.find(|c| !is_ident(c)).unwrap_or(rest.len());
            let labels = match rest[len..].strip_prefix('{') {
                Some(body) => matchers(body),
                None => Vec::new(),
            };
            found.push(Named {
                name: rest[..len].to_owned(),
                labels,
            });
        }
        prev = c;
    }
    found
}

/// The label names of a selector's body, up to its closing `}`.
fn matchers(body: &str) -> Vec<String> {
    let mut labels = Vec::new();
    let (mut quoted, mut escaped, mut start) = (false, false, true);
    for (i, c) in body.char_indices() {
        match c {
            _ if escaped => escaped = false,
            '\\' if quoted => escaped = true,
            '"' => quoted = !quoted,
            '}' if !quoted => break,
            ',' if !quoted => start = true,
            _ if start && !quoted && !c.is_whitespace() => {
                let len = body[i..].find(|c| !is_ident(c)).unwrap_or(0);
                labels.push(body[i..i + len].to_owned());
                start = false;
            }
            _ => {}
        }
    }
    labels
}

/// Every value of `key` in a YAML file as written here: inline
/// (`expr: up == 0`, quoted or not) or a block scalar (`expr: |`).
pub fn yaml_values(text: &str, key: &str) -> Vec<String> {
    let lines: Vec<&str> = text.lines().collect();
    let mut values = Vec::new();
    for (i, line) in lines.iter().enumerate() {
        let content = line.trim_start().trim_start_matches("- ");
        let Some(value) = content.strip_prefix(key).and_then(|r| r.strip_prefix(':')) else {
            continue;
        };
        let value = value.trim();
        if value.starts_with('|') || value.starts_with('>') {
            // The block is what is indented deeper than the key itself.
            let column = line.len() - content.len();
            let deeper = |l: &&&str| l.trim().is_empty() || l.len() - l.trim_start().len() > column;
            let block = lines[i + 1..].iter().take_while(deeper);
            values.push(block.copied().collect::<Vec<_>>().join("\n"));
        } else {
            values.push(value.trim_matches(|c| c == '\'' || c == '"').to_owned());
        }
    }
    values
}

/// Where the dashboard names metrics: panel queries, template-variable
/// queries, and everything else (titles, descriptions, text).
#[derive(Default)]
pub struct DashboardText {
    pub panel_queries: Vec<String>,
    pub variable_queries: Vec<String>,
    pub prose: Vec<String>,
}

impl DashboardText {
    pub fn of(dashboard: &Value) -> DashboardText {
        let mut text = DashboardText::default();
        text.walk(&dashboard["panels"], "");
        for variable in dashboard["templating"]["list"]
            .as_array()
            .expect("variables")
        {
            text.variable_queries
                .extend(strings(&variable["definition"]));
            text.variable_queries.extend(strings(&variable["query"]));
        }
        text
    }

    fn walk(&mut self, value: &Value, key: &str) {
        match value {
            Value::String(s) if key == "expr" => self.panel_queries.push(s.clone()),
            Value::String(s) => self.prose.push(s.clone()),
            Value::Array(items) => items.iter().for_each(|v| self.walk(v, key)),
            Value::Object(fields) => fields.iter().for_each(|(k, v)| self.walk(v, k)),
            _ => {}
        }
    }
}

fn strings(value: &Value) -> Vec<String> {
    match value {
        Value::String(s) => vec![s.clone()],
        Value::Object(fields) => fields.values().flat_map(strings).collect(),
        _ => Vec::new(),
    }
}
