//! `quire man`: the manual page `quire.1`, generated from the command definitions so
//! it cannot drift from `--help`. The Debian package installs the copy committed as
//! `packaging/quire.1`; a test checks that the copy is current.

use roff::{Roff, bold, roman};

/// Where the packaged README is, for the SEE ALSO section.
const PACKAGED_README: &str = "/usr/share/doc/quire/README.md";
/// Width of the subcommands' help, which man indents by 7 columns.
const HELP_WIDTH: usize = 72;

/// Prints the manual page of `command` (the whole `quire` command) on stdout.
pub fn print(command: clap::Command) -> anyhow::Result<()> {
    print!("{}", render(command)?);
    Ok(())
}

/// The manual page: clap_mangen's title, name, synopsis, description and global
/// options, then every subcommand's full help, then exit status, files and
/// pointers to the rest of the documentation.
pub fn render(command: clap::Command) -> anyhow::Result<String> {
    let mut command = reproducible(command.disable_help_subcommand(true));
    command.build();
    let man = clap_mangen::Man::new(command.clone()).date("");
    let mut page = Vec::new();
    man.render_title(&mut page)?;
    man.render_name_section(&mut page)?;
    man.render_synopsis_section(&mut page)?;
    man.render_description_section(&mut page)?;
    man.render_options_section(&mut page)?;
    let mut roff = Roff::new();
    roff.control("SH", ["COMMANDS"]);
    for sub in command.get_subcommands_mut().filter(|s| !s.is_hide_set()) {
        describe_command(&mut roff, sub, "quire");
    }
    roff.control("SH", ["EXIT STATUS"]);
    roff.text([roman(
        "0 on success; 1 when the command failed (with --json the failure is printed \
         as {\"error\", \"remedy\"} on stdout); 2 for a wrong command line. A command whose \
         standard output is closed early ends silently by SIGPIPE.",
    )]);
    roff.control("SH", ["FILES"]);
    for (path, what) in [
        (
            "./quire-data",
            "the default data directory: database quire.redb, admin-password (mode 0600), \
             listen-address, peer-secret.key and the default store",
        ),
        (
            "/etc/quire/quire.toml",
            "the packaged node's configuration (data in /var/lib/quire)",
        ),
    ] {
        roff.control("TP", []);
        roff.text([bold(path)]);
        roff.text([roman(what)]);
    }
    roff.control("SH", ["SEE ALSO"]);
    roff.text([roman(format!(
        "{PACKAGED_README} (in the source tree: README.md and ARCHITECTURE.md)."
    ))]);
    page.extend_from_slice(roff.render().as_bytes());
    Ok(String::from_utf8(page)?)
}

/// The same command with help that does not depend on where it is rendered: a
/// fixed width, and no values of environment variables.
fn reproducible(command: clap::Command) -> clap::Command {
    command
        .term_width(HELP_WIDTH)
        .mut_args(|arg| arg.hide_env_values(true))
        .mut_subcommands(reproducible)
}

/// A subsection with the full help of `command`, then one per subcommand of it.
fn describe_command(roff: &mut Roff, command: &mut clap::Command, parent: &str) {
    let name = format!("{parent} {}", command.get_name());
    roff.control("SS", [name.as_str()]);
    let help = command.render_long_help().to_string();
    roff.control("nf", []);
    for line in help.lines() {
        roff.text([roman(line)]);
    }
    roff.control("fi", []);
    for sub in command.get_subcommands_mut().filter(|s| !s.is_hide_set()) {
        describe_command(roff, sub, &name);
    }
}
