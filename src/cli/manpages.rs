//! `plansync manpages DIR` (hidden): writes one roff man page per command, generated from the
//! command-line definitions, into DIR: `plansync.1`, `plansync-sync.1`,
//! `plansync-writes-retry.1` ... The Debian package ships them (compressed) in
//! /usr/share/man/man1/.

use std::path::{Path, PathBuf};

use clap::CommandFactory;

use super::{Cli, CliError};

/// Options of `plansync manpages`.
#[derive(Debug, clap::Args)]
pub struct ManpagesArgs {
    /// The directory to write the pages into (created if missing).
    #[arg(value_name = "DIR")]
    pub dir: PathBuf,
}

/// Writes a page for `plansync` and for every visible subcommand (recursively) into `dir`;
/// returns the paths written, the top page first.
pub fn write_all(dir: &Path) -> Result<Vec<PathBuf>, CliError> {
    std::fs::create_dir_all(dir).map_err(|source| CliError::Io {
        what: format!("cannot create the man page directory {}", dir.display()),
        source,
    })?;
    let mut cmd = Cli::command();
    // Building fills in each subcommand's display name (`plansync-sync`), the page's name.
    cmd.build();
    let mut written = Vec::new();
    write_tree(&cmd, dir, &mut written)?;
    Ok(written)
}

fn write_tree(cmd: &clap::Command, dir: &Path, written: &mut Vec<PathBuf>) -> Result<(), CliError> {
    let man = clap_mangen::Man::new(cmd.clone())
        .source(format!("plansync {}", env!("CARGO_PKG_VERSION")))
        .manual("plansync manual");
    let path = dir.join(man.get_filename());
    let mut page = Vec::new();
    man.render(&mut page)
        .and_then(|()| std::fs::write(&path, &page))
        .map_err(|source| CliError::Io {
            what: format!("cannot write the man page {}", path.display()),
            source,
        })?;
    written.push(path);
    for sub in cmd.get_subcommands() {
        // `help` is clap's own; hidden commands (this one) are not for users.
        if sub.is_hide_set() || sub.get_name() == "help" {
            continue;
        }
        write_tree(sub, dir, written)?;
    }
    Ok(())
}

pub fn run(args: ManpagesArgs) -> Result<(), CliError> {
    for path in write_all(&args.dir)? {
        println!("{}", path.display());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(written: &[PathBuf]) -> Vec<String> {
        written
            .iter()
            .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
            .collect()
    }

    #[test]
    fn one_page_per_visible_command_and_none_for_hidden_ones() {
        let dir = tempfile::tempdir().unwrap();
        let written = write_all(&dir.path().join("man1")).unwrap();
        let names = names(&written);
        assert_eq!(names[0], "plansync.1");
        for sub in Cli::command().get_subcommands() {
            let page = format!("plansync-{}.1", sub.get_name());
            assert_eq!(
                names.contains(&page),
                !sub.is_hide_set(),
                "{page} in {names:?}"
            );
        }
        assert!(!names.iter().any(|n| n.contains("help")), "{names:?}");
        for path in &written {
            assert!(path.is_file(), "{} was not written", path.display());
        }
    }

    #[test]
    fn pages_carry_their_command_options_and_nested_commands() {
        let dir = tempfile::tempdir().unwrap();
        let written = write_all(dir.path()).unwrap();
        let sync = std::fs::read_to_string(dir.path().join("plansync-sync.1")).unwrap();
        assert!(
            sync.contains(&format!(
                ".TH plansync-sync 1  \"plansync {}\"",
                env!("CARGO_PKG_VERSION")
            )),
            "{sync}"
        );
        assert!(sync.contains("dry\\-run"), "{sync}");
        let top = std::fs::read_to_string(dir.path().join("plansync.1")).unwrap();
        assert!(top.contains("doctor"), "{top}");
        assert!(!top.contains("manpages"), "the hidden command shows: {top}");
        // Subcommands of subcommands get pages of their own.
        let writes = Cli::command();
        let writes = writes.find_subcommand("writes").unwrap();
        for sub in writes.get_subcommands() {
            let page = format!("plansync-writes-{}.1", sub.get_name());
            assert!(names(&written).contains(&page), "{page} missing");
        }
    }
}
