//! Faults on one side close the other promptly, say why, and touch no other session.

mod common;
use common::{connect, dead_addr, reset, transfer, Backend, RelayProcess};
use std::io::{Read, Write};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

/// Reads until EOF or error; returns how long that took.
fn time_to_close(s: &mut std::net::TcpStream) -> Duration {
    let start = Instant::now();
    let mut buf = [0u8; 65536];
    loop {
        match s.read(&mut buf) {
            Ok(0) | Err(_) => return start.elapsed(),
            Ok(_) => {}
        }
    }
}

#[test]
fn refused_backend_closes_the_client_promptly_and_logs_why() {
    let backend = dead_addr();
    let relay = RelayProcess::start(&["--forward", &backend.to_string()]);
    let mut c = relay.connect();
    let took = time_to_close(&mut c);
    assert!(
        took < Duration::from_secs(2),
        "client closed after {took:?}"
    );
    assert!(
        relay.wait_for_log(
            "backend unreachable: Connection refused",
            Duration::from_secs(5)
        ),
        "no log line: {}",
        relay.stderr()
    );
    assert!(
        relay.stderr().contains(&backend.to_string()),
        "log names the backend: {}",
        relay.stderr()
    );
}

#[test]
fn backend_dying_mid_stream_closes_its_client_and_spares_the_others() {
    // Connections whose header says seed 0 die after 1 MiB; the others are normal transfers.
    let normal = Backend::transfer();
    let normal_addr = normal.addr;
    let backend = Backend::start(move |mut s| {
        let mut first = [0u8; 1];
        s.read_exact(&mut first).unwrap();
        if first[0] == b'D' {
            s.write_all(&vec![1u8; 1 << 20]).unwrap();
            reset(s);
        } else {
            // Splice the rest to the transfer backend so the other session is a real one.
            let mut up = connect(normal_addr);
            up.write_all(&first).unwrap();
            let (mut a, mut b) = (s.try_clone().unwrap(), up.try_clone().unwrap());
            let t = thread::spawn(move || {
                std::io::copy(&mut a, &mut b).map(|_| b.shutdown(std::net::Shutdown::Write))
            });
            let _ = std::io::copy(&mut up, &mut s);
            let _ = s.shutdown(std::net::Shutdown::Write);
            let _ = t.join();
        }
    });
    let relay = RelayProcess::start(&["--forward", &backend.addr.to_string()]);
    let (tx, rx) = mpsc::channel();
    let addr = relay.addr;
    // The bystander: a 32 MiB two-way transfer whose header starts with a byte != 'D'.
    thread::spawn(move || tx.send(transfer(addr, 0x11, 32 << 20)).unwrap());

    let mut victim = relay.connect();
    victim.write_all(b"D").unwrap();
    let took = time_to_close(&mut victim);
    assert!(
        took < Duration::from_secs(2),
        "victim saw the close after {took:?}"
    );
    rx.recv_timeout(Duration::from_secs(60))
        .unwrap()
        .expect("bystander session intact");
}

#[test]
fn client_reset_mid_stream_closes_the_backend_and_the_relay_serves_on() {
    let (tx, rx) = mpsc::channel();
    let tx = std::sync::Mutex::new(tx);
    let backend = Backend::start(move |mut s| {
        let start = Instant::now();
        let mut buf = [0u8; 65536];
        let mut total = 0;
        let outcome = loop {
            match s.read(&mut buf) {
                Ok(0) => break "eof",
                Err(_) => break "error",
                Ok(n) => total += n,
            }
        };
        let _ = tx.lock().unwrap().send((outcome, total, start.elapsed()));
    });
    let relay = RelayProcess::start(&["--forward", &backend.addr.to_string()]);
    let mut c = relay.connect();
    c.write_all(&vec![7u8; 4 << 20]).unwrap();
    thread::sleep(Duration::from_millis(100));
    reset(c);
    let (outcome, total, _) = rx
        .recv_timeout(Duration::from_secs(3))
        .expect("backend saw the close within 3 s");
    assert!(total > 0, "backend got bytes before the reset ({outcome})");

    // A new session still works.
    let mut c2 = relay.connect();
    c2.write_all(b"after").unwrap();
    c2.shutdown(std::net::Shutdown::Write).unwrap();
    let (outcome, total, _) = rx.recv_timeout(Duration::from_secs(5)).unwrap();
    assert_eq!((outcome, total), ("eof", 5));
}
