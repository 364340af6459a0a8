//! `shmrun`: start N ranks of a program over one shared-memory segment.
//!
//! ```text
//! shmrun -n 4 ./my_program arg1 arg2
//! shmrun -np 8 --tag-output --timeout 60 ./my_program
//! shmrun -n 4 --example hello          # builds and runs a cargo example of this project
//! shmrun -n 2 hostname                 # any program: SHMPI_RANK/SHMPI_SIZE are set
//! shmrun -n 4 --trace run.json ./prog  # a timeline of every call and message
//! shmrun -n 4 --stats ./prog           # a communication summary at exit
//! ```

use std::ffi::OsString;
use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, ExitCode};
use std::time::Duration;

use clap::{CommandFactory, FromArgMatches, Parser, ValueEnum};
use shmpi::launch::{Bind, LaunchConfig, env_help, launch};

/// Prints a line of the launcher's own to stderr, ignoring a write error: a closed
/// stderr must not turn the exit status into a panic's.
macro_rules! say {
    ($($arg:tt)*) => {{
        let _ = writeln!(std::io::stderr().lock(), $($arg)*);
    }};
}

#[derive(Parser, Debug)]
#[command(
    name = "shmrun",
    version,
    about = "Run N ranks of a program that talk through one shared-memory segment"
)]
struct Cli {
    /// Number of ranks to start (`-np N` is accepted too).
    #[arg(short = 'n', long = "np", value_name = "N", value_parser = clap::value_parser!(u32).range(1..=4096))]
    n: u32,

    /// Prefix every line of output with `[rank] `.
    #[arg(long)]
    tag_output: bool,

    /// Bind rank r to the r-th CPU (`core`), or let the kernel place ranks (`none`).
    #[arg(long, value_enum, default_value_t = BindTo::None, value_name = "core|none")]
    bind_to: BindTo,

    /// Stop the job after SECS seconds, reporting what each rank was blocked on (exit 124).
    #[arg(long, value_name = "SECS")]
    timeout: Option<f64>,

    /// Record every rank's calls and messages and write them to FILE when the job ends:
    /// Chrome trace JSON (open it in Perfetto or chrome://tracing), or, if FILE ends in
    /// .html, a self-contained page with the timeline that opens offline in any browser.
    #[arg(long, value_name = "FILE")]
    trace: Option<PathBuf>,

    /// Print a summary when the job ends: per rank, time in communication and elsewhere,
    /// messages and bytes sent and received, calls per kind; and the rank-to-rank
    /// matrices of messages and bytes.
    #[arg(long)]
    stats: bool,

    /// Build (with cargo) and run the example NAME of the project in the current directory.
    #[arg(long, value_name = "NAME")]
    example: Option<String>,

    /// With --example: build it in release mode (default: the profile shmrun was built with).
    #[arg(long, requires = "example")]
    release: bool,

    /// The program to run and its arguments (with --example: the example's arguments).
    #[arg(
        trailing_var_arg = true,
        allow_hyphen_values = true,
        value_name = "PROGRAM [ARGS]..."
    )]
    command: Vec<OsString>,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum BindTo {
    Core,
    None,
}

/// Checks the launcher's own options (those before the program) against `cmd`'s and
/// rewrites mpirun's `-np N` / `-np=N` spelling to `--np`. An unknown option there is
/// an error naming it, so that a mistyped option is not taken for the program;
/// `--` puts an end to the options.
fn normalize_args(
    cmd: &clap::Command,
    args: impl Iterator<Item = OsString>,
) -> Result<Vec<OsString>, String> {
    // (name with its dashes, whether it takes a value) for every option clap knows.
    let mut known: Vec<(String, bool)> = Vec::new();
    for a in cmd.get_arguments().filter(|a| !a.is_positional()) {
        let takes = a.get_action().takes_values();
        known.extend(a.get_long().map(|l| (format!("--{l}"), takes)));
        known.extend(a.get_short().map(|c| (format!("-{c}"), takes)));
    }
    known.extend([("--help".into(), false), ("-h".into(), false)]);
    known.extend([("--version".into(), false), ("-V".into(), false)]);
    let mut out = Vec::new();
    let mut in_options = true;
    let mut expect_value = false;
    for (i, a) in args.enumerate() {
        if i == 0 || !in_options || expect_value {
            expect_value = false;
            out.push(a);
            continue;
        }
        let s = a.to_string_lossy().into_owned();
        if s == "--" {
            in_options = false;
            out.push(a);
        } else if s == "-np" {
            out.push("--np".into());
            expect_value = true;
        } else if let Some(v) = s.strip_prefix("-np=") {
            out.push(format!("--np={v}").into());
        } else if let Some(v) = s.strip_prefix("-n").filter(|v| !v.is_empty()) {
            // `-n4`, which clap would take for the start of the program.
            out.push(format!("--np={}", v.trim_start_matches('=')).into());
        } else if s.starts_with('-') && s.len() > 1 {
            // `--name=value` and `-n4` carry their value; `--name` and `-n` may take the next.
            let name = match s.split_once('=') {
                Some((n, _)) => n,
                None if !s.starts_with("--") => &s[..2],
                None => &s,
            };
            let Some(&(_, takes)) = known.iter().find(|(k, _)| k == name) else {
                let mut valid: Vec<&str> = known
                    .iter()
                    .filter(|(k, _)| k.starts_with("--"))
                    .map(|(k, _)| k.as_str())
                    .collect();
                valid.sort_unstable();
                return Err(format!(
                    "unknown option '{name}'; the options are -n/-np N, {}; to run a program \
                     whose name starts with '-', put '--' before it",
                    valid.join(", ")
                ));
            };
            expect_value = takes && name == s;
            out.push(a);
        } else {
            in_options = false;
            out.push(a);
        }
    }
    Ok(out)
}

fn build_example(name: &str, release: bool) -> Result<PathBuf, String> {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut cmd = Command::new(&cargo);
    cmd.args(["build", "--quiet", "--example", name]);
    if release {
        cmd.arg("--release");
    }
    let st = cmd
        .status()
        .map_err(|e| format!("cannot run cargo to build example {name}: {e}"))?;
    if !st.success() {
        return Err(format!("building example {name} failed"));
    }
    // Where cargo put it: `CARGO_TARGET_DIR` or a `build.target-dir` in a
    // `.cargo/config.toml` may move the target directory, and cargo knows which.
    let out = Command::new(&cargo)
        .args(["metadata", "--format-version", "1", "--no-deps"])
        .output()
        .map_err(|e| format!("cannot run cargo metadata: {e}"))?;
    let meta = String::from_utf8_lossy(&out.stdout);
    let target = json_string(&meta, "target_directory")
        .map(PathBuf::from)
        .ok_or_else(|| "cargo metadata did not say where the target directory is".to_string())?;
    Ok(target
        .join(if release { "release" } else { "debug" })
        .join("examples")
        .join(name))
}

/// The value of the first string field `key` in `json` (JSON's escapes undone): all
/// that is needed of `cargo metadata`'s output, without a JSON parser in the launcher.
fn json_string(json: &str, key: &str) -> Option<String> {
    let at = json.find(&format!("\"{key}\":\""))? + key.len() + 4;
    let mut out = String::new();
    let mut chars = json[at..].chars();
    loop {
        match chars.next()? {
            '"' => return Some(out),
            '\\' => match chars.next()? {
                'n' => out.push('\n'),
                't' => out.push('\t'),
                'r' => out.push('\r'),
                'b' => out.push('\u{8}'),
                'f' => out.push('\u{c}'),
                'u' => {
                    let hex: String = chars.by_ref().take(4).collect();
                    out.push(char::from_u32(u32::from_str_radix(&hex, 16).ok()?)?);
                }
                c => out.push(c), // \" \\ \/
            },
            c => out.push(c),
        }
    }
}

/// The command line, with the environment variables (from shmpi's table of knobs) and
/// the exit statuses in `--help`.
fn parse_cli(args: Vec<OsString>) -> Cli {
    let help = format!(
        "{}\nshmrun sets {}, {} and {} in every rank's environment.\n\nExit status: the \
         failing rank's (128 + signal if killed), 127 if the program cannot start, 124 after \
         --timeout, 120 on deadlock, 1 if the job succeeded but its --trace could not be \
         written (or shmrun itself failed), 2 for a usage error.",
        env_help(),
        shmpi::ENV_RANK,
        shmpi::ENV_SIZE,
        shmpi::ENV_FD
    );
    let matches = Cli::command().after_help(help).get_matches_from(args);
    Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.exit())
}

fn main() -> ExitCode {
    let args = match normalize_args(&Cli::command(), std::env::args_os()) {
        Ok(a) => a,
        Err(e) => {
            say!("shmrun: {e}");
            return ExitCode::from(2);
        }
    };
    let cli = parse_cli(args);
    let (program, args) = match &cli.example {
        Some(name) => {
            let release = cli.release || !cfg!(debug_assertions);
            match build_example(name, release) {
                Ok(p) => (p.into_os_string(), cli.command.clone()),
                Err(e) => {
                    say!("shmrun: {e}");
                    return ExitCode::from(1);
                }
            }
        }
        None => {
            let mut it = cli.command.clone().into_iter();
            let Some(p) = it.next() else {
                say!("shmrun: no program given; usage: shmrun -n N PROGRAM [ARGS...] (see --help)");
                return ExitCode::from(2);
            };
            (p, it.collect())
        }
    };
    let timeout = match cli.timeout {
        Some(s) => match Duration::try_from_secs_f64(s) {
            Ok(d) if s > 0.0 => Some(d),
            _ => {
                // 1e300 in full would fill the screen.
                let given = match format!("{s}") {
                    t if t.len() <= 24 => t,
                    _ => format!("{s:e}"),
                };
                say!(
                    "shmrun: --timeout must be a positive number of seconds, at most {:e}; not \
                     {given}",
                    Duration::MAX.as_secs_f64()
                );
                return ExitCode::from(2);
            }
        },
        None => None,
    };
    let mut cfg = LaunchConfig::new(cli.n as usize, program);
    cfg.args = args;
    cfg.tag_output = cli.tag_output;
    cfg.bind = match cli.bind_to {
        BindTo::Core => Bind::Core,
        BindTo::None => Bind::None,
    };
    cfg.timeout = timeout;
    cfg.trace = cli.trace.clone();
    cfg.stats = cli.stats;
    match launch(&cfg) {
        Ok(code) => ExitCode::from(code.clamp(0, 255) as u8),
        Err(e) => {
            say!("shmrun: {e}");
            ExitCode::from(1)
        }
    }
}
