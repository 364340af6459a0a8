//! `shmrun --trace run.html` in a real browser: headless Chromium loads the page of a
//! known program, and the test counts what the page's script drew in the DOM (one
//! track per rank, one arrow per message) and saves a screenshot.
//!
//! Without Chromium (`/usr/bin/chromium`, Debian's `chromium` package, or `chromium`
//! on the PATH) the test says so and passes, unless `SHMPI_REQUIRE_BROWSER=1`
//! (`scripts/test.sh` sets it) makes a missing browser a failure.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::{is_child, launch_self, run_with_watchdog};

const N: usize = 5;
const LAPS: usize = 2;

fn chromium() -> Option<PathBuf> {
    let fixed = PathBuf::from("/usr/bin/chromium");
    if fixed.exists() {
        return Some(fixed);
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .flat_map(|d| ["chromium", "chromium-browser"].map(|n| d.join(n)))
        .find(|p| p.exists())
}

/// Runs headless Chromium on `page` with `args` (a fresh profile each time, so that
/// runs in parallel do not share one).
fn browse(browser: &Path, page: &Path, args: &[&str]) -> std::process::Output {
    let profile = page.with_extension("profile");
    let _ = std::fs::remove_dir_all(&profile);
    let mut cmd = Command::new(browser);
    cmd.args([
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--hide-scrollbars",
        "--no-first-run",
        "--virtual-time-budget=5000",
    ])
    .arg(format!("--user-data-dir={}", profile.display()))
    .args(args)
    .arg(format!("file://{}", page.display()));
    run_with_watchdog(cmd)
}

#[test]
fn trace_page_draws_a_track_per_rank_and_an_arrow_per_message_in_chromium() {
    if is_child("trace_page_draws_a_track_per_rank_and_an_arrow_per_message_in_chromium") {
        let u = shmpi::init().unwrap();
        let w = u.world();
        let (me, n) = (w.rank(), w.size());
        let mut token = [0u64];
        for lap in 0..LAPS as i32 {
            if me == 0 {
                w.send_slice(&token, 1, lap).unwrap();
                w.recv_into(&mut token, n - 1, lap).unwrap();
            } else {
                w.recv_into(&mut token, me - 1, lap).unwrap();
                token[0] += 1;
                w.send_slice(&token, (me + 1) % n, lap).unwrap();
            }
        }
        let mut s = [0u64];
        w.allreduce_into(&[1], &mut s, shmpi::Op::Sum).unwrap();
        return;
    }
    let Some(browser) = chromium() else {
        let required = std::env::var("SHMPI_REQUIRE_BROWSER").is_ok_and(|v| v == "1");
        assert!(
            !required,
            "no chromium: install Debian's `chromium` package (SHMPI_REQUIRE_BROWSER=1 needs it)"
        );
        eprintln!("skipped: no chromium to load the page in");
        return;
    };
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("trace_html");
    std::fs::create_dir_all(&dir).unwrap();
    let page = dir.join("ring.html");
    let _ = std::fs::remove_file(&page);
    let out = launch_self(
        "trace_page_draws_a_track_per_rank_and_an_arrow_per_message_in_chromium",
        N,
        &["--trace", page.to_str().unwrap()],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let html = std::fs::read_to_string(&page).unwrap();
    // The only URL in the page is SVG's namespace name, which is never fetched.
    assert_eq!(
        html.matches("http").count(),
        html.matches("http://www.w3.org/2000/svg").count(),
        "the page loads nothing from the network"
    );
    assert!(!html.contains("<script src"), "no external script");

    let dom = browse(&browser, &page, &["--dump-dom"]);
    assert!(
        dom.status.success(),
        "{}",
        String::from_utf8_lossy(&dom.stderr)
    );
    let dom = String::from_utf8_lossy(&dom.stdout);
    let count = |needle: &str| dom.matches(needle).count();
    assert_eq!(count("class=\"track rank\""), N, "one track per rank");
    assert_eq!(
        count("class=\"track launcher\""),
        1,
        "one track for the launcher"
    );
    assert_eq!(count("class=\"arrow\""), N * LAPS, "one arrow per message");
    assert!(count("class=\"span ") >= N, "every rank's calls are drawn");

    let png = dir.join("ring.png");
    let _ = std::fs::remove_file(&png);
    let shot = browse(
        &browser,
        &page,
        &[
            &format!("--screenshot={}", png.display()),
            "--window-size=1200,400",
        ],
    );
    assert!(
        shot.status.success(),
        "{}",
        String::from_utf8_lossy(&shot.stderr)
    );
    let bytes = std::fs::read(&png).expect("the screenshot was saved");
    assert!(
        bytes.starts_with(b"\x89PNG") && bytes.len() > 2000,
        "a PNG of the page"
    );
    eprintln!("screenshot: {}", png.display());
}
