//! Running rank code under a system MPI's launcher (`mpirun`/`mpiexec`), with a
//! watchdog: the MPI counterpart of `tests/common`. The parent runs
//! `mpirun -n N <this test binary> <test name> --exact` with `SHMPI_TEST_CHILD` set;
//! each rank finds the variable and runs the rank code over the MPI backend.
//!
//! `SHMPI_TEST_MPIRUN` names the launcher (default `mpirun`, Open MPI on Debian);
//! `SHMPI_TEST_MPI=mpich` (or a launcher whose name says mpich) uses Hydra's options.
//! Under Open MPI the network path is forced (`ob1` over TCP on the loopback), so the
//! tests exercise what a cluster runs; `SHMPI_TEST_OMPI_SM=1` lets it use shared memory.

#![allow(dead_code)]

use std::process::{Command, Output};

use shmpi::Communicator;

#[path = "../common/mod.rs"]
mod common;

pub use common::{assert_success, is_child};
// Only some test files poll.
#[allow(unused_imports)]
pub use common::{cancels_untouched, poll_until};

/// Runs a command under the watchdog of `tests/common`.
pub fn common_watchdog(cmd: Command) -> Output {
    common::run_with_watchdog(cmd)
}

/// The launcher to use.
pub fn mpirun() -> String {
    std::env::var("SHMPI_TEST_MPIRUN").unwrap_or_else(|_| "mpirun".into())
}

/// Whether the launcher is MPICH's Hydra.
pub fn is_mpich() -> bool {
    std::env::var("SHMPI_TEST_MPI").is_ok_and(|v| v == "mpich") || mpirun().contains("mpich")
}

/// A new directory under the test target's temporary directory for one launch's
/// Open MPI session tree.
fn session_base() -> std::path::PathBuf {
    static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let k = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let dir = std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("ompi-{}-{k}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("a session directory for mpirun");
    dir
}

/// The launcher's command for `n` ranks of `program`.
pub fn mpirun_cmd(n: usize, program: &str) -> Command {
    let mut cmd = Command::new(mpirun());
    if is_mpich() {
        cmd.arg("-n").arg(n.to_string());
        cmd.env("MPIEXEC_TIMEOUT", "100");
    } else {
        cmd.args([
            "--allow-run-as-root",
            "--oversubscribe",
            "--bind-to",
            "none",
        ]);
        cmd.args(["--mca", "mpi_yield_when_idle", "1", "--timeout", "100"]);
        // A session directory tree of its own per launch: Open MPI 4.1 fails ("A call
        // to mkdir was unable to create the desired directory ... File exists") when
        // another mpirun creates the shared `/tmp/ompi.<host>.<uid>` between its check
        // and its mkdir, and the tests of a file launch in parallel.
        cmd.arg("--mca").arg("orte_tmpdir_base").arg(session_base());
        if std::env::var_os("SHMPI_TEST_OMPI_SM").is_none() {
            cmd.args(["--mca", "pml", "ob1", "--mca", "btl", "self,tcp"]);
            cmd.args([
                "--mca",
                "btl_tcp_if_include",
                "lo",
                "--mca",
                "oob_tcp_if_include",
                "lo",
            ]);
        }
        cmd.arg("-n").arg(n.to_string());
    }
    cmd.arg(program);
    cmd
}

/// Runs `f` on every rank of an N-rank MPI job and asserts the job succeeds. `name`
/// must be the test function's name.
pub fn run_mpi(name: &str, n: usize, f: impl Fn(&Communicator)) {
    if is_child(name) {
        let universe = shmpi::init().expect("init under mpirun");
        let world = universe.world();
        assert_eq!(
            world.size() as usize,
            n,
            "the MPI backend's world has every rank"
        );
        f(&world);
        return;
    }
    let out = launch_mpi(name, n, &[]);
    assert_success(&out, &format!("{name} with {n} ranks under {}", mpirun()));
}

/// Starts `mpirun -n N <this binary> name --exact` and returns its output.
pub fn launch_mpi(name: &str, n: usize, env: &[(&str, &str)]) -> Output {
    let exe = std::env::current_exe().expect("test binary path");
    let mut cmd = mpirun_cmd(n, exe.to_str().expect("utf-8 path"));
    cmd.args([
        name,
        "--exact",
        "--nocapture",
        "--test-threads=1",
        "--quiet",
    ]);
    cmd.env("SHMPI_TEST_CHILD", name);
    cmd.env("OMPI_ALLOW_RUN_AS_ROOT", "1");
    cmd.env("OMPI_ALLOW_RUN_AS_ROOT_CONFIRM", "1");
    cmd.envs(env.iter().copied());
    common::run_with_watchdog(cmd)
}

/// The rank counts every test runs at: 2, 3 and 4, or `SHMPI_TEST_NS` (`2,3`). MPICH's
/// default build polls without yielding, so with more ranks than cores each call can take
/// milliseconds; its run in scripts/mpi_test.sh uses 2 ranks.
pub fn ns() -> Vec<usize> {
    std::env::var("SHMPI_TEST_NS")
        .ok()
        .map(|v| v.split(',').filter_map(|x| x.trim().parse().ok()).collect())
        .unwrap_or_else(|| vec![2, 3, 4])
}

/// [`run_mpi`] at each of `ns` ranks (in a rank: the one job it belongs to).
pub fn run_mpi_ns(name: &str, ns: &[usize], f: impl Fn(&Communicator)) {
    if is_child(name) {
        let universe = shmpi::init().expect("init under mpirun");
        f(&universe.world());
        return;
    }
    for &n in ns {
        run_mpi(name, n, &f);
    }
}
