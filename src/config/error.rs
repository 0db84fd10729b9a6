//! Config errors: each names the key (or variable, or file position) it is about.

use std::fmt;

use toml::Table;

/// One problem with the configuration.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{key}: {reason}")]
pub struct ConfigError {
    /// Dotted key (`sip.trunk.uri`), environment variable, or `file:line:column`.
    pub key: String,
    /// What is wrong, in words.
    pub reason: String,
}

impl ConfigError {
    /// An error about `key`.
    pub fn new(key: impl Into<String>, reason: impl Into<String>) -> Self {
        Self {
            key: key.into(),
            reason: reason.into(),
        }
    }
}

/// Every problem found while loading a configuration; never empty.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigErrors(pub(super) Vec<ConfigError>);

impl ConfigErrors {
    /// The errors, in the order they were found.
    pub fn errors(&self) -> &[ConfigError] {
        &self.0
    }

    /// The first error about `key`, if any.
    pub fn get(&self, key: &str) -> Option<&ConfigError> {
        self.0.iter().find(|e| e.key == key)
    }
}

/// One line per error: `key: reason`.
impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, error) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{error}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigErrors {}

/// Parses TOML text from `source` (a file name, for messages); a syntax error
/// is reported as `source:line:column` and yields an empty table so that the
/// remaining checks (environment variables) still run.
pub(super) fn parse_table(text: &str, source: &str, errors: &mut Vec<ConfigError>) -> Table {
    text.parse::<Table>().unwrap_or_else(|e| {
        let offset = e.span().map_or(0, |span| span.start);
        let (line, column) = line_column(text, offset);
        // toml's messages span lines; errors are shown one per line.
        let message: Vec<&str> = e.message().lines().map(str::trim).collect();
        let reason = format!("TOML syntax error: {}", message.join("; "));
        errors.push(ConfigError::new(
            format!("{source}:{line}:{column}"),
            reason,
        ));
        Table::new()
    })
}

/// 1-based line and column (in characters) of byte `offset` in `text`.
fn line_column(text: &str, offset: usize) -> (usize, usize) {
    let before = text.get(..offset).unwrap_or(text);
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let column = before[line_start..].chars().count() + 1;
    (line, column)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_column_counts_from_one() {
        assert_eq!(line_column("abc", 0), (1, 1));
        assert_eq!(line_column("a\nbc", 3), (2, 2));
        assert_eq!(line_column("é\nx", 3), (2, 1));
    }

    #[test]
    fn display_is_one_line_per_error() {
        let errors = ConfigErrors(vec![
            ConfigError::new("a.b", "bad"),
            ConfigError::new("c", "worse"),
        ]);
        assert_eq!(errors.to_string(), "a.b: bad\nc: worse");
    }
}
