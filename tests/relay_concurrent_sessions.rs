//! Many sessions at once, every data path: 200 concurrent sessions each move 256 KiB both
//! ways at the same time, in writes of varying sizes, checked byte for byte.

mod common;
use common::{transfers, Backend, RelayProcess};

const SESSIONS: u64 = 200;
const BYTES_EACH_WAY: u64 = 256 * 1024;

fn two_hundred_sessions_byte_exact(data_path: &str) {
    let backend = Backend::transfer();
    let relay = RelayProcess::start(&[
        "--shards",
        "2",
        "--data-path",
        data_path,
        "--forward",
        &backend.addr.to_string(),
    ]);
    let failures = transfers(relay.addr, SESSIONS, BYTES_EACH_WAY);
    assert!(
        failures.is_empty(),
        "{} of {SESSIONS} sessions failed: {:?}",
        failures.len(),
        &failures[..failures.len().min(5)]
    );
}

#[test]
fn copy_path_relays_200_concurrent_sessions_byte_exact() {
    two_hundred_sessions_byte_exact("copy");
}

#[test]
fn splice_path_relays_200_concurrent_sessions_byte_exact() {
    two_hundred_sessions_byte_exact("splice");
}

#[test]
fn auto_path_relays_200_concurrent_sessions_byte_exact() {
    two_hundred_sessions_byte_exact("auto");
}
