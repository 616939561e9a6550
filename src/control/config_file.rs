//! `--config FILE`: every `deskrelay proxy` flag as a TOML key of the same name
//! (`bind = ["0.0.0.0:14500"]`, `auth = "multifile:/etc/deskrelay/users"`,
//! `connect-timeout = 5`). The file's keys become command-line arguments placed before the
//! real ones, so the command line overrides the file and both are checked by the same
//! parser; `deskrelay check-config FILE` reports every error with its line.

use std::ffi::OsString;
use std::fmt;
use std::path::{Path, PathBuf};

use clap::{CommandFactory, Parser};

use super::cli::Cli;

/// One key of the file, as command-line values.
#[derive(Debug, Clone)]
struct Entry {
    key: String,
    values: Vec<String>,
    line: usize,
}

/// A parsed configuration file.
#[derive(Debug, Clone)]
pub struct ConfigFile {
    entries: Vec<Entry>,
}

/// One problem in a configuration file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    pub path: PathBuf,
    /// 1-based; 0 when the problem is not on one line (a combination of keys).
    pub line: usize,
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.line {
            0 => write!(f, "{}: {}", self.path.display(), self.message),
            n => write!(f, "{}:{n}: {}", self.path.display(), self.message),
        }
    }
}

impl ConfigFile {
    /// Reads and parses `path` (TOML syntax and value types only; see [`check`]).
    pub fn load(path: &Path) -> Result<ConfigFile, Vec<ConfigError>> {
        let err = |line, message: String| ConfigError {
            path: path.to_path_buf(),
            line,
            message,
        };
        let text = std::fs::read_to_string(path).map_err(|e| vec![err(0, e.to_string())])?;
        let table: toml::Table = text.parse().map_err(|e: toml::de::Error| {
            let line = e
                .span()
                .map_or(0, |s| text[..s.start].matches('\n').count() + 1);
            vec![err(line, e.message().to_string())]
        })?;
        let mut entries = Vec::new();
        let mut errors = Vec::new();
        for (key, value) in &table {
            let line = line_of(&text, key);
            match values_of(value) {
                Ok(values) => entries.push(Entry {
                    key: key.clone(),
                    values,
                    line,
                }),
                Err(why) => errors.push(err(line, format!("{key}: {why}"))),
            }
        }
        // The table is sorted by key; the file's own order reads better in errors.
        entries.sort_by_key(|e| e.line);
        errors.sort_by_key(|e| e.line);
        if errors.is_empty() {
            Ok(ConfigFile { entries })
        } else {
            Err(errors)
        }
    }

    /// The file as `proxy` arguments, leaving out keys the command line (`cli`) sets itself.
    pub fn to_args(&self, cli: &[OsString]) -> Vec<OsString> {
        let mut out = Vec::new();
        for e in &self.entries {
            let flag = format!("--{}", e.key);
            let on_cli = cli.iter().any(|a| {
                a.to_str()
                    .is_some_and(|a| a == flag || a.starts_with(&format!("{flag}=")))
            });
            if on_cli {
                continue;
            }
            for v in &e.values {
                out.push(format!("{flag}={v}").into());
            }
        }
        out
    }
}

/// Every problem in `path`: syntax, unknown keys, values each flag's own parser refuses
/// (each with its line), then what only the whole configuration shows.
pub fn check(path: &Path) -> Vec<ConfigError> {
    let file = match ConfigFile::load(path) {
        Ok(f) => f,
        Err(errors) => return errors,
    };
    let err = |line, message: String| ConfigError {
        path: path.to_path_buf(),
        line,
        message,
    };
    let mut errors = Vec::new();
    let cmd = Cli::command();
    let proxy = cmd.find_subcommand("proxy").expect("the proxy subcommand");
    for e in &file.entries {
        if !proxy
            .get_arguments()
            .any(|a| a.get_long() == Some(e.key.as_str()))
        {
            errors.push(err(e.line, format!("unknown key `{}`", e.key)));
            continue;
        }
        // The key alone through the real parser: its own value errors, on its own line.
        let mut argv: Vec<String> = vec!["deskrelay".into(), "proxy".into()];
        argv.extend(e.values.iter().map(|v| format!("--{}={v}", e.key)));
        if let Err(why) = Cli::try_parse_from(argv) {
            use clap::error::ErrorKind::*;
            if matches!(why.kind(), MissingRequiredArgument | ArgumentConflict) {
                continue; // a combination: judged below, on the whole file
            }
            let text = why.to_string();
            let first = text
                .lines()
                .next()
                .unwrap_or("")
                .trim_start_matches("error: ");
            errors.push(err(e.line, first.to_string()));
        }
    }
    if errors.is_empty() {
        // The whole: required combinations, files that must exist, ranges.
        let mut argv: Vec<OsString> = vec!["deskrelay".into(), "proxy".into()];
        argv.extend(file.to_args(&[]));
        let result = Cli::try_parse_from_args(argv).and_then(|cli| cli.into_config());
        if let Err(e) = result {
            errors.push(err(0, format!("{e:#}")));
        }
    }
    errors
}

/// The line where `key` is set (1-based), or 0.
fn line_of(text: &str, key: &str) -> usize {
    text.lines()
        .position(|l| {
            let l = l.trim_start();
            l.strip_prefix(key)
                .or_else(|| l.strip_prefix(&format!("\"{key}\"")))
                .is_some_and(|rest| rest.trim_start().starts_with('='))
        })
        .map_or(0, |i| i + 1)
}

/// A TOML value as the command-line values of its flag.
fn values_of(v: &toml::Value) -> Result<Vec<String>, &'static str> {
    match v {
        toml::Value::String(s) => Ok(vec![s.clone()]),
        toml::Value::Integer(i) => Ok(vec![i.to_string()]),
        toml::Value::Float(f) => Ok(vec![f.to_string()]),
        toml::Value::Boolean(b) => Ok(vec![b.to_string()]),
        toml::Value::Array(items) => items
            .iter()
            .map(|i| match i {
                toml::Value::Array(_) | toml::Value::Table(_) => Err("nested lists are not flags"),
                other => values_of(other).map(|mut v| v.remove(0)),
            })
            .collect(),
        toml::Value::Table(_) => Err("tables are not flags: keys are the flags' long names"),
        toml::Value::Datetime(_) => Err("a date is not a flag value"),
    }
}

#[cfg(test)]
mod tests;
