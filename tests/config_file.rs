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
