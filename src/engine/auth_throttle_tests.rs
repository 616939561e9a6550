//! The throttle's contract, on a clock the tests move by hand.

use super::*;

fn ip(s: &str) -> Option<IpAddr> {
    Some(s.parse().unwrap())
}

fn settings() -> ThrottleSettings {
    ThrottleSettings {
        max_failures: 3,
        window: Duration::from_secs(60),
        backoff: Duration::from_secs(10),
        max_backoff: Duration::from_secs(35),
    }
}

#[test]
fn an_address_is_blocked_after_its_failures_and_others_are_not() {
    let t = AuthThrottle::new(settings());
    let now = Instant::now();
    let a = ip("192.0.2.1");
    for (i, user) in ["u1", "u2", "u3"].iter().enumerate() {
        assert!(t.check_at(now, a, Some(user)).is_ok(), "attempt {i}");
        t.failed_at(now, a, Some(user));
    }
    let b = t.check_at(now, a, Some("ann")).unwrap_err();
    assert_eq!(b.subject, Subject::Address("192.0.2.1".parse().unwrap()));
    assert_eq!(b.retry_secs(), 10);
    // Another address, and the users tried once each, are fine.
    assert!(t.check_at(now, ip("192.0.2.2"), Some("ann")).is_ok());
    assert!(t.check_at(now, ip("192.0.2.2"), Some("u1")).is_ok());
    assert_eq!(t.refused(), 1);
    // The block ends.
    assert!(t
        .check_at(now + Duration::from_secs(10), a, Some("ann"))
        .is_ok());
}

#[test]
fn a_user_is_blocked_whatever_the_address() {
    let t = AuthThrottle::new(settings());
    let now = Instant::now();
    for n in 1..=3 {
        t.failed_at(now, ip(&format!("192.0.2.{n}")), Some("zoe"));
    }
    let b = t
        .check_at(now, ip("198.51.100.7"), Some("zoe"))
        .unwrap_err();
    assert_eq!(b.subject, Subject::User("zoe".into()));
    assert!(t.check_at(now, ip("198.51.100.7"), Some("ann")).is_ok());
}

#[test]
fn blocks_double_up_to_the_cap_and_quiet_time_forgets() {
    let t = AuthThrottle::new(settings());
    let a = ip("192.0.2.1");
    let mut now = Instant::now();
    for _ in 0..3 {
        t.failed_at(now, a, None);
    }
    let mut seen = Vec::new();
    for _ in 0..4 {
        let b = t.check_at(now, a, None).unwrap_err();
        seen.push(b.retry_secs());
        // Right after the block, one more failure blocks again, twice as long.
        now += b.retry_after;
        assert!(t.check_at(now, a, None).is_ok());
        t.failed_at(now, a, None);
    }
    assert_eq!(seen, vec![10, 20, 35, 35]);
    // A window of quiet after the block: forgotten, three failures again before a block.
    now += Duration::from_secs(35 + 60);
    assert!(t.check_at(now, a, None).is_ok());
    t.failed_at(now, a, None);
    t.failed_at(now, a, None);
    assert!(t.check_at(now, a, None).is_ok());
    t.failed_at(now, a, None);
    assert_eq!(t.check_at(now, a, None).unwrap_err().retry_secs(), 10);
}

#[test]
fn a_success_forgets_the_address_and_the_user() {
    let t = AuthThrottle::new(settings());
    let now = Instant::now();
    let a = ip("192.0.2.1");
    t.failed_at(now, a, Some("zoe"));
    t.failed_at(now, a, Some("zoe"));
    t.succeeded(a, Some("zoe"));
    t.failed_at(now, a, Some("zoe"));
    t.failed_at(now, a, Some("zoe"));
    assert!(t.check_at(now, a, Some("zoe")).is_ok());
    assert_eq!(t.tracked(), 2);
}

#[test]
fn zero_failures_switches_it_off_and_a_reload_keeps_the_counts() {
    let t = AuthThrottle::new(ThrottleSettings {
        max_failures: 0,
        ..settings()
    });
    let now = Instant::now();
    let a = ip("192.0.2.1");
    for _ in 0..10 {
        t.failed_at(now, a, None);
    }
    assert!(t.check_at(now, a, None).is_ok());
    assert_eq!(t.tracked(), 0);
    t.set(settings());
    for _ in 0..2 {
        t.failed_at(now, a, None);
    }
    assert!(t.check_at(now, a, None).is_ok());
    t.set(ThrottleSettings {
        max_failures: 2,
        ..settings()
    });
    t.failed_at(now, a, None);
    assert!(t.check_at(now, a, None).is_err());
}

#[test]
fn a_spray_of_addresses_and_names_cannot_grow_the_table() {
    let t = AuthThrottle::with_capacity(settings(), 100);
    let now = Instant::now();
    let blocked = ip("192.0.2.1");
    for _ in 0..3 {
        t.failed_at(now, blocked, None);
    }
    for n in 0..10_000u32 {
        let addr = IpAddr::from(n.to_be_bytes());
        t.failed_at(
            now,
            Some(addr),
            Some(&format!("user{n}{}", "x".repeat(200))),
        );
        if n % 10 == 0 {
            // A blocked address that keeps knocking stays in the table.
            assert!(t.check_at(now, blocked, None).is_err());
        }
        assert!(t.tracked() <= 100);
    }
    let table = t.lock();
    assert_eq!(table.order.len(), table.entries.len());
    assert!(table.entries.keys().all(|k| match k {
        Subject::User(u) => u.len() <= USER_KEY_MAX,
        Subject::Address(_) => true,
    }));
}

/// What a login pays for the throttle with a full table: a lock and two lookups, well
/// under a microsecond, against a challenge's HMAC and a password-file stat.
#[test]
fn a_check_costs_a_lookup() {
    let t = AuthThrottle::new(settings());
    let now = Instant::now();
    for n in 0..DEFAULT_CAPACITY as u32 {
        t.failed_at(now, Some(IpAddr::from(n.to_be_bytes())), None);
    }
    let rounds = 100_000u32;
    let started = Instant::now();
    for n in 0..rounds {
        let _ = t.check_at(now, Some(IpAddr::from((n * 7).to_be_bytes())), Some("zoe"));
    }
    let per = started.elapsed() / rounds;
    eprintln!("check with {} entries: {per:?}", t.tracked());
    assert!(per < Duration::from_micros(50), "{per:?}");
}
