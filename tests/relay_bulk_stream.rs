//! One large stream: 256 MiB each way at the same time through one session, per data path,
//! checked byte for byte (the auto path switches to splice and back during it).

mod common;
use common::{transfer, Backend, RelayProcess};

const BYTES_EACH_WAY: u64 = 256 * 1024 * 1024;

fn bulk_both_ways(data_path: &str) {
    let backend = Backend::transfer();
    let relay = RelayProcess::start(&[
        "--data-path",
        data_path,
        "--forward",
        &backend.addr.to_string(),
    ]);
    transfer(relay.addr, 7, BYTES_EACH_WAY).unwrap();
}

#[test]
fn copy_path_carries_256_mib_each_way() {
    bulk_both_ways("copy");
}

#[test]
fn splice_path_carries_256_mib_each_way() {
    bulk_both_ways("splice");
}

#[test]
fn auto_path_carries_256_mib_each_way() {
    bulk_both_ways("auto");
}

#[test]
fn ring_issued_splices_carry_256_mib_each_way() {
    let backend = Backend::transfer();
    let relay = RelayProcess::start(&[
        "--data-path",
        "splice",
        "--splice-via",
        "ring",
        "--forward",
        &backend.addr.to_string(),
    ]);
    transfer(relay.addr, 9, BYTES_EACH_WAY).unwrap();
}
