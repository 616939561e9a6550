//! The browser-side peers the gateway tests use, against the real thing with no deskrelay in
//! between: headless Chromium running xpra 3.1.3's own HTML5 client (served by the xpra
//! server itself, `--html=on`), and an independent WebSocket client talking to xpra's
//! WebSocket endpoint byte for byte. Proof that the harness works, and a record of what the
//! HTML5 client needs. Run with `--nocapture` to see the timings.

mod common;
use common::browser::{
    artifact_dir, compare_png_regions, compare_with_server, html5_client_url, html5_server_opts,
    png_region_stats, png_size, ws_exchange, Browser, BrowserOpts, Pictures, WsClientOpts,
    BROWSER_TIMEOUT,
};
use common::xpra::{rencode_frame, rencode_strings, tagged_processes, wait_untagged, XpraServer};
use std::path::Path;
use std::time::{Duration, Instant};

/// Asserts that no process started under any of `tags` is still alive.
fn assert_no_leftovers(tags: &[String]) {
    for tag in tags {
        let left = wait_untagged(tag, Duration::from_secs(20));
        assert!(left.is_empty(), "processes left behind by {tag}: {left:?}");
    }
}

/// rencode of a string (the short form: fewer than 64 bytes).
fn rstr(s: &str) -> Vec<u8> {
    assert!(s.len() < 64);
    let mut v = vec![128 + s.len() as u8];
    v.extend_from_slice(s.as_bytes());
    v
}

/// `["hello", {"version_request": True, "rencode": True}]` as one rencode frame: what
/// `xpra version` sends. The server answers `["hello", {"version": "3.1.3"}]` and nothing
/// else (it disconnects 5 s later if the client does not close first).
fn version_request_frame() -> Vec<u8> {
    let mut p = vec![192 + 2];
    p.extend(rstr("hello"));
    p.push(102 + 2); // a dict of two items
    p.extend(rstr("version_request"));
    p.push(67); // True
    p.extend(rstr("rencode"));
    p.push(67);
    rencode_frame(&p)
}

/// The frame the server answers a version request with, byte for byte.
fn version_reply_frame() -> Vec<u8> {
    let mut p = vec![192 + 2];
    p.extend(rstr("hello"));
    p.push(102 + 1);
    p.extend(rstr("version"));
    p.extend(rstr("3.1.3"));
    rencode_frame(&p)
}

#[test]
fn html5_client_in_headless_chromium_draws_the_xclock_window() {
    let pics = Pictures::new("html5-direct");
    let began = Instant::now();
    let server = XpraServer::start(html5_server_opts());
    let server_up = began.elapsed();

    let browser = Browser::start(BrowserOpts::default());
    let url = html5_client_url(server.addr(), server.addr(), None, &[]);
    let t = Instant::now();
    browser.goto(&url);
    let page_load = t.elapsed();
    let (canvas, first_pixels) = browser.wait_for_canvas_pixels(3, BROWSER_TIMEOUT);
    let to_pixels = t.elapsed();
    let ws_uri = browser.eval_js("client.uri");

    // The page itself: exactly the requested size.
    let shot = pics.path("page.png");
    browser.screenshot_png(&shot);
    assert_eq!(png_size(&shot).unwrap(), (1280, 800));

    // The window's region of the screenshot: a clock face (mostly white) with hands and
    // ticks (dark), anti-aliased (many greys); the page around it is one flat colour.
    let stats = png_region_stats(&shot, canvas.x, canvas.y, canvas.width, canvas.height)
        .unwrap_or_else(|e| browser.fail(&e));
    if !(stats.colours >= 16 && stats.white >= 0.5 && stats.dark >= 0.005) {
        browser.fail(&format!(
            "the xclock window's region {canvas:?} of {} does not look like a clock: {stats:?}",
            shot.display()
        ));
    }
    let left_of_window = png_region_stats(&shot, 0, canvas.y, canvas.x.min(100) as u32, 100)
        .unwrap_or_else(|e| browser.fail(&e));
    assert_eq!(
        left_of_window.colours, 1,
        "the page's background is not flat: {left_of_window:?}"
    );
    assert_ne!(left_of_window.top.0, stats.top.0);

    // And pixel for pixel what the server itself shows for its windows.
    let (page, cmp) = compare_with_server(&browser, &server, &canvas, &pics);
    // The measure does tell pictures apart: three pixels off, the hands no longer match.
    let shifted = compare_png_regions(
        &page,
        (canvas.x + 3, canvas.y),
        &pics.path("server.png"),
        (0, 0),
        (canvas.width, canvas.height),
        48,
    )
    .unwrap();
    assert!(shifted.ink_match < 0.8, "{shifted:?}");

    println!(
        "xpra server with --html=on up: {server_up:?}; browser start: {:?} (Chromium {})",
        browser.startup, browser.version
    );
    println!(
        "page load: {page_load:?}; first canvas pixels after: {to_pixels:?} \
         (of which waiting: {first_pixels:?})"
    );
    println!("HTML5 client URL: {url}");
    println!("its WebSocket: {ws_uri}");
    println!("window canvas: {canvas:?}");
    println!("region stats: {stats:?}");
    println!("page vs server: {cmp:?}; shifted by 3 px: {shifted:?}");
    let resources = browser.loaded_resources();
    println!("the page loaded {} files:", resources.len());
    for r in &resources {
        println!("  {r}");
    }
    let console = browser.console_log();
    let errors: Vec<&str> = console
        .lines()
        .filter(|l| l.starts_with("SEVERE"))
        .collect();
    println!("console errors: {errors:#?}");

    let tags = [browser.tag().to_string(), server.tag().to_string()];
    let left = browser.close();
    assert!(left.is_empty(), "browser processes left behind: {left:?}");
    drop(server);
    assert_no_leftovers(&tags);
    println!("whole test: {:?}", began.elapsed());
}

#[test]
fn websocket_client_exchanges_exact_bytes_with_xpras_websocket_endpoint() {
    let server = XpraServer::start(html5_server_opts());
    let url = format!("ws://{}/", server.addr());
    let expected = version_reply_frame();

    // One frame in one message: the reply is exactly the version hello.
    let one = ws_exchange(
        &url,
        &WsClientOpts {
            send: vec![version_request_frame()],
            expect_bytes: Some(expected.len()),
            ..WsClientOpts::default()
        },
    );
    assert!(one.opened(), "{}", one.transcript);
    assert_eq!(
        one.subprotocol.as_deref(),
        Some("binary"),
        "{}",
        one.transcript
    );
    assert!(
        one.header("Sec-WebSocket-Accept").is_some(),
        "{}",
        one.transcript
    );
    assert!(!one.timed_out && one.error.is_none(), "{}", one.transcript);
    assert_eq!(
        hex::encode(one.binary_bytes()),
        hex::encode(&expected),
        "{}",
        one.transcript
    );

    // The same frame cut across three messages at odd places: WebSocket messages are not
    // xpra packet boundaries, the server reads one byte stream.
    let frame = version_request_frame();
    let split = ws_exchange(
        &url,
        &WsClientOpts {
            send: vec![
                frame[..3].to_vec(),
                frame[3..11].to_vec(),
                frame[11..].to_vec(),
            ],
            expect_bytes: Some(expected.len()),
            ..WsClientOpts::default()
        },
    );
    assert_eq!(split.binary_bytes(), expected, "{}", split.transcript);

    // Reading on until the server ends it: 5 s after the version reply 3.1.3 sends
    // ["disconnect", "done", "version sent"] and closes the TCP connection without a
    // WebSocket close frame (1006).
    let until_close = ws_exchange(
        &url,
        &WsClientOpts {
            send: vec![version_request_frame()],
            timeout: Duration::from_secs(30),
            ..WsClientOpts::default()
        },
    );
    let mut then_disconnect = expected.clone();
    then_disconnect.extend(rencode_frame(&rencode_strings(&[
        "disconnect",
        "done",
        "version sent",
    ])));
    assert_eq!(
        hex::encode(until_close.binary_bytes()),
        hex::encode(&then_disconnect),
        "{}",
        until_close.transcript
    );
    assert!(!until_close.timed_out, "{}", until_close.transcript);
    assert_eq!(
        until_close.close.as_ref().map(|c| c.0),
        Some(1006),
        "{}",
        until_close.transcript
    );
    println!(
        "one message: {:?}; split in three: {:?}; until the server closes: {:?} (close {:?})",
        one.elapsed, split.elapsed, until_close.elapsed, until_close.close
    );
    println!("upgrade response headers: {:?}", one.response_headers);

    // Something that is not a WebSocket server: the upgrade fails, reported, not panicked.
    let dead = ws_exchange(
        &format!("ws://{}/", common::dead_addr()),
        &WsClientOpts {
            timeout: Duration::from_secs(5),
            ..WsClientOpts::default()
        },
    );
    assert!(!dead.opened());
    assert!(dead.error.is_some(), "{}", dead.transcript);
    println!("no server: {}", dead.error.unwrap());

    let tag = server.tag().to_string();
    drop(server);
    assert_no_leftovers(&[tag]);
}

#[test]
fn browser_reports_failures_with_console_and_screenshot_and_leaves_nothing_behind() {
    let began = Instant::now();
    let browser = Browser::open(
        "data:text/html,<title>t</title><body style='background:%23123456'>\
         <script>console.log('marker-from-the-page'); console.error('an-error-line');</script>",
    );
    let started = began.elapsed();
    assert_eq!(browser.eval_js("document.title"), "t");
    assert_eq!(browser.eval_js("[1, 'a', null]"), r#"[1, "a", null]"#);
    assert_eq!(browser.eval_js("[innerWidth, innerHeight]"), "[1280, 800]");
    let err = browser.try_eval_js("no_such_variable.x").unwrap_err();
    assert!(err.contains("no_such_variable"), "{err}");

    let took = browser.wait_until("document.readyState == 'complete'", BROWSER_TIMEOUT);
    let t = Instant::now();
    let err = browser
        .try_wait_until("window.never_set === 1", Duration::from_secs(1))
        .unwrap_err();
    assert!(err.contains("timed out"), "{err}");
    assert!(t.elapsed() < Duration::from_secs(10), "{:?}", t.elapsed());

    let console = browser.console_log();
    assert!(console.contains("marker-from-the-page"), "{console}");
    assert!(
        console.contains("SEVERE") && console.contains("an-error-line"),
        "{console}"
    );

    let report = browser.failure_report();
    let shot = artifact_dir(browser.tag()).join("failure.png");
    assert!(report.contains(&shot.display().to_string()), "{report}");
    assert_eq!(png_size(&shot).unwrap(), (1280, 800));
    let stats = png_region_stats(&shot, 0, 0, 1280, 800).unwrap();
    assert_eq!(stats.top.0, [0x12, 0x34, 0x56], "{stats:?}");
    assert!(report.contains("marker-from-the-page"), "{report}");
    let _ = std::fs::remove_dir_all(artifact_dir(browser.tag()));

    // The browser's processes carry its tag: chromedriver and Chromium's own.
    let tag = browser.tag().to_string();
    let procs = tagged_processes(&tag);
    let has = |name: &str| procs.iter().any(|(_, cmd)| cmd.contains(name));
    assert!(
        has("chromedriver") && has("chromium"),
        "untagged browser? {procs:?}"
    );
    println!(
        "browser start + blank page: {started:?} ({} processes); readyState wait: {took:?}",
        procs.len()
    );

    // A helper killed hard still takes the browser with it when dropped.
    // SAFETY: kill(2) on the helper this test started.
    unsafe {
        libc::kill(browser.helper_pid() as i32, libc::SIGKILL);
    }
    let err = browser.try_eval_js("1").unwrap_err();
    assert!(err.contains("gone") || err.contains("exited"), "{err}");
    let t = Instant::now();
    drop(browser);
    println!("drop after the helper was killed: {:?}", t.elapsed());
    assert_no_leftovers(&[tag]);

    // A second browser gets a profile of its own and closes cleanly.
    let again = Browser::start(BrowserOpts {
        width: 640,
        height: 480,
    });
    assert_eq!(again.eval_js("[innerWidth, innerHeight]"), "[640, 480]");
    let shot = std::env::temp_dir().join(format!("deskrelay-small-{}.png", std::process::id()));
    again.screenshot_png(Path::new(&shot));
    assert_eq!(png_size(&shot).unwrap(), (640, 480));
    let _ = std::fs::remove_file(&shot);
    let t = Instant::now();
    let left = again.close();
    assert!(left.is_empty(), "{left:?}");
    println!("close: {:?}", t.elapsed());
}
