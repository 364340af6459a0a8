//! The Chrome trace event format (what Perfetto and `chrome://tracing` open): one
//! process per rank and one for the launcher, a complete event (`"ph": "X"`) per call
//! with a nested `blocked` event for the time it waited, a flow (`"s"` then `"f"`)
//! per message from its send to the receive that matched it, instant events for the
//! launcher's markers. Times are microseconds since the job started, on
//! `CLOCK_MONOTONIC` (`otherData.clock_origin_ns` is the start on that clock).

use std::fmt::Write;

use super::model::{Model, Span};
use super::{F_RECVS, F_SENDS};
use crate::call::Call;
use crate::collective::op::op_name;

/// A JSON string literal.
pub(crate) fn esc(s: &str) -> String {
    let mut o = String::with_capacity(s.len() + 2);
    o.push('"');
    for c in s.chars() {
        match c {
            '"' => o.push_str("\\\""),
            '\\' => o.push_str("\\\\"),
            '\n' => o.push_str("\\n"),
            '<' => o.push_str("\\u003c"), // keeps `</script>` out of the HTML page
            c if (c as u32) < 0x20 => {
                let _ = write!(o, "\\u{:04x}", c as u32);
            }
            c => o.push(c),
        }
    }
    o.push('"');
    o
}

/// Nanoseconds as microseconds with three decimals, exactly.
fn us(ns: u64) -> String {
    format!("{}.{:03}", ns / 1000, ns % 1000)
}

fn peer(p: i32) -> String {
    if p < 0 {
        "\"ANY_SOURCE\"".into()
    } else {
        p.to_string()
    }
}

fn tag(t: i32) -> String {
    if t < 0 {
        "\"ANY_TAG\"".into()
    } else {
        t.to_string()
    }
}

/// The `args` of a span.
fn args(s: &Span) -> String {
    let e = &s.ev;
    let mut a: Vec<String> = vec![format!("\"comm\":{}", e.ctx)];
    if s.is_coll() {
        let call = Call::from_code(e.code as u32);
        if call.is_some_and(Call::rooted) {
            a.push(format!("\"root\":{}", e.rpeer));
        }
        if e.op != 0 {
            a.push(format!("\"op\":{}", esc(op_name(e.op))));
        }
        if e.sbytes != u64::MAX {
            a.push(format!("\"count\":{}", e.sbytes));
        }
    } else {
        let sends = e.flags & F_SENDS != 0;
        let recvs = e.flags & F_RECVS != 0;
        if sends {
            a.push(format!("\"dest\":{}", e.speer));
            a.push(format!("\"tag\":{}", e.stag));
            a.push(format!("\"bytes\":{}", e.sbytes));
        }
        if recvs {
            a.push(format!("\"source\":{}", e.rpeer));
            a.push(format!(
                "\"{}\":{}",
                if sends { "recv_tag" } else { "tag" },
                e.rtag
            ));
            a.push(format!(
                "\"{}\":{}",
                if sends { "recv_bytes" } else { "bytes" },
                e.rbytes
            ));
        }
        if e.code == Call::Wait.code() as u8 && e.op != 0 {
            let req = super::model::code_name(e.op);
            a.push(format!("\"request\":{}", esc(req)));
        }
        if !sends && (!recvs || e.speer < 0 || e.stag < 0) {
            // What the call asked for (a receive's source and tag may be wildcards).
            a.push(format!("\"wanted_source\":{}", peer(e.speer)));
            a.push(format!("\"wanted_tag\":{}", tag(e.stag)));
        }
    }
    if let Some(b) = s.blocked {
        a.push(format!("\"blocked_us\":{}", us(s.t1.saturating_sub(b))));
    }
    if s.failed() {
        a.push("\"error\":true".into());
    }
    if s.unfinished {
        a.push("\"unfinished\":\"the rank died inside this call\"".into());
    }
    format!("{{{}}}", a.join(","))
}

/// The whole trace as one JSON object.
pub(crate) fn json(m: &Model) -> String {
    let mut ev: Vec<String> = Vec::with_capacity(m.spans.len() * 2 + m.msgs.len() * 2 + 16);
    let launcher = m.n;
    for (r, info) in m.ranks.iter().enumerate() {
        ev.push(format!(
            "{{\"ph\":\"M\",\"pid\":{r},\"tid\":0,\"name\":\"process_name\",\"args\":{{\"name\":\"rank {r}\"}}}}"
        ));
        ev.push(format!(
            "{{\"ph\":\"M\",\"pid\":{r},\"tid\":0,\"name\":\"process_sort_index\",\"args\":{{\"sort_index\":{r}}}}}"
        ));
        ev.push(format!(
            "{{\"ph\":\"M\",\"pid\":{r},\"tid\":0,\"name\":\"thread_name\",\"args\":{{\"name\":{}}}}}",
            esc(&format!("rank {r} (pid {})", info.pid))
        ));
        if let Some(t) = info.drop_t {
            ev.push(format!(
                "{{\"ph\":\"i\",\"s\":\"t\",\"pid\":{r},\"tid\":0,\"ts\":{},\"name\":\"trace buffer full\",\"cat\":\"trace\",\"args\":{{\"lost_events\":{},\"note\":{}}}}}",
                us(t),
                info.dropped,
                esc(&format!(
                    "this rank's buffer of {} events was full from here on: its {} newest events were lost (raise SHMPI_TRACE_EVENTS)",
                    m.cap, info.dropped
                ))
            ));
        }
    }
    ev.push(format!(
        "{{\"ph\":\"M\",\"pid\":{launcher},\"tid\":0,\"name\":\"process_name\",\"args\":{{\"name\":\"shmrun\"}}}}"
    ));
    ev.push(format!(
        "{{\"ph\":\"M\",\"pid\":{launcher},\"tid\":0,\"name\":\"process_sort_index\",\"args\":{{\"sort_index\":{launcher}}}}}"
    ));
    for s in &m.spans {
        let cat = if s.is_coll() { "collective" } else { "p2p" };
        let mut name = s.name().to_string();
        if s.unfinished {
            name.push_str(" (died here)");
        }
        ev.push(format!(
            "{{\"ph\":\"X\",\"pid\":{},\"tid\":0,\"ts\":{},\"dur\":{},\"name\":{},\"cat\":\"{cat}\",\"args\":{}}}",
            s.rank,
            us(s.t0),
            us(s.t1 - s.t0),
            esc(&name),
            args(s)
        ));
        if let Some(b) = s.blocked.filter(|&b| b >= s.t0 && b < s.t1) {
            ev.push(format!(
                "{{\"ph\":\"X\",\"pid\":{},\"tid\":0,\"ts\":{},\"dur\":{},\"name\":\"blocked\",\"cat\":\"blocked\",\"args\":{{}}}}",
                s.rank,
                us(b),
                us(s.t1 - b)
            ));
        }
    }
    for (id, msg) in m.msgs.iter().enumerate() {
        let (s, r) = (&m.spans[msg.send], &m.spans[msg.recv]);
        // Inside each span, so that the flow binds to it: at the send's start and the
        // receive's end, so that the arrow never points back in time (a synchronous
        // send or a sendrecv ends after the receive that matched it).
        let ts = s.t0 + (s.t1 - s.t0).min(1);
        let tr = r.t1 - (r.t1 - r.t0).min(1);
        ev.push(format!(
            "{{\"ph\":\"s\",\"id\":{id},\"pid\":{},\"tid\":0,\"ts\":{},\"name\":\"message\",\"cat\":\"message\",\"args\":{{\"bytes\":{},\"tag\":{}}}}}",
            s.rank,
            us(ts),
            s.ev.sbytes,
            s.ev.stag
        ));
        ev.push(format!(
            "{{\"ph\":\"f\",\"bp\":\"e\",\"id\":{id},\"pid\":{},\"tid\":0,\"ts\":{},\"name\":\"message\",\"cat\":\"message\",\"args\":{{\"bytes\":{},\"tag\":{}}}}}",
            r.rank,
            us(tr),
            r.ev.rbytes,
            r.ev.rtag
        ));
    }
    for k in &m.markers {
        ev.push(format!(
            "{{\"ph\":\"i\",\"s\":\"p\",\"pid\":{launcher},\"tid\":0,\"ts\":{},\"name\":{},\"cat\":\"launcher\",\"args\":{{\"text\":{}{}}}}}",
            us(k.t),
            esc(&k.name),
            esc(&k.text),
            k.rank.map_or(String::new(), |r| format!(",\"rank\":{r}"))
        ));
        if let Some(r) = k.rank {
            ev.push(format!(
                "{{\"ph\":\"i\",\"s\":\"t\",\"pid\":{r},\"tid\":0,\"ts\":{},\"name\":{},\"cat\":\"launcher\",\"args\":{{\"text\":{}}}}}",
                us(k.t),
                esc(&k.name),
                esc(&k.text)
            ));
        }
    }
    let dropped: Vec<String> = m.ranks.iter().map(|r| r.dropped.to_string()).collect();
    let kept: Vec<String> = m.ranks.iter().map(|r| r.recorded.to_string()).collect();
    let ends: Vec<String> = m.ranks.iter().map(|r| us(r.end)).collect();
    let exits: Vec<String> = m.ranks.iter().map(|r| esc(&r.exit)).collect();
    format!(
        "{{\"displayTimeUnit\":\"ns\",\"otherData\":{{\"tool\":\"shmrun\",\"clock\":\"CLOCK_MONOTONIC\",\"clock_origin_ns\":{},\"duration_us\":{},\"ranks\":{},\"events_per_rank\":{},\"recorded_events\":[{}],\"lost_events\":[{}],\"rank_end_us\":[{}],\"rank_exit\":[{}],\"messages\":{},\"unreceived_sends\":{}}},\n\"traceEvents\":[\n{}\n]}}\n",
        m.mono0,
        us(m.duration),
        m.n,
        m.cap,
        kept.join(","),
        dropped.join(","),
        ends.join(","),
        exits.join(","),
        m.msgs.len(),
        m.unreceived.len(),
        ev.join(",\n")
    )
}
