//! `deskrelay info`, `list` and `stop`: one request to a running relay's control socket;
//! the JSON answer printed as it came (`--json`) or as text: `info` as `xpra info` does
//! (`key.sub=value` lines), `list` as a table.

use std::io::{self, Read, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::Duration;

use anyhow::Context;

use super::registry::SessionView;
use super::report::{Failure, List, Stopping};

/// How long the relay may take to answer.
const ANSWER_TIMEOUT: Duration = Duration::from_secs(10);

/// Sends `request` to the relay at `path` and returns its answer line.
pub fn request(path: &Path, request: &str) -> anyhow::Result<String> {
    let mut conn = UnixStream::connect(path).map_err(|e| match e.kind() {
        io::ErrorKind::NotFound | io::ErrorKind::ConnectionRefused => anyhow::anyhow!(
            "no deskrelay is running with control socket {} \
             (start one with `deskrelay proxy --control {}`, or name its socket with --control)",
            path.display(),
            path.display()
        ),
        io::ErrorKind::PermissionDenied => anyhow::anyhow!(
            "control socket {}: permission denied (it is mode 0600: run this as the relay's user)",
            path.display()
        ),
        _ => anyhow::anyhow!("control socket {}: {e}", path.display()),
    })?;
    conn.set_read_timeout(Some(ANSWER_TIMEOUT))?;
    conn.set_write_timeout(Some(ANSWER_TIMEOUT))?;
    conn.write_all(format!("{request}\n").as_bytes())?;
    let mut answer = String::new();
    conn.read_to_string(&mut answer)
        .with_context(|| format!("reading the answer from {}", path.display()))?;
    let answer = answer.trim_end().to_string();
    if let Ok(failure) = serde_json::from_str::<Failure>(&answer) {
        anyhow::bail!("the relay refused `{request}`: {}", failure.error);
    }
    if answer.is_empty() {
        anyhow::bail!("the relay at {} closed without answering", path.display());
    }
    Ok(answer)
}

/// `deskrelay info`.
pub fn info(path: &Path, json: bool) -> anyhow::Result<()> {
    let answer = request(path, "info")?;
    if json {
        println!("{answer}");
        return Ok(());
    }
    let value: serde_json::Value = serde_json::from_str(&answer).context("an info answer")?;
    let mut lines = Vec::new();
    flatten("", &value, &mut lines);
    println!("{}", lines.join("\n"));
    Ok(())
}

/// `deskrelay list`.
pub fn list(path: &Path, json: bool) -> anyhow::Result<()> {
    let answer = request(path, "list")?;
    if json {
        println!("{answer}");
        return Ok(());
    }
    let list: List = serde_json::from_str(&answer).context("a list answer")?;
    print!("{}", table(&list.sessions));
    Ok(())
}

/// `deskrelay stop`.
pub fn stop(path: &Path) -> anyhow::Result<()> {
    let answer = request(path, "stop")?;
    let stopping: Stopping = serde_json::from_str(&answer).context("a stop answer")?;
    println!(
        "stopping: no new sessions; {} open session(s) drain before it exits",
        stopping.sessions
    );
    Ok(())
}

/// `key.sub=value` lines, as `xpra info` prints (list items are numbered keys).
fn flatten(prefix: &str, value: &serde_json::Value, out: &mut Vec<String>) {
    use serde_json::Value;
    let key = |k: &str| {
        if prefix.is_empty() {
            k.to_string()
        } else {
            format!("{prefix}.{k}")
        }
    };
    match value {
        Value::Object(map) => map.iter().for_each(|(k, v)| flatten(&key(k), v, out)),
        Value::Array(items) => items
            .iter()
            .enumerate()
            .for_each(|(i, v)| flatten(&key(&i.to_string()), v, out)),
        Value::String(s) => out.push(format!("{prefix}={s}")),
        Value::Null => out.push(format!("{prefix}=")),
        other => out.push(format!("{prefix}={other}")),
    }
}

/// The sessions as aligned columns.
fn table(sessions: &[SessionView]) -> String {
    if sessions.is_empty() {
        return "no sessions\n".into();
    }
    let header = [
        "ID",
        "SHARD",
        "DOOR",
        "USER",
        "TARGET",
        "CLIENT",
        "TO-BACKEND",
        "TO-CLIENT",
        "AGE",
    ];
    let dash = |s: &Option<String>| s.clone().unwrap_or_else(|| "-".into());
    let rows: Vec<[String; 9]> = sessions
        .iter()
        .map(|s| {
            [
                s.id.to_string(),
                s.shard.to_string(),
                s.protocol(),
                dash(&s.user),
                dash(&s.target),
                dash(&s.client),
                s.bytes_to_backend.to_string(),
                s.bytes_to_client.to_string(),
                age(s.age_secs),
            ]
        })
        .collect();
    let widths: Vec<usize> = (0..header.len())
        .map(|c| {
            rows.iter()
                .map(|r| r[c].len())
                .chain([header[c].len()])
                .max()
                .unwrap_or(0)
        })
        .collect();
    let line = |cells: Vec<&str>| {
        let padded: Vec<String> = cells
            .iter()
            .zip(&widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect();
        format!("{}\n", padded.join("  ").trim_end())
    };
    let mut out = line(header.to_vec());
    for r in &rows {
        out.push_str(&line(r.iter().map(String::as_str).collect()));
    }
    out
}

/// `3s`, `4m05s`, `2h03m`.
fn age(secs: f64) -> String {
    let s = secs as u64;
    match s {
        0..=59 => format!("{s}s"),
        60..=3599 => format!("{}m{:02}s", s / 60, s % 60),
        _ => format!("{}h{:02}m", s / 3600, s % 3600 / 60),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::control::registry::Door;

    #[test]
    fn info_lines_are_dotted_keys() {
        let v = serde_json::json!({"version": "0.1.0", "auth": {"xpra_failures": 2},
            "shards": [{"sessions": 1}], "user": null});
        let mut lines = Vec::new();
        flatten("", &v, &mut lines);
        assert!(lines.contains(&"version=0.1.0".to_string()), "{lines:?}");
        assert!(lines.contains(&"auth.xpra_failures=2".to_string()));
        assert!(lines.contains(&"shards.0.sessions=1".to_string()));
        assert!(lines.contains(&"user=".to_string()));
    }

    #[test]
    fn the_table_aligns_and_dashes_unknowns() {
        let s = SessionView {
            id: 7,
            shard: 1,
            door: Door::Xpra,
            tls: true,
            websocket: false,
            user: Some("alice".into()),
            target: None,
            client: Some("127.0.0.1:5000".into()),
            bytes_to_backend: 10,
            bytes_to_client: 2000,
            age_secs: 65.2,
            started_unix: 0.0,
        };
        let t = table(&[s]);
        let lines: Vec<&str> = t.lines().collect();
        assert!(lines[0].starts_with("ID  SHARD  DOOR"), "{t}");
        assert!(
            lines[1].contains("xpra/tls") && lines[1].contains("alice"),
            "{t}"
        );
        assert!(lines[1].contains("1m05s"), "{t}");
        assert_eq!(lines[0].find("USER"), lines[1].find("alice"));
        assert_eq!(table(&[]), "no sessions\n");
    }
}
