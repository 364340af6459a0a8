//! `shmrun --trace`: traces of known programs, run through the real launcher, parsed
//! and checked event by event against what the program did (the Chrome trace event
//! format: complete events `X`, flows `s`/`f`, instants `i`).

mod common;

use std::collections::HashMap;
use std::path::PathBuf;
use std::process::Command;

use common::{is_child, launch_self, launch_self_env, run_with_watchdog};
use serde_json::Value;
use shmpi::{ANY_SOURCE, Op};

fn out_path(name: &str) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("trace");
    std::fs::create_dir_all(&dir).unwrap();
    dir.join(name)
}

/// A parsed trace.
struct Trace {
    other: Value,
    events: Vec<Value>,
}

/// One complete event.
#[derive(Debug, Clone)]
struct Span {
    pid: u64,
    name: String,
    ts: f64,
    end: f64,
    args: Value,
}

impl Trace {
    fn read(path: &PathBuf) -> Trace {
        let text = std::fs::read_to_string(path).expect("the trace was written");
        let v: Value = serde_json::from_str(&text).expect("the trace is JSON");
        Trace {
            other: v["otherData"].clone(),
            events: v["traceEvents"].as_array().expect("traceEvents").clone(),
        }
    }

    fn ranks(&self) -> u64 {
        self.other["ranks"].as_u64().unwrap()
    }

    /// The complete events of `pid` (without the nested `blocked` ones), in time order.
    fn spans(&self, pid: u64) -> Vec<Span> {
        let mut v: Vec<Span> = self
            .events
            .iter()
            .filter(|e| e["ph"] == "X" && e["pid"] == pid && e["name"] != "blocked")
            .map(span)
            .collect();
        v.sort_by(|a, b| a.ts.partial_cmp(&b.ts).unwrap());
        v
    }

    fn all_x(&self, pid: u64) -> Vec<Span> {
        let mut v: Vec<Span> = self
            .events
            .iter()
            .filter(|e| e["ph"] == "X" && e["pid"] == pid)
            .map(span)
            .collect();
        v.sort_by(|a, b| a.ts.partial_cmp(&b.ts).unwrap());
        v
    }

    /// (send span, receive span) of every flow, checking each id has one start and one end.
    fn messages(&self) -> Vec<(Span, Span)> {
        let mut starts: HashMap<u64, &Value> = HashMap::new();
        let mut ends: HashMap<u64, &Value> = HashMap::new();
        for e in &self.events {
            let id = || e["id"].as_u64().expect("flow id");
            if e["ph"] == "s" {
                assert!(
                    starts.insert(id(), e).is_none(),
                    "two starts of flow {}",
                    id()
                );
            } else if e["ph"] == "f" {
                assert!(ends.insert(id(), e).is_none(), "two ends of flow {}", id());
            }
        }
        assert_eq!(starts.len(), ends.len(), "every arrow has both ends");
        let mut out = Vec::new();
        for (id, s) in &starts {
            let f = ends.get(id).expect("the arrow ends");
            // Drawn from its start to its end, an arrow never points back in time.
            assert!(
                ns(&f["ts"]) >= ns(&s["ts"]),
                "flow {id} ends at {} before it starts at {}",
                f["ts"],
                s["ts"]
            );
            let at = |e: &Value| {
                let pid = e["pid"].as_u64().unwrap();
                let ts = ns(&e["ts"]);
                let hits: Vec<Span> = self
                    .spans(pid)
                    .into_iter()
                    .filter(|s| s.ts <= ts && ts <= s.end)
                    .collect();
                assert_eq!(
                    hits.len(),
                    1,
                    "flow {id} binds to one span at {ts} on {pid}"
                );
                hits[0].clone()
            };
            out.push((at(s), at(f)));
        }
        out.sort_by(|a, b| a.0.ts.partial_cmp(&b.0.ts).unwrap());
        out
    }

    fn markers(&self, name: &str) -> Vec<&Value> {
        self.events
            .iter()
            .filter(|e| e["ph"] == "i" && e["name"] == name)
            .collect()
    }

    /// Checks the rules every trace keeps: one clock (every time within the job), spans
    /// of one rank that overlap only when nested, and every message's arrow from the
    /// span that sent it to the span that received it, sizes and tags agreeing.
    fn check_rules(&self) {
        let duration = ns(&self.other["duration_us"]);
        for pid in 0..self.ranks() {
            let spans = self.all_x(pid);
            for s in &spans {
                assert!(s.ts >= 0.0 && s.end <= duration, "{s:?} inside the job");
            }
            for (i, a) in spans.iter().enumerate() {
                for b in &spans[i + 1..] {
                    if b.ts >= a.end {
                        continue; // a ends before b starts: no overlap (sorted by start)
                    }
                    let nested = b.end <= a.end && b.name == "blocked";
                    assert!(
                        nested,
                        "rank {pid}: {a:?} and {b:?} overlap without nesting"
                    );
                }
            }
        }
        for (s, r) in self.messages() {
            assert_eq!(s.args["dest"], r.pid, "{s:?} -> {r:?}");
            assert_eq!(r.args["source"], s.pid, "{s:?} -> {r:?}");
            let rtag = r.args.get("recv_tag").unwrap_or(&r.args["tag"]);
            let rbytes = r.args.get("recv_bytes").unwrap_or(&r.args["bytes"]);
            assert_eq!(&s.args["tag"], rtag, "{s:?} -> {r:?}");
            assert_eq!(&s.args["bytes"], rbytes, "{s:?} -> {r:?}");
            // One clock: a message is received after it started to be sent.
            assert!(r.end >= s.ts, "received before sent: {s:?} -> {r:?}");
        }
    }
}

/// Microseconds with three decimals, as nanoseconds exactly (so that nested spans
/// compare without rounding).
fn ns(v: &Value) -> f64 {
    (v.as_f64().unwrap() * 1000.0).round()
}

fn span(e: &Value) -> Span {
    let ts = ns(&e["ts"]);
    Span {
        pid: e["pid"].as_u64().unwrap(),
        name: e["name"].as_str().unwrap().to_string(),
        ts,
        end: ts + ns(&e["dur"]),
        args: e["args"].clone(),
    }
}

fn traced(name: &str, n: usize, file: &str, extra: &[&str]) -> (std::process::Output, PathBuf) {
    let path = out_path(file);
    let _ = std::fs::remove_file(&path);
    let p = path.to_str().unwrap().to_string();
    let mut args = vec!["--trace", p.as_str()];
    args.extend_from_slice(extra);
    (launch_self(name, n, &args), path)
}

fn assert_ok(out: &std::process::Output) {
    assert!(
        out.status.success(),
        "{:?}\n{}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

const ROUNDS: usize = 6;
const SIZES: [usize; 3] = [8, 1000, 200_000];

#[test]
fn ping_pong_trace_has_one_send_one_receive_and_one_arrow_per_message() {
    if is_child("ping_pong_trace_has_one_send_one_receive_and_one_arrow_per_message") {
        let u = shmpi::init().unwrap();
        let w = u.world();
        for (k, &size) in SIZES.iter().enumerate() {
            let mut buf = vec![0u8; size];
            for i in 0..ROUNDS {
                let tag = (k * 100 + i) as i32;
                if w.rank() == 0 {
                    w.send_slice(&buf, 1, tag).unwrap();
                    w.recv_into(&mut buf, 1, tag).unwrap();
                } else {
                    w.recv_into(&mut buf, 0, tag).unwrap();
                    w.send_slice(&buf, 0, tag).unwrap();
                }
            }
        }
        if w.rank() == 0 {
            w.send(&String::from("bye"), 1, 7).unwrap();
        } else {
            assert_eq!(w.recv::<String>(0, 7).unwrap(), "bye");
        }
        return;
    }
    let (out, path) = traced(
        "ping_pong_trace_has_one_send_one_receive_and_one_arrow_per_message",
        2,
        "pingpong.json",
        &[],
    );
    assert_ok(&out);
    let t = Trace::read(&path);
    assert_eq!(t.ranks(), 2);
    t.check_rules();
    let msgs = t.messages();
    assert_eq!(msgs.len(), 2 * ROUNDS * SIZES.len() + 1);
    assert_eq!(t.other["messages"], msgs.len());
    assert_eq!(t.other["unreceived_sends"], 0);
    // In the program's order: each round trip's two messages, tags and sizes as sent.
    let mut i = 0;
    for (k, &size) in SIZES.iter().enumerate() {
        for r in 0..ROUNDS {
            for (from, to) in [(0, 1), (1, 0)] {
                let (s, rv) = &msgs[i];
                assert_eq!((s.pid, rv.pid), (from, to), "message {i}");
                assert_eq!(s.name, "send_slice");
                assert_eq!(rv.name, "recv_into");
                assert_eq!(s.args["tag"], (k * 100 + r) as u64);
                assert_eq!(s.args["bytes"], size as u64);
                i += 1;
            }
        }
    }
    let (s, r) = &msgs[i];
    assert_eq!((s.name.as_str(), r.name.as_str()), ("send", "recv"));
    assert_eq!(s.args["tag"], 7);
    // Every send and receive span of the program carries its message's arrow.
    for pid in 0..2 {
        let sends = t
            .spans(pid)
            .iter()
            .filter(|s| s.name.starts_with("send"))
            .count();
        assert_eq!(sends, ROUNDS * SIZES.len() + usize::from(pid == 0));
    }
}

#[test]
fn ring_and_collective_trace_names_every_call_with_its_arguments() {
    const N: usize = 5;
    if is_child("ring_and_collective_trace_names_every_call_with_its_arguments") {
        let u = shmpi::init().unwrap();
        let w = u.world();
        let (me, n) = (w.rank(), w.size());
        let req = w.irecv_into(vec![0u64; 4], ANY_SOURCE, 3).unwrap();
        w.isend_vec(vec![me as u64; 4], (me + 1) % n, 3)
            .unwrap()
            .wait()
            .unwrap();
        let (buf, st) = req.wait().unwrap();
        assert_eq!(st.source(), (me + n - 1) % n);
        assert_eq!(buf[0], st.source() as u64);
        let mut sum = [0u64];
        w.allreduce_into(&[me as u64], &mut sum, Op::Sum).unwrap();
        assert_eq!(sum[0], (0..n as u64).sum::<u64>());
        let mut b = [me as u32; 3];
        w.bcast_into(&mut b, 2).unwrap();
        let half = w.split(me % 2, me).unwrap().unwrap();
        half.barrier().unwrap();
        return;
    }
    let (out, path) = traced(
        "ring_and_collective_trace_names_every_call_with_its_arguments",
        N,
        "ring.json",
        &[],
    );
    assert_ok(&out);
    let t = Trace::read(&path);
    t.check_rules();
    let msgs = t.messages();
    assert_eq!(msgs.len(), N, "one message around the ring per rank");
    for (s, r) in &msgs {
        assert_eq!(r.pid, (s.pid + 1) % N as u64);
        assert_eq!(s.name, "isend");
        assert_eq!(r.name, "wait", "an irecv's message is received by its wait");
        assert_eq!(r.args["request"], "irecv_into");
        assert_eq!(s.args["bytes"], 32);
    }
    for pid in 0..N as u64 {
        let names: Vec<String> = t.spans(pid).iter().map(|s| s.name.clone()).collect();
        for want in [
            "irecv",
            "isend",
            "wait",
            "allreduce_into",
            "bcast_into",
            "split",
            "barrier",
        ] {
            assert!(
                names.iter().any(|n| n == want),
                "rank {pid} has {want}: {names:?}"
            );
        }
        let spans = t.spans(pid);
        let find = |n: &str| spans.iter().find(|s| s.name == n).unwrap().clone();
        assert_eq!(find("allreduce_into").args["op"], "Sum");
        assert_eq!(find("allreduce_into").args["count"], 1);
        assert_eq!(find("bcast_into").args["root"], 2);
        assert_eq!(find("bcast_into").args["count"], 3);
        // The barrier runs on the split's communicator, not the world.
        assert_ne!(
            find("barrier").args["comm"],
            find("allreduce_into").args["comm"]
        );
        assert_eq!(find("irecv").args["wanted_source"], "ANY_SOURCE");
    }
}

#[test]
fn deadlock_trace_shows_the_blocked_calls_and_the_report_points_to_it() {
    if is_child("deadlock_trace_shows_the_blocked_calls_and_the_report_points_to_it") {
        let u = shmpi::init().unwrap();
        let w = u.world();
        let peer = 1 - w.rank();
        let mut b = [0u8; 4];
        let _ = w.recv_into(&mut b, peer, 9); // both receive first: a deadlock
        return;
    }
    let (out, path) = traced(
        "deadlock_trace_shows_the_blocked_calls_and_the_report_points_to_it",
        2,
        "deadlock.json",
        &[],
    );
    assert_eq!(out.status.code(), Some(120));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("shmrun: deadlock"), "{err}");
    assert!(
        err.contains(&format!("the trace {} shows this at", path.display())),
        "{err}"
    );
    let t = Trace::read(&path);
    t.check_rules();
    let marks = t.markers("deadlock");
    assert_eq!(marks.len(), 1);
    assert!(
        marks[0]["args"]["text"]
            .as_str()
            .unwrap()
            .contains("rank 0 waits in recv_into")
    );
    let at = ns(&marks[0]["ts"]);
    for pid in 0..2 {
        let spans = t.spans(pid);
        let r = spans
            .iter()
            .find(|s| s.name == "recv_into")
            .expect("the blocked receive");
        assert_eq!(r.args["wanted_source"], 1 - pid);
        assert_eq!(r.args["error"], true, "it ended with the abort's error");
        assert!(
            r.ts < at && r.end >= at,
            "blocked across the report: {r:?} at {at}"
        );
        // Its waiting shows as a nested `blocked` span.
        let blocked = t
            .all_x(pid)
            .into_iter()
            .find(|s| s.name == "blocked")
            .expect("a blocked span");
        assert!(blocked.ts >= r.ts && blocked.end <= r.end);
    }
    assert!(t.messages().is_empty());
}

#[test]
fn killed_rank_events_stop_at_its_death() {
    if is_child("killed_rank_events_stop_at_its_death") {
        let u = shmpi::init().unwrap();
        let w = u.world();
        let mut b = [0u32; 1];
        match w.rank() {
            0 => {
                for i in 0..5 {
                    w.send_slice(&[i], 1, 1).unwrap();
                    w.recv_into(&mut b, 1, 2).unwrap();
                }
                let _ = w.recv_into(&mut b, 1, 3); // never sent: rank 1 dies first
            }
            1 => {
                for _ in 0..5 {
                    w.recv_into(&mut b, 0, 1).unwrap();
                    w.send_slice(&b, 0, 2).unwrap();
                }
                w.send_slice(&[std::process::id()], 2, 4).unwrap();
                let _ = w.recv_into(&mut b, 2, 5); // killed in here by rank 2
            }
            _ => {
                w.recv_into(&mut b, 1, 4).unwrap();
                std::thread::sleep(std::time::Duration::from_millis(200));
                nix::sys::signal::kill(
                    nix::unistd::Pid::from_raw(b[0] as i32),
                    nix::sys::signal::Signal::SIGKILL,
                )
                .unwrap();
                let _ = w.recv_into(&mut b, 1, 6);
            }
        }
        return;
    }
    let (out, path) = traced(
        "killed_rank_events_stop_at_its_death",
        3,
        "killed.json",
        &[],
    );
    assert_eq!(
        out.status.code(),
        Some(137),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("rank 1") && err.contains("shows this at"),
        "{err}"
    );
    let t = Trace::read(&path);
    t.check_rules();
    let death = ns(&t.other["rank_end_us"][1]);
    assert!(
        t.other["rank_exit"][1]
            .as_str()
            .unwrap()
            .contains("signal 9")
    );
    let spans = t.all_x(1);
    assert!(spans.len() >= 11, "{spans:?}");
    for s in &spans {
        assert!(s.end <= death, "{s:?} after the death at {death}");
    }
    let last = t.spans(1).pop().unwrap();
    assert_eq!(last.name, "recv_into (died here)");
    assert_eq!(last.args["wanted_source"], 2);
    assert!(last.args["unfinished"].is_string());
    let ended = t.markers("rank 1 ended");
    assert!(!ended.is_empty());
    assert!(ended.iter().all(|m| ns(&m["ts"]) == death));
    // The 5 round trips and the pid message all have their arrows.
    assert_eq!(t.messages().len(), 11);
}

#[test]
fn full_buffer_keeps_the_oldest_events_and_says_so() {
    if is_child("full_buffer_keeps_the_oldest_events_and_says_so") {
        let u = shmpi::init().unwrap();
        let w = u.world();
        let mut b = [0u8; 8];
        for i in 0..40 {
            if w.rank() == 0 {
                w.send_slice(&b, 1, i).unwrap();
                w.recv_into(&mut b, 1, i).unwrap();
            } else {
                w.recv_into(&mut b, 0, i).unwrap();
                w.send_slice(&b, 0, i).unwrap();
            }
        }
        return;
    }
    let path = out_path("full.json");
    let p = path.to_str().unwrap();
    let out = launch_self_env(
        "full_buffer_keeps_the_oldest_events_and_says_so",
        2,
        &["--trace", p],
        &[("SHMPI_TRACE_EVENTS", "16")],
    );
    assert_ok(&out);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("trace buffer was full") && err.contains("64 newest events were lost"),
        "{err}"
    );
    let t = Trace::read(&path);
    t.check_rules();
    assert_eq!(t.other["events_per_rank"], 16);
    for pid in 0..2 {
        assert_eq!(t.other["recorded_events"][pid], 16);
        assert_eq!(t.other["lost_events"][pid], 64);
        let spans = t.spans(pid as u64);
        assert_eq!(spans.len(), 16);
        // The oldest are kept: the first 8 round trips, in order.
        for (i, s) in spans.iter().enumerate() {
            assert_eq!(s.args["tag"], (i / 2) as u64, "{s:?}");
        }
        let full = t.markers("trace buffer full");
        let mine: Vec<_> = full.iter().filter(|m| m["pid"] == pid).collect();
        assert_eq!(mine.len(), 1);
        assert_eq!(mine[0]["args"]["lost_events"], 64);
        assert!(ns(&mine[0]["ts"]) >= spans[15].end);
    }
    // The kept events are the first 8 round trips of both ranks: all pair up.
    assert_eq!(t.messages().len(), 16);
}

#[test]
fn unwritable_trace_path_fails_before_any_rank_starts() {
    let marker = out_path("should_not_exist");
    let _ = std::fs::remove_file(&marker);
    for bad in ["/nonexistent-dir/x.json", "/tmp"] {
        let mut cmd = Command::new(common::shmrun());
        cmd.args(["-n", "2", "--trace", bad, "--", "sh", "-c"])
            .arg(format!("touch {}", marker.display()));
        let out = run_with_watchdog(cmd);
        assert_eq!(out.status.code(), Some(1));
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains(&format!("cannot write the trace to {bad}"))
                && err.contains("no rank was started"),
            "{err}"
        );
        assert!(!marker.exists(), "a rank ran");
    }
}

#[test]
fn a_program_built_for_another_trace_layout_fails_at_init_and_says_why() {
    const NAME: &str = "a_program_built_for_another_trace_layout_fails_at_init_and_says_why";
    if is_child(NAME) {
        match shmpi::init() {
            Ok(_) => panic!("init accepted a recording of another layout"),
            Err(err) => eprintln!("child: {err}"),
        }
        std::process::exit(3);
    }
    // A launcher of the first layout set `MODE:EVENTS` alone; `env` stands in for it.
    let exe = std::env::current_exe().expect("test binary path");
    let mut cmd = Command::new(common::shmrun());
    cmd.args(["-n", "2", "--timeout", "30", "--stats", "--"])
        .args(["env", "SHMPI_TRACE=2:16"])
        .arg(exe)
        .args([
            NAME,
            "--exact",
            "--nocapture",
            "--test-threads=1",
            "--quiet",
        ])
        .env("SHMPI_TEST_CHILD", NAME);
    let out = run_with_watchdog(cmd);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{err}");
    assert!(
        err.contains("shmrun records in trace layout 1 and this program's shmpi in layout")
            && err.contains("build the program and shmrun from the same shmpi"),
        "{err}"
    );
}

/// Calls that involve no message (to `PROC_NULL`, MPI 4.1 §3.11, and to a rank that
/// does not exist, an error) behave under `--trace` and `--stats` as without them: each
/// of the public blocking forms completes at once or fails, and none is recorded.
/// Before, the recording twin of a slice send or receive opened no span for them and
/// so called itself again until the stack overflowed (the README's `jacobi` aborted).
#[test]
fn calls_on_proc_null_and_bad_ranks_are_the_same_when_recorded() {
    const NAME: &str = "calls_on_proc_null_and_bad_ranks_are_the_same_when_recorded";
    if is_child(NAME) {
        let u = shmpi::init().unwrap();
        let w = u.world();
        let null = shmpi::PROC_NULL;
        let mut buf = [7u32; 3];
        w.send_slice(&buf, null, 1).unwrap();
        assert_eq!(w.recv_into(&mut buf, null, 1).unwrap().source(), null);
        assert_eq!(buf, [7; 3], "a receive from PROC_NULL leaves the buffer");
        let (v, st) = w.recv_vec::<u32>(null, 1).unwrap();
        assert!(v.is_empty() && st.source() == null);
        let st = w
            .sendrecv_slice(&buf, null, 2, &mut [0u32; 3], null, 2)
            .unwrap();
        assert_eq!(st.source(), null);
        w.send(&5u8, null, 3).unwrap();
        assert!(w.recv_opt::<u8>(null, 3).unwrap().is_none());
        let bad = w.size() + 5;
        assert!(w.send_slice(&buf, bad, 1).is_err());
        assert!(w.recv_into(&mut buf, bad, 1).is_err());
        assert!(w.recv_vec::<u32>(bad, 1).is_err());
        assert!(w.send(&5u8, bad, 3).is_err());
        assert!(w.recv::<u8>(bad, 3).is_err());
        // And messages that do travel are still recorded after them, their arrows
        // forward although a synchronous send and a sendrecv end after their receive.
        let me = w.rank();
        let right = (me + 1) % w.size();
        let left = (me + w.size() - 1) % w.size();
        w.sendrecv_slice(&[me], right, 9, &mut [0i32], left, 9)
            .unwrap();
        if me == 0 {
            w.ssend_slice(&[1u8], 1, 10).unwrap();
        } else if me == 1 {
            std::thread::sleep(std::time::Duration::from_millis(20));
            w.recv_into(&mut [0u8], 0, 10).unwrap();
        }
        return;
    }
    for flags in [&["--stats"][..], &[]] {
        let (out, path) = traced(NAME, 3, "proc_null.json", flags);
        assert_ok(&out);
        let t = Trace::read(&path);
        t.check_rules();
        assert_eq!(
            t.messages().len(),
            4,
            "{flags:?}: only the messages that travel"
        );
    }
    let out = launch_self(NAME, 3, &["--stats"]);
    assert_ok(&out);
}
