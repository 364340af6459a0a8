//! Shared code of the point-to-point OSU-style examples (`osu_latency`, `osu_bw`,
//! `osu_bibw`, `osu_latency_obj`, `osu_latency_oversub`, `osu_msgrate`): the options
//! and iteration rules of `perf/README.md` (the same as `perf/c/osu_common.h`), the
//! data pattern, the output format, and a two-rank synchronisation.
//!
//! Included by each example with `#[path = "osu_pt2pt/mod.rs"] mod osu_pt2pt;`; this
//! directory has no `main.rs`, so cargo does not build it as an example of its own.

#![allow(dead_code)] // not every example uses every helper

use shmpi::{Communicator, Result};

/// Sizes above this use the "large" iteration counts (as in OSU).
pub const LARGE_MESSAGE_SIZE: usize = 8192;

/// The tag of [`sync_pair`]'s messages (the benchmarks use tags below 1000).
pub const SYNC_TAG: i32 = 30_000;

/// Command-line options (all optional): `-m MAXBYTES`, `-i ITERS`, `-h`, plus the
/// single-letter flags an example declares.
pub struct Options {
    /// `-m`: largest message size in bytes.
    pub max_size: usize,
    /// `-i`: timed iterations for sizes <= 8 KiB (`None`: the defaults).
    pub iters: Option<u64>,
    /// Flags given (from the example's `flags` list).
    pub flags: Vec<char>,
}

impl Options {
    /// Whether flag `c` was given.
    pub fn has(&self, c: char) -> bool {
        self.flags.contains(&c)
    }
}

/// Parses `"123"`, `"64K"`, `"4M"`, `"1G"` (binary multiples), like the C programs.
pub fn parse_size(s: &str) -> Option<usize> {
    let (num, shift) = match s.as_bytes().last()? {
        b'k' | b'K' => (&s[..s.len() - 1], 10),
        b'm' | b'M' => (&s[..s.len() - 1], 20),
        b'g' | b'G' => (&s[..s.len() - 1], 30),
        _ => (s, 0),
    };
    num.parse::<usize>().ok()?.checked_mul(1 << shift)
}

/// Parses the options. On `-h` rank 0 prints the usage and the process exits 0; on a
/// bad option rank 0 complains on stderr and the process exits 2 (every rank parses
/// the same arguments, so every rank exits the same way, as in the C programs).
/// `flags` lists extra boolean flags as `(letter, help)`.
pub fn parse_options(name: &str, default_max: usize, flags: &[(char, &str)], rank: i32) -> Options {
    let mut o = Options {
        max_size: default_max,
        iters: None,
        flags: Vec::new(),
    };
    let usage = || {
        let mut u = format!("usage: {name} [-m MAXBYTES] [-i ITERS]");
        for (c, _) in flags {
            u += &format!(" [-{c}]");
        }
        u += " [-h]";
        for (c, help) in flags {
            u += &format!("\n  -{c}  {help}");
        }
        u
    };
    let mut args = std::env::args().skip(1);
    let mut bad = None;
    while let Some(a) = args.next() {
        let mut value = |opt: &str, inline: &str| -> Option<String> {
            if inline.is_empty() {
                args.next()
            } else {
                Some(inline.to_string())
            }
            .or_else(|| {
                bad = Some(format!("option {opt} needs a value"));
                None
            })
        };
        if let Some(v) = a.strip_prefix("-m") {
            match value("-m", v).as_deref().map(parse_size) {
                Some(Some(m)) => o.max_size = m,
                Some(None) => bad = Some(format!("bad size for -m in {a:?}")),
                None => {}
            }
        } else if let Some(v) = a.strip_prefix("-i") {
            match value("-i", v).map(|s| s.parse::<u64>()) {
                Some(Ok(i)) if i >= 1 => o.iters = Some(i),
                Some(_) => bad = Some("-i needs a positive number".into()),
                None => {}
            }
        } else if a == "-h" || a == "--help" {
            if rank == 0 {
                println!("{}", usage());
            }
            std::process::exit(0);
        } else if let Some(c) = a
            .strip_prefix('-')
            .filter(|s| s.len() == 1)
            .and_then(|s| s.chars().next())
            .filter(|c| flags.iter().any(|(f, _)| f == c))
        {
            o.flags.push(c);
        } else {
            bad = Some(format!("unknown argument {a:?}"));
        }
        if bad.is_some() {
            break;
        }
    }
    if let Some(msg) = bad {
        if rank == 0 {
            eprintln!("{name}: {msg}\n{}", usage());
        }
        std::process::exit(2);
    }
    o
}

/// Iteration counts: `small`/`skip` for sizes <= 8 KiB, `large`/`skip_large` above.
#[derive(Debug, Clone, Copy)]
pub struct Iters {
    /// Timed iterations, small messages.
    pub small: u64,
    /// Warm-up iterations, small messages.
    pub skip: u64,
    /// Timed iterations, large messages.
    pub large: u64,
    /// Warm-up iterations, large messages.
    pub skip_large: u64,
}

impl Iters {
    /// The defaults, scaled by `user / def_small` when `-i` was given (integer
    /// division, at least one timed iteration), as `scale_iters` in osu_common.h.
    pub fn scaled(user: Option<u64>, small: u64, skip: u64, large: u64, skip_large: u64) -> Self {
        match user {
            None => Iters {
                small,
                skip,
                large,
                skip_large,
            },
            Some(u) => Iters {
                small: u,
                skip: u * skip / small,
                large: (u * large / small).max(1),
                skip_large: u * skip_large / small,
            },
        }
    }

    /// (timed, warm-up) iterations for a message of `size` bytes.
    pub fn for_size(&self, size: usize) -> (u64, u64) {
        if size <= LARGE_MESSAGE_SIZE {
            (self.small, self.skip)
        } else {
            (self.large, self.skip_large)
        }
    }
}

/// Sizes 0 (if `with_zero`), 1, 2, 4 ... up to `max` (powers of two).
pub fn sizes(with_zero: bool, max: usize) -> Vec<usize> {
    let mut v = Vec::new();
    if with_zero {
        v.push(0);
    }
    let mut s = 1;
    while s <= max {
        v.push(s);
        s *= 2;
    }
    v
}

/// The byte pattern of `fill_pattern` in osu_common.h.
#[inline]
pub fn pattern_byte(i: usize, size: usize, seed: usize) -> u8 {
    (i.wrapping_mul(7).wrapping_add(size).wrapping_add(seed * 13) & 0xff) as u8
}

/// Fills `buf` with the pattern for a message of `size` bytes from `seed`.
pub fn fill_pattern(buf: &mut [u8], size: usize, seed: usize) {
    for (i, b) in buf.iter_mut().enumerate() {
        *b = pattern_byte(i, size, seed);
    }
}

/// The index of the first byte of `buf` that differs from the pattern, if any.
pub fn verify_pattern(buf: &[u8], size: usize, seed: usize) -> Option<usize> {
    buf.iter()
        .enumerate()
        .position(|(i, &b)| b != pattern_byte(i, size, seed))
}

/// Reports a failed data check on stderr and aborts the job (exit code 3).
pub fn check_failed(world: &Communicator, bench: &str, size: usize, at: usize) -> ! {
    eprintln!("{bench}: data check FAILED at size {size}, byte {at}");
    world.abort(3)
}

/// The first comment lines: title and library.
pub fn print_title(title: &str) {
    println!("{title}");
    println!(
        "# library: shmpi {} (Rust, shared-memory rings)",
        env!("CARGO_PKG_VERSION")
    );
}

/// A data line: `printf("%-10zu%18.2f\n", size, value)`.
pub fn print_row(size: usize, value: f64) {
    use std::io::Write;
    println!("{size:<10}{value:>18.2}");
    let _ = std::io::stdout().flush();
}

/// A latency line, in µs to the nanosecond: `printf("%-10zu%18.3f\n", size, value)`
/// (OSU prints two decimals, which at 0.07 µs move a ratio by 0.07).
pub fn print_latency_row(size: usize, value: f64) {
    use std::io::Write;
    println!("{size:<10}{value:>18.3}");
    let _ = std::io::stdout().flush();
}

/// A barrier between ranks 0 and 1 only (what `MPI_Barrier` does at 2 ranks): each
/// learns that the other has reached this point. Other ranks must not call it.
pub fn sync_pair(world: &Communicator) -> Result<()> {
    let empty: [u8; 0] = [];
    let mut none: [u8; 0] = [];
    if world.rank() == 0 {
        world.send_slice(&empty, 1, SYNC_TAG)?;
        world.recv_into(&mut none, 1, SYNC_TAG)?;
    } else {
        world.recv_into(&mut none, 0, SYNC_TAG)?;
        world.send_slice(&empty, 0, SYNC_TAG)?;
    }
    Ok(())
}

/// Exits with a message unless the job has exactly `n` ranks.
pub fn require_ranks(world: &Communicator, name: &str, n: i32) {
    if world.size() != n {
        if world.rank() == 0 {
            eprintln!("{name} needs exactly {n} ranks");
        }
        std::process::exit(2);
    }
}

/// A page-aligned byte buffer of `len` bytes (at least one page is allocated), filled
/// with `fill`, like `alloc_buffer` in osu_common.h. Page alignment keeps copy speeds
/// comparable with the C programs; a `Vec<u8>` is only 16-byte aligned.
pub struct PageBuf {
    pages: Vec<Page>,
    len: usize,
}

#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
#[repr(C, align(4096))]
struct Page([u8; 4096]);

impl PageBuf {
    /// A buffer of `len` bytes, every byte `fill`.
    pub fn new(len: usize, fill: u8) -> Self {
        PageBuf {
            pages: vec![Page([fill; 4096]); len.div_ceil(4096).max(1)],
            len,
        }
    }

    /// The bytes.
    pub fn bytes(&self) -> &[u8] {
        &bytemuck::cast_slice::<Page, u8>(&self.pages)[..self.len]
    }

    /// The bytes, mutable.
    pub fn bytes_mut(&mut self) -> &mut [u8] {
        &mut bytemuck::cast_slice_mut::<Page, u8>(&mut self.pages)[..self.len]
    }
}

/// The tag of the latency benchmark's messages.
pub const LAT_TAG: i32 = 1;

/// The timed ping-pong loop of osu_latency between ranks 0 and 1: `skip` warm-up round
/// trips, then `iters` timed ones. Returns the one-way latency in µs on rank 0 (0 on
/// rank 1). Kept out of line under this name so that profilers can single it out
/// (`valgrind --tool=callgrind --toggle-collect='*pingpong_loop*'`).
#[inline(never)]
pub fn pingpong_loop(
    world: &Communicator,
    sbuf: &[u8],
    rbuf: &mut [u8],
    iters: u64,
    skip: u64,
) -> Result<f64> {
    if world.rank() == 0 {
        let mut t0 = now();
        for i in 0..iters + skip {
            if i == skip {
                t0 = now();
            }
            world.send_slice(sbuf, 1, LAT_TAG)?;
            world.recv_into(rbuf, 1, LAT_TAG)?;
        }
        Ok((now() - t0) * 1e6 / (2.0 * iters as f64))
    } else {
        for _ in 0..iters + skip {
            world.recv_into(rbuf, 0, LAT_TAG)?;
            world.send_slice(sbuf, 0, LAT_TAG)?;
        }
        Ok(0.0)
    }
}

/// osu_latency between ranks 0 and 1 for every size up to `max_size`: one verified
/// patterned round trip per size, a [`sync_pair`], then [`pingpong_loop`]. Rank 0
/// prints a row per size. Only ranks 0 and 1 may call it.
pub fn latency_sizes(world: &Communicator, name: &str, max_size: usize, it: Iters) -> Result<()> {
    let rank = world.rank() as usize;
    let peer = 1 - rank;
    let mut sbuf = PageBuf::new(max_size, b'a');
    let mut rbuf = PageBuf::new(max_size, b'b');
    for size in sizes(true, max_size) {
        let (iters, skip) = it.for_size(size);
        // data check: rank 0 -> rank 1 with seed 0, back with seed 1
        fill_pattern(&mut sbuf.bytes_mut()[..size], size, rank);
        rbuf.bytes_mut()[..size].fill(0);
        let (s, r) = (&sbuf.bytes()[..size], &mut rbuf.bytes_mut()[..size]);
        if rank == 0 {
            world.send_slice(s, 1, LAT_TAG)?;
            world.recv_into(r, 1, LAT_TAG)?;
        } else {
            world.recv_into(r, 0, LAT_TAG)?;
            world.send_slice(s, 0, LAT_TAG)?;
        }
        if let Some(at) = verify_pattern(r, size, peer) {
            check_failed(world, name, size, at);
        }
        sync_pair(world)?;
        let lat = pingpong_loop(world, s, r, iters, skip)?;
        if rank == 0 {
            print_latency_row(size, lat);
        }
        if max_size == 0 {
            break;
        }
    }
    Ok(())
}

/// Seconds on the monotonic clock (what `shmpi::wtime` returns), read through `std`:
/// `shmpi::wtime` goes through rustix's vDSO lookup, which crashes under valgrind
/// (rustix 1.1 `check_elf_base`), and these programs must run under callgrind.
pub fn now() -> f64 {
    use std::sync::OnceLock;
    use std::time::Instant;
    static START: OnceLock<Instant> = OnceLock::new();
    START.get_or_init(Instant::now).elapsed().as_secs_f64()
}
