//! The config file's contract: keys are flag names, the command line wins, and every error
//! comes back with its line.

use std::io::Write;

use super::super::cli::{Command, LogFormat};
use super::*;

fn file(text: &str) -> (tempdir::Dir, PathBuf) {
    let dir = tempdir::Dir::new();
    let path = dir.0.join("deskrelay.toml");
    std::fs::File::create(&path)
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    (dir, path)
}

mod tempdir {
    pub struct Dir(pub std::path::PathBuf);
    impl Dir {
        pub fn new() -> Self {
            static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
            let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let p = std::env::temp_dir().join(format!("deskrelay-cfg-{}-{n}", std::process::id()));
            std::fs::create_dir_all(&p).unwrap();
            Dir(p)
        }
    }
    impl Drop for Dir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

#[test]
fn the_file_sets_flags_and_the_command_line_overrides_them() {
    let (_d, path) = file(
        "# a relay\nbind = [\"127.0.0.1:15000\", \"127.0.0.1:15001\"]\nshards = 1\nconnect-timeout = 2.5\n",
    );
    let p = path.to_str().unwrap();
    let cli = Cli::try_parse_from_args(["deskrelay", "proxy", "--config", p]).unwrap();
    let cfg = cli.into_config().unwrap();
    assert_eq!(cfg.binds.len(), 2);
    assert_eq!(cfg.shards, 1);
    assert_eq!(cfg.connect_timeout, std::time::Duration::from_millis(2500));

    let cli = Cli::try_parse_from_args([
        "deskrelay",
        "proxy",
        "--config",
        p,
        "--shards",
        "3",
        "--bind",
        "127.0.0.1:16000",
    ])
    .unwrap();
    let cfg = cli.into_config().unwrap();
    assert_eq!(cfg.shards, 3, "the command line wins");
    assert_eq!(cfg.binds, vec!["127.0.0.1:16000".parse().unwrap()]);
}

#[test]
fn check_reports_every_error_with_its_line() {
    let (_d, path) =
        file("bind = \"not an address\"\nshards = 1\nno-such-flag = 3\ndata-path = \"teleport\"\n");
    let errors = check(&path);
    let lines: Vec<usize> = errors.iter().map(|e| e.line).collect();
    assert_eq!(lines, vec![1, 3, 4], "{errors:#?}");
    assert!(
        errors[1].message.contains("unknown key `no-such-flag`"),
        "{errors:#?}"
    );
    assert!(errors[0]
        .to_string()
        .starts_with(&format!("{}:1: ", path.display())));
}

#[test]
fn syntax_errors_and_combinations_are_reported_too() {
    let (_d, path) = file("bind = [\n");
    let errors = check(&path);
    assert_eq!(errors.len(), 1, "{errors:#?}");
    assert!(errors[0].line >= 1);

    let (_d2, path) = file("shards = 1\nsession = \"tcp://127.0.0.1:1/\"\n");
    let errors = check(&path);
    assert_eq!(errors.len(), 1, "{errors:#?}");
    assert_eq!(errors[0].line, 2, "on the line of the key it is about");
    assert!(
        errors[0].message.contains("--session needs --auth allow"),
        "{errors:#?}"
    );

    let (_d3, path) = file("shards = 2\n");
    assert!(check(&path).is_empty());
}

#[test]
fn the_metrics_address_is_a_key_like_any_flag() {
    let (_d, path) = file("shards = 1\nmetrics = \"127.0.0.1:9711\"\n");
    assert!(check(&path).is_empty(), "{:#?}", check(&path));
    let p = path.to_str().unwrap();
    let cfg = Cli::try_parse_from_args(["deskrelay", "proxy", "--config", p])
        .unwrap()
        .into_config()
        .unwrap();
    assert_eq!(cfg.metrics, Some("127.0.0.1:9711".parse().unwrap()));

    let (_d2, path) = file("shards = 1\nmetrics = \"localhost\"\n");
    let errors = check(&path);
    assert_eq!(errors.len(), 1, "{errors:#?}");
    assert_eq!(errors[0].line, 2, "{errors:#?}");
}

#[test]
fn limit_keys_reach_the_config_and_bad_ones_are_reported() {
    let (_d, path) = file(
        "auth = \"allow\"\nsession = \"tcp://127.0.0.1:1/\"\npre-auth-timeout = 2.5\n\
         idle-timeout = 90\nauth-fail-limit = 3\nauth-fail-window = 30\nauth-backoff = 5\n\
         auth-backoff-max = 40\nmax-sessions = 9\n",
    );
    assert!(check(&path).is_empty(), "{:#?}", check(&path));
    let p = path.to_str().unwrap();
    let cfg = Cli::try_parse_from_args(["deskrelay", "proxy", "--config", p])
        .unwrap()
        .into_config()
        .unwrap();
    let secs = std::time::Duration::from_secs;
    assert_eq!(
        cfg.xpra.as_ref().unwrap().pre_auth_timeout,
        std::time::Duration::from_millis(2500)
    );
    assert_eq!(cfg.idle_timeout, Some(secs(90)));
    assert_eq!(cfg.max_sessions, Some(9));
    let auth = cfg.auth_throttle;
    assert_eq!(
        (
            auth.max_failures,
            auth.window,
            auth.backoff,
            auth.max_backoff
        ),
        (3, secs(30), secs(5), secs(40))
    );
    // SIGHUP reads the file again, under the same command line.
    let source = cfg.reload_from.clone().expect("a config source");
    assert_eq!(source.path, path);
    let limits = Cli::limits_from_args(&source.args).unwrap();
    assert_eq!(limits, cfg.limit_settings());

    let (_d2, path) = file("auth-backoff = 50\nauth-backoff-max = 10\n");
    let errors = check(&path);
    assert_eq!(errors.len(), 1, "{errors:#?}");
    assert!(errors[0].message.contains("--auth-backoff must not exceed"));
    assert_eq!(errors[0].line, 1, "{errors:#?}");
    let (_d3, path) = file("shards = 1\nidle-timeout = -1\n");
    let errors = check(&path);
    assert_eq!(errors.len(), 1, "{errors:#?}");
    assert_eq!(errors[0].line, 2, "{errors:#?}");
    assert!(errors[0].message.contains("--idle-timeout"), "{errors:#?}");
    let (_d4, path) = file("auth-fail-limit = \"many\"\n");
    assert_eq!(check(&path)[0].line, 1);
}

#[test]
fn log_and_log_format_are_keys_and_the_command_line_still_wins() {
    let (_d, path) = file("shards = 1\nlog = \"warn\"\nlog-format = \"json\"\n");
    assert!(check(&path).is_empty(), "{:#?}", check(&path));
    let p = path.to_str().unwrap();
    let cli = Cli::try_parse_from_args(["deskrelay", "proxy", "--config", p]).unwrap();
    assert_eq!(
        (cli.log.as_str(), cli.log_format),
        ("warn", LogFormat::Json)
    );
    // Globals go before or after the subcommand; either way they beat the file.
    let before = ["deskrelay", "--log", "debug", "proxy", "--config", p];
    let cli = Cli::try_parse_from_args(before).unwrap();
    assert_eq!(
        (cli.log.as_str(), cli.log_format),
        ("debug", LogFormat::Json)
    );
    let after = ["deskrelay", "proxy", "--config", p, "--log-format", "text"];
    let cli = Cli::try_parse_from_args(after).unwrap();
    assert_eq!(
        (cli.log.as_str(), cli.log_format),
        ("warn", LogFormat::Text)
    );

    let (_d2, path) = file("log = \"=[bad\"\nlog-format = \"yaml\"\n");
    let lines: Vec<usize> = check(&path).iter().map(|e| e.line).collect();
    assert_eq!(lines, vec![1, 2], "{:#?}", check(&path));
}

#[test]
fn whole_configuration_errors_are_all_reported_on_their_keys_lines() {
    let (_d, path) = file(
        "shards = 1\n\
         auth = \"multifile:/nonexistent/deskrelay-users\"\n\
         idle-timeout = -1\n\
         auth-backoff = 50\n\
         auth-backoff-max = 10\n\
         tls-cert = \"/nonexistent/cert.pem\"\n\
         tls-key = \"/nonexistent/key.pem\"\n\
         data-path = \"teleport\"\n\
         copy-buffer = 16\n\
         speed = 1\n",
    );
    let errors = check(&path);
    let found: Vec<(usize, &str)> = errors
        .iter()
        .map(|e| (e.line, e.message.as_str()))
        .collect();
    let expect = [
        (2, "--auth multifile"),
        (3, "--idle-timeout"),
        (4, "--auth-backoff must not exceed --auth-backoff-max"),
        (6, "TLS: /nonexistent/cert.pem"),
        (8, "invalid value 'teleport'"),
        (9, "--copy-buffer must be between"),
        (10, "unknown key `speed`"),
    ];
    assert_eq!(found.len(), expect.len(), "{errors:#?}");
    for ((line, message), (want_line, want)) in found.iter().zip(expect) {
        assert_eq!(*line, want_line, "{errors:#?}");
        assert!(message.contains(want), "line {line}: {message}");
    }
}

#[test]
fn flags_that_need_others_are_judged_on_the_whole_file() {
    let (_d, path) = file("shards = 1\ngroup = \"root\"\ntls-cert = \"/x.pem\"\n");
    let errors = check(&path);
    let found: Vec<(usize, &str)> = errors
        .iter()
        .map(|e| (e.line, e.message.as_str()))
        .collect();
    assert_eq!(
        found,
        vec![
            (2, "`group` needs `user`"),
            (3, "`tls-cert` needs `tls-key`")
        ]
    );
    // What the file lacks, the command line may give.
    let (_d2, path) = file("tls-key = \"/key.pem\"\n");
    let p = path.to_str().unwrap();
    let cli = [
        "deskrelay",
        "proxy",
        "--config",
        p,
        "--tls-cert",
        "/cert.pem",
    ];
    let Command::Proxy(args) = Cli::try_parse_from_args(cli).unwrap().command else {
        panic!("a proxy command")
    };
    assert_eq!(args.tls_key, Some(PathBuf::from("/key.pem")));
}

#[test]
fn switches_are_true_or_false() {
    let send_proxy = |text: &str| {
        let (_d, path) = file(text);
        let p = path.to_str().unwrap();
        (
            check(&path),
            Cli::try_parse_from_args(["deskrelay", "proxy", "--config", p])
                .and_then(Cli::into_config)
                .map(|cfg| cfg.send_proxy),
        )
    };
    let (errors, on) = send_proxy("send-proxy = true\n");
    assert!(errors.is_empty() && on.unwrap(), "{errors:#?}");
    let (errors, on) = send_proxy("send-proxy = false\n");
    assert!(errors.is_empty() && !on.unwrap(), "{errors:#?}");
    let (errors, on) = send_proxy("shards = 1\nsend-proxy = \"yes\"\n");
    assert_eq!(errors.len(), 1, "{errors:#?}");
    assert_eq!(errors[0].line, 2);
    assert!(on
        .unwrap_err()
        .to_string()
        .contains(":2: `send-proxy` is a switch"));
}

#[test]
fn config_is_not_a_key() {
    let (_d, path) = file("config = \"/etc/other.toml\"\n");
    let errors = check(&path);
    assert_eq!(errors.len(), 1, "{errors:#?}");
    assert!(errors[0].message.contains("`config` is not a key"));
}
