//! `--config FILE` and `deskrelay check-config FILE`: the shipped example is valid once its
//! files exist, every error is reported with its line, and the command line overrides.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::process::Command;

fn deskrelay(args: &[&str]) -> (i32, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_deskrelay"))
        .args(args)
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.code().unwrap_or(-1), text)
}

#[test]
fn the_shipped_example_config_is_valid_with_its_files_in_place() {
    let dir = std::env::temp_dir().join(format!("deskrelay-dist-{}", std::process::id()));
    std::fs::create_dir_all(dir.join("tls")).unwrap();
    let users = dir.join("users");
    std::fs::copy("dist/users.example", &users).unwrap();
    std::fs::set_permissions(&users, std::fs::Permissions::from_mode(0o600)).unwrap();
    std::fs::copy("dist/tokens.example", dir.join("tokens")).unwrap();
    let key = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
    std::fs::write(dir.join("tls/fullchain.pem"), key.cert.pem()).unwrap();
    std::fs::write(dir.join("tls/privkey.pem"), key.key_pair.serialize_pem()).unwrap();
    let text = std::fs::read_to_string("dist/deskrelay.toml")
        .unwrap()
        .replace("/etc/deskrelay", dir.to_str().unwrap())
        .replace("/run/deskrelay", dir.to_str().unwrap())
        .replace("0.0.0.0:443", "127.0.0.1:0")
        .replace("127.0.0.1:9711", "127.0.0.1:0");
    let config = dir.join("deskrelay.toml");
    std::fs::write(&config, text).unwrap();
    let (code, out) = deskrelay(&["check-config", config.to_str().unwrap()]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains(": ok"), "{out}");

    // And it runs: `proxy --config` listens where the file says (port 0 here).
    let relay = common::RelayProcess::start(&["--config", config.to_str().unwrap()]);
    assert_eq!(relay.addr.ip().to_string(), "127.0.0.1");
    assert!(
        dir.join("deskrelay.sock").exists(),
        "the control socket it names"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn check_config_lists_every_error_with_its_line_and_fails() {
    let path = std::env::temp_dir().join(format!("deskrelay-bad-{}.toml", std::process::id()));
    std::fs::write(
        &path,
        "shards = 2\nbind = [\"nowhere\"]\ndata-path = \"copy\"\nspeed = \"ludicrous\"\n",
    )
    .unwrap();
    let (code, out) = deskrelay(&["check-config", path.to_str().unwrap()]);
    let _ = std::fs::remove_file(&path);
    assert_eq!(code, 1, "{out}");
    let p = path.display();
    assert!(
        out.contains(&format!("{p}:2: invalid value 'nowhere'")),
        "{out}"
    );
    assert!(
        out.contains(&format!("{p}:4: unknown key `speed`")),
        "{out}"
    );
    assert_eq!(out.lines().count(), 2, "{out}");
}

/// Runs `deskrelay ARGS` until it prints `listening on`, then kills it: its stderr.
/// `DESKRELAY_LOG` is `log_env`, or unset.
fn stderr_until_listening(args: &[&str], log_env: Option<&str>) -> String {
    use std::io::{BufRead, Read};
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_deskrelay"));
    cmd.args(args)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    match log_env {
        Some(filter) => cmd.env("DESKRELAY_LOG", filter),
        None => cmd.env_remove("DESKRELAY_LOG"),
    };
    let mut child = cmd.spawn().unwrap();
    let stdout = std::io::BufReader::new(child.stdout.take().unwrap());
    let listening = stdout
        .lines()
        .map_while(Result::ok)
        .any(|l| l.starts_with("listening on "));
    let _ = child.kill();
    let _ = child.wait();
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    assert!(listening, "no `listening on`; stderr:\n{stderr}");
    stderr
}

#[test]
fn log_and_log_format_are_keys_for_check_config_and_proxy_alike() {
    let dir = common::Scratch::new("cfg-log");
    let config = dir.file(
        "deskrelay.toml",
        "bind = [\"127.0.0.1:0\"]\nshards = 1\nlog = \"warn\"\nlog-format = \"json\"\n",
    );
    let config = config.to_str().unwrap();
    let (code, out) = deskrelay(&["check-config", config]);
    assert_eq!((code, out.trim()), (0, format!("{config}: ok").as_str()));

    let start_line = "relaying every connection";
    let quiet = stderr_until_listening(&["proxy", "--config", config], None);
    assert!(
        !quiet.contains(start_line),
        "the file's `log = warn`:\n{quiet}"
    );
    // The command line's level, the file's format.
    let json = stderr_until_listening(&["--log", "info", "proxy", "--config", config], None);
    let line = json.lines().find(|l| l.contains(start_line));
    let line = line.unwrap_or_else(|| panic!("no start line:\n{json}"));
    assert!(
        line.starts_with('{') && line.contains("\"level\":\"INFO\""),
        "{line}"
    );
    // DESKRELAY_LOG beats the file too; `--log-format` after the subcommand does.
    let args = ["proxy", "--config", config, "--log-format", "text"];
    let text = stderr_until_listening(&args, Some("info"));
    let line = text.lines().find(|l| l.contains(start_line));
    let line = line.unwrap_or_else(|| panic!("no start line:\n{text}"));
    assert!(!line.starts_with('{') && line.contains("INFO"), "{line}");
}

#[test]
fn check_config_puts_whole_configuration_errors_on_their_lines() {
    let dir = common::Scratch::new("cfg-whole");
    let config = dir.file(
        "deskrelay.toml",
        "# errors only the whole file shows, among per-key ones\n\
         bind = [\"127.0.0.1:0\"]\n\
         auth = \"multifile:/nonexistent/deskrelay-users\"\n\
         session = \"tcp://127.0.0.1:1/\"\n\
         shards = \"many\"\n\
         idle-timeout = -1\n\
         auth-backoff = 50\n\
         auth-backoff-max = 10\n\
         tls-cert = \"/nonexistent/cert.pem\"\n\
         tls-key = \"/nonexistent/key.pem\"\n\
         group = \"root\"\n",
    );
    let (code, out) = deskrelay(&["check-config", config.to_str().unwrap()]);
    assert_eq!(code, 1, "{out}");
    let p = config.display();
    let expect = [
        format!("{p}:3: --auth multifile: "),
        format!("{p}:4: --session is for --auth allow"),
        format!("{p}:5: invalid value 'many' for '--shards"),
        format!("{p}:6: --idle-timeout: -1 is not a duration"),
        format!("{p}:7: --auth-backoff must not exceed --auth-backoff-max"),
        format!("{p}:9: TLS: /nonexistent/cert.pem"),
        format!("{p}:11: `group` needs `user`"),
    ];
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), expect.len(), "{out}");
    for (line, want) in lines.iter().zip(&expect) {
        assert!(
            line.starts_with(want.as_str()),
            "{line}\nwanted {want}\n{out}"
        );
    }
}

#[test]
fn every_proxy_flag_is_a_config_key() {
    use clap::CommandFactory;
    let mut cli = deskrelay::control::cli::Cli::command();
    cli.build();
    let proxy = cli.find_subcommand("proxy").expect("a proxy subcommand");
    let keys: Vec<&str> = proxy
        .get_arguments()
        .filter_map(|a| a.get_long())
        .filter(|&long| long != "help" && long != "config")
        .collect();
    for global in ["log", "log-format"] {
        assert!(
            keys.contains(&global),
            "the walk sees the globals: {keys:?}"
        );
    }
    // Any value: a bad one is an error on its line, but never an unknown key.
    let mut text: String = keys.iter().map(|k| format!("{k} = \"x\"\n")).collect();
    text.push_str("no-such-flag = 1\n");
    let dir = common::Scratch::new("cfg-every");
    let config = dir.file("deskrelay.toml", &text);
    let (code, out) = deskrelay(&["check-config", config.to_str().unwrap()]);
    assert_eq!(code, 1, "{out}");
    let unknown: Vec<&str> = out.lines().filter(|l| l.contains("unknown key")).collect();
    let last = keys.len() + 1;
    assert_eq!(
        unknown,
        vec![format!(
            "{}:{last}: unknown key `no-such-flag`",
            config.display()
        )],
        "every flag of `proxy` must be a key of the file"
    );
}
