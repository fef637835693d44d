//! `skua man`: man pages generated from the command-line definitions (clap_mangen), one per
//! command and subcommand, named by the path to it: `skua.1`, `skua-serve.1`, `skua-user.1`,
//! `skua-user-add.1`. A subcommand added to `Cli` gets its page with no further work, and the
//! pages say what `--help` says because both come from the same definitions.
//!
//! A page whose file already holds the same text is not written again, and each line of
//! output says which happened (`wrote PATH` / `unchanged PATH`), so an installer can run it
//! every time and tell whether anything changed (the ansible role does).

use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::Args;

/// `skua man` arguments.
#[derive(Args, Debug)]
pub struct ManArgs {
    /// The directory to write the pages to (made if missing; default: the working directory).
    #[arg(long, value_name = "DIR", default_value = ".")]
    out: PathBuf,
}

/// Writes every page that changed and prints what happened to each.
pub fn run(args: &ManArgs, cli: clap::Command) -> anyhow::Result<()> {
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("creating {}", args.out.display()))?;
    let mut cli = cli.disable_help_subcommand(true);
    // Gives each subcommand its display name ("skua-user-add"), which names its page.
    cli.build();
    for (path, wrote) in write_pages(&cli, &args.out)? {
        let what = if wrote { "wrote" } else { "unchanged" };
        println!("{what} {}", path.display());
    }
    Ok(())
}

/// Writes the page of `command` and of each of its visible subcommands, depth first; each
/// path comes with whether it was written (false: it held this text already).
fn write_pages(command: &clap::Command, out: &Path) -> anyhow::Result<Vec<(PathBuf, bool)>> {
    let man = clap_mangen::Man::new(command.clone())
        .source(format!("skua {}", env!("CARGO_PKG_VERSION")))
        .manual("skua manual");
    let path = out.join(man.get_filename());
    let mut page = Vec::new();
    man.render(&mut page).context("rendering a man page")?;
    let wrote = std::fs::read(&path).ok().as_deref() != Some(page.as_slice());
    if wrote {
        std::fs::write(&path, page).with_context(|| format!("writing {}", path.display()))?;
    }
    let mut written = vec![(path, wrote)];
    for sub in command.get_subcommands().filter(|sub| !sub.is_hide_set()) {
        written.extend(write_pages(sub, out)?);
    }
    Ok(written)
}
