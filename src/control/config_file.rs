//! `--config FILE`: every `deskrelay proxy` flag, and the global `log` and `log-format`,
//! as a TOML key of the same name (`bind = ["0.0.0.0:14500"]`, `auth =
//! "multifile:/etc/deskrelay/users"`, `connect-timeout = 5`, `send-proxy = true`). The
//! file's keys become command-line arguments placed before the real ones, leaving out those
//! the command line (or `DESKRELAY_LOG`) sets, so the command line wins and both are checked
//! by the same parser. `deskrelay check-config FILE` reports every error, each on the line
//! of the key it concerns.

use std::ffi::OsString;
use std::fmt;
use std::path::{Path, PathBuf};

use clap::{Arg, ArgAction, Command, CommandFactory, Parser};

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
    path: PathBuf,
    entries: Vec<Entry>,
}

/// One problem in a configuration file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    pub path: PathBuf,
    /// 1-based: the line of the key it concerns; 0 when the file sets none of them.
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
            Ok(ConfigFile {
                path: path.to_path_buf(),
                entries,
            })
        } else {
            Err(errors)
        }
    }

    /// The file as `proxy` arguments, leaving out the keys whose flag `given` says the
    /// command line (or the environment) sets itself; unknown keys and bad switches are
    /// errors on their lines.
    pub fn to_args(&self, given: impl Fn(&Arg) -> bool) -> Result<Vec<OsString>, Vec<ConfigError>> {
        let proxy = proxy_command();
        let mut out = Vec::new();
        let mut errors = Vec::new();
        for e in &self.entries {
            match key_arg(&proxy, &e.key).and_then(|arg| Ok((arg, e.flags(arg)?))) {
                Ok((arg, _)) if given(arg) => {}
                Ok((_, flags)) => out.extend(flags.into_iter().map(OsString::from)),
                Err(why) => errors.push(self.error(e.line, why)),
            }
        }
        if errors.is_empty() {
            Ok(out)
        } else {
            Err(errors)
        }
    }

    /// The line where the file sets `key`, if it does.
    fn line_of_key(&self, key: &str) -> Option<usize> {
        self.entries.iter().find(|e| e.key == key).map(|e| e.line)
    }

    fn error(&self, line: usize, message: impl Into<String>) -> ConfigError {
        ConfigError {
            path: self.path.clone(),
            line,
            message: message.into(),
        }
    }
}

impl Entry {
    /// The key as command-line flags: `--key=value` for each value; a switch (`send-proxy
    /// = true`) is the bare flag when true and nothing when false.
    fn flags(&self, arg: &Arg) -> Result<Vec<String>, String> {
        let flag = format!("--{}", self.key);
        if !matches!(arg.get_action(), ArgAction::SetTrue) {
            return Ok(self.values.iter().map(|v| format!("{flag}={v}")).collect());
        }
        match self.values.as_slice() {
            [v] if v == "true" => Ok(vec![flag]),
            [v] if v == "false" => Ok(Vec::new()),
            _ => Err(format!("`{}` is a switch: true or false", self.key)),
        }
    }
}

/// The `proxy` subcommand as clap builds it: its own flags and the global ones.
pub fn proxy_command() -> Command {
    let mut cli = Cli::command();
    cli.build();
    cli.find_subcommand("proxy")
        .expect("the proxy subcommand")
        .clone()
}

/// The flag `key` sets: any long option of `proxy`, its own or global, but `config` (a
/// file does not name another) and `help`.
fn key_arg<'a>(proxy: &'a Command, key: &str) -> Result<&'a Arg, String> {
    match key {
        "config" => Err("`config` is not a key: a file cannot name another file".into()),
        "help" | "version" => Err(format!("unknown key `{key}`")),
        _ => proxy
            .get_arguments()
            .find(|a| a.get_long() == Some(key))
            .ok_or_else(|| format!("unknown key `{key}`")),
    }
}

/// Every problem in `path`: syntax, unknown keys, values each flag's own parser refuses,
/// and what only the whole configuration shows (files that must exist, flags that need
/// others, ranges), each on the line of the key it concerns (0 when the file sets none).
pub fn check(path: &Path) -> Vec<ConfigError> {
    let file = match ConfigFile::load(path) {
        Ok(f) => f,
        Err(errors) => return errors,
    };
    let proxy = proxy_command();
    let mut errors = Vec::new();
    // The keys that pass alone, for the whole.
    let mut whole: Vec<String> = vec!["deskrelay".into(), "proxy".into()];
    for e in &file.entries {
        let flags = match key_arg(&proxy, &e.key).and_then(|arg| e.flags(arg)) {
            Ok(flags) => flags,
            Err(why) => {
                errors.push(file.error(e.line, why));
                continue;
            }
        };
        // The key alone through the real parser: its own value errors, on its own line.
        let alone = ["deskrelay", "proxy"].into_iter().map(String::from);
        match Cli::try_parse_from(alone.chain(flags.iter().cloned())) {
            Ok(_) => whole.extend(flags),
            Err(why) if why.kind() == clap::error::ErrorKind::MissingRequiredArgument => {
                let absent: Vec<String> = required_flags(&why)
                    .filter(|k| file.line_of_key(k).is_none())
                    .map(|k| format!("`{k}`"))
                    .collect();
                if absent.is_empty() {
                    whole.extend(flags);
                } else {
                    let message = format!("`{}` needs {}", e.key, absent.join(" and "));
                    errors.push(file.error(e.line, message));
                }
            }
            Err(why) => errors.push(file.error(e.line, first_line(&why))),
        }
    }
    match Cli::try_parse_from(whole).map(|cli| cli.command) {
        Ok(super::cli::Command::Proxy(args)) => {
            for problem in args.build().err().unwrap_or_default().0 {
                let line = problem.flags.iter().find_map(|f| file.line_of_key(f));
                errors.push(file.error(line.unwrap_or(0), problem.message));
            }
        }
        Ok(_) => unreachable!("parsed as proxy"),
        Err(why) => errors.push(file.error(0, first_line(&why))),
    }
    errors.sort_by_key(|e| e.line);
    errors
}

/// The long names of the flags a "required arguments were not provided" error lists.
fn required_flags(error: &clap::Error) -> impl Iterator<Item = String> {
    let listed = match error.get(clap::error::ContextKind::InvalidArg) {
        Some(clap::error::ContextValue::Strings(names)) => names.clone(),
        _ => Vec::new(),
    };
    listed.into_iter().filter_map(|name| {
        let long = name.strip_prefix("--")?;
        Some(long.split([' ', '=']).next().unwrap_or(long).to_string())
    })
}

/// A clap error's first line, without its `error: `.
fn first_line(error: &clap::Error) -> String {
    let text = error.to_string();
    let first = text.lines().next().unwrap_or("");
    first.trim_start_matches("error: ").to_string()
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
