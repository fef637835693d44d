//! `skua version [--build]` (Cyrus's cyr_buildinfo): the version, and with `--build` how this
//! binary was made. The build facts come from `build.rs` (git commit, rustc, target, profile).

use std::process::ExitCode;

use clap::Args;
use serde::Serialize;

/// `skua version`.
#[derive(Args, Debug)]
pub struct VersionArgs {
    /// Also how this binary was built: git commit, rustc, target, profile, features.
    #[arg(long)]
    build: bool,
    /// Print as JSON on stdout.
    #[arg(long)]
    json: bool,
}

/// What `skua version --build` reports.
#[derive(Debug, Serialize)]
struct BuildInfo {
    version: &'static str,
    /// `None` when the source was not a git checkout at build time.
    git_commit: Option<&'static str>,
    rustc: &'static str,
    target: &'static str,
    profile: &'static str,
    /// Cargo features of the `skua` binary (it has none today).
    features: Vec<&'static str>,
}

impl BuildInfo {
    fn get() -> BuildInfo {
        BuildInfo {
            version: env!("CARGO_PKG_VERSION"),
            git_commit: option_env!("SKUA_GIT_COMMIT").filter(|c| !c.is_empty()),
            rustc: env!("SKUA_RUSTC_VERSION"),
            target: env!("SKUA_TARGET"),
            profile: env!("SKUA_PROFILE"),
            features: Vec::new(),
        }
    }
}

/// Runs `skua version`.
///
/// # Errors
/// Writing stdout failed.
pub fn run(args: &VersionArgs) -> anyhow::Result<ExitCode> {
    let info = BuildInfo::get();
    match (args.build, args.json) {
        (false, false) => println!("skua {}", info.version),
        (false, true) => println!("{}", serde_json::json!({ "version": info.version })),
        (true, true) => println!("{}", serde_json::to_string(&info)?),
        (true, false) => {
            println!("skua {}", info.version);
            println!("  git commit  {}", info.git_commit.unwrap_or("unknown"));
            println!("  rustc       {}", info.rustc);
            println!("  target      {}", info.target);
            println!("  profile     {}", info.profile);
            let features =
                if info.features.is_empty() { "none".to_owned() } else { info.features.join(",") };
            println!("  features    {features}");
        }
    }
    Ok(ExitCode::SUCCESS)
}
