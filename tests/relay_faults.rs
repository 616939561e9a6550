//! Faults on one side close the other promptly, say why, and touch no other session.

mod common;
use common::{connect, dead_addr, reset, transfer, Backend, RelayProcess};
use std::io::{Read, Write};
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{mpsc, Arc};
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

/// Echoes 64 KiB rounds through `s`, each checked byte for byte, counting them in `done`,
/// until `stop`. The first byte written is `E` (what the backend routes on).
fn keep_echoing(
    mut s: std::net::TcpStream,
    done: Arc<AtomicU32>,
    stop: Arc<AtomicBool>,
) -> Result<(), String> {
    while !stop.load(Ordering::Relaxed) {
        let rounds = done.load(Ordering::Relaxed);
        let mut sent: Vec<u8> = (0..65_536u32)
            .map(|i| (i.wrapping_mul(31).wrapping_add(rounds) % 251) as u8)
            .collect();
        sent[0] = b'E';
        s.write_all(&sent)
            .map_err(|e| format!("round {rounds}: {e}"))?;
        let mut back = vec![0u8; sent.len()];
        s.read_exact(&mut back)
            .map_err(|e| format!("round {rounds}: {e}"))?;
        if back != sent {
            return Err(format!("round {rounds}: the echo differs"));
        }
        done.store(rounds + 1, Ordering::Relaxed);
        thread::sleep(Duration::from_millis(10));
    }
    Ok(())
}

/// Waits up to 10 s for `done` to reach `n` rounds.
fn wait_rounds(done: &AtomicU32, n: u32) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while done.load(Ordering::Relaxed) < n {
        assert!(
            Instant::now() < deadline,
            "the bystander did not reach {n} rounds"
        );
        thread::sleep(Duration::from_millis(5));
    }
}

#[test]
fn client_reset_mid_stream_closes_the_backend_and_the_relay_serves_on() {
    let (tx, rx) = mpsc::channel();
    let tx = std::sync::Mutex::new(tx);
    // Connections starting with `E` are echoed (the bystander); the others are counted.
    let backend = Backend::start(move |mut s| {
        let start = Instant::now();
        let mut buf = [0u8; 65536];
        let mut total = 0;
        let mut echo = None;
        let outcome = loop {
            match s.read(&mut buf) {
                Ok(0) => break "eof",
                Err(_) => break "error",
                Ok(n) => {
                    if *echo.get_or_insert(buf[0] == b'E') {
                        if s.write_all(&buf[..n]).is_err() {
                            break "error";
                        }
                    } else {
                        total += n
                    }
                }
            }
        };
        if echo != Some(true) {
            let _ = tx.lock().unwrap().send((outcome, total, start.elapsed()));
        }
    });
    let relay = RelayProcess::start(&["--forward", &backend.addr.to_string()]);
    let stop = Arc::new(AtomicBool::new(false));
    let done = Arc::new(AtomicU32::new(0));
    let bystander = relay.connect();
    let bystander = {
        let (done, stop) = (Arc::clone(&done), Arc::clone(&stop));
        thread::spawn(move || keep_echoing(bystander, done, stop))
    };
    wait_rounds(&done, 3);

    let mut c = relay.connect();
    let victim_port = c.local_addr().unwrap().port();
    c.write_all(&vec![7u8; 4 << 20]).unwrap();
    thread::sleep(Duration::from_millis(100));
    reset(c);
    let at_reset = done.load(Ordering::Relaxed);
    let (outcome, total, _) = rx
        .recv_timeout(Duration::from_secs(3))
        .expect("backend saw the close within 3 s");
    assert!(total > 0, "backend got bytes before the reset ({outcome})");
    // The victim's end line says what happened to it.
    let line = format!("client=127.0.0.1:{victim_port}");
    let deadline = Instant::now() + Duration::from_secs(5);
    let end = loop {
        let log = relay.stderr();
        let found = log
            .lines()
            .find(|l| l.contains("session end") && l.contains(&line))
            .map(str::to_string);
        if let Some(found) = found {
            break found;
        }
        assert!(Instant::now() < deadline, "no end line for {line}:\n{log}");
        thread::sleep(Duration::from_millis(20));
    };
    assert!(
        end.contains("reason=\"client error: Connection reset by peer"),
        "{end}"
    );

    // A new session still works.
    let mut c2 = relay.connect();
    c2.write_all(b"after").unwrap();
    c2.shutdown(std::net::Shutdown::Write).unwrap();
    let (outcome, total, _) = rx.recv_timeout(Duration::from_secs(5)).unwrap();
    assert_eq!((outcome, total), ("eof", 5));

    // And the bystander, open across all of it, kept every byte, before and after.
    wait_rounds(&done, at_reset + 3);
    stop.store(true, Ordering::Relaxed);
    bystander.join().unwrap().expect("bystander session intact");
}
