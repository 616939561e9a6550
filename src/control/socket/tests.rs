use super::*;
use crate::control::registry::{Door, Registry};
use crate::control::stats::Stats;
use std::io::Read;
use std::sync::atomic::AtomicUsize;
use std::time::Instant;

/// A fresh directory for one test's sockets.
fn scratch(tag: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("deskrelay-ctl-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn sources() -> Sources {
    Sources {
        stats: Arc::new(Stats::new(2)),
        registry: Arc::new(Registry::new(2)),
        started: Instant::now(),
        data_path: "auto".into(),
        splice_via: "syscall".into(),
        xpra: None,
    }
}

fn ask(path: &Path, request: &str) -> String {
    let mut s = UnixStream::connect(path).unwrap();
    s.write_all(format!("{request}\n").as_bytes()).unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    out
}

#[test]
fn the_socket_is_private_answers_and_goes_away() {
    let dir = scratch("serve");
    let path = dir.join("nested").join("ctl.sock");
    let src = sources();
    let registry = Arc::clone(&src.registry);
    let _held = registry.register(1, None, Door::L4);
    let stops = Arc::new(AtomicUsize::new(0));
    let seen = Arc::clone(&stops);
    let server = ControlSocket::bind(&path)
        .unwrap()
        .serve(src, move || {
            seen.fetch_add(1, Ordering::Relaxed);
        })
        .unwrap();
    let mode = std::fs::metadata(&path).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600);

    let info: serde_json::Value = serde_json::from_str(&ask(&path, "info")).unwrap();
    assert_eq!(info["schema"], 1);
    assert_eq!(info["sessions"], 1);
    assert_eq!(info["shards"][1]["sessions"], 1);
    let list: serde_json::Value = serde_json::from_str(&ask(&path, "list")).unwrap();
    assert_eq!(list["sessions"][0]["door"], "l4");
    let bad: serde_json::Value = serde_json::from_str(&ask(&path, "dance")).unwrap();
    assert!(bad["error"].as_str().unwrap().contains("dance"), "{bad}");
    let stop: serde_json::Value = serde_json::from_str(&ask(&path, "stop")).unwrap();
    assert_eq!(stop["stopping"], true);
    assert_eq!(stops.load(Ordering::Relaxed), 1);

    // A second relay on the same path is refused while this one serves.
    let err = ControlSocket::bind(&path).unwrap_err();
    assert!(matches!(err, ControlError::InUse(_)), "{err}");
    drop(server);
    assert!(!path.exists(), "the socket file is removed");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_stale_socket_is_replaced_and_a_file_is_not() {
    let dir = scratch("stale");
    let path = dir.join("ctl.sock");
    // A listener that is gone leaves its file behind, like a relay that was killed.
    drop(UnixListener::bind(&path).unwrap());
    assert!(path.exists());
    let socket = ControlSocket::bind(&path).expect("stale socket replaced");
    drop(socket);

    let file = dir.join("not-a-socket");
    std::fs::write(&file, "keep me").unwrap();
    let err = ControlSocket::bind(&file).unwrap_err();
    assert!(matches!(err, ControlError::NotASocket(_)), "{err}");
    assert_eq!(std::fs::read_to_string(&file).unwrap(), "keep me");
    std::fs::remove_dir_all(&dir).unwrap();
}
