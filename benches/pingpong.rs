//! Two-process ping-pong through the real launcher and the real shared segment, under
//! criterion (`iter_custom`).
//!
//! The bench binary is its own rank program: the criterion side starts
//! `shmrun -n 2 --bind-to core <this binary>` once (shmrun sets `SHMPI_RANK`, which
//! sends `main` down the rank path), and talks to rank 0 over a Unix socket. For each
//! criterion batch it sends "SIZE ITERS"; rank 0 tells rank 1 with a shmpi message,
//! both run ITERS round trips of SIZE bytes (`send_slice`/`recv_into`, as osu_latency's
//! timed loop), and rank 0 answers with the nanoseconds its loop took, measured inside
//! the rank. Criterion gets that duration: the time per iteration is one round trip
//! (one-way latency = half). Process start-up and the socket are outside the timing.
//!
//! ```text
//! cargo bench --bench pingpong
//! ```

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use criterion::{BenchmarkId, Criterion, Throughput};

const SOCK_ENV: &str = "SHMPI_BENCH_SOCKET";
const CTL_TAG: i32 = 1;
const TAG: i32 = 2;

fn main() {
    if std::env::var_os("SHMPI_RANK").is_some() {
        if let Err(e) = rank_main() {
            eprintln!("pingpong bench rank failed: {e}");
            std::process::exit(1);
        }
        return;
    }
    let mut c = Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
        .sample_size(20)
        .configure_from_args();
    let mut job = Job::start();
    let mut g = c.benchmark_group("pingpong_2proc");
    for size in [8usize, 1024, 64 << 10] {
        g.throughput(Throughput::Bytes(2 * size as u64));
        g.bench_with_input(BenchmarkId::from_parameter(size), &size, |b, &size| {
            b.iter_custom(|iters| job.run(size, iters))
        });
    }
    g.finish();
    job.stop();
    c.final_summary();
}

/// The running `shmrun` job and the socket to its rank 0.
struct Job {
    child: Child,
    conn: BufReader<UnixStream>,
    dir: std::path::PathBuf,
}

impl Job {
    fn start() -> Job {
        let dir = std::env::temp_dir().join(format!("shmpi-bench-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let path = dir.join("ctl.sock");
        let listener = UnixListener::bind(&path).expect("bind the control socket");
        let me = std::env::current_exe().expect("own path");
        let child = Command::new(env!("CARGO_BIN_EXE_shmrun"))
            .args(["-n", "2", "--bind-to", "core"])
            .arg(&me)
            .env(SOCK_ENV, &path)
            .spawn()
            .expect("start shmrun");
        listener.set_nonblocking(true).expect("non-blocking accept");
        let t0 = Instant::now();
        let stream = loop {
            match listener.accept() {
                Ok((s, _)) => break s,
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                    assert!(
                        t0.elapsed() < Duration::from_secs(30),
                        "rank 0 did not connect within 30 s"
                    );
                    std::thread::sleep(Duration::from_millis(5));
                }
                Err(e) => panic!("accept: {e}"),
            }
        };
        stream.set_nonblocking(false).expect("blocking socket");
        Job {
            child,
            conn: BufReader::new(stream),
            dir,
        }
    }

    /// Runs `iters` round trips of `size` bytes; returns rank 0's timing of them.
    fn run(&mut self, size: usize, iters: u64) -> Duration {
        writeln!(self.conn.get_mut(), "{size} {iters}").expect("send a command");
        let mut line = String::new();
        self.conn.read_line(&mut line).expect("read the answer");
        let ns: u64 = line.trim().parse().expect("rank 0 answers nanoseconds");
        Duration::from_nanos(ns)
    }

    fn stop(mut self) {
        let _ = writeln!(self.conn.get_mut(), "0 0");
        let status = self.child.wait().expect("wait for shmrun");
        assert!(status.success(), "shmrun failed: {status}");
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn rank_main() -> shmpi::Result<()> {
    let universe = shmpi::init()?;
    let world = universe.world();
    assert_eq!(world.size(), 2, "the ping-pong bench runs on 2 ranks");
    let mut sbuf = vec![0u8; 64 << 10];
    let mut rbuf = vec![0u8; 64 << 10];
    if world.rank() == 0 {
        let path = std::env::var(SOCK_ENV).expect("socket path from the bench driver");
        let stream = UnixStream::connect(path).expect("connect to the bench driver");
        let mut conn = BufReader::new(stream);
        let mut line = String::new();
        loop {
            line.clear();
            if conn.read_line(&mut line).expect("read a command") == 0 {
                break;
            }
            let mut f = line.split_whitespace().map(|x| x.parse::<u64>().unwrap());
            let (size, iters) = (f.next().unwrap() as usize, f.next().unwrap());
            world.send_slice(&[size as u64, iters], 1, CTL_TAG)?;
            if iters == 0 {
                break;
            }
            if sbuf.len() < size {
                sbuf.resize(size, 0);
                rbuf.resize(size, 0);
            }
            let t0 = Instant::now();
            for _ in 0..iters {
                world.send_slice(&sbuf[..size], 1, TAG)?;
                world.recv_into(&mut rbuf[..size], 1, TAG)?;
            }
            let ns = t0.elapsed().as_nanos();
            writeln!(conn.get_mut(), "{ns}").expect("answer the driver");
        }
    } else {
        let mut ctl = [0u64; 2];
        loop {
            world.recv_into(&mut ctl, 0, CTL_TAG)?;
            let (size, iters) = (ctl[0] as usize, ctl[1]);
            if iters == 0 {
                break;
            }
            if sbuf.len() < size {
                sbuf.resize(size, 0);
                rbuf.resize(size, 0);
            }
            for _ in 0..iters {
                world.recv_into(&mut rbuf[..size], 0, TAG)?;
                world.send_slice(&sbuf[..size], 0, TAG)?;
            }
        }
    }
    Ok(())
}
