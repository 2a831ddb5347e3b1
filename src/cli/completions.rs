//! `plansync completions SHELL`: the shell completion script for bash, zsh or fish, printed
//! to stdout.

use clap::CommandFactory;
use clap_complete::Shell;

use super::Cli;

/// Options of `plansync completions`.
#[derive(Debug, clap::Args)]
#[command(after_long_help = super::help::EXIT_COMPLETIONS)]
pub struct CompletionsArgs {
    /// The shell to complete for.
    ///
    /// Examples:
    ///   plansync completions bash > /etc/bash_completion.d/plansync
    ///   plansync completions zsh > "${fpath[1]}/_plansync"
    ///   plansync completions fish > ~/.config/fish/completions/plansync.fish
    #[arg(value_enum, value_name = "SHELL")]
    pub shell: CompletionShell,
}

/// The shells plansync writes completions for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum CompletionShell {
    Bash,
    Zsh,
    Fish,
}

/// Writes the completion script for `shell` to `out`.
pub fn write(shell: CompletionShell, out: &mut dyn std::io::Write) {
    let shell = match shell {
        CompletionShell::Bash => Shell::Bash,
        CompletionShell::Zsh => Shell::Zsh,
        CompletionShell::Fish => Shell::Fish,
    };
    clap_complete::generate(shell, &mut Cli::command(), "plansync", out);
}

pub fn run(args: CompletionsArgs) {
    write(args.shell, &mut std::io::stdout());
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The script for `shell`.
    fn script(shell: CompletionShell) -> String {
        let mut out = Vec::new();
        write(shell, &mut out);
        String::from_utf8(out).unwrap()
    }

    /// Every shell's script.
    fn scripts() -> [(CompletionShell, String); 3] {
        [
            CompletionShell::Bash,
            CompletionShell::Zsh,
            CompletionShell::Fish,
        ]
        .map(|shell| (shell, script(shell)))
    }

    #[test]
    fn each_shell_gets_a_script_naming_the_subcommands() {
        for (shell, text) in scripts() {
            for sub in ["sync", "status", "explain", "doctor", "writes"] {
                assert!(text.contains(sub), "{shell:?} lacks {sub}");
            }
        }
    }

    #[test]
    fn resync_object_completes_to_the_object_names() {
        for (shell, text) in scripts() {
            for kind in crate::sync::ObjectKind::ALL {
                assert!(
                    text.contains(kind.label()),
                    "{shell:?} lacks {}",
                    kind.label()
                );
            }
            // The labels are offered as --object's values, not only as words elsewhere.
            assert!(
                text.contains("plan_account"),
                "{shell:?} does not complete --object"
            );
        }
        let bash = script(CompletionShell::Bash);
        let object_case = bash
            .split("--object)")
            .nth(1)
            .and_then(|rest| rest.split(";;").next())
            .unwrap_or_default();
        for kind in crate::sync::ObjectKind::ALL {
            assert!(
                object_case.contains(kind.label()),
                "bash completes --object without {}:\n{object_case}",
                kind.label()
            );
        }
    }
}
