use super::*;
use crate::control::stats::Stats;

#[test]
fn a_registration_is_listed_until_dropped() {
    let registry = Registry::new(2);
    let stats = Stats::new(2);
    let client: SocketAddr = "127.0.0.1:4000".parse().unwrap();
    let a = registry.register(1, Some(client), Door::Sniffing);
    let b = registry.register(1, None, Door::L4);
    assert_eq!(registry.counts(), vec![0, 2]);
    let live = a.live(stats.shard(1));
    live.set_door(Door::Xpra);
    live.set_websocket();
    live.set_tls();
    live.set_user(Some("alice"));
    live.set_target(":10");
    live.to_backend().add(5);
    live.to_backend().add(7);
    live.to_client().add(3);
    let views = registry.sessions();
    let v = views.iter().find(|v| v.id == a.entry.id).expect("listed");
    assert_eq!(v.protocol(), "xpra/ws/tls");
    assert_eq!(v.user.as_deref(), Some("alice"));
    assert_eq!(v.target.as_deref(), Some(":10"));
    assert_eq!(v.client.as_deref(), Some("127.0.0.1:4000"));
    assert_eq!((v.bytes_to_backend, v.bytes_to_client), (12, 3));
    // The shard's own counters got the same bytes.
    assert_eq!(stats.total().bytes_client_to_backend, 12);
    drop(a);
    assert_eq!(registry.counts(), vec![0, 1]);
    drop(b);
    assert!(registry.sessions().is_empty());
}

#[test]
fn ids_are_unique_across_shards() {
    let registry = Registry::new(3);
    let regs: Vec<_> = (0..9)
        .map(|i| registry.register(i % 3, None, Door::L4))
        .collect();
    let mut ids: Vec<u64> = regs.iter().map(|r| r.entry.id).collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 9);
}

#[test]
fn the_first_reason_is_kept() {
    let registry = Registry::new(1);
    let stats = Stats::new(1);
    let r = registry.register(0, None, Door::L4);
    let live = r.live(stats.shard(0));
    live.set_reason("client: done");
    live.set_reason("later");
    assert_eq!(r.entry.labels().reason.as_deref(), Some("client: done"));
}

#[test]
fn the_session_schema_has_its_documented_fields() {
    let registry = Registry::new(1);
    let r = registry.register(0, None, Door::Token);
    let json = serde_json::to_value(r.entry.view()).unwrap();
    for key in [
        "id",
        "shard",
        "door",
        "tls",
        "websocket",
        "user",
        "target",
        "client",
        "bytes_to_backend",
        "bytes_to_client",
        "age_secs",
        "started_unix",
    ] {
        assert!(json.get(key).is_some(), "{key} missing from {json}");
    }
    assert_eq!(json["door"], "token");
}

#[test]
fn cut_unlists_what_a_shard_still_has() {
    let registry = Registry::new(2);
    let stats = Stats::new(2);
    let kept = registry.register(0, None, Door::L4);
    let cut = registry.register(1, None, Door::L4);
    cut.live(stats.shard(1)).established();
    registry.cut(1, "cut at the drain timeout");
    assert_eq!(registry.counts(), vec![1, 0]);
    assert!(cut.entry.labels().ended);
    drop(cut); // no second end line, nothing left to remove
    drop(kept);
    assert_eq!(registry.counts(), vec![0, 0]);
}
